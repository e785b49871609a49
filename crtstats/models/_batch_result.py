"""The result of a batched fit: one contrast's inference for each outcome column."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crtstats.exceptions import ModelSpecificationError
from crtstats.models._contrast import check_level as _check_level
from crtstats.models._contrast import t_pvalue as _t_pvalue
from crtstats.models._contrast import t_quantile as _t_quantile

__all__ = ["BatchedFit", "check_level", "contrast_vector", "make_fit"]

check_level = _check_level


@dataclass(frozen=True, eq=False)
class BatchedFit:
    """One contrast estimated on each of ``n_sims`` outcome columns.

    Every attribute is a read-only array of length ``n_sims``; column ``j`` holds what
    the standard fitter and ``.contrast()`` give on that column's data. A column whose
    data the standard fitter would refuse (for example a masked trial in which an arm
    has lost all its clusters) holds NaN with ``converged`` False.

    Attributes
    ----------
    estimate, std_error, df, pvalue, conf_low, conf_high
        The contrast's estimate, standard error, denominator df, two-sided p-value and
        confidence interval at ``level``.
    converged
        Whether the fit converged (False also for a refused column).
    boundary
        Whether the cluster variance was estimated as zero (boundary fit).
    level
        Confidence level of ``conf_low`` and ``conf_high``.
    """

    estimate: np.ndarray
    std_error: np.ndarray
    df: np.ndarray
    pvalue: np.ndarray
    conf_low: np.ndarray
    conf_high: np.ndarray
    converged: np.ndarray
    boundary: np.ndarray
    level: float

    @property
    def n_sims(self) -> int:
        """Number of outcome columns fitted."""
        return int(self.estimate.shape[0])

    def to_frame(self) -> pd.DataFrame:
        """One row per outcome column."""
        return pd.DataFrame({
            "estimate": self.estimate, "std_error": self.std_error, "df": self.df,
            "pvalue": self.pvalue, "conf_low": self.conf_low,
            "conf_high": self.conf_high, "converged": self.converged,
            "boundary": self.boundary,
        })


def _frozen(values: np.ndarray, dtype: type) -> np.ndarray:
    out: np.ndarray = np.array(values, dtype=dtype)
    out.setflags(write=False)
    return out


def make_fit(
    estimate: np.ndarray, std_error: np.ndarray, df: np.ndarray, converged: np.ndarray,
    boundary: np.ndarray, level: float,
) -> BatchedFit:
    """Add the p-values and confidence intervals (t on ``df``; normal where infinite),
    exactly as :class:`~crtstats.models.ContrastResult` computes them."""
    tstat = np.asarray(estimate, dtype=float) / np.asarray(std_error, dtype=float)
    with np.errstate(invalid="ignore"):
        pvalue = _t_pvalue(tstat, df)
        q = _t_quantile(level, np.asarray(df, dtype=float))
    return BatchedFit(
        estimate=_frozen(estimate, float), std_error=_frozen(std_error, float),
        df=_frozen(df, float), pvalue=_frozen(pvalue, float),
        conf_low=_frozen(estimate - q * std_error, float),
        conf_high=_frozen(estimate + q * std_error, float),
        converged=_frozen(converged, bool), boundary=_frozen(boundary, bool),
        level=float(level),
    )


def contrast_vector(
    contrast: Mapping[str, float] | Sequence[float], names: Sequence[str]
) -> np.ndarray:
    """The contrast as one weight per coefficient (terms left out of a mapping weigh 0)."""
    if isinstance(contrast, Mapping):
        unknown = [k for k in contrast if k not in names]
        if unknown:
            raise ModelSpecificationError(
                f"contrast names unknown term(s) {unknown}; the model's terms are "
                f"{list(names)}."
            )
        vec = np.array([float(contrast.get(n, 0.0)) for n in names])
    else:
        vec = np.asarray(contrast, dtype=float)
        if vec.shape != (len(names),):
            raise ModelSpecificationError(
                f"contrast weights must have one value per coefficient ({len(names)}); "
                f"got shape {vec.shape}."
            )
    if not np.any(vec):
        raise ModelSpecificationError("contrast weights are all zero.")
    return vec
