"""A single contrast's small-sample inference, and the t helpers every result uses.

Kept apart from :mod:`crtstats.models._result` so that batched and standardised results
share the same p-value, quantile and level checks without importing the full result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from crtstats.exceptions import InvalidParameterError

__all__ = ["ContrastDf", "ContrastResult", "check_level", "t_pvalue", "t_quantile"]

ContrastDf = Callable[[np.ndarray], float]
"""Given a contrast vector ``L`` (length p), return its denominator df."""


def check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise InvalidParameterError(f"level must be strictly between 0 and 1; got {level!r}.")


def t_pvalue(tstat: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Two-sided p-value of t with ``df`` degrees of freedom (normal where df is inf)."""
    tstat = np.asarray(tstat, dtype=float)
    df = np.broadcast_to(np.asarray(df, dtype=float), tstat.shape)
    out = np.where(np.isinf(df), 2.0 * stats.norm.sf(np.abs(tstat)), np.nan)
    finite = np.isfinite(df)
    out[finite] = 2.0 * stats.t.sf(np.abs(tstat[finite]), df[finite])
    return out


def t_quantile(level: float, df: np.ndarray) -> np.ndarray:
    df = np.asarray(df, dtype=float)
    q = 0.5 + level / 2.0
    finite_df = np.where(np.isinf(df), 1.0, df)
    out: np.ndarray = np.where(np.isinf(df), stats.norm.ppf(q), stats.t.ppf(q, finite_df))
    return out


@dataclass(frozen=True, kw_only=True)
class ContrastResult:
    """A single linear combination ``L @ params`` with its small-sample inference."""

    name: str
    weights: Mapping[str, float]
    estimate: float
    std_error: float
    df: float
    df_method: str

    @property
    def tstat(self) -> float:
        """Estimate divided by its standard error."""
        return self.estimate / self.std_error

    @property
    def pvalue(self) -> float:
        """Two-sided p-value (t with ``df``; normal when ``df`` is infinite)."""
        return float(t_pvalue(np.array([self.tstat]), np.array([self.df]))[0])

    def conf_int(self, level: float = 0.95) -> tuple[float, float]:
        """Confidence interval at ``level``."""
        check_level(level)
        q = float(t_quantile(level, np.array([self.df]))[0])
        return (self.estimate - q * self.std_error, self.estimate + q * self.std_error)

    def to_frame(self, level: float = 0.95) -> pd.DataFrame:
        """One-row tidy frame in the column layout of :meth:`CRTResult.to_frame`."""
        low, high = self.conf_int(level)
        return pd.DataFrame(
            {
                "term": [self.name],
                "estimate": [self.estimate],
                "std_error": [self.std_error],
                "df": [self.df],
                "statistic": [self.tstat],
                "pvalue": [self.pvalue],
                "conf_low": [low],
                "conf_high": [high],
            }
        )


