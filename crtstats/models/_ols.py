"""Ordinary least squares with classical, CR1 or CR2 (Bell-McCaffrey) inference."""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.regression.linear_model import RegressionResults

from crtstats._options import check_option
from crtstats.exceptions import (
    FewClustersWarning,
    ModelSpecificationError,
)
from crtstats.models._checks import check_fit_arguments, check_rank
from crtstats.models._contrast import ContrastDf
from crtstats.models._cr2 import ClusterRobust
from crtstats.models._data_checks import (
    check_finite,
    check_outcome_varies,
    check_terms_vary,
    design_variables,
)
from crtstats.models._design import Design, build_design, warn_design
from crtstats.models._details import ModelSpec, OlsDetails
from crtstats.models._lmm_basis import working_basis
from crtstats.models._predict import predictor_from_design
from crtstats.models._result import CRTResult
from crtstats.models._wald import WaldMethod, cr2_htz_wald
from crtstats.models._warn import WarningLog

__all__ = ["OLSCovType", "ols"]

OLSCovType = Literal["classical", "CR1", "CR2"]

_DF_METHOD: dict[str, str] = {
    "classical": "residual",
    "CR1": "clusters-1",
    "CR2": "bell-mccaffrey",
}

#: Below this many clusters CR1 with t(J - 1) is known to over-reject.
FEW_CLUSTERS_CR1 = 40

#: A residual sum of squares below this fraction of the total counts as an exact fit.
_EXACT_TOL = 1e-12

#: A cluster whose leverage ``1_j' H 1_j / n_j`` is within this of 1 is fitted exactly by
#: the model (its indicator lies in the column space of X); rounding leaves ~1e-15.
_LEVERAGE_TOL = 1e-8


def _robust_pieces(
    cov_type: str, robust: ClusterRobust, p: int
) -> tuple[np.ndarray, np.ndarray, ContrastDf | None]:
    """Covariance, df per coefficient and the contrast-df callable of CR1 or CR2."""
    cov = robust.cov(cov_type)
    if cov_type == "CR2":
        df = robust.satterthwaite_df(np.eye(p))

        def contrast_df(vec: np.ndarray) -> float:
            return float(robust.satterthwaite_df(np.asarray(vec, dtype=float))[0])

        return cov, df, contrast_df
    return cov, np.full(p, robust.n_clusters - 1.0), None


def _few_clusters_message(n_clusters: int) -> str:
    return (
        f"CR1 with t({n_clusters - 1}) df is known to over-reject with few clusters "
        f"({n_clusters} < {FEW_CLUSTERS_CR1}); use cov_type='CR2' (Bell-McCaffrey with "
        "Satterthwaite df)."
    )


def _check_exact_fit(formula: str, design: Design, resid: np.ndarray) -> None:
    """A zero residual sum of squares leaves nothing to test against."""
    y = design.y
    total = float(((y - y.mean()) ** 2).sum())
    rss = float(resid @ resid)
    if not rss > _EXACT_TOL * total:
        raise ModelSpecificationError(
            f"ols: the residual variance of {formula!r} is zero (residual sum of squares "
            f"{rss / total if total > 0 else 0.0:.3g} of the total): the covariates "
            "reproduce the outcome exactly, so every standard error would be zero. Check "
            "that the outcome is not a copy or function of a covariate."
        )


def _exact_clusters(design: Design) -> np.ndarray:
    """Codes of the clusters with leverage ``1_j' H 1_j / n_j = 1`` (fitted exactly)."""
    basis = working_basis(design.y, design.X)  # same column space, better conditioned
    q_mat = np.linalg.qr(basis.apply(design.y, design.X)[1])[0]
    sums = np.stack([np.bincount(design.groups, weights=q_mat[:, k],
                                 minlength=design.n_clusters)
                     for k in range(q_mat.shape[1])], axis=1)
    leverage = (sums**2).sum(axis=1) / design.cluster_sizes
    return np.flatnonzero(leverage >= 1.0 - _LEVERAGE_TOL)


def _undefined_robust(
    formula: str, design: Design, bread: np.ndarray, cluster: str | None, cov_type: str
) -> tuple[np.ndarray, str | None]:
    """Coefficients whose cluster-robust variance is undefined, and the warning text.

    Cluster ``j`` has leverage 1 exactly when its indicator lies in the column space of
    ``X`` (``X a_j = 1_j`` with ``a_j = M s_j``): the combination ``a_j`` of coefficients
    is then estimated from that cluster alone, whose residuals sum to zero, so the
    sandwich leaves its variance out. Every cluster at leverage 1 (one cluster per arm,
    no more clusters than cluster-level coefficients) is an error; otherwise the
    coefficients that such clusters enter get a NaN variance and a warning. Fixed
    effects for the clusters themselves (the cluster column in the formula, as in
    clubSandwich's panel examples) are the deliberate exception: their coefficients are
    nuisance parameters and the within-cluster slopes are unaffected.
    """
    none = np.zeros(design.X.shape[1], dtype=bool)
    if cluster is not None and cluster in design_variables(formula):
        return none, None
    exact = _exact_clusters(design)
    if exact.size == 0:
        return none, None
    units = f"cluster(s) of {cluster!r}" if cluster is not None else "row(s)"
    shown = [design.cluster_labels[j] for j in exact[:10]]
    if exact.size == design.n_clusters:
        raise ModelSpecificationError(
            f"ols: cov_type={cov_type!r} is undefined for {formula!r}: all "
            f"{design.n_clusters} {units} are fitted exactly by cluster-level terms "
            "(leverage 1: one cluster per arm, or no more clusters than cluster-level "
            "coefficients), so the residuals carry no between-cluster information and the "
            "robust variance of the cluster-level effects is zero whatever the data. Add "
            "clusters or drop cluster-level terms; cov_type='classical' ignores the "
            "clustering."
        )
    sums = np.stack([np.bincount(design.groups, weights=design.X[:, k],
                                 minlength=design.n_clusters)[exact]
                     for k in range(design.X.shape[1])], axis=1)
    weights = sums @ bread  # rows a_j' with X a_j = 1_j
    scale = np.abs(design.X).max(axis=0)
    affected = np.any(np.abs(weights) * scale > 1e-6, axis=0)
    names = [design.names[j] for j in np.flatnonzero(affected)]
    message = (
        f"the {cov_type} standard error of {names} is undefined and reported as NaN: the "
        f"{units} {shown} are fitted exactly (leverage 1: e.g. the only cluster in a "
        "stratum or arm), so those coefficients are estimated from single clusters whose "
        "residuals carry no information about them. The other coefficients are "
        "unaffected. Merge levels or drop the term to get them."
    )
    return affected, message


def _robust(
    formula: str, design: Design, fit: sm.regression.linear_model.RegressionResults, *,
    cluster: str | None, cov_type: str
) -> tuple[np.ndarray, np.ndarray, ContrastDf | None, str | None]:
    """The CR1 or CR2 covariance, df and contrast df, and a warning if some are NaN."""
    if design.n_clusters < 2:
        raise ModelSpecificationError(
            f"cov_type={cov_type!r} needs at least two clusters in {cluster!r}; got "
            f"{design.n_clusters}. Use cov_type='classical' or check the cluster column."
        )
    resid = np.asarray(fit.resid, dtype=float)
    bread = np.asarray(fit.normalized_cov_params, dtype=float)
    affected, message = _undefined_robust(formula, design, bread, cluster, cov_type)
    robust = ClusterRobust.from_fit(design.X, resid, bread, design.groups)
    cov, df, contrast_df = _robust_pieces(cov_type, robust, design.X.shape[1])
    if affected.any():
        cov = cov.copy()
        cov[affected, :] = np.nan
        cov[:, affected] = np.nan
        df = np.where(affected, np.nan, df)
    return cov, df, contrast_df, message


def ols(
    formula: str,
    data: pd.DataFrame,
    *,
    cluster: str | None = None,
    cov_type: OLSCovType = "CR2",
) -> CRTResult:
    """Fit a linear model by ordinary least squares with small-sample inference.

    Parameters
    ----------
    formula
        Model formula, e.g. ``"total_12m ~ arm + total_baseline + stratum"``. Factor
        levels follow pandas ``Categorical`` order, otherwise sorted order; the first
        level is the reference.
    data
        One row per observation.
    cluster
        Column identifying the clusters. ``None`` makes each row its own cluster, so
        that ``"CR2"`` is the HC2 estimator with Bell-McCaffrey df and ``"CR1"`` is
        HC0 scaled by ``n / (n - 1)``; this is the natural choice for team-level data
        with one row per team.
    cov_type
        ``"classical"`` (``s^2 (X'X)^{-1}``, t with n - p df), ``"CR1"`` (sandwich
        scaled by J / (J - 1), t with J - 1 df) or ``"CR2"`` (Bell-McCaffrey
        bias-reduced sandwich, t with Satterthwaite df per coefficient and per
        contrast). The default is ``"CR2"``.

    Returns
    -------
    CRTResult
        ``model="ols"``; ``df_method`` is ``"residual"``, ``"clusters-1"`` or
        ``"bell-mccaffrey"``. For CR2, :meth:`CRTResult.contrast` computes the
        Satterthwaite df of each contrast. ``details`` is an
        :class:`~crtstats.models.OlsDetails` (``n_excluded``, ``note``, ``df_resid``,
        ``residual_sd``); with CR2, ``wald_test()`` is clubSandwich's HTZ test.

    Raises
    ------
    InvalidParameterError
        If ``cov_type`` is not one of the allowed values, ``formula`` is not a string,
        ``data`` not a DataFrame or ``cluster`` neither a column name nor None.
    ModelSpecificationError
        If the formula cannot be built on ``data``; the model matrix is rank deficient
        (the aliased columns are named); there are no more rows than coefficients; the
        outcome or a model column holds an infinite value (named); a text or
        categorical term has a single value (an empty arm); the outcome is constant or
        fitted exactly (zero residual variance); a robust covariance is asked for with
        fewer than two clusters, or with every cluster fitted exactly by cluster-level
        terms (one cluster per arm: the robust variance would be zero whatever the data).

    Warns
    -----
    ExcludedRowsWarning
        When rows are left out for missing values.
    FewClustersWarning
        With ``cov_type="CR1"`` and fewer than 40 clusters; and with CR1/CR2 when some
        clusters (rows, without ``cluster``) are fitted exactly (leverage 1, e.g. the
        only cluster in an arm or stratum): the coefficients estimated from them alone
        get a NaN variance, df and p-value.
    Every warning is also recorded in ``res.warnings`` (with its ``.category``).

    Notes
    -----
    With ``M = (X'X)^{-1}``, residuals ``e`` and clusters ``j = 1..J``, the robust
    covariance is ``V = M (sum_j X_j' A_j e_j e_j' A_j X_j) M``. CR1 uses
    ``A_j = sqrt(J / (J - 1)) I`` (clubSandwich's ``"CR1"``). CR2 uses
    ``A_j = (I - H_jj)^{-1/2}``, the symmetric inverse square root of the cluster's
    block of ``I - X M X'``, with eigenvalues below 1e-12 treated as zero (so clusters
    that a fixed effect spans get a generalised inverse, as in clubSandwich).

    The CR2 df of a contrast ``c`` follow Bell and McCaffrey (2002) and Pustejovsky
    and Tipton (2018) under the working model ``Var(y) = sigma^2 I``: with
    ``u_j = A_j X_j M c`` and ``w_j = X_j' u_j``, let ``G = diag(u_j' u_j) - W' M W``
    (J x J, ``W = [w_1 ... w_J]``); then ``c' V c`` is a quadratic form whose
    Satterthwaite df is ``nu = tr(G)^2 / ||G||_F^2``. This is
    ``clubSandwich::coef_test(test = "Satterthwaite")`` and, for a single contrast,
    ``linear_contrast(test = "Satterthwaite")`` and ``Wald_test(test = "HTZ")``.

    References
    ----------
    Bell RM, McCaffrey DF (2002). Bias reduction in standard errors for linear
    regression with multi-stage samples. Survey Methodology 28(2):169-181.

    Pustejovsky JE, Tipton E (2018). Small-sample methods for cluster-robust variance
    estimation and hypothesis testing in fixed effects models. Journal of Business &
    Economic Statistics 36(4):672-683.

    Examples
    --------
    Team-level ANCOVA of the 12-month fidelity total (HC2, one row per team):

    >>> import pandas as pd
    >>> teams = pd.DataFrame({
    ...     "arm": ["control", "intervention"] * 4,
    ...     "baseline": [100.0, 104, 98, 110, 95, 101, 107, 99],
    ...     "total_12m": [103.0, 118, 97, 125, 99, 116, 109, 114]})
    >>> res = ols("total_12m ~ arm + baseline", teams)
    >>> round(float(res.params["arm[T.intervention]"]), 3)
    12.857
    >>> res.df_method, round(float(res.df["arm[T.intervention]"]), 2)
    ('bell-mccaffrey', 3.68)

    The same in R: ``fit <- lm(total_12m ~ arm + baseline, teams)`` then
    ``clubSandwich::coef_test(fit, vcov = "CR2", cluster = seq_len(nrow(teams)),
    test = "Satterthwaite")``.
    """
    check_fit_arguments("ols", formula, data, {"cluster": cluster}, optional=("cluster",))
    check_option("cov_type", cov_type, get_args(OLSCovType))
    design = build_design(formula, data, cluster=cluster)
    check_finite("ols", formula, data, design)
    check_outcome_varies("ols", formula, design)
    check_terms_vary("ols", formula, data, design)
    check_rank(design.X, design.names, formula=formula)
    fit = sm.OLS(design.y, design.X).fit()
    n, p = design.X.shape
    resid = np.asarray(fit.resid, dtype=float)
    _check_exact_fit(formula, design, resid)
    contrast_df: ContrastDf | None = None
    undefined: str | None = None
    if cov_type == "classical":
        cov = np.asarray(fit.cov_params(), dtype=float)
        df = np.full(p, float(n - p))
    else:
        cov, df, contrast_df, undefined = _robust(formula, design, fit, cluster=cluster,
                                                  cov_type=cov_type)
    log = WarningLog()
    warn_design(design, log)
    if undefined is not None:
        log.warn(undefined, FewClustersWarning)
    if cov_type == "CR1" and design.n_clusters < FEW_CLUSTERS_CR1:
        log.warn(_few_clusters_message(design.n_clusters), FewClustersWarning)
    return CRTResult(
        model="ols",
        formula=formula,
        param_names=design.names,
        param_values=np.asarray(fit.params, dtype=float),
        cov_values=cov,
        df_values=df,
        df_method=_DF_METHOD[cov_type],
        cov_type=cov_type,
        nobs=n,
        n_clusters=design.n_clusters if cluster is not None or cov_type != "classical"
        else None,
        warnings=log.records,
        loglik=float(fit.llf),
        contrast_df=contrast_df,
        details=OlsDetails(
            n_excluded=design.n_excluded, df_resid=float(n - p),
            residual_sd=float(np.sqrt(resid @ resid / (n - p))),
        ),
        spec=ModelSpec(fitter="ols", formula=formula, cluster=cluster,
                       options={"cov_type": cov_type}),
        wald_method=_wald_method(cov_type, design, fit, cov),
        predictor=predictor_from_design(design, data, np.asarray(fit.params, dtype=float),
                                        link="identity"),
    )


def _wald_method(
    cov_type: str, design: Design, fit: RegressionResults, cov: np.ndarray
) -> WaldMethod | None:
    """CR2: clubSandwich's HTZ test (its CR2 pieces formed on first use); otherwise
    None, W / q on the fit's df."""
    if cov_type != "CR2":
        return None
    bread = np.asarray(fit.normalized_cov_params, dtype=float)
    resid = np.asarray(fit.resid, dtype=float)
    return cr2_htz_wald(design.X, resid, bread, design.groups, cov)
