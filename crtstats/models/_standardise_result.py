"""The result of :func:`~crtstats.models.standardise`: risks per arm and their contrasts."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special

from crtstats.models._contrast import t_pvalue, t_quantile
from crtstats.models._details import readonly_array

__all__ = ["MEASURES", "StandardisedResult", "contrast_rows", "contrasts", "finish_frame",
           "summary_rows"]

_COLUMNS = ["quantity", "level", "estimate", "std_error", "df", "conf_low", "conf_high",
            "pvalue", "ci_scale", "population", "measure", "conditioning"]

MEASURES = {
    "risk": [("risk difference", "identity"), ("risk ratio", "log"), ("odds ratio", "log")],
    "rate": [("rate difference", "identity"), ("rate ratio", "log")],
    "mean": [("mean difference", "identity")],
}


@dataclass(frozen=True, kw_only=True)
class StandardisedResult:
    """Standardised risks (rates, means) per level of ``by`` and their contrasts.

    Attributes
    ----------
    by, levels, reference
        The column standardised over, its levels (in order) and the reference level
        (the first) that contrasts compare against.
    type
        ``"marginal"``, ``"conditional"`` or ``"cluster-specific"``.
    kind
        ``"risk"`` (binomial), ``"rate"`` (counts: events per unit of exposure) or
        ``"mean"``.
    estimates
        The standardised risk per level (read-only).
    cov
        Their covariance by the delta method (read-only, K x K).
    population, conditioning
        The estimand: ``"participant-average"`` (rows weighted by their trials or
        exposure) or ``"cluster-average"``, and ``"marginal"`` or ``"conditional"``.
    level
        The confidence level of the intervals.
    method
        ``"delta"`` or ``"bootstrap"`` (parametric, from the estimates' sampling
        distribution).
    nodes
        Gauss-Hermite nodes of the marginal integral (0: closed form or none).
    nobs, n_clusters
        Rows standardised over and their clusters.
    warnings
        Every warning standardisation issued (records with ``.category``).
    """

    by: str
    levels: tuple[str, ...]
    type: str
    kind: str
    estimates: np.ndarray
    cov: np.ndarray
    population: str
    conditioning: str
    level: float
    method: str
    nodes: int
    nobs: int
    n_clusters: int | None
    model: str
    frame: pd.DataFrame = field(repr=False)
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "estimates", readonly_array(self.estimates))
        object.__setattr__(self, "cov", readonly_array(self.cov))
        object.__setattr__(self, "frame", self.frame.copy())
        object.__setattr__(self, "warnings", tuple(self.warnings))

    @property
    def reference(self) -> str:
        """The level every contrast compares against."""
        return self.levels[0]

    @property
    def risks(self) -> pd.Series:
        """The standardised risk (rate, mean) per level."""
        return pd.Series(np.array(self.estimates), index=list(self.levels), name=self.kind)

    def to_frame(self) -> pd.DataFrame:
        """One row per level (``quantity`` = the kind) and per contrast.

        Columns: ``quantity``, ``level``, ``estimate``, ``std_error`` (on the scale of
        the estimate), ``df``, ``conf_low``, ``conf_high``, ``pvalue`` (contrasts only:
        H0 no difference, ratio 1), ``ci_scale`` (the scale the interval and test are
        formed on, then transformed back), and the estimand: ``population``,
        ``measure``, ``conditioning``.
        """
        return self.frame.copy()

    def __repr__(self) -> str:
        shown = ", ".join(f"{lv}: {v:.4g}" for lv, v in zip(self.levels, self.estimates,
                                                             strict=True))
        return (f"StandardisedResult({self.model}, type={self.type!r}, {self.kind} "
                f"{shown}; {self.population}, {self.conditioning})")


def _interval(est: np.ndarray, se: np.ndarray, df: np.ndarray, scale: str, level: float,
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """CI and p on ``scale`` ("identity", "log", "logit") from a response-scale SE."""
    q = t_quantile(level, df)
    with np.errstate(divide="ignore", invalid="ignore"):
        if scale == "log":
            centre, se_t = np.log(est), se / est
            lo, hi = np.exp(centre - q * se_t), np.exp(centre + q * se_t)
        elif scale == "logit":
            centre, se_t = special.logit(est), se / (est * (1.0 - est))
            lo, hi = special.expit(centre - q * se_t), special.expit(centre + q * se_t)
        else:
            centre, se_t = est, se
            lo, hi = est - q * se, est + q * se
        pvalue = t_pvalue(centre / se_t, df)
    return lo, hi, pvalue, se_t


def summary_rows(kind: str, labels: tuple[str, ...], est: np.ndarray, se: np.ndarray,
                 df: np.ndarray, scale: str, level: float) -> pd.DataFrame:
    """The per-level rows (no test: a risk has no null value)."""
    lo, hi, _, _ = _interval(est, se, df, scale, level)
    return pd.DataFrame({"quantity": kind, "level": list(labels), "estimate": est,
                         "std_error": se, "df": df, "conf_low": lo, "conf_high": hi,
                         "pvalue": np.nan, "ci_scale": scale})


def contrast_rows(measures: list[tuple[str, str]], labels: list[str], est: np.ndarray,
                  se: np.ndarray, df: np.ndarray, level: float) -> pd.DataFrame:
    """Contrast rows: ``measures`` gives each row's (measure, CI scale)."""
    scales = np.array([s for _, s in measures])
    lo, hi, p = (np.empty(est.shape[0]) for _ in range(3))
    for scale in set(scales.tolist()):
        k = scales == scale
        lo[k], hi[k], p[k], _ = _interval(est[k], se[k], df[k], scale, level)
    return pd.DataFrame({"quantity": [m for m, _ in measures], "level": labels,
                         "estimate": est, "std_error": se, "df": df, "conf_low": lo,
                         "conf_high": hi, "pvalue": p, "ci_scale": scales})


def finish_frame(rows: pd.DataFrame, population: str, conditioning: str) -> pd.DataFrame:
    """Add the estimand columns (the measure is the quantity) and order the columns."""
    out = rows.reset_index(drop=True)
    out["population"] = population
    out["measure"] = out["quantity"]
    out["conditioning"] = conditioning
    return out[_COLUMNS]


def contrasts(kind: str, labels: tuple[str, ...], r: np.ndarray, J: np.ndarray
               ) -> tuple[list[tuple[str, str]], list[str], np.ndarray, np.ndarray]:
    """Each contrast (measure, scale), its label, estimate and gradient."""
    measures, names, est, grads = [], [], [], []
    for a in range(1, len(labels)):
        label = f"{labels[a]} vs {labels[0]}"
        for measure, scale in MEASURES[kind]:
            if measure.endswith("difference"):
                value, g = r[a] - r[0], J[a] - J[0]
            elif measure == "odds ratio":
                value = (r[a] / (1 - r[a])) / (r[0] / (1 - r[0]))
                g = value * (J[a] / (r[a] * (1 - r[a])) - J[0] / (r[0] * (1 - r[0])))
            else:
                value = r[a] / r[0]
                g = value * (J[a] / r[a] - J[0] / r[0])
            measures.append((measure, scale))
            names.append(label)
            est.append(value)
            grads.append(g)
    return measures, names, np.array(est), np.array(grads)
