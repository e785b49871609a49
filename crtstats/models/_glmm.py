"""Random-intercept generalised linear mixed model: :func:`glmm`."""

from __future__ import annotations

from dataclasses import replace
from typing import Literal, get_args

import numpy as np
import pandas as pd

from crtstats._options import check_option
from crtstats.exceptions import (
    BoundaryFitWarning,
    ConvergenceWarning,
    FewClustersWarning,
    InvalidParameterError,
    ModelSpecificationError,
    SeparationWarning,
    _format_value,
)
from crtstats.models._checks import (
    BetweenWithin,
    between_within,
    check_fit_arguments,
    check_rank,
    require_columns,
)
from crtstats.models._data_checks import check_finite, check_terms_vary
from crtstats.models._design import Design, build_design, warn_design
from crtstats.models._details import GlmmDetails, ModelSpec
from crtstats.models._glmm_checks import separated_columns
from crtstats.models._glmm_families import FamilyName, saturated_loglik
from crtstats.models._glmm_fit import FitOutcome, glm_start, maximise
from crtstats.models._glmm_quadrature import make_problem
from crtstats.models._glmm_reml import GLMMMethod, RemlOutcome, check_method, fit_problem
from crtstats.models._predict import predictor_from_design
from crtstats.models._result import CRTResult
from crtstats.models._warn import WarningLog

__all__ = ["GLMMDdf", "GLMMFamily", "GLMMMethod", "glmm"]

GLMMFamily = FamilyName
GLMMDdf = Literal["between-within", "z"]

_LINKS = {"binomial": "logit", "poisson": "log", "negative_binomial": "log"}
_MAX_NAGQ = 100
_BOUNDARY_SIGMA = 1e-4  # lme4's isSingular() tolerance on theta (= sigma here)
_LARGE_SIGMA = 10.0  # a cluster SD of 10 on the logit or log scale is not a plausible fit
_FEW_CLUSTERS = 40  # as gee: below this, z tests over-reject (Li and Redden 2015)


def glmm(
    formula: str,
    data: pd.DataFrame,
    *,
    cluster: str,
    family: GLMMFamily = "binomial",
    offset: str | None = None,
    exposure: str | None = None,
    nagq: int = 1,
    ddf: GLMMDdf = "between-within",
    trials: str | None = None,
    method: GLMMMethod = "laplace",
) -> CRTResult:
    """Fit a random-intercept GLMM by maximum likelihood or restricted likelihood.

    The model is ``g(E[y_ij | u_i]) = x_ij' beta + offset_ij + u_i`` with one normal
    intercept ``u_i ~ N(0, sigma^2)`` per cluster: binomial with logit link, Poisson
    with log link, or negative binomial (NB2) with log link and its dispersion
    ``theta`` estimated.

    Parameters
    ----------
    formula
        Fixed effects, e.g. ``"admitted ~ arm + stratum + pre_prop"``. The response is
        0/1 for the binomial family (or a count of successes with ``trials``), a
        non-negative integer count otherwise. The random intercept is not written in
        the formula; it comes from ``cluster``.
    data
        One row per observation.
    cluster
        Column identifying the clusters (teams).
    family
        ``"binomial"`` (logit link), ``"poisson"`` or ``"negative_binomial"`` (log link).
    offset
        Column added to the linear predictor with coefficient 1, already on the link
        scale (e.g. ``log(n_users)``); R's ``offset(log_users)``. A column of whole
        numbers above 1 looks like a raw exposure and is warned about.
    exposure
        Column of a raw exposure (e.g. ``n_users``, person-time), positive and finite;
        ``log(exposure)`` is added to the linear predictor, as R's
        ``offset(log(n_users))``. Both may be given (they add).
    nagq
        Quadrature points per cluster: 1 is the Laplace approximation (``glmer``'s
        default, and what ``glmmTMB`` uses); more points give adaptive Gauss-Hermite
        quadrature (``glmer(nAGQ = nagq)``), at most 100.
    ddf
        Denominator df of the fixed-effect t tests: ``"between-within"`` (default) or
        ``"z"`` for Wald z (infinite df).
    trials
        Binomial only: column of the number of trials of each row, for aggregated data
        (the response is then the number of successes, as ``cbind(y, trials - y)`` in
        R). Rows the fit uses must have it.
    method
        ``"laplace"`` (default): maximum likelihood, Laplace or quadrature (``nagq``).
        ``"laplace-reml"``: the Laplace approximation of the restricted likelihood, the
        fixed effects integrated out with the random effects (glmmTMB's ``REML =
        TRUE``); binomial and Poisson, ``nagq=1``. Its team variance is not biased down
        by the fixed effects, which matters with few clusters and several cluster-level
        terms (see Notes).

    Returns
    -------
    CRTResult
        ``model="glmm"``. ``variance_components`` has ``cluster`` (``sigma^2``) and, for
        NB2, ``dispersion`` (``theta``, glmmTMB's ``sigma()``); ``loglik`` is the
        maximised log-likelihood with all constants (R's ``logLik``); ``icc`` is the
        latent-scale ICC for the binomial family and ``None`` for counts;
        ``random_effects`` has ``cluster, estimate, std_error`` (conditional modes of
        ``u_i`` and their conditional SDs); ``to_frame(exponentiate=True)`` gives odds
        or rate ratios. ``details`` is a :class:`~crtstats.models.GlmmDetails`
        (``cluster_variance``, ``cluster_sd``, ``nb_shape``, between-within df, ...);
        ``fitted_values`` include the predicted cluster effects (lme4's ``fitted()``)
        and ``wald_test()`` refers ``W / q`` to the between-within df.

    Raises
    ------
    InvalidParameterError
        If ``formula`` is not text, ``data`` not a DataFrame, a column option not a
        column name, ``family``, ``ddf``, ``nagq`` or ``method`` not allowed,
        ``trials`` given for counts, or ``method="laplace-reml"`` with the negative
        binomial or ``nagq > 1``.
    MissingColumnError
        If a column the model uses is not in ``data``.
    ModelSpecificationError
        If the response, offset, exposure or trials are invalid for the family; a
        covariate is infinite; a text covariate takes one value in the rows used (an
        empty arm); the response is constant at a bound (all 0, or all equal to the
        trials): nothing can be estimated; the data are binary with one row per cluster
        (the random intercept is not identified; ``glmer`` returns a singular fit); there
        are fewer than two clusters; the design is rank deficient (a zero-variance
        covariate included); or the between-within df would not be positive (one
        cluster per arm).

    Warns
    -----
    ExcludedRowsWarning
        Rows left out because a variable the model uses, the cluster, the offset or the
        exposure is missing (counted in ``details.n_excluded``).
    ExposureWarning
        ``offset`` holds only whole numbers above 1 (a raw exposure?).
    SeparationWarning
        Complete or quasi-complete separation (perfect prediction included): some
        coefficients are infinite.
    BoundaryFitWarning
        The cluster variance is estimated as zero (``sigma < 1e-4``), or the NB2
        ``theta`` runs off to infinity (no over-dispersion).
    ConvergenceWarning
        The optimiser did not converge or the Hessian is not positive definite.
    FewClustersWarning
        ``ddf="z"`` with fewer than 40 clusters.

    Every warning is also recorded, with its category, on ``res.warnings``.

    Notes
    -----
    With ``u_i = sigma b_i``, ``b_i ~ N(0, 1)`` and
    ``g_i(b) = sum_j log f(y_ij | eta_ij) - b^2 / 2``, ``eta_ij = x_ij' beta + o_ij +
    sigma b``, the cluster likelihood is ``L_i = (2 pi)^(-1/2) int exp(g_i(b)) db``.
    Let ``b^_i`` maximise ``g_i`` and ``s_i = (-g_i''(b^_i))^(-1/2)``. Adaptive
    Gauss-Hermite quadrature with nodes ``z_k`` and weights ``w_k`` of the standard
    normal density (``sum w_k = 1``) gives
    ``log L_i ~ log s_i + log sum_k w_k exp(g_i(b^_i + s_i z_k) + z_k^2 / 2)``,
    and ``nagq = 1`` (``z = 0``) is the Laplace approximation
    ``log L_i = g_i(b^_i) - log(-g_i''(b^_i)) / 2``. ``-g_i''`` uses the observed
    curvature (for the canonical binomial and Poisson links it equals lme4's IRLS
    weights; for NB2 it is the exact Hessian, as in glmmTMB). NB2:
    ``log f = log Gamma(y + theta) - log Gamma(theta) - log y! + theta log(theta /
    (theta + mu)) + y log(mu / (theta + mu))``, ``Var(y) = mu + mu^2 / theta``.

    The marginal log-likelihood is maximised over ``(beta, sigma[, log theta])`` with
    its analytic gradient (BFGS, then Newton steps); ``cov`` is the ``beta`` block of
    the inverse Hessian of ``-log L`` in all parameters (central differences of the
    analytic gradient), which is lme4's ``vcov()`` for ``glmer`` (``use.hessian =
    TRUE``) and glmmTMB's ``vcov()``. On the boundary (``sigma = 0``) ``sigma`` is held
    fixed and the ``beta`` block alone is inverted.

    Between-within df (Schluchter and Elashoff 1990; SAS ``DDFM=BETWITHIN``; Li and
    Redden 2015): a column of ``X`` constant within every cluster, the intercept
    included, gets ``G - p_b`` df; any other column gets ``N - G - p_w``, where ``G`` is
    the number of clusters, ``N`` the number of rows, and ``p_b`` and ``p_w`` count the
    cluster-level and within-cluster columns. A contrast gets the smallest df of the
    coefficients it involves. With ``trials``, ``N`` counts rows, not trials.

    ``method="laplace-reml"``: with ``h(beta, b) = sum_ij log f(y_ij | eta_ij) -
    sum_i b_i^2 / 2`` maximised jointly at ``(beta~, b~)`` for each ``sigma``, and ``H``
    its negative Hessian in ``(b, beta)``, ``-log L_R(sigma) = -h(beta~, b~) + log det H
    / 2 - (p / 2) log(2 pi)`` (constants of ``f`` included). ``log det H = sum_i log A_i
    + log det S`` with ``A_i = 1 - sigma^2 sum_j l''_ij`` and the per-cluster Schur
    complement ``S = D - sum_i B_i B_i' / A_i`` (``B_i = -sigma sum_j l''_ij x_ij``,
    ``D = -sum_ij l''_ij x_ij x_ij'``): no ``n x n`` matrix. ``sigma`` maximises
    ``L_R`` (Newton steps on its analytic gradient); ``beta`` is ``beta~`` there;
    ``cov = S^-1 + (d beta~/d sigma)(d beta~/d sigma)' / (-log L_R)''``, glmmTMB's
    ``vcov()`` (``S^-1`` alone on the boundary); ``loglik`` is ``log L_R``. With 25
    teams and 9 team-level coefficients the ML variance is biased down (often 0) and
    between-within t tests of the arm reject a true null about twice too often; the
    restricted fit holds the level (``docs/models-glmm.md`` gives the simulation).

    For the latent-scale ICC of the binomial model: ``sigma^2 / (sigma^2 + pi^2 / 3)``.

    With an intercept, the fit uses the offset minus its mean and adds the mean back to
    the intercept (the same model), so large offsets lose no precision. Separation is
    checked by an exact certificate or Konis's linear programme (see
    ``crtstats.models._glmm_checks.separated_columns``). A cluster of one row is
    fitted as any other (it informs ``beta`` and, beside the others, ``sigma``); one row
    per cluster is an observation-level random effect, identified for counts and
    aggregated binomial data but not for 0/1 data.

    lme4 reports ``logLik`` for ``nAGQ > 1`` without the saturated log-likelihood
    (``details.loglik_saturated``, zero for 0/1 data); crtstats always includes it, so
    that Laplace and quadrature fits and glmmTMB fits are comparable.

    References
    ----------
    Liu Q, Pierce DA (1994). A note on Gauss-Hermite quadrature. Biometrika 81:624-629.
    Pinheiro JC, Bates DM (1995). Approximations to the log-likelihood function in the
    nonlinear mixed-effects model. J Comput Graph Stat 4:12-35.
    Bates D, Maechler M, Bolker B, Walker S (2015). Fitting linear mixed-effects models
    using lme4. J Stat Softw 67(1).
    Brooks ME et al. (2017). glmmTMB balances speed and flexibility among packages for
    zero-inflated generalized linear mixed modeling. R Journal 9:378-400.
    Li P, Redden DT (2015). Comparing denominator degrees of freedom approximations for
    the generalized linear mixed model in analyzing binary outcome in small sample
    cluster-randomized trials. BMC Med Res Methodol 15:38.
    Konis K (2007). Linear programming algorithms for detecting separated data in
    binary logistic regression models. DPhil thesis, University of Oxford.
    Kristensen K, Nielsen A, Berg CW, Skaug H, Bell BM (2016). TMB: automatic
    differentiation and Laplace approximation. J Stat Softw 70(5).

    Examples
    --------
    Follow-up admissions in the example trial: the programme's odds ratio, adjusted for
    NHS Trust (the stratum); in R,
    ``lme4::glmer(admitted ~ arm + stratum + (1 | team_id), family = binomial,
    nAGQ = 10)``.

    >>> import crtstats
    >>> trial = crtstats.datasets.load_example()
    >>> adm = trial.admissions.merge(trial.teams[["team_id", "arm", "stratum"]])
    >>> follow_up = adm[adm["period"] == "follow_up"]
    >>> res = crtstats.glmm("admitted ~ arm + stratum", follow_up, cluster="team_id",
    ...                     nagq=10)
    >>> res.n_clusters, res.df["arm[T.intervention]"]  # 25 teams - 9 team-level terms
    (25, np.float64(16.0))
    >>> odds = res.to_frame(exponentiate=True).set_index("term")
    >>> bool(0 < odds.loc["arm[T.intervention]", "estimate"] < 1)
    True

    The restricted fit, ``glmmTMB::glmmTMB(admitted ~ arm + stratum + (1 | team_id),
    family = binomial, REML = TRUE)`` in R: a larger team variance, wider intervals.

    >>> reml = crtstats.glmm("admitted ~ arm + stratum", follow_up, cluster="team_id",
    ...                      method="laplace-reml")
    >>> ml = crtstats.glmm("admitted ~ arm + stratum", follow_up, cluster="team_id")
    >>> bool(reml.variance_components["cluster"] > ml.variance_components["cluster"])
    True
    """
    check_fit_arguments(
        "glmm", formula, data,
        {"cluster": cluster, "offset": offset, "exposure": exposure, "trials": trials},
        optional=("offset", "exposure", "trials"),
    )
    _check_options(family, ddf, nagq, trials)
    check_method(method, family, nagq)
    log = WarningLog()
    design = build_design(formula, data, cluster=cluster, offset=offset, exposure=exposure,
                          binary_response=family == "binomial")
    warn_design(design, log, offset=offset)
    m = _trials(data, design, trials)
    _check_response(design, family, m, trials, data.index)
    _check_structure(design, formula, data)
    _check_identified(design, family, m)
    bw = between_within(design.X, design.groups, design.n_clusters)
    if ddf == "between-within":
        _check_bw(bw, design)
    shift, intercept = _offset_shift(design)
    problem = make_problem(family, design.y, m, design.X, design.offset - shift,
                           design.groups, design.n_clusters, nagq)
    if ddf == "z" and design.n_clusters < _FEW_CLUSTERS:
        log.warn(
            f"only {design.n_clusters} clusters: Wald z tests of a GLMM are too liberal with "
            f"fewer than {_FEW_CLUSTERS}; use ddf='between-within'.",
            FewClustersWarning,
        )
    sep = separated_columns(design.X, design.y, m if family == "binomial" else None)
    if sep:
        log.warn(
            f"complete or quasi-complete separation: the estimates of "
            f"{[design.names[j] for j in sep]} are not finite (the likelihood keeps "
            "increasing along them) and are reported where the optimiser stopped; merge "
            "or drop the terms, or analyse at cluster level.",
            SeparationWarning,
        )
    reml: RemlOutcome | None = None
    if method == "laplace-reml":
        outcome, reml = fit_problem(problem, glm_start(problem)[0][:problem.n_beta])
    else:
        outcome = maximise(problem, *glm_start(problem))
    if intercept is not None:  # back to the offset as given
        outcome = replace(outcome, phi=outcome.phi - shift * (np.arange(
            outcome.phi.shape[0]) == intercept))
    return _build_result(
        formula, family, design, problem.n_beta, outcome, bw, ddf, nagq, m, log,
        data=data, reml=reml,
        spec=ModelSpec(fitter="glmm", formula=formula, cluster=cluster, family=family,
                       link=_LINKS[family], offset=offset, exposure=exposure, trials=trials,
                       options={"nagq": nagq, "ddf": ddf, "method": method}),
    )


def _offset_shift(design: Design) -> tuple[float, int | None]:
    """The mean offset and the intercept column that absorbs it (None: no intercept).

    With an intercept, ``offset - c`` and ``beta_0 + c`` give the same model; fitting
    with the centred offset keeps the intercept near zero, so that an offset of
    ``log(1e6)`` or ``1e6`` loses no digits in ``eta`` or in the Hessian's steps.
    """
    ones = np.flatnonzero(np.all(design.X == 1.0, axis=0))
    if ones.size == 0 or not np.any(design.offset):
        return 0.0, None
    return float(np.mean(design.offset)), int(ones[0])


def _z_df(vec: np.ndarray) -> float:
    return float("inf")


def _check_options(family: str, ddf: str, nagq: int, trials: str | None) -> None:
    check_option("family", family, get_args(GLMMFamily))
    check_option("ddf", ddf, get_args(GLMMDdf))
    if isinstance(nagq, bool) or not isinstance(nagq, int | np.integer) or not (
        1 <= nagq <= _MAX_NAGQ
    ):
        raise InvalidParameterError(
            f"nagq must be a whole number from 1 (Laplace) to {_MAX_NAGQ}; got "
            f"{_format_value(nagq)}."
        )
    if trials is not None and family != "binomial":
        raise InvalidParameterError(
            f"trials is for the binomial family only; got trials={trials!r} with "
            f"family={family!r}."
        )


def _trials(data: pd.DataFrame, design: Design, trials: str | None) -> np.ndarray:
    if trials is None:
        return np.ones(design.nobs)
    require_columns(data, [trials], used_by="trials=")
    col = data.loc[design.used, trials]
    if col.isna().any() or not pd.api.types.is_numeric_dtype(col):
        bad = col[col.isna()].index[0] if col.isna().any() else col.index[0]
        raise ModelSpecificationError(
            f"trials column {trials!r} must be numeric with no missing values in the rows "
            f"the model uses; row {bad!r} has {_format_value(col.loc[bad])}. Drop those rows "
            "or fill them before fitting."
        )
    return np.asarray(col, dtype=float)


def _check_response(
    design: Design, family: str, m: np.ndarray, trials: str | None, index: pd.Index
) -> None:
    y = design.y
    rows = index[design.used]
    whole = np.isfinite(y) & (y == np.round(y)) & np.isfinite(m) & (m == np.round(m))
    if family == "binomial" and trials is None:
        ok, need = np.isin(y, (0.0, 1.0)), "0 or 1 (or a count of successes with trials=)"
    elif family == "binomial":
        ok, need = whole & (y >= 0) & (m >= 0) & (y <= m), "a whole number from 0 to trials"
    else:
        ok, need = whole & (y >= 0), "a non-negative whole number"
    if not np.all(ok):
        first = int(np.flatnonzero(~ok)[0])
        extra = f" (trials {m[first]:g})" if trials is not None else ""
        raise ModelSpecificationError(
            f"the {family} response must be {need} in every row; row {rows[first]!r} has "
            f"{y[first]:g}{extra} ({int(np.sum(~ok))} such row(s)). Recode the "
            "response or choose another family."
        )


def _check_structure(design: Design, formula: str, data: pd.DataFrame) -> None:
    if design.n_clusters < 2:
        raise ModelSpecificationError(
            f"a random-intercept model needs at least 2 clusters; got {design.n_clusters} "
            f"({design.cluster_labels[0]!r}) in the rows used: the cluster variance cannot "
            "be estimated from one cluster. Check the cluster column and the rows kept."
        )
    if design.X.shape[1] == 0:
        raise ModelSpecificationError(
            "the formula has no fixed effects (not even an intercept); add '1 +' or terms."
        )
    check_finite("glmm", formula, data, design)
    check_terms_vary("glmm", formula, data, design)
    check_rank(design.X, design.names, formula=formula)


def _check_identified(design: Design, family: str, m: np.ndarray) -> None:
    """Refuse data from which no effect, or no cluster variance, can be estimated."""
    y = design.y
    top = m if family == "binomial" else None
    if np.all(y <= 0) or (top is not None and np.all(y >= top)):
        value = "0" if np.all(y <= 0) else ("1" if np.all(m == 1) else "equal to trials")
        raise ModelSpecificationError(
            f"the response is {value} in all {design.nobs} rows used: every coefficient "
            "would be infinite and the cluster variance is not identified. There is "
            "nothing to model; report the counts (and e.g. an exact interval) instead."
        )
    if family == "binomial" and np.all(m == 1) and np.all(design.cluster_sizes == 1):
        raise ModelSpecificationError(
            f"every one of the {design.n_clusters} clusters has a single 0/1 row: a "
            "random intercept is not identified for binary data with one row per cluster "
            "(the row's probability absorbs it). Pass the real cluster column, or fit "
            "a model without a random effect."
        )


def _check_bw(bw: BetweenWithin, design: Design) -> None:
    n_cluster_cols = int(np.sum(bw.cluster_level))
    if bw.df_between <= 0:
        raise ModelSpecificationError(
            f"between-within df for cluster-level terms is {bw.df_between}: "
            f"{design.n_clusters} clusters and {n_cluster_cols} cluster-level coefficients. "
            "Use fewer cluster-level terms or ddf='z'."
        )
    if not np.all(bw.cluster_level) and bw.df_within <= 0:
        raise ModelSpecificationError(
            f"between-within df for within-cluster terms is {bw.df_within} ({design.nobs} "
            f"rows, {design.n_clusters} clusters). Use fewer within-cluster terms or ddf='z'."
        )


def _covariance(hessian: np.ndarray, p: int, fixed: list[int]) -> tuple[np.ndarray, bool]:
    """``beta`` block of the inverse Hessian, holding the ``fixed`` parameters constant.

    Returns the covariance and whether the (reduced) Hessian was positive definite.
    """
    keep = [j for j in range(hessian.shape[0]) if j not in fixed]
    h = hessian[np.ix_(keep, keep)]
    try:
        np.linalg.cholesky(h)
        inv = np.linalg.inv(h)
        return 0.5 * (inv[:p, :p] + inv[:p, :p].T), True
    except np.linalg.LinAlgError:
        inv = np.linalg.pinv(hessian[:p, :p])
        return 0.5 * (inv + inv.T), False


def _boundaries(
    phi: np.ndarray, p: int, y: np.ndarray, log: WarningLog
) -> list[int]:
    """Parameters on the boundary of their space (held fixed for ``cov``), with warnings.

    ``sigma`` below lme4's singularity tolerance; NB2 ``theta`` above ``1e4`` times the
    largest count (extra-Poisson variance ``mu^2 / theta`` below 0.01% of ``mu``).
    """
    fixed: list[int] = []
    sigma = abs(float(phi[p]))
    if sigma < _BOUNDARY_SIGMA:
        fixed.append(p)
        log.warn(
            f"the cluster variance is estimated on the boundary (sigma = {sigma:.3g}, "
            "variance 0): the fit is that of a GLM without clustering; report it as such "
            "and consider a cluster-level analysis.",
            BoundaryFitWarning,
        )
    if phi.shape[0] > p + 1 and np.exp(phi[p + 1]) > 1e4 * max(1.0, float(np.max(y))):
        fixed.append(p + 1)
        log.warn(
            f"the negative binomial dispersion is on its boundary (theta = "
            f"{np.exp(phi[p + 1]):.3g}, no over-dispersion beyond Poisson): the fit is "
            "that of a Poisson GLMM; use family='poisson'.",
            BoundaryFitWarning,
        )
    return fixed


def _build_result(
    formula: str,
    family: FamilyName,
    design: Design,
    p: int,
    outcome: FitOutcome,
    bw: BetweenWithin,
    ddf: str,
    nagq: int,
    m: np.ndarray,
    log: WarningLog,
    *,
    data: pd.DataFrame,
    spec: ModelSpec,
    reml: RemlOutcome | None = None,
) -> CRTResult:
    phi = outcome.phi
    beta, sigma = phi[:p], abs(float(phi[p]))
    theta = float(np.exp(phi[p + 1])) if family == "negative_binomial" else None
    fixed = _boundaries(phi, p, design.y, log)
    if reml is None:
        cov, pos_def = _covariance(outcome.hessian, p, fixed)
    else:  # sigma held fixed on the boundary, as for maximum likelihood
        cov = (reml.cov_fixed if fixed else reml.cov)[0]
        pos_def = bool(np.all(np.linalg.eigvalsh(cov) > 0.0)
                       and (bool(fixed) or reml.curvature[0] > 0.0))
    if not outcome.converged or not pos_def:
        hint = (
            "the cluster SD is diverging: the outcome is (almost) constant within clusters"
            if sigma > _LARGE_SIGMA
            else "check the model for separation, sparse outcomes or too many terms"
        )
        log.warn(
            f"the optimiser did not converge (Newton decrement {outcome.decrement:.3g}, "
            f"Hessian positive definite: {pos_def}, sigma = {sigma:.3g}); estimates and "
            f"standard errors may be wrong: {hint}.",
            ConvergenceWarning,
        )
    ev = outcome.evaluation
    u = float(phi[p]) * ev.modes
    ranef = pd.DataFrame({
        "cluster": list(design.cluster_labels),
        "estimate": u,
        "std_error": sigma * ev.scales,
    })
    components = {"cluster": sigma**2}
    if theta is not None:
        components["dispersion"] = theta
    df = bw.df if ddf == "between-within" else np.full(p, np.inf)
    return CRTResult(
        model="glmm",
        formula=formula,
        param_names=design.names,
        param_values=beta,
        cov_values=cov,
        df_values=df,
        df_method=ddf,
        cov_type="hessian",
        nobs=design.nobs,
        n_clusters=design.n_clusters,
        converged=bool(outcome.converged and pos_def),
        family=family,
        link=_LINKS[family],
        warnings=log.records,
        loglik=-ev.value,
        icc=sigma**2 / (sigma**2 + np.pi**2 / 3.0) if family == "binomial" else None,
        variance_components_values=components,
        random_effects_frame=ranef,
        contrast_df=bw.contrast_df if ddf == "between-within" else _z_df,
        details=_details(family, design, outcome, bw, nagq, m),
        spec=spec,
        predictor=predictor_from_design(
            design, data, beta, link=_LINKS[family], offset=spec.offset,
            exposure=spec.exposure, cluster=spec.cluster, cluster_effects=u,
            response=design.y / np.where(m > 0, m, 1.0) if spec.trials else None,
        ),
    )


def _details(
    family: FamilyName,
    design: Design,
    outcome: FitOutcome,
    bw: BetweenWithin,
    nagq: int,
    m: np.ndarray,
) -> GlmmDetails:
    """The typed fit details on ``CRTResult.details``."""
    p = len(design.names)
    theta = float(np.exp(outcome.phi[p + 1])) if family == "negative_binomial" else None
    return GlmmDetails(
        n_excluded=design.n_excluded,
        nagq=nagq,
        response_coding=design.response_note,
        cluster_variance=float(outcome.phi[p]) ** 2,
        nb_shape=theta,
        df_between=bw.df_between,
        df_within=bw.df_within,
        term_level={
            name: "cluster" if flag else "within"
            for name, flag in zip(design.names, bw.cluster_level, strict=True)
        },
        loglik_saturated=saturated_loglik(
            family, design.y, m, 1.0 if theta is None else theta
        ),
        iterations=outcome.iterations,
        newton_decrement=outcome.decrement,
    )

