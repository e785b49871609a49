"""Generalised estimating equations with bias-corrected sandwiches and t inference."""

from __future__ import annotations

import warnings
from typing import Literal, get_args

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.tools import sm_exceptions

from crtstats._options import check_option
from crtstats.exceptions import (
    BoundaryFitWarning,
    ConvergenceWarning,
    FewClustersWarning,
    ModelSpecificationError,
)
from crtstats.models._checks import check_rank, cluster_level_columns
from crtstats.models._design import Design, build_design
from crtstats.models._gee_sandwich import SANDWICH_TYPES, GeeFamily, SandwichType, gee_sandwiches
from crtstats.models._result import CRTResult

__all__ = ["gee"]

CovStruct = Literal["exchangeable", "independence"]
GeeDdf = Literal["between", "z"]
_FAMILIES: tuple[GeeFamily, ...] = get_args(GeeFamily)
_COV_STRUCTS: tuple[CovStruct, ...] = get_args(CovStruct)
_DDFS: tuple[GeeDdf, ...] = get_args(GeeDdf)
_LINKS = {"binomial": "logit", "poisson": "log", "gaussian": "identity"}
_SM_CONVERGENCE = (sm_exceptions.ConvergenceWarning, sm_exceptions.IterationLimitWarning)
#: Below this many clusters an uncorrected sandwich or a z test is flagged.
FEW_CLUSTERS = 40


def _check_response(design: Design, family: GeeFamily, formula: str) -> None:
    y = design.y
    if family == "binomial" and not np.all((y == 0) | (y == 1)):
        bad = y[(y != 0) & (y != 1)][0]
        raise ModelSpecificationError(
            f"family='binomial' needs a 0/1 response in {formula!r}; found the value {bad!r}. "
            "Recode the outcome to 0/1 (one row per person)."
        )
    if family == "poisson" and (np.any(y < 0) or np.any(y != np.round(y))):
        raise ModelSpecificationError(
            f"family='poisson' needs non-negative whole counts in {formula!r}; found "
            f"{y[(y < 0) | (y != np.round(y))][0]!r}."
        )
    check_rank(design.X, design.names, formula=formula)


def _fit_statsmodels(
    design: Design, family: GeeFamily, cov_struct: CovStruct, has_offset: bool
) -> tuple[np.ndarray, float, float, bool, list[str]]:
    """Fit with statsmodels; return beta, alpha, scale, converged and warning texts."""
    fam = {
        "binomial": sm.families.Binomial(),
        "poisson": sm.families.Poisson(),
        "gaussian": sm.families.Gaussian(),
    }[family]
    cs = sm.cov_struct.Exchangeable() if cov_struct == "exchangeable" else (
        sm.cov_struct.Independence()
    )
    model = sm.GEE(
        design.y,
        design.X,
        groups=design.groups,
        family=fam,
        cov_struct=cs,
        offset=design.offset if has_offset else None,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = model.fit(maxiter=200, ctol=1e-8)
    texts: list[str] = []
    for w in caught:
        text = str(w.message)
        texts.append(text)
        if issubclass(w.category, _SM_CONVERGENCE):
            warnings.warn(
                f"GEE did not converge: {text} Check the model and the data (separation, "
                "very small clusters).",
                ConvergenceWarning,
                stacklevel=4,
            )
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    alpha = float(np.atleast_1d(res.cov_struct.dep_params)[0]) if cov_struct == (
        "exchangeable"
    ) else 0.0
    converged = bool(getattr(res, "converged", True))
    return np.asarray(res.params, dtype=float), alpha, float(res.scale), converged, texts


def _between_df(n_clusters: int, q: int, ddf: GeeDdf, cov_type: SandwichType,
                formula: str) -> float:
    """``G - q`` (or inf for z); warns when few clusters meet a liberal choice."""
    df = float(n_clusters - q) if ddf == "between" else float("inf")
    if df < 1:
        raise ModelSpecificationError(
            f"{n_clusters} clusters and {q} cluster-level coefficients leave {df:g} df for "
            f"{formula!r}; use fewer cluster-level terms or ddf='z'."
        )
    if n_clusters < FEW_CLUSTERS and (cov_type == "robust" or ddf == "z"):
        warnings.warn(
            f"only {n_clusters} clusters: the uncorrected sandwich and z tests are too "
            "liberal with fewer than 40; use a bias-corrected cov_type with ddf='between'.",
            FewClustersWarning,
            stacklevel=3,
        )
    return df


def _check_alpha(alpha: float, n_max: int) -> list[str]:
    """Warn when the exchangeable working covariance is nearly singular."""
    if 1.0 + (n_max - 1) * alpha >= 0.25:
        return []
    text = (
        f"the exchangeable working correlation {alpha:.4g} is near its lower bound "
        f"{-1.0 / (n_max - 1):.4g} for a cluster of {n_max}: the working covariance is "
        "nearly singular and the fit leans on the largest clusters; consider "
        "cov_struct='independence'."
    )
    warnings.warn(text, BoundaryFitWarning, stacklevel=3)
    return [text]


def gee(
    formula: str,
    data: pd.DataFrame,
    *,
    cluster: str,
    family: GeeFamily,
    cov_struct: CovStruct = "exchangeable",
    cov_type: SandwichType = "kauermann-carroll",
    ddf: GeeDdf = "between",
    offset: str | None = None,
) -> CRTResult:
    """Fit a GEE with a bias-corrected sandwich and small-sample t inference.

    Parameters
    ----------
    formula
        Model formula, e.g. ``"admitted ~ arm + stratum + pre_prop"``.
    data
        One row per observation.
    cluster
        Column identifying the clusters (teams).
    family
        ``"binomial"`` (logit link, 0/1 response), ``"poisson"`` (log link) or
        ``"gaussian"`` (identity link).
    cov_struct
        Working correlation: ``"exchangeable"`` (default) or ``"independence"``.
    cov_type
        Sandwich estimator: ``"robust"`` (Liang-Zeger), ``"mancl-derouen"``,
        ``"kauermann-carroll"`` (default) or ``"fay-graubard"``.
    ddf
        ``"between"`` (default): t with ``G - q`` degrees of freedom, G clusters and
        q cluster-level coefficients (columns constant within every cluster,
        intercept included). ``"z"``: normal reference.
    offset
        Column holding an offset on the linear-predictor scale (e.g. log exposure).

    Returns
    -------
    CRTResult
        ``model="gee"``; ``info`` holds the working correlation ``alpha``, the
        dispersion ``scale``, every sandwich (``info["covariances"]``) and the
        number of excluded rows.

    Raises
    ------
    InvalidParameterError
        If an option is not one of its allowed values.
    ModelSpecificationError
        If the formula or data cannot be fitted (bad response for the family, rank
        deficient design, too few clusters for the df).

    Warns
    -----
    FewClustersWarning
        With fewer than 40 clusters and an uncorrected sandwich or a z test.
    ConvergenceWarning
        If the GEE iterations did not converge.
    BoundaryFitWarning
        If the exchangeable correlation is so negative that ``1 + (n_max - 1) alpha``,
        the working covariance's eigenvalue along the cluster mean for the largest
        cluster (relative to 1), is below 0.25.

    Notes
    -----
    The coefficients and working correlation are statsmodels' GEE estimates (moment
    estimators of Liang and Zeger, the dispersion and correlation normalised by
    ``N - p`` and ``n_pairs - p``). The covariances are computed here (see
    :func:`crtstats.models._gee_sandwich.gee_sandwiches`); statistics are
    ``t = beta_j / se_j`` with ``G - q`` df (Li and Redden 2015).

    References
    ----------
    Liang KY, Zeger SL (1986). Biometrika 73:13-22.
    Kauermann G, Carroll RJ (2001). JASA 96:1387-1396.
    Mancl LA, DeRouen TA (2001). Biometrics 57:126-134.
    Fay MP, Graubard BI (2001). Biometrics 57:1198-1206.
    Li P, Redden DT (2015). Statistics in Medicine 34:281-296.

    Examples
    --------
    >>> import crtstats
    >>> trial = crtstats.datasets.load_example()
    >>> fu = trial.admissions[trial.admissions["period"] == "follow_up"].merge(
    ...     trial.teams, on="team_id")
    >>> res = crtstats.gee("admitted ~ arm + stratum", fu, cluster="team_id",
    ...                    family="binomial")
    >>> res.cov_type, res.df_method, int(res.df.iloc[0])
    ('kauermann-carroll', 'between', 16)

    R: ``geepack::geeglm(admitted ~ arm + stratum, id = team_id, family = binomial,
    corstr = "exchangeable")`` gives the same estimates with the robust sandwich.
    """
    check_option("family", family, _FAMILIES)
    check_option("cov_struct", cov_struct, _COV_STRUCTS)
    check_option("cov_type", cov_type, SANDWICH_TYPES)
    check_option("ddf", ddf, _DDFS)
    design = build_design(formula, data, cluster=cluster, offset=offset,
                          binary_response=family == "binomial")
    _check_response(design, family, formula)
    n_clusters = design.n_clusters
    q = int(cluster_level_columns(design.X, design.groups, n_clusters).sum())
    df = _between_df(n_clusters, q, ddf, cov_type, formula)
    beta, alpha, scale, converged, texts = _fit_statsmodels(
        design, family, cov_struct, offset is not None
    )
    if cov_struct == "exchangeable":
        texts += _check_alpha(alpha, int(design.cluster_sizes.max()))
    covs = gee_sandwiches(
        design.X, design.y, design.groups, beta, family=family, alpha=alpha,
        offset=design.offset,
    )
    return CRTResult(
        model="gee",
        formula=formula,
        param_names=design.names,
        param_values=beta,
        cov_values=covs[cov_type],
        df_values=np.full(len(beta), df),
        df_method=ddf,
        cov_type=cov_type,
        nobs=design.nobs,
        n_clusters=n_clusters,
        converged=converged,
        family=family,
        link=_LINKS[family],
        warnings=tuple(texts),
        info={
            "cov_struct": cov_struct,
            "alpha": alpha,
            "scale": scale,
            "n_cluster_level": q,
            "n_excluded": design.n_excluded,
            "response_coding": design.response_note,
            "covariances": {k: v.copy() for k, v in covs.items()},
            "naive_cov": covs["naive"] * scale,
        },
    )
