"""``lmm``: random-intercept linear mixed model with small-sample inference.

The fit works on per-cluster sufficient statistics (:mod:`crtstats.models._lmm_fit`);
Kenward-Roger and Satterthwaite inference is computed from per-cluster quantities
(:mod:`crtstats.models._lmm_ddf`). No n x n matrix is formed anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Literal, get_args

import numpy as np
import pandas as pd

from crtstats._options import check_option
from crtstats.exceptions import (
    BoundaryFitWarning,
    ConvergenceWarning,
    InvalidParameterError,
    ModelSpecificationError,
)
from crtstats.models._checks import (
    between_within,
    check_fit_arguments,
    check_rank,
    cluster_level_columns,
)
from crtstats.models._data_checks import check_finite, check_outcome_varies, check_terms_vary
from crtstats.models._design import Design, build_design, warn_design
from crtstats.models._details import LmmDetails, ModelSpec
from crtstats.models._lmm_basis import WorkingBasis, working_basis
from crtstats.models._lmm_checks import (
    check_clusters,
    check_residual_variance,
    check_within_variation,
)
from crtstats.models._lmm_ddf import (
    VarianceGeometry,
    geometry,
    kr_covariance,
    kr_df,
    satterthwaite_df,
)
from crtstats.models._lmm_fit import ClusterStats, LmmFit, cluster_stats, fit_profiled
from crtstats.models._predict import predictor_from_design
from crtstats.models._result import CRTResult
from crtstats.models._wald import WaldMethod, kenward_roger_wald, satterthwaite_wald
from crtstats.models._warn import WarningLog

__all__ = ["DdfMethod", "lmm"]

DdfMethod = Literal["kenward-roger", "satterthwaite", "between-within", "residual"]
"""Denominator degrees of freedom available for :func:`lmm`."""

_DDF_METHODS: tuple[str, ...] = get_args(DdfMethod)


def _boundary_message(cluster: str) -> str:
    return (
        f"the between-cluster ({cluster!r}) variance was estimated as zero, so the fit is "
        "on the boundary of the parameter space: the model has reduced to ordinary least "
        "squares and its standard errors ignore any clustering. Report this plainly and "
        "consider the cluster-level analysis (crtstats.cluster_level, a t-test on cluster "
        "summaries) as the primary or a sensitivity analysis."
    )


def _random_effects(
    design: Design, stats: ClusterStats, fit: LmmFit, y_scale: float
) -> pd.DataFrame:
    """Predicted cluster intercepts and conditional SDs (working fit, original units)."""
    r_sums = stats.sy - stats.sx @ fit.beta
    h = fit.sigma2 + stats.n * fit.tau
    return pd.DataFrame(
        {
            "cluster": list(design.cluster_labels),
            "estimate": y_scale * fit.tau * r_sums / h,
            "std_error": y_scale * np.sqrt(fit.tau * fit.sigma2 / h),
        }
    )


def _constant_df(value: float, vec: np.ndarray) -> float:
    return value


def _inference(
    ddf: str, design: Design, fit: LmmFit, geo: VarianceGeometry, X_work: np.ndarray
) -> tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], float], str]:
    """Covariance and per-coefficient df of the original coefficients, the contrast df
    function (of original contrasts) and the covariance label."""
    p = design.X.shape[1]
    eye = np.eye(p)
    df_fn: Callable[[np.ndarray], float]
    cov, cov_type = geo.model_cov, "model-based"
    if ddf == "kenward-roger":
        df_fn = partial(kr_df, geo)
        cov, cov_type = kr_covariance(geo), "kenward-roger"
    elif ddf == "satterthwaite":
        df_fn = partial(satterthwaite_df, geo, boundary=fit.boundary)
    elif ddf == "between-within":
        df_fn = between_within(X_work, design.groups, design.n_clusters).contrast_df
    else:
        df_fn = partial(_constant_df, float(design.nobs - p))
    dfs = np.array([df_fn(eye[j]) for j in range(p)])
    return cov, dfs, df_fn, cov_type


def _check_options(*, reml: bool, ddf: str) -> None:
    check_option("ddf", ddf, _DDF_METHODS)
    if not isinstance(reml, bool):
        raise InvalidParameterError(f"reml must be True or False; got {reml!r}.")
    if ddf == "kenward-roger" and not reml:
        raise InvalidParameterError(
            "ddf='kenward-roger' is defined for REML fits; got reml=False. Use reml=True "
            "(the default) or choose ddf='satterthwaite'."
        )


def check_lmm_design(formula: str, data: pd.DataFrame, design: Design, cluster: str) -> None:
    """The checks of an LMM's design that do not look at the outcome.

    Every term varies, the clusters suit a random intercept, the fixed effects are of
    full rank and leave a residual degree of freedom. :func:`lmm` and
    :class:`~crtstats.models.BatchedLMM` (whose outcomes come later) both call this.
    """
    check_terms_vary("lmm", formula, data, design)
    check_clusters(formula, data, design, cluster)
    check_rank(design.X, design.names, formula=formula)
    p = design.X.shape[1]
    if design.nobs - p < 1:
        raise ModelSpecificationError(
            f"{formula!r} has {p} coefficients but only {design.nobs} rows: no residual "
            "degrees of freedom. Simplify the model."
        )


def _prepare(
    formula: str, data: pd.DataFrame, *, cluster: str, ddf: str
) -> tuple[Design, WorkingBasis, np.ndarray, ClusterStats]:
    """Design, data and specification checks, the working basis and per-cluster sums."""
    design = build_design(formula, data, cluster=cluster)
    check_finite("lmm", formula, data, design)
    check_outcome_varies("lmm", formula, design)
    check_lmm_design(formula, data, design, cluster)
    basis = working_basis(design.y, design.X)
    y_work, X_work = basis.apply(design.y, design.X)
    stats = cluster_stats(y_work, X_work, design.groups, design.n_clusters)
    check_within_variation(formula, design, X_work, stats, cluster)
    if ddf == "between-within":
        level = cluster_level_columns(X_work, design.groups, design.n_clusters)
        if design.n_clusters - int(level.sum()) < 1:
            raise ModelSpecificationError(
                f"between-within df: {int(level.sum())} cluster-level coefficients but "
                f"only {design.n_clusters} clusters, leaving no between-cluster df. Use "
                "fewer cluster-level terms or another ddf."
            )
    return design, basis, X_work, stats


def _fit_warnings(fit: LmmFit, cluster: str, log: WarningLog) -> None:
    """Issue the boundary and convergence warnings through ``log``."""
    if fit.boundary:
        log.warn(_boundary_message(cluster), BoundaryFitWarning)
    if not fit.converged:
        log.warn(
            "the search for the variance ratio did not reach an interior optimum (the "
            f"intra-cluster correlation tends to 1: the outcome hardly varies within the "
            f"clusters of {cluster!r}); the estimates and their inference are unreliable. "
            "Analyse cluster means instead (crtstats.cluster_level).",
            ConvergenceWarning,
        )


def lmm(
    formula: str,
    data: pd.DataFrame,
    *,
    cluster: str,
    reml: bool = True,
    ddf: DdfMethod = "kenward-roger",
) -> CRTResult:
    """Fit a linear mixed model with a random intercept per cluster.

    Parameters
    ----------
    formula
        Fixed-effects formula, e.g. ``"total ~ arm * review + stratum"``. Text columns
        become factors with sorted levels; use a pandas ``Categorical`` to set the
        order (the first level is the reference).
    data
        One row per observation.
    cluster
        Column identifying the clusters (e.g. ``"team_id"``); one random intercept each.
    reml
        Restricted maximum likelihood (the default, as ``lme4::lmer``) or, if False,
        maximum likelihood.
    ddf
        Denominator degrees of freedom: ``"kenward-roger"`` (default; also adjusts the
        covariance, as ``pbkrtest::vcovAdj``), ``"satterthwaite"`` (as lmerTest),
        ``"between-within"`` (clusters minus cluster-level coefficients for cluster-level
        terms, rows minus clusters minus the other coefficients for the rest) or
        ``"residual"`` (rows minus coefficients).

    Returns
    -------
    CRTResult
        ``model="lmm"`` with ``params``, ``std_errors``, ``df``, ``pvalues``,
        ``conf_int()``, ``cov`` (Kenward-Roger adjusted when ``ddf="kenward-roger"``,
        model-based otherwise), ``variance_components`` (``cluster``, ``residual``),
        ``icc``, ``loglik`` (REML log-likelihood when ``reml=True``, as ``logLik`` in
        lme4), ``random_effects`` (predicted cluster intercepts with conditional SDs,
        as ``ranef(condVar = TRUE)``) and ``contrast()`` with the chosen df for any
        linear combination. ``details`` is an :class:`~crtstats.models.LmmDetails`
        (``n_excluded``, ``note``, ``reml``, ``boundary``, ``cluster_variance``,
        ``cluster_sd``, ``residual_variance``, ``residual_sd``, ``relative_sd`` (lme4's
        ``theta``) and ``deviance``); ``wald_test()`` gives the Kenward-Roger or
        Satterthwaite F of a joint hypothesis, ``fitted_values`` include the predicted
        cluster intercepts, and ``predict()`` codes new data as the fit.

    Raises
    ------
    InvalidParameterError
        If ``formula`` is not a string, ``data`` not a DataFrame or ``cluster`` not a
        column name; if ``ddf`` is not one of the four methods, ``reml`` is not a bool,
        or Kenward-Roger is asked for with ``reml=False`` (it is defined for REML).
    ModelSpecificationError
        If the formula or columns are unusable; fewer than two clusters remain; a
        cluster-level factor (such as arm) has a level with fewer than two clusters; a
        text or categorical term has a single value (an empty arm); the design is rank
        deficient (the aliased columns are named; a zero-variance covariate is one); the
        outcome or a model column holds an infinite value (named); the outcome is
        constant; there are no within-cluster residual degrees of freedom (one row per
        cluster: the cluster and residual variances are not separately identified); the
        outcome has no within-cluster residual variation (ICC = 1: no maximum); or the
        fit is exact (no residual variance).

    Warns
    -----
    ExcludedRowsWarning
        When rows are left out for missing values (``design.exclusion_message``).
    BoundaryFitWarning
        When the cluster variance is estimated as zero; the result is still valid.
    ConvergenceWarning
        If no interior optimum is found (an ICC within about 1e-11 of 1).
    Every warning is also recorded in ``res.warnings`` (with its ``.category``).

    Notes
    -----
    Model: ``y_i = X_i beta + 1 b_i + e_i`` for cluster ``i`` with ``n_i`` rows,
    ``b_i ~ N(0, tau)``, ``e_i ~ N(0, sigma2 I)``, so
    ``V_i = sigma2 (I + t J)`` with ``t = tau / sigma2``. For fixed ``t``,
    ``A(t) = X' M^{-1} X = W_xx + sum_i v_i s_i s_i'`` with ``v_i = 1 / (n_i (1 + n_i t))``,
    ``s_i = X_i' 1`` and ``W_xx`` the within-cluster cross-products;
    ``beta(t) = A^{-1} X' M^{-1} y`` and
    ``r2(t) = y' M^{-1} y - beta' X' M^{-1} y``. Profiling out ``beta`` and ``sigma2``
    gives the REML criterion (lme4's, Bates et al. 2015, eq. 41)

    ``-2 l_R(t) = sum_i log(1 + n_i t) + log|A(t)| + (n - p)(1 + log(2 pi r2 / (n - p)))``

    (ML: drop ``log|A|`` and use ``n`` for ``n - p``). It is minimised over ``t >= 0``
    by a grid on the ICC and Brent's root finder on its derivative; each evaluation
    costs ``O(G p^2)``. Then ``sigma2 = r2 / (n - p)``, ``tau = t sigma2``.

    All of this is computed on ``y`` and ``X`` centred (when there is an intercept) and
    scaled by powers of two, and mapped back exactly: ``beta = c K^{-1} beta_w +
    const``, covariances ``c^2 K^{-1} Cov K^{-T}``, variances times ``c^2``; the KR and
    Satterthwaite df are invariant under this reparametrisation. Adding 1e8 to the
    outcome or a covariate, or rescaling either by 1e-6 to 1e6, changes nothing beyond
    1e-6 relative (see ``docs/models-lmm.md``).

    Kenward-Roger (1997): with ``Phi = (X'V^{-1}X)^{-1}``, ``G_1 = ZZ'``, ``G_2 = I``,
    ``P_r = X'V^{-1}G_rV^{-1}X``, ``Q_rs = X'V^{-1}G_rV^{-1}G_sV^{-1}X`` and
    ``W = 2 [tr(P G_r P G_s)]^{-1}`` (``P`` the REML projection), the adjusted
    covariance is ``Phi_A = Phi + 2 Phi [sum_rs W_rs (Q_rs - P_r Phi P_s)] Phi`` and the
    df of ``L beta`` follow from ``A_1 = sum W_rs tr(Theta Phi P_r Phi)
    tr(Theta Phi P_s Phi)`` and ``A_2 = sum W_rs tr(Theta Phi P_r Phi Theta Phi P_s Phi)``,
    ``Theta = L'(L Phi L')^{-1} L``, exactly as pbkrtest computes them (the ``R_rs``
    terms vanish for this linear covariance structure).

    Satterthwaite (as lmerTest): ``df = 2 (L Phi L')^2 / (g' A g)`` with
    ``g_r = L Phi P_r Phi L'`` and ``A`` the inverse observed information of
    ``(tau, sigma2)``. At the boundary only ``sigma2`` enters (see
    ``docs/models-lmm.md``).

    References
    ----------
    Bates D, Maechler M, Bolker B, Walker S (2015). Fitting linear mixed-effects models
    using lme4. Journal of Statistical Software 67(1).
    Kenward MG, Roger JH (1997). Small sample inference for fixed effects from
    restricted maximum likelihood. Biometrics 53, 983-997.
    Halekoh U, Hojsgaard S (2014). A Kenward-Roger approximation and parametric
    bootstrap methods for tests in linear mixed models - the R package pbkrtest.
    Journal of Statistical Software 59(9).
    Kuznetsova A, Brockhoff PB, Christensen RHB (2017). lmerTest package: tests in
    linear mixed effects models. Journal of Statistical Software 82(13).

    Examples
    --------
    Fidelity totals of the example trial by arm and review; in R,
    ``lmerTest::lmer(total ~ arm * review + stratum + (1 | team_id))`` with
    ``summary(fit, ddf = "Kenward-Roger")``.

    >>> import pandas as pd
    >>> import crtstats
    >>> trial = crtstats.datasets.load_example()
    >>> fid = trial.fidelity.merge(trial.teams, on="team_id")
    >>> fid["total"] = fid.filter(like="item_").astype(float).sum(axis=1, min_count=39)
    >>> fid["review"] = pd.Categorical(fid["review"], ["baseline", "6m", "12m"])
    >>> fid = fid.dropna(subset=["total"])  # else an ExcludedRowsWarning says 4 rows are left out
    >>> res = crtstats.lmm("total ~ arm * review + stratum", fid, cluster="team_id")
    >>> res.n_clusters, res.df_method
    (25, 'kenward-roger')
    >>> at12 = res.contrast({"arm[T.intervention]": 1,
    ...                      "arm[T.intervention]:review[T.12m]": 1}, name="arm at 12m")
    >>> at12.df > 0
    True
    """
    check_fit_arguments("lmm", formula, data, {"cluster": cluster})
    _check_options(reml=reml, ddf=ddf)
    design, basis, X_work, stats = _prepare(formula, data, cluster=cluster, ddf=ddf)
    log = WarningLog()
    warn_design(design, log)
    fit = fit_profiled(stats, reml=reml)
    check_residual_variance(stats, fit, formula)
    _fit_warnings(fit, cluster, log)
    geo = geometry(stats, fit, reml=reml, basis=basis.transform, y_scale=basis.y_scale)
    cov, dfs, df_fn, cov_type = _inference(ddf, design, fit, geo, X_work)
    scale2 = basis.y_scale**2
    tau, sigma2 = fit.tau * scale2, fit.sigma2 * scale2
    deviance = fit.deviance + basis.deviance_shift(design.nobs, reml=reml)
    beta = basis.coefficients(fit.beta)
    ranef = _random_effects(design, stats, fit, basis.y_scale)
    return CRTResult(
        model="lmm",
        formula=formula,
        param_names=design.names,
        param_values=beta,
        cov_values=cov,
        df_values=dfs,
        df_method=ddf,
        cov_type=cov_type,
        nobs=design.nobs,
        n_clusters=design.n_clusters,
        converged=fit.converged,
        warnings=log.records,
        loglik=-0.5 * deviance,
        icc=fit.tau / (fit.tau + fit.sigma2),
        variance_components_values={"cluster": tau, "residual": sigma2},
        random_effects_frame=ranef,
        contrast_df=df_fn,
        details=LmmDetails(
            n_excluded=design.n_excluded, reml=reml, boundary=fit.boundary,
            cluster_variance=tau, residual_variance=sigma2, deviance=deviance,
        ),
        spec=ModelSpec(fitter="lmm", formula=formula, cluster=cluster,
                       options={"reml": reml, "ddf": ddf}),
        wald_method=_wald_method(ddf, geo, fit, cov),
        predictor=predictor_from_design(
            design, data, beta, link="identity", cluster=cluster,
            cluster_effects=ranef["estimate"].to_numpy(),
        ),
    )


def _wald_method(
    ddf: str, geo: VarianceGeometry, fit: LmmFit, cov: np.ndarray
) -> WaldMethod | None:
    """The joint test of the chosen ddf (None: F on the rows' smallest df)."""
    if ddf == "kenward-roger":
        return kenward_roger_wald(geo, cov)
    if ddf == "satterthwaite":
        return satterthwaite_wald(geo, boundary=fit.boundary)
    return None
