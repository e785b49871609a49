"""Generalised estimating equations with bias-corrected sandwiches and t inference."""

from __future__ import annotations

import contextlib
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
)
from crtstats.models._checks import check_fit_arguments, check_rank, cluster_level_columns
from crtstats.models._data_checks import check_finite, check_terms_vary
from crtstats.models._design import Design, build_design, warn_design
from crtstats.models._details import GeeDetails, ModelSpec
from crtstats.models._gee_fit import MOMENTS, GeeFit, Moments, fit_gee
from crtstats.models._gee_sandwich import SANDWICH_TYPES, GeeFamily, SandwichType, gee_sandwiches
from crtstats.models._glmm_checks import separated_columns
from crtstats.models._predict import predictor_from_design
from crtstats.models._result import CRTResult
from crtstats.models._warn import WarningLog

__all__ = ["gee"]

CovStruct = Literal["exchangeable", "independence"]
GeeDdf = Literal["between", "z"]
GeeWeights = Literal["none", "inverse-size"]
_WEIGHTS: tuple[GeeWeights, ...] = get_args(GeeWeights)
_FAMILIES: tuple[GeeFamily, ...] = get_args(GeeFamily)
_COV_STRUCTS: tuple[CovStruct, ...] = get_args(CovStruct)
_DDFS: tuple[GeeDdf, ...] = get_args(GeeDdf)
_LINKS = {"binomial": "logit", "poisson": "log", "gaussian": "identity"}
#: Below this many clusters an uncorrected sandwich or a z test is flagged.
FEW_CLUSTERS = 40


def _check_values(design: Design, family: GeeFamily, formula: str) -> None:
    """A response the family accepts and that varies, and a full-rank design."""
    y, X = design.y, design.X
    if family == "binomial" and not np.all((y == 0) | (y == 1)):
        raise ModelSpecificationError(
            f"family='binomial' needs a 0/1 response in {formula!r}; found the value "
            f"{y[(y != 0) & (y != 1)][0]!r}. Recode the outcome to 0/1 (one row per person)."
        )
    if family == "poisson" and (np.any(y < 0) or np.any(y != np.round(y))):
        raise ModelSpecificationError(
            f"family='poisson' needs non-negative whole counts in {formula!r}; found "
            f"{y[(y < 0) | (y != np.round(y))][0]!r}."
        )
    if np.all(y == y[0]):
        raise ModelSpecificationError(
            f"the response of {formula!r} is the same ({y[0]!r}) in all {y.size} rows used: "
            "no effect, dispersion or correlation can be estimated. Check the outcome "
            "column and the rows selected; report the outcome descriptively."
        )
    check_rank(X, design.names, formula=formula)


def _between_df(design: Design, q: int, ddf: GeeDdf, cov_type: SandwichType,
                formula: str, log: WarningLog) -> float:
    """``G - q`` (or inf for z); warns when few clusters meet a liberal choice."""
    g = design.n_clusters
    if g < 2:
        raise ModelSpecificationError(
            f"the rows used by {formula!r} come from {g} cluster: a GEE sandwich needs "
            "several clusters (its meat is a sum over them). Check the cluster column and "
            "the rows selected."
        )
    if g - q < 1:
        raise ModelSpecificationError(
            f"{g} clusters and {q} cluster-level coefficients leave {g - q} df for "
            f"{formula!r}: each cluster-level coefficient is fixed by too few clusters "
            "(e.g. one cluster per arm), so no sandwich can estimate its variance. Use "
            "fewer cluster-level terms or more clusters."
        )
    if g < FEW_CLUSTERS and (cov_type == "robust" or ddf == "z"):
        log.warn(
            f"only {g} clusters: the uncorrected sandwich and z tests are too liberal with "
            f"fewer than {FEW_CLUSTERS}; use a bias-corrected cov_type with ddf='between'.",
            FewClustersWarning,
        )
    return float(g - q) if ddf == "between" else float("inf")


def _check_pairs(design: Design, cov_struct: CovStruct, moments: Moments, formula: str
                 ) -> None:
    sizes = design.cluster_sizes
    pairs = int(np.sum(sizes * (sizes - 1)) // 2)
    need = design.X.shape[1] + 1 if moments == "sas" else 1
    if cov_struct == "exchangeable" and pairs < need:
        raise ModelSpecificationError(
            f"{formula!r}: the clusters hold {pairs} within-cluster pair(s) of rows (most "
            f"clusters have one row), too few to estimate the exchangeable correlation "
            f"(moments={moments!r} needs at least {need}). Use cov_struct='independence'."
        )


def _separation(design: Design, family: GeeFamily, log: WarningLog) -> list[int]:
    """Columns with infinite estimates (warned); their covariances are reported as NaN."""
    if family == "gaussian":
        return []
    upper = np.ones_like(design.y) if family == "binomial" else None
    sep = separated_columns(design.X, design.y, upper)
    if sep:
        log.warn(
            f"complete or quasi-complete separation: the estimates of "
            f"{[design.names[j] for j in sep]} are not finite (an arm or level with no "
            "events, or a covariate that predicts the outcome perfectly); the estimates, "
            "reported for them are where the iterations stopped and their standard errors "
            "and p-values are NaN. Merge or drop the terms, or analyse at cluster level "
            "(cluster_level) or by permutation_test.",
            SeparationWarning,
        )
    return sep


def _fit_warnings(fit: GeeFit, design: Design, cov_struct: CovStruct, separated: bool,
                  log: WarningLog) -> None:
    n_max = int(design.cluster_sizes.max())
    if fit.invalid_alpha is not None and not separated:
        raise ModelSpecificationError(
            f"the exchangeable working correlation was estimated as {fit.invalid_alpha:.6g}, "
            f"outside (-1/(n_max - 1), 1) = ({-1.0 / max(n_max - 1, 1):.4g}, 1) for a "
            f"cluster of {n_max} (or the dispersion as zero): the working covariance is not "
            "positive definite. Use cov_struct='independence'."
        )
    if not fit.converged and not separated:
        log.warn(
            f"GEE did not converge in {fit.iterations} Fisher-scoring iterations (or a step "
            "failed); the estimates are where it stopped. Check the model and the data "
            "(separation, very small clusters, a covariate on an extreme scale).",
            ConvergenceWarning,
        )
    if cov_struct == "exchangeable" and 1.0 + (n_max - 1) * fit.alpha < 0.25:
        log.warn(
            f"the exchangeable working correlation {fit.alpha:.4g} is near its lower bound "
            f"{-1.0 / (n_max - 1):.4g} for a cluster of {n_max}: the working covariance is "
            "nearly singular and the fit leans on the largest clusters; consider "
            "cov_struct='independence'.",
            BoundaryFitWarning,
        )


def _sandwiches(design: Design, fit: GeeFit, family: GeeFamily, separated: list[int],
                weights: np.ndarray | None) -> dict[str, np.ndarray]:
    """Every covariance; rows and columns of separated terms are NaN (no finite SE)."""
    # at a separated (diverged) fit the sandwiches overflow along the separated terms,
    # which are set to NaN below; numpy's warnings about it would only repeat that
    quiet = np.errstate(over="ignore", divide="ignore", invalid="ignore") if separated \
        else contextlib.nullcontext()
    try:
        with quiet:
            covs = dict(gee_sandwiches(design.X, design.y, design.groups, fit.beta,
                                       family=family, alpha=fit.alpha, offset=design.offset,
                                       labels=design.cluster_labels, weights=weights))
    except (np.linalg.LinAlgError, ValueError):
        if not separated:
            raise
        p = design.X.shape[1]
        covs = {k: np.full((p, p), np.nan) for k in ("naive", *SANDWICH_TYPES)}
    for name, cov in covs.items():
        cov = cov.copy()
        cov[separated, :] = np.nan
        cov[:, separated] = np.nan
        covs[name] = cov
    return covs


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
    exposure: str | None = None,
    moments: Moments = "geepack",
    weights: GeeWeights = "none",
) -> CRTResult:
    """Fit a GEE with a bias-corrected sandwich and small-sample t inference.

    Parameters
    ----------
    formula
        Model formula, e.g. ``"admitted ~ arm + stratum + pre_prop"``.
    data
        One row per observation.
    cluster
        Column identifying the clusters (teams). Rows need not be sorted.
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
    exposure
        Column holding a raw exposure (e.g. service users, person-time; > 0), entered
        as ``log(exposure)``. Both may be given (they add).
    moments
        Moment estimators of the dispersion and the exchangeable correlation:
        ``"geepack"`` (default; ``geepack::geeglm``) divides by ``N`` and by the
        number of within-cluster pairs ``M``; ``"sas"`` (SAS PROC GENMOD, statsmodels)
        by ``N - p`` and ``M - p``.
    weights
        ``"none"`` (default): every row counts once, so with the independence working
        correlation the arm effect is participant-average. ``"inverse-size"``: each
        row weighs ``1 / n_i`` (its cluster's rows used), so every cluster counts once
        and the effect is cluster-average; needs ``cov_struct="independence"``.

    Returns
    -------
    CRTResult
        ``model="gee"``; ``details`` is a :class:`~crtstats.models.GeeDetails` with
        the ``working_correlation`` (alpha), the ``dispersion`` (scale), every
        sandwich (``details.covariances``, read-only), the model-based covariance
        (``details.naive_covariance``), the moment convention, the iterations and the
        number of excluded rows; ``fitted_values`` and ``predict()`` are
        population-average means and ``wald_test()`` refers ``W / q`` to the ``G - q``
        df. ``warnings`` holds every warning issued.

    Raises
    ------
    InvalidParameterError
        If an option is not one of its allowed values or an argument has the wrong type.
    MissingColumnError
        If a column is not in ``data``.
    ModelSpecificationError
        If the formula or data cannot be fitted: a response the family does not accept,
        a constant response, infinite values, a rank-deficient design, a single cluster
        or too few clusters for the cluster-level terms (e.g. one cluster per arm), too
        few within-cluster pairs for an exchangeable correlation, an estimated
        correlation outside its range, or a cluster of leverage 1.

    Warns
    -----
    ExcludedRowsWarning
        When rows with a missing value were left out (``design.exclusion_message``).
    ExposureWarning
        When ``offset`` holds only whole numbers above 1 (a raw exposure?).
    SeparationWarning
        Under complete or quasi-complete separation (e.g. no event in one arm).
    FewClustersWarning
        With fewer than 40 clusters and an uncorrected sandwich or a z test.
    ConvergenceWarning
        If the Fisher-scoring iterations did not converge.
    BoundaryFitWarning
        If the exchangeable correlation is so negative that ``1 + (n_max - 1) alpha``
        (the working covariance's eigenvalue along the cluster mean for the largest
        cluster, relative to 1) is below 0.25.

    Notes
    -----
    The estimating equations ``sum_i D_i' V_i^-1 (y_i - mu_i) = 0`` with
    ``V_i = phi A_i^1/2 R_i(alpha) A_i^1/2`` are solved by Fisher scoring, ``R_i^-1``
    in closed form (:mod:`crtstats.models._gee_fit`). With Pearson residuals ``e_ij``,
    ``N`` rows, ``p`` coefficients and ``M = sum_i n_i (n_i - 1) / 2`` pairs, the
    moment estimators are, by ``moments``:

    - ``"geepack"``: ``phi = sum e_ij^2 / N``,
      ``alpha = sum_i sum_{j<k} e_ij e_ik / (M phi)``;
    - ``"sas"``: ``phi = sum e_ij^2 / (N - p)``,
      ``alpha = sum_i sum_{j<k} e_ij e_ik / ((M - p) phi)``.

    The dispersion is estimated for every family (geepack's ``scale.fix = FALSE``); it
    enters ``alpha`` and the model-based covariance only. The covariances are computed
    in :func:`crtstats.models._gee_sandwich.gee_sandwiches`; statistics are
    ``t = beta_j / se_j`` with ``G - q`` df (Li and Redden 2015).

    References
    ----------
    Liang KY, Zeger SL (1986). Biometrika 73:13-22.
    Kauermann G, Carroll RJ (2001). JASA 96:1387-1396.
    Mancl LA, DeRouen TA (2001). Biometrics 57:126-134.
    Fay MP, Graubard BI (2001). Biometrics 57:1198-1206.
    Li P, Redden DT (2015). Statistics in Medicine 34:281-296.
    Halekoh U, Hojsgaard S, Yan J (2006). The R package geepack. JSS 15(2).

    Examples
    --------
    >>> import crtstats
    >>> trial = crtstats.datasets.load_example()
    >>> fu = trial.admissions[trial.admissions["period"] == "follow_up"].merge(
    ...     trial.teams, on="team_id")
    >>> res = crtstats.gee("admitted ~ arm + stratum", fu, cluster="team_id",
    ...                    family="binomial", cov_struct="independence")
    >>> res.cov_type, res.df_method, int(res.df.iloc[0])
    ('kauermann-carroll', 'between', 16)

    R: ``geepack::geeglm(admitted ~ arm + stratum, id = team_id, family = binomial,
    corstr = "independence", control = geese.control(epsilon = 1e-12))`` (rows sorted
    by team) gives the same estimates, working correlation, dispersion and robust
    sandwich (``cov_type="robust"``); the bias-corrected sandwiches follow the papers'
    formulas (as ``geesmv``).
    """
    check_fit_arguments("gee", formula, data,
                        {"cluster": cluster, "offset": offset, "exposure": exposure},
                        optional=("offset", "exposure"))
    check_option("family", family, _FAMILIES)
    check_option("cov_struct", cov_struct, _COV_STRUCTS)
    check_option("cov_type", cov_type, SANDWICH_TYPES)
    check_option("ddf", ddf, _DDFS)
    check_option("moments", moments, MOMENTS)
    check_option("weights", weights, _WEIGHTS)
    if weights != "none" and cov_struct != "independence":
        raise InvalidParameterError(
            f"gee: weights={weights!r} needs cov_struct='independence'; got "
            f"cov_struct={cov_struct!r}. Cluster weights with an exchangeable working "
            "correlation mix two weightings, and the effect estimates neither population."
        )
    log = WarningLog()
    design = build_design(formula, data, cluster=cluster, offset=offset, exposure=exposure,
                          binary_response=family == "binomial")
    warn_design(design, log, offset=offset)
    check_finite("gee", formula, data, design)
    _check_values(design, family, formula)
    check_terms_vary("gee", formula, data, design)
    n_clusters = design.n_clusters
    q = int(cluster_level_columns(design.X, design.groups, n_clusters).sum())
    df = _between_df(design, q, ddf, cov_type, formula, log)
    _check_pairs(design, cov_struct, moments, formula)
    row_w = (None if weights == "none"
             else 1.0 / design.cluster_sizes.astype(float)[design.groups])
    fit = fit_gee(design.X, design.y, design.groups, n_clusters, design.offset,
                  family=family, exchangeable=cov_struct == "exchangeable", moments=moments,
                  weights=row_w)
    # Under separation Fisher scoring cannot converge (the steps along the separating
    # direction tend to a constant), so the exact check runs only when it did not.
    separated = [] if fit.converged else _separation(design, family, log)
    _fit_warnings(fit, design, cov_struct, bool(separated), log)
    covs = _sandwiches(design, fit, family, separated, row_w)
    return CRTResult(
        model="gee",
        formula=formula,
        param_names=design.names,
        param_values=fit.beta,
        cov_values=covs[cov_type],
        df_values=np.full(len(fit.beta), df),
        df_method=ddf,
        cov_type=cov_type,
        nobs=design.nobs,
        n_clusters=n_clusters,
        converged=fit.converged,
        family=family,
        link=_LINKS[family],
        warnings=log.records,
        details=GeeDetails(
            n_excluded=design.n_excluded,
            cov_struct=cov_struct,
            working_correlation=fit.alpha,
            dispersion=fit.scale,
            n_cluster_level=q,
            covariances=covs,
            naive_covariance=covs["naive"] * fit.scale,
            moments=moments,
            iterations=fit.iterations,
            response_coding=design.response_note,
        ),
        spec=ModelSpec(fitter="gee", formula=formula, cluster=cluster, family=family,
                       link=_LINKS[family], offset=offset, exposure=exposure,
                       options={"cov_struct": cov_struct, "cov_type": cov_type,
                                "ddf": ddf, "moments": moments, "weights": weights}),
        predictor=predictor_from_design(design, data, fit.beta, link=_LINKS[family],
                                        offset=offset, exposure=exposure),
    )
