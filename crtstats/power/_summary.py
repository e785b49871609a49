"""From per-trial results to power, type I error, mean estimate and coverage.

Every quantity is a proportion (or mean) over the simulated trials whose analysis gave a
p-value, with its Monte Carlo standard error ``sqrt(p (1 - p) / n)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from crtstats.analysis import RATIO_SCALES
from crtstats.runner import Plan, TrialDesign

__all__ = ["KEY", "SUMMARY_COLUMNS", "summarise", "true_effect"]

#: Columns that identify one reported effect of one analysis.
KEY = ("entry", "outcome", "analysis", "role", "estimand", "scale")
#: Columns of the summary table, in order.
SUMMARY_COLUMNS = (*KEY, "factor", "true_effect", "power", "power_mcse", "type1_error",
                   "type1_mcse", "mean_estimate", "coverage", "coverage_mcse", "n_sims",
                   "n_failed", "n_warned")
_GLMM_ANALYSES = ("GLMM",)


def _null_value(scale: str) -> float:
    return 1.0 if scale in RATIO_SCALES else 0.0


def true_effect(plan: Plan, design: TrialDesign, factor: float,
                ) -> Callable[[pd.Series], float]:
    """The true value of a reported effect in the scenario ``factor`` (NaN: not known).

    Known: every effect under the null (0 for differences, 1 for ratios); the arm
    differences of fidelity totals at 6 and 12 months (mean differences, also the
    difference in change from baseline; the review is read from the estimand, or from
    the entry's ``where.review``); the cluster-specific odds ratio of a GLMM of
    ``admitted`` or ``readmitted``. Other estimands (marginal odds ratios, risk and rate
    ratios) depend on the whole design and are left unknown.
    """
    scaled = design.scaled(factor)
    fitters = {a.name: a.fitter for a in plan.analyses}
    reviews = {a.name: a.where.get("review") for a in plan.analyses}

    def value(row: pd.Series) -> float:
        scale, outcome, estimand = str(row["scale"]), str(row["outcome"]), str(row["estimand"])
        if factor == 0:
            return _null_value(scale)
        fid = scaled.fidelity
        if fid is not None and scale == "difference" and outcome in ("total", "fidelity total"):
            chosen = reviews.get(str(row["entry"]))
            for review in ("12m", "6m"):
                if review in estimand or chosen == review:
                    return float(fid.effect[review])
        glmm = fitters.get(str(row["entry"])) == "glmm" or str(row["analysis"]).startswith(
            _GLMM_ANALYSES)
        if scale == "odds ratio" and glmm and outcome in ("admitted", "readmitted"):
            binary = getattr(scaled, outcome)
            if binary is not None:
                return float(binary.odds_ratio)
        return math.nan

    return value


def _proportion(hits: np.ndarray) -> tuple[float, float]:
    n = hits.size
    if n == 0:
        return math.nan, math.nan
    p = float(hits.mean())
    return p, math.sqrt(p * (1.0 - p) / n)


def _mean_estimate(est: np.ndarray, scale: str) -> float:
    if est.size == 0:
        return math.nan
    if scale in RATIO_SCALES:  # geometric mean: the mean on the analysis (log) scale
        return float(np.exp(np.mean(np.log(est))))
    return float(np.mean(est))


def _one(group: pd.DataFrame, truth: float, alpha: float) -> dict[str, float]:
    ok = group[group["pvalue"].notna() & (group["error"] == "")]
    reject = (ok["pvalue"].to_numpy(dtype=float) < alpha)
    power, power_se = _proportion(reject)
    out = {"true_effect": truth, "power": power, "power_mcse": power_se,
           "mean_estimate": _mean_estimate(ok["estimate"].to_numpy(dtype=float),
                                           str(group["scale"].iloc[0])),
           "n_sims": float(len(ok)), "n_failed": float(len(group) - len(ok)),
           "n_warned": float((ok["n_warnings"].to_numpy(dtype=float) > 0).sum())}
    lo, hi = ok["conf_low"].to_numpy(dtype=float), ok["conf_high"].to_numpy(dtype=float)
    has_ci = np.isfinite(lo) & np.isfinite(hi)
    if math.isfinite(truth) and has_ci.any():
        covered = (lo[has_ci] <= truth) & (truth <= hi[has_ci])
        out["coverage"], out["coverage_mcse"] = _proportion(covered)
    else:
        out["coverage"] = out["coverage_mcse"] = math.nan
    return out


def summarise(trials: pd.DataFrame, plan: Plan, design: TrialDesign, *,
              alpha: float) -> pd.DataFrame:
    """One row per reported effect and non-null scenario: power and the null's type I error.

    Parameters
    ----------
    trials
        Per-trial results (:data:`crtstats.power._engine.RESULT_COLUMNS`), scenario 0
        (the null) included.
    plan, design
        The plan whose analyses were fitted and the design simulated.
    alpha
        The significance level.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SUMMARY_COLUMNS`: for each effect and scale factor, its power
        with Monte Carlo SE, the type I error (from the null trials) with its SE, the
        mean estimate (geometric for ratios), coverage of the true effect (NaN where not
        known), trials with a result, failed trials and trials whose fit warned.
    """
    fitted = trials[trials["error"] == ""]
    failed = trials[trials["error"] != ""]
    rows: list[dict[str, object]] = []
    nulls: dict[tuple[object, ...], dict[str, float]] = {}
    for factor in sorted(trials["factor"].unique()):
        value = true_effect(plan, design, float(factor))
        at = fitted[fitted["factor"] == factor]
        n_failed = failed[failed["factor"] == factor].groupby("entry").size()
        for key, group in at.groupby(list(KEY), sort=False, dropna=False):
            stats = _one(group, value(group.iloc[0]), alpha)
            stats["n_failed"] += float(n_failed.get(key[0], 0))
            if factor == 0:
                nulls[key] = stats
            rows.append({**dict(zip(KEY, key, strict=True)), "factor": float(factor),
                         **stats})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    keys = [tuple(r) for r in frame[list(KEY)].itertuples(index=False)]
    frame["type1_error"] = [nulls.get(k, {}).get("power", math.nan) for k in keys]
    frame["type1_mcse"] = [nulls.get(k, {}).get("power_mcse", math.nan) for k in keys]
    return frame.reindex(columns=list(SUMMARY_COLUMNS)).reset_index(drop=True)
