"""Standardised risks from an unadjusted cluster-level analysis.

The arm's risk (rate, mean) is the (weighted) mean of its clusters' summaries, as the
analysis itself compares them; its variance is ``s^2 / W_a`` with the analysis's pooled
between-cluster variance ``s^2 = sum_i w_i (y_i - ybar_a)^2 / (k - 2)`` of the
summaries, and the arms are independent. Weighted by size it is the participant-average
risk ``sum O_i / sum n_i``; unweighted, the cluster-average risk.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crtstats.exceptions import ModelSpecificationError
from crtstats.models._details import ClusterLevelDetails
from crtstats.models._result import CRTResult
from crtstats.models._standardise_result import (
    StandardisedResult,
    contrast_rows,
    contrasts,
    finish_frame,
    summary_rows,
)
from crtstats.models._warn import WarningLog

__all__ = ["standardise_cluster_level"]

_KIND = {"binary": "risk", "count": "rate", "continuous": "mean"}
_LEVEL_SCALE = {"risk": "logit", "rate": "log", "mean": "identity"}


def _arm_labels(table: pd.DataFrame, arm: str) -> tuple[str, str]:
    """(control, intervention) labels of the arm column."""
    control = table.loc[table["treated"] == 0, arm]
    treated = table.loc[table["treated"] == 1, arm]
    return str(control.iloc[0]), str(treated.iloc[0])


def standardise_cluster_level(result: CRTResult, *, by: str, level: float,
                              log: WarningLog) -> StandardisedResult:
    """The per-arm summaries of a cluster-level analysis and their contrasts."""
    details, spec = result.details, result.spec
    assert isinstance(details, ClusterLevelDetails) and spec is not None
    arm = str(spec.options["arm"])
    if by != arm:
        raise ModelSpecificationError(
            f"standardise: the cluster-level analysis compares {arm!r}; got by={by!r}."
        )
    if details.adjusted_for:
        raise ModelSpecificationError(
            f"standardise: this cluster-level analysis is adjusted for "
            f"{list(details.adjusted_for)} by two-stage residuals, which give a difference "
            "but no standardised risk per arm. Standardise a glmm or gee fit with those "
            "covariates instead, or use the unadjusted analysis."
        )
    table = details.clusters
    kind = _KIND[str(details.outcome_type)]
    weighted = spec.options.get("weights") == "weighted"
    w = table["size"].to_numpy(float) if weighted else np.ones(len(table))
    y = table["summary"].to_numpy(float)
    treated = table["treated"].to_numpy(float) > 0
    means, inv_w = np.empty(2), np.empty(2)
    resid = np.empty_like(y)
    for a, rows in enumerate((~treated, treated)):
        means[a] = float(np.average(y[rows], weights=w[rows]))
        inv_w[a] = 1.0 / float(np.sum(w[rows]))
        resid[rows] = y[rows] - means[a]
    df = float(result.df_values[0])
    s2 = float(w @ resid**2) / df
    cov = np.diag(s2 * inv_w)
    labels = _arm_labels(table, arm)
    measures, names, c_est, C = contrasts(kind, labels, means, np.eye(2))
    se_c = np.sqrt(np.einsum("ij,jk,ik->i", C, cov, C))
    frame = pd.concat([
        summary_rows(kind, labels, means, np.sqrt(np.diag(cov)), np.full(2, df),
                     _LEVEL_SCALE[kind], level),
        contrast_rows(measures, names, c_est, se_c, np.full(len(names), df), level),
    ], ignore_index=True)
    population = "participant-average" if weighted else "cluster-average"
    return StandardisedResult(
        by=by, levels=labels, type="marginal", kind=kind, estimates=means, cov=cov,
        population=population, conditioning="marginal", level=level, method="delta",
        nodes=0, nobs=result.nobs, n_clusters=result.n_clusters, model=result.model,
        frame=finish_frame(frame, population, "marginal"), warnings=log.records,
    )
