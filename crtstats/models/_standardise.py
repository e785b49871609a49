"""Marginal standardisation from fitted models: :func:`standardise`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd

from crtstats._options import check_option
from crtstats.exceptions import (
    BoundaryFitWarning,
    ConvergenceWarning,
    InvalidParameterError,
    ModelSpecificationError,
    SeparationWarning,
)
from crtstats.models._contrast import check_level, t_pvalue
from crtstats.models._result import CRTResult
from crtstats.models._standardise_cluster import standardise_cluster_level
from crtstats.models._standardise_design import counterfactual_designs
from crtstats.models._standardise_glmm import glmm_pieces
from crtstats.models._standardise_quad import inverse_link_terms, marginal_means
from crtstats.models._standardise_result import (
    MEASURES,
    StandardisedResult,
    contrast_rows,
    contrasts,
    finish_frame,
    summary_rows,
)
from crtstats.models._warn import WarningLog

__all__ = ["StandardiseType", "StandardisedResult", "standardise", "standardise_arrays"]

StandardiseType = Literal["marginal", "conditional", "cluster-specific"]
_TYPES: tuple[StandardiseType, ...] = get_args(StandardiseType)
_KIND = {"binomial": "risk", "poisson": "rate", "negative_binomial": "rate",
         "gaussian": "mean"}
_LEVEL_SCALE = {"risk": "logit", "rate": "log", "mean": "identity"}


@dataclass(frozen=True)
class StandardiseInputs:
    """Everything the standardisation needs, as arrays (the fit's estimates or any other).

    ``matrices`` holds the model matrix per level of ``by``; ``offset`` enters the
    linear predictor, ``weights`` weight the rows (trials; exposure for the log link,
    whose offset is then a weight, not part of ``eta``); ``theta = (beta, sigma, ...)``
    with joint covariance ``cov``; ``u`` and ``u_grad`` the clusters' predicted
    effects and their derivatives in ``theta`` (cluster-specific type only).
    """

    link: str
    kind: str
    labels: tuple[str, ...]
    matrices: tuple[np.ndarray, ...]
    offset: np.ndarray
    weights: np.ndarray
    groups: np.ndarray
    theta: np.ndarray
    cov: np.ndarray
    n_beta: int
    u: np.ndarray | None = None
    u_grad: np.ndarray | None = None


def _level_mean(inp: StandardiseInputs, X: np.ndarray, type_: str, theta: np.ndarray,
                gradient: bool) -> tuple[float, np.ndarray, int, bool]:
    """The standardised mean at one level and its gradient in ``theta``."""
    p = inp.n_beta
    beta = theta[:p]
    sigma = abs(float(theta[p])) if theta.shape[0] > p else 0.0
    eta = X @ beta + inp.offset
    w = inp.weights
    total = float(np.sum(w))
    grad = np.zeros(theta.shape[0])
    nodes, exact = 0, True
    if type_ == "marginal":
        rm = marginal_means(inp.link, eta, sigma)
        value, d_eta = rm.value, rm.d_eta
        nodes, exact = rm.nodes, rm.exact
        if gradient and theta.shape[0] > p:
            grad[p] = float(w @ rm.d_sigma) / total
    elif type_ == "conditional":
        value, d_eta = inverse_link_terms(inp.link, eta)
    else:
        assert inp.u is not None and inp.u_grad is not None
        value, d_eta = inverse_link_terms(inp.link, eta + inp.u[inp.groups])
        if gradient:
            per_cluster = np.bincount(inp.groups, weights=w * d_eta,
                                      minlength=inp.u.shape[0])
            grad += per_cluster @ inp.u_grad / total
    if gradient:
        grad[:p] += X.T @ (w * d_eta) / total
    return float(w @ value) / total, grad, nodes, exact


def _draws(inp: StandardiseInputs, type_: str, n_draws: int, seed: int | None
           ) -> np.ndarray:
    """Standardised means at ``n_draws`` parameter vectors drawn from N(theta, cov)."""
    rng = np.random.default_rng(seed)
    thetas = rng.multivariate_normal(inp.theta, inp.cov, size=n_draws, method="eigh")
    out = np.empty((n_draws, len(inp.labels)))
    for b, theta in enumerate(thetas):
        for a, X in enumerate(inp.matrices):
            out[b, a] = _level_mean(inp, X, type_, theta, gradient=False)[0]
    return out


def standardise_arrays(
    inp: StandardiseInputs,
    *,
    type_: str,
    df_of: Callable[[np.ndarray], float],
    level: float,
    bootstrap: int | None = None,
    seed: int | None = None,
    log: WarningLog | None = None,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, int]:
    """Standardised means, their covariance, the tidy rows and the quadrature size."""
    log = log if log is not None else WarningLog()
    K = len(inp.labels)
    r, J = np.empty(K), np.empty((K, inp.theta.shape[0]))
    nodes, exact = 0, True
    for a, X in enumerate(inp.matrices):
        r[a], J[a], n, ok = _level_mean(inp, X, type_, inp.theta, gradient=True)
        nodes, exact = max(nodes, n), exact and ok
    if not exact:
        log.warn(
            f"standardise: the Gauss-Hermite rule did not settle at {nodes} nodes (cluster "
            f"SD {abs(float(inp.theta[inp.n_beta])):.3g} on the logit scale); the marginal "
            "risks may be inexact beyond 1e-12. Check the fit's cluster variance.",
            ConvergenceWarning,
        )
    measures, names, c_est, C = contrasts(inp.kind, inp.labels, r, J)
    cov_r = J @ inp.cov @ J.T
    se_r = np.sqrt(np.diag(cov_r))
    se_c = np.sqrt(np.einsum("ij,jk,ik->i", C, inp.cov, C)) if len(C) else np.zeros(0)
    p = inp.n_beta
    df_r = np.array([df_of(g[:p]) for g in J])
    df_c = np.array([df_of(g[:p]) for g in C])
    scale = _LEVEL_SCALE[inp.kind]
    rows = [summary_rows(inp.kind, inp.labels, r, se_r, df_r, scale, level),
            contrast_rows(measures, names, c_est, se_c, df_c, level)]
    frame = pd.concat(rows, ignore_index=True)
    if bootstrap is not None:
        frame = _bootstrap_frame(frame, inp, type_, bootstrap, seed, level)
    return r, cov_r, frame, nodes


def _on_scale(scale: str, values: np.ndarray) -> np.ndarray:
    out: np.ndarray = values
    if scale == "log":
        out = np.log(values)
    elif scale == "logit":
        out = np.log(values / (1.0 - values))
    return out


def _bootstrap_frame(frame: pd.DataFrame, inp: StandardiseInputs, type_: str,
                     n_draws: int, seed: int | None, level: float) -> pd.DataFrame:
    """SEs (SD of the draws), percentile intervals and p (t on the interval's scale
    with the draws' SD there) from the parametric bootstrap."""
    draws = _draws(inp, type_, n_draws, seed)
    values = [draws[:, a] for a in range(len(inp.labels))]
    for a in range(1, len(inp.labels)):
        ra, r0 = draws[:, a], draws[:, 0]
        for measure, _ in MEASURES[inp.kind]:
            if measure.endswith("difference"):
                values.append(ra - r0)
            elif measure == "odds ratio":
                values.append((ra / (1 - ra)) / (r0 / (1 - r0)))
            else:
                values.append(ra / r0)
    out = frame.copy()
    tail = 100.0 * (1.0 - level) / 2.0
    se, low, high, pvalue = (out[c].to_numpy(dtype=float).copy()
                             for c in ("std_error", "conf_low", "conf_high", "pvalue"))
    for i, v in enumerate(values):
        scale = str(out.at[i, "ci_scale"])
        se[i] = float(np.std(v, ddof=1))
        low[i], high[i] = np.percentile(v, [tail, 100.0 - tail])
        if np.isfinite(pvalue[i]):
            centre = _on_scale(scale, np.array([out.at[i, "estimate"]], dtype=float))
            spread = float(np.std(_on_scale(scale, v), ddof=1))
            pvalue[i] = float(t_pvalue(centre / spread, np.array([out.at[i, "df"]]))[0])
    return out.assign(std_error=se, conf_low=low, conf_high=high, pvalue=pvalue)


def _check_arguments(result: object, data: object, by: object, type_: str, level: float,
                     bootstrap: object, seed: object) -> None:
    if not isinstance(result, CRTResult):
        raise InvalidParameterError(
            f"standardise: result must be a fitted model (a CRTResult from glmm, gee or "
            f"cluster_level); got {type(result).__name__}."
        )
    if not isinstance(data, pd.DataFrame):
        raise ModelSpecificationError(
            f"standardise: data must be a pandas DataFrame; got {type(data).__name__}."
        )
    if not isinstance(by, str):
        raise InvalidParameterError(f"standardise: by must be a column name; got {by!r}.")
    check_option("type", type_, _TYPES)
    check_level(level)
    if bootstrap is not None and (isinstance(bootstrap, bool) or not isinstance(
            bootstrap, int | np.integer) or bootstrap < 100):
        raise InvalidParameterError(
            f"standardise: bootstrap must be None (delta method) or a whole number of draws "
            f"of at least 100; got {bootstrap!r}."
        )
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
        raise InvalidParameterError(f"standardise: seed must be a whole number or None; "
                                    f"got {seed!r}.")
    if result.model not in ("glmm", "gee", "cluster_level") or result.spec is None:
        raise InvalidParameterError(
            f"standardise: supports glmm, gee and cluster_level results; got a "
            f"{result.model!r} result."
        )
    if result.model != "glmm" and type_ != "marginal":
        raise InvalidParameterError(
            f"standardise: a {result.model} fit has no random effects, its model is already "
            f"population-averaged: use type='marginal'; got type={type_!r}."
        )
    if bootstrap is not None and type_ == "cluster-specific":
        raise InvalidParameterError(
            "standardise: bootstrap= is for type='marginal' or 'conditional'; the "
            "cluster-specific risks depend on the predicted cluster effects, which the "
            "parameter draws do not refit. Use the delta method (bootstrap=None)."
        )


def _unusable(result: CRTResult, log: WarningLog) -> bool:
    """Warn (and return True) when the fit's SEs cannot carry a standardisation."""
    categories = {getattr(w, "category", None) for w in result.warnings}
    if SeparationWarning in categories:
        log.warn(
            "standardise: the fit shows separation (some estimates are not finite), so the "
            "standardised risks are where the optimiser stopped and their standard errors "
            "are meaningless: SEs, intervals and p-values are NaN. Merge or drop the "
            "separated terms, or use a cluster-level analysis.",
            SeparationWarning,
        )
        return True
    if not result.converged:
        log.warn(
            "standardise: the fit did not converge, so its covariance cannot be trusted: "
            "SEs, intervals and p-values are NaN. Resolve the fit's ConvergenceWarning first.",
            ConvergenceWarning,
        )
        return True
    return False


def _inputs(result: CRTResult, data: pd.DataFrame, by: str, type_: str, log: WarningLog
            ) -> tuple[StandardiseInputs, int, int]:
    spec = result.spec
    assert spec is not None
    cf = counterfactual_designs(spec.formula, data, by=by, names=result.param_names,
                                cluster=spec.cluster, offset=spec.offset,
                                exposure=spec.exposure, binary=result.family == "binomial")
    design = cf.design
    if design.nobs != result.nobs:
        raise ModelSpecificationError(
            f"standardise: the model uses {design.nobs} rows of these data but was fitted "
            f"to {result.nobs}: pass the data the model was fitted to."
        )
    beta = np.asarray(result.param_values, dtype=float)
    u = u_grad = None
    if result.model == "glmm":
        pieces = glmm_pieces(result, data, cf)
        if pieces.boundary:
            log.warn(
                f"standardise: the cluster variance is on the boundary (sigma = "
                f"{pieces.sigma:.3g}): marginal, conditional and cluster-specific risks "
                "coincide with those of a GLM, and the variance's uncertainty is not in "
                "the SEs. Report it as such; consider a cluster-level analysis.",
                BoundaryFitWarning,
            )
        theta = np.concatenate([beta, [pieces.sigma],
                                np.log([result.details.nb_shape])  # type: ignore[union-attr]
                                if result.family == "negative_binomial" else []])
        cov, weights, u, u_grad = pieces.cov, pieces.weights, pieces.u, pieces.u_grad
    else:
        theta, cov, weights = beta, np.array(result.cov_values), np.ones(design.nobs)
    offset = design.offset
    keys = [c for c in design.columns if c != by]
    if result.link == "log":  # exposure is a weight: rate = sum mu / sum exposure
        weights, offset = weights * np.exp(offset), np.zeros_like(offset)
    else:
        keys.append("(offset)")
    if type_ == "cluster-specific":
        keys.append("(cluster)")
    # rows with the same covariates (and offset, cluster) have the same mean: work
    # per pattern, with the pattern's total weight
    first, inverse = cf.patterns(keys)
    inp = StandardiseInputs(
        link=result.link, kind=_KIND[result.family], labels=cf.levels,
        matrices=cf.matrices(first), offset=offset[first],
        weights=np.bincount(inverse, weights=weights, minlength=first.shape[0]),
        groups=design.groups[first], theta=theta, cov=cov, n_beta=beta.shape[0], u=u,
        u_grad=u_grad,
    )
    return inp, design.nobs, design.n_clusters


def standardise(
    result: CRTResult,
    data: pd.DataFrame,
    *,
    by: str = "arm",
    type: StandardiseType = "marginal",
    level: float = 0.95,
    bootstrap: int | None = None,
    seed: int | None = None,
) -> StandardisedResult:
    """Standardised risks (rates, means) per arm from a fitted model, and their contrasts.

    Every row of ``data`` that the model used has its ``by`` column set to each level
    in turn, keeping its covariates (and cluster and exposure); the model's mean is
    averaged over the rows, and the averages are compared: risk difference, risk ratio
    (the ratio of the averages) and marginal odds ratio; for counts the rate
    difference and rate ratio.

    Parameters
    ----------
    result
        A :func:`~crtstats.glmm`, :func:`~crtstats.gee` or (unadjusted)
        :func:`~crtstats.cluster_level` result.
    data
        The data the model was fitted to (checked: the same rows, columns and, for a
        GLMM, the same log-likelihood at the estimates). Their rows are the covariate
        distribution standardised over.
    by
        The column whose levels are compared (the arm); the first level (category
        order, else sorted) is the reference of the contrasts.
    type
        For a GLMM: ``"marginal"`` (default; the mean over the random-effect
        distribution, population-averaged), ``"conditional"`` (at ``b = 0``, the
        cluster with a typical effect: emmeans' ``type = "response"``) or
        ``"cluster-specific"`` (each row at its own cluster's predicted effect
        ``u_i``). GEE and cluster-level results are marginal already.
    level
        Confidence level of the intervals.
    bootstrap
        None (default): delta method. A number of draws (>= 100): parametric bootstrap
        from the estimates' asymptotic normal distribution (``beta`` and the variance
        parameters jointly); SEs are the draws' SD, intervals their percentiles.
    seed
        Seed of the bootstrap draws.

    Returns
    -------
    StandardisedResult
        ``risks`` per level, ``cov``, and ``to_frame()``: one row per level and per
        contrast with estimate, SE, df, CI, p and the estimand (population
        ``"participant-average"`` for glmm and gee, ``"cluster-average"`` for an
        unweighted cluster-level analysis; the measure; ``"marginal"`` or
        ``"conditional"``).

    Raises
    ------
    InvalidParameterError
        On an unknown option, a result other than glmm, gee or cluster_level, a
        non-marginal type for a GEE or cluster-level result, or ``bootstrap`` with the
        cluster-specific type.
    MissingColumnError
        If ``by`` (or a model column) is not in ``data``.
    ModelSpecificationError
        If ``by`` is not in the model or has fewer than two levels, or ``data`` are not
        the data the model was fitted to.

    Warns
    -----
    SeparationWarning
        The fit is separated: SEs, intervals and p are NaN.
    ConvergenceWarning
        The fit did not converge (SEs NaN), or the quadrature did not settle.
    BoundaryFitWarning
        The cluster variance is zero: the risks are a GLM's.

    Notes
    -----
    With ``eta_ij(a) = x_ij(a)' beta + o_ij`` and row weights ``w_ij`` (binomial
    trials; for the log link the exposure ``e_ij = exp(o_ij)``, which then leaves
    ``eta``), the standardised risk of level a is ``r(a) = sum w_ij H_ij(a) / sum
    w_ij`` with

    * conditional: ``H = h(eta)``;
    * cluster-specific: ``H = h(eta + u_i)``, ``u_i = sigma b_i`` the conditional mode
      (lme4's ``ranef``), a function of ``(beta, sigma)`` through the mode equation;
    * marginal: ``H = int h(eta + sigma z) phi(z) dz``: ``exp(eta + sigma^2 / 2)`` for
      the log link; for the logit, adaptive Gauss-Hermite quadrature per distinct
      ``eta`` with as many nodes as make two successive rules agree to 1e-12.

    The delta method uses the analytic gradient of ``r`` in ``theta = (beta, sigma)``
    (and NB2's ``log theta``) and their joint covariance, the inverse Hessian of the
    Laplace/AGQ deviance (the fit's ``cov`` for ``beta``; the variance block from the
    Hessian's variance columns, see ``docs/marginal-effects.md``). ``RD = r(a) -
    r(0)``, ``RR = r(a) / r(0)``, ``OR = [r(a) / (1 - r(a))] / [r(0) / (1 - r(0))]``;
    ratios' intervals and tests are on the log scale, risks' on the logit scale
    (rates' on the log scale). The df are the model's: between-within for a GLMM (the
    smallest df of the coefficients the gradient involves), the GEE's, ``k - 2`` for
    a cluster-level analysis.

    References
    ----------
    Greenland S (2004). Model-based estimation of relative risks and other
    epidemiologic measures in studies of common outcomes and in case-control studies.
    Am J Epidemiol 160:301-305.
    Pavlou M, Ambler G, Seaman S, Omar RZ (2015). A note on obtaining correct marginal
    predictions from a random intercepts model for binary outcomes. BMC Med Res
    Methodol 15:59.

    Examples
    --------
    Marginal risks of admission per arm from a logistic GLMM; in R, the exact
    ``integrate()`` over the random effect of ``predict(fit, re.form = NA)`` per row
    (emmeans' ``type = "response"`` gives the conditional risks at ``b = 0``).

    >>> import crtstats
    >>> trial = crtstats.datasets.load_example()
    >>> adm = trial.admissions.merge(trial.teams[["team_id", "arm"]])
    >>> fu = adm[adm["period"] == "follow_up"]
    >>> fit = crtstats.glmm("admitted ~ arm", fu, cluster="team_id")
    >>> std = crtstats.standardise(fit, fu, by="arm")
    >>> std.levels
    ('control', 'intervention')
    >>> frame = std.to_frame().set_index(["quantity", "level"])
    >>> rd = frame.loc[("risk difference", "intervention vs control")]
    >>> bool(rd["conf_low"] < rd["estimate"] < rd["conf_high"]), rd["measure"]
    (True, 'risk difference')
    """
    _check_arguments(result, data, by, type, level, bootstrap, seed)
    log = WarningLog()
    if result.model == "cluster_level":
        return standardise_cluster_level(result, by=by, level=level, log=log)
    unusable = _unusable(result, log)
    inp, nobs, n_clusters = _inputs(result, data, by, type, log)
    if unusable:
        inp = StandardiseInputs(**{**inp.__dict__, "cov": np.full_like(inp.cov, np.nan)})
    if result.model == "glmm":
        df_of: Callable[[np.ndarray], float] = _glmm_df(result)
    else:
        df_of = _constant_df(float(np.min(result.df_values)))
    r, cov_r, frame, nodes = standardise_arrays(
        inp, type_=type, df_of=df_of, level=level, bootstrap=bootstrap, seed=seed, log=log)
    conditioning = "marginal" if type == "marginal" else "conditional"
    return StandardisedResult(
        by=by, levels=inp.labels, type=type, kind=inp.kind, estimates=r, cov=cov_r,
        population="participant-average", conditioning=conditioning, level=level,
        method="delta" if bootstrap is None else "bootstrap", nodes=nodes, nobs=nobs,
        n_clusters=n_clusters, model=result.model,
        frame=finish_frame(frame, "participant-average", conditioning),
        warnings=log.records,
    )


@dataclass(frozen=True)
class _constant_df:
    value: float

    def __call__(self, grad: np.ndarray) -> float:
        return self.value


@dataclass(frozen=True)
class _glmm_df:
    """The between-within df of the coefficients a gradient involves."""

    result: CRTResult

    def __call__(self, grad: np.ndarray) -> float:
        if not np.any(grad):
            return float(np.min(self.result.df_values))
        return self.result._row_df(grad)
