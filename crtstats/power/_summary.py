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
from crtstats.models import marginal_logit
from crtstats.runner import NULL_READMISSION, BinaryDesign, Plan, TrialDesign

__all__ = ["KEY", "SUMMARY_COLUMNS", "marginal_risks", "summarise", "true_effect", "truth"]

#: Columns that identify one reported effect of one analysis.
KEY = ("entry", "outcome", "analysis", "role", "estimand", "scale")
#: Columns of the summary table, in order.
SUMMARY_COLUMNS = (*KEY, "factor", "true_effect", "truth", "power", "power_mcse",
                   "type1_error", "type1_mcse", "mean_estimate", "coverage", "coverage_mcse",
                   "coverage_note", "n_sims", "n_failed", "n_warned")
_GLMM_ANALYSES = ("GLMM",)
_BINARY = ("admitted", "readmitted")
_FIDELITY = ("total", "fidelity total")
#: Why a row has no coverage although its true value is known.
NO_INTERVAL = "not applicable: the analysis gives a p-value and no interval"
UNKNOWN = ("not applicable: the true value of this estimand is not computed for the design "
           "(only fidelity mean differences and the admission and readmission odds ratios, "
           "risk ratios and risk differences are)")
NULL = "the null: no effect"


def _null_value(scale: str) -> float:
    return 1.0 if scale in RATIO_SCALES else 0.0


def marginal_risks(binary: BinaryDesign) -> tuple[float, float]:
    """Follow-up risks of control and intervention teams averaged over the team effects.

    ``P_a = int expit(logit(risk) + a log(OR) + tau z) phi(z) dz`` with ``tau^2`` the
    design's team variance, by adaptive Gauss-Hermite quadrature (exact to well below
    1e-10, :func:`crtstats.models.marginal_logit`). Cluster sizes, attrition and strata
    do not change a user's risk in the simulation, so this is both the participant-
    average and the cluster-average risk: the marginal risk difference, risk ratio and
    odds ratio of the design are ``P_1 - P_0``, ``P_1 / P_0`` and
    ``P_1 (1 - P_0) / (P_0 (1 - P_1))``.
    """
    base = math.log(binary.risk / (1.0 - binary.risk))
    eta = np.array([base, base + math.log(binary.odds_ratio)])
    p0, p1 = marginal_logit(eta, math.sqrt(binary.team_variance)).value
    return float(p0), float(p1)


def _binary_truth(binary: BinaryDesign, scale: str, conditional: bool) -> tuple[float, str]:
    if scale == "odds ratio" and conditional:
        return float(binary.odds_ratio), "the design's cluster-specific odds ratio"
    p0, p1 = marginal_risks(binary)
    how = "marginal over the team effects (Gauss-Hermite): {}"
    if scale == "risk difference":
        return p1 - p0, how.format("P1 - P0")
    if scale == "risk ratio":
        return p1 / p0, how.format("P1 / P0")
    if scale == "odds ratio":
        return p1 * (1.0 - p0) / (p0 * (1.0 - p1)), how.format("odds of P1 over odds of P0")
    return math.nan, UNKNOWN


def truth(plan: Plan, design: TrialDesign, factor: float,
          ) -> Callable[[pd.Series], tuple[float, str]]:
    """The true value of a reported effect in the scenario ``factor``, and how it is known.

    Known: every effect under the null (0 for differences, 1 for ratios); the arm
    differences of fidelity totals at 6 and 12 months (mean differences, also the
    difference in change from baseline; the review is read from the estimand, or from
    the entry's ``where.review``); for ``admitted`` and ``readmitted``, the
    cluster-specific odds ratio of a GLMM, and the marginal risk difference, risk
    ratio and odds ratio (GEE, cluster-level analyses, standardised estimates, the
    randomisation test's mean difference) from :func:`marginal_risks`. Other rows
    (rates of bed days, for example) give NaN with the reason (:data:`UNKNOWN`).
    """
    scaled = design.scaled(factor)
    fitters = {a.name: a.fitter for a in plan.analyses}
    reviews = {a.name: a.where.get("review") for a in plan.analyses}

    def value(row: pd.Series) -> tuple[float, str]:
        scale, outcome, estimand = str(row["scale"]), str(row["outcome"]), str(row["estimand"])
        if factor == 0:
            return _null_value(scale), NULL
        fid = scaled.fidelity
        if fid is not None and scale == "difference" and outcome in _FIDELITY:
            chosen = reviews.get(str(row["entry"]))
            for review in ("12m", "6m"):
                if review in estimand or chosen == review:
                    return float(fid.effect[review]), "the design's mean difference"
        analysis = str(row["analysis"])
        if outcome in _BINARY:
            binary = getattr(scaled, outcome)
            if binary is None:
                binary = NULL_READMISSION
            glmm = (fitters.get(str(row["entry"])) == "glmm"
                    or analysis.startswith(_GLMM_ANALYSES))
            return _binary_truth(binary, scale, glmm and "standardised" not in analysis)
        return math.nan, UNKNOWN

    return value


def true_effect(plan: Plan, design: TrialDesign, factor: float,
                ) -> Callable[[pd.Series], float]:
    """The value of :func:`truth` alone (NaN: not known)."""
    known = truth(plan, design, factor)
    return lambda row: known(row)[0]


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


def _one(group: pd.DataFrame, truth: float, alpha: float, failed: float
         ) -> dict[str, object]:
    ok = group[group["pvalue"].notna() & (group["error"] == "")]
    reject = (ok["pvalue"].to_numpy(dtype=float) < alpha)
    power, power_se = _proportion(reject)
    out: dict[str, object] = {"true_effect": truth, "power": power, "power_mcse": power_se,
           "mean_estimate": _mean_estimate(ok["estimate"].to_numpy(dtype=float),
                                           str(group["scale"].iloc[0])),
           "n_sims": float(len(ok)), "n_failed": float(len(group) - len(ok)) + failed,
           "n_warned": float((ok["n_warnings"].to_numpy(dtype=float) > 0).sum())}
    lo, hi = ok["conf_low"].to_numpy(dtype=float), ok["conf_high"].to_numpy(dtype=float)
    has_ci = np.isfinite(lo) & np.isfinite(hi)
    out["coverage_note"] = ""
    if math.isfinite(truth) and has_ci.any():
        covered = (lo[has_ci] <= truth) & (truth <= hi[has_ci])
        out["coverage"], out["coverage_mcse"] = _proportion(covered)
    else:
        out["coverage"] = out["coverage_mcse"] = math.nan
        out["coverage_note"] = NO_INTERVAL if math.isfinite(truth) else (
            "not applicable: no true value")
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
        mean estimate (geometric for ratios), the true effect and how it is known
        (``truth``: see :func:`truth`; NaN with the reason where it is not), coverage of
        the true effect by the interval (NaN with the reason in ``coverage_note`` where
        there is no true value or no interval), trials with a result, failed trials and
        trials whose fit warned.
    """
    fitted = trials[trials["error"] == ""]
    failed = trials[trials["error"] != ""]
    rows: list[dict[str, object]] = []
    nulls: dict[tuple[object, ...], dict[str, object]] = {}
    for factor in sorted(trials["factor"].unique()):
        value = truth(plan, design, float(factor))
        at = fitted[fitted["factor"] == factor]
        n_failed = failed[failed["factor"] == factor].groupby("entry").size()
        for key, group in at.groupby(list(KEY), sort=False, dropna=False):
            true_value, how = value(group.iloc[0])
            stats = _one(group, true_value, alpha, float(n_failed.get(key[0], 0)))
            stats["truth"] = how
            if factor == 0:
                nulls[key] = stats
            rows.append({**dict(zip(KEY, key, strict=True)), "factor": float(factor),
                         **stats})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    keys = [tuple(r) for r in frame[list(KEY)].itertuples(index=False)]
    frame["type1_error"] = [float(nulls.get(k, {}).get("power", math.nan))  # type: ignore[arg-type]
                            for k in keys]
    frame["type1_mcse"] = [float(nulls.get(k, {}).get("power_mcse", math.nan))  # type: ignore[arg-type]
                           for k in keys]
    return frame.reindex(columns=list(SUMMARY_COLUMNS)).reset_index(drop=True)
