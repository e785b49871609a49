"""Specification and degenerate-data checks of :func:`crtstats.lmm`.

Each raises :class:`~crtstats.ModelSpecificationError` saying what was found, the value
seen and what to do: too few clusters, a cluster-level factor level with a single
cluster, no within-cluster replication (the cluster and residual variances are then
not separately identified), no within-cluster residual variation (ICC = 1) and an exact
fit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crtstats.exceptions import ModelSpecificationError
from crtstats.models._checks import between_within
from crtstats.models._data_checks import check_cluster_level_terms
from crtstats.models._design import Design
from crtstats.models._lmm_fit import ClusterStats, LmmFit

__all__ = ["check_clusters", "check_residual_variance", "check_within_variation"]

#: Within-cluster residual variation below this fraction of the total counts as none.
_EXACT_TOL = 1e-12


def check_clusters(formula: str, data: pd.DataFrame, design: Design, cluster: str) -> None:
    """Fewer than two clusters, or a cluster-level factor level with fewer than two."""
    if design.n_clusters < 2:
        raise ModelSpecificationError(
            f"lmm needs at least two clusters in {cluster!r}; the data used have "
            f"{design.n_clusters}. A random-intercept model cannot be fitted; analyse the "
            "rows with a fixed-effects model instead."
        )
    check_cluster_level_terms(formula, data, design)


def check_within_variation(
    formula: str, design: Design, X_work: np.ndarray, stats: ClusterStats, cluster: str
) -> None:
    """Refuse data in which the residual variance is not separated from the cluster one.

    With no within-cluster residual degrees of freedom (``N - G - p_w < 1``, e.g. one
    row per cluster) the likelihood depends on ``tau + sigma2`` only; with no
    within-cluster residual variation (the outcome constant within every cluster, or
    reproduced within clusters by the covariates) it is unbounded as ``sigma2 -> 0``
    (ICC = 1).
    """
    n, g, p = design.nobs, design.n_clusters, X_work.shape[1]
    if n - g - p < 1:  # only then can N - G - p_w be below 1 (p_w <= p)
        bw = between_within(X_work, design.groups, design.n_clusters)
        if bw.df_within < 1:
            singles = int((design.cluster_sizes == 1).sum())
            raise ModelSpecificationError(
                f"lmm: {formula!r} has no within-cluster residual degrees of freedom ({n} "
                f"rows in {g} clusters of {cluster!r}, {singles} with a single row, "
                f"{p - int(bw.cluster_level.sum())} within-cluster coefficient(s)): the "
                "cluster and residual variances are not separately identified (lme4 "
                "refuses such data too). With one row per cluster use "
                "crtstats.ols(..., cluster=None), an analysis of the cluster-level data."
            )
    # within-cluster regression of y on X: cluster-level columns have W_xx = 0 (up to
    # rounding) and drop out of the least-squares solution
    coef = np.linalg.lstsq(stats.wxx, stats.wxy, rcond=None)[0]
    resid = stats.wyy - float(stats.wxy @ coef)
    total = stats.yty - float(stats.sy.sum()) ** 2 / n
    if not resid > _EXACT_TOL * total:
        how = ("is constant within every cluster" if not stats.wyy > _EXACT_TOL * total
               else "is reproduced exactly within clusters by the covariates")
        raise ModelSpecificationError(
            f"lmm: the outcome of {formula!r} {how} (the within-cluster residual sum "
            f"of squares is {max(resid, 0.0) / total:.3g} of the total): the "
            "residual variance is zero and the intra-cluster correlation is 1, so the "
            "likelihood has no maximum. Analyse the cluster means instead "
            "(crtstats.cluster_level, or crtstats.ols on one row per cluster)."
        )


def check_residual_variance(stats: ClusterStats, fit: LmmFit, formula: str) -> None:
    """A zero residual variance means an exact fit: nothing to infer from."""
    n = stats.nobs
    total = (stats.yty - float(stats.sy.sum()) ** 2 / n) / n
    if not total > 0.0 or not fit.sigma2 > _EXACT_TOL * total:
        raise ModelSpecificationError(
            f"the residual variance of {formula!r} is estimated as zero ("
            f"{fit.sigma2 / total if total > 0.0 else 0.0:.3g} of the outcome variance): the fixed "
            "effects and cluster intercepts reproduce the outcome exactly, so there is no "
            "error to test against. Check that the outcome is not a copy or function of "
            "a covariate."
        )
