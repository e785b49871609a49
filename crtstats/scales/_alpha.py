"""Cronbach's alpha with the Feldt confidence interval and item statistics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from crtstats._options import check_option
from crtstats.exceptions import InvalidParameterError, ModelSpecificationError

__all__ = ["AlphaResult", "cronbach_alpha"]

AlphaMissing = Literal["listwise", "pairwise"]
_MISSING: tuple[AlphaMissing, ...] = ("listwise", "pairwise")


@dataclass(frozen=True)
class AlphaResult:
    """Cronbach's alpha of a set of items, with its Feldt interval and item statistics.

    Attributes
    ----------
    alpha
        Raw (covariance-based) Cronbach's alpha.
    std_alpha
        Standardised alpha, from the item correlations.
    ci_lower, ci_upper
        The Feldt confidence interval for ``alpha`` at ``level``.
    level
        The confidence level of the interval.
    n
        The number of rows behind the estimate (complete rows for ``listwise``; all
        rows for ``pairwise``, as psych counts them for the Feldt interval).
    n_items
        The number of items.
    n_incomplete
        Rows with at least one missing item (left out for ``listwise``).
    average_r
        The mean inter-item correlation.
    missing
        How missing items were handled: ``"listwise"`` or ``"pairwise"``.
    items
        The item names, in column order.
    item_n, item_mean, item_sd
        Per item: values used, mean and standard deviation (n - 1 denominator).
    r_drop
        Corrected item-total correlation: the item against the sum of the others.
    alpha_if_deleted, std_alpha_if_deleted
        Raw and standardised alpha of the other items (NaN with only two items).
    """

    alpha: float
    std_alpha: float
    ci_lower: float
    ci_upper: float
    level: float
    n: int
    n_items: int
    n_incomplete: int
    average_r: float
    missing: str
    items: tuple[str, ...]
    item_n: tuple[int, ...]
    item_mean: tuple[float, ...]
    item_sd: tuple[float, ...]
    r_drop: tuple[float, ...]
    alpha_if_deleted: tuple[float, ...]
    std_alpha_if_deleted: tuple[float, ...]

    def to_frame(self) -> pd.DataFrame:
        """One row: ``alpha, std_alpha, ci_lower, ci_upper, level, n, n_items,
        n_incomplete, average_r, missing``."""
        names = ("alpha", "std_alpha", "ci_lower", "ci_upper", "level", "n", "n_items",
                 "n_incomplete", "average_r", "missing")
        return pd.DataFrame([{name: getattr(self, name) for name in names}])

    @property
    def item_stats(self) -> pd.DataFrame:
        """One row per item: ``item, n, mean, sd, r_drop, alpha_if_deleted,
        std_alpha_if_deleted``."""
        return pd.DataFrame({
            "item": list(self.items), "n": list(self.item_n), "mean": list(self.item_mean),
            "sd": list(self.item_sd), "r_drop": list(self.r_drop),
            "alpha_if_deleted": list(self.alpha_if_deleted),
            "std_alpha_if_deleted": list(self.std_alpha_if_deleted),
        })


def _alphas(cov: np.ndarray) -> tuple[float, float]:
    """Raw and standardised alpha of a covariance matrix."""
    k = cov.shape[0]
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    raw = k / (k - 1) * (1.0 - np.trace(cov) / cov.sum())
    std = k / (k - 1) * (1.0 - k / corr.sum())
    return float(raw), float(std)


def _numeric_items(items: pd.DataFrame) -> np.ndarray:
    if not isinstance(items, pd.DataFrame):
        raise InvalidParameterError(
            f"items must be a pandas DataFrame; got {type(items).__name__}."
        )
    bad = [str(c) for c in items.columns if pd.api.types.is_bool_dtype(items[c].dtype)
           or not pd.api.types.is_numeric_dtype(items[c].dtype)]
    if bad:
        raise InvalidParameterError(
            f"items must all be numeric; column(s) {bad} are not. Select the item "
            "columns only, e.g. fidelity[key.columns]."
        )
    if items.shape[1] < 2:
        raise InvalidParameterError(
            f"alpha needs at least 2 items; got {items.shape[1]} column(s)."
        )
    return items.to_numpy(dtype=float, na_value=np.nan)


def _covariance(x: np.ndarray, names: list[str], missing: str) -> np.ndarray:
    if missing == "listwise":
        x = x[~np.isnan(x).any(axis=1)]
    frame = pd.DataFrame(x)
    counts = (~np.isnan(x)).astype(float)
    if (counts.T @ counts).min() < 3:
        raise ModelSpecificationError(
            f"alpha needs at least 3 rows with both items scored for every pair of items "
            f"({missing} handling of missing items); some pair has fewer."
        )
    cov = frame.cov().to_numpy()
    constant = [names[j] for j in np.flatnonzero(np.diag(cov) <= 0)]
    if constant:
        raise ModelSpecificationError(
            f"item(s) {constant} have no variance, so alpha's item correlations are "
            "undefined; leave them out (psych::alpha drops them with a warning)."
        )
    return cov


def cronbach_alpha(
    items: pd.DataFrame,
    *,
    missing: AlphaMissing = "listwise",
    level: float = 0.95,
) -> AlphaResult:
    """Cronbach's alpha with the Feldt confidence interval and item statistics.

    Parameters
    ----------
    items
        One numeric column per item and one row per rated unit (e.g. the item
        columns of a fidelity table); NaN is a missing item.
    missing
        ``"listwise"`` (default) uses the rows with every item scored and reports how
        many were left out in ``n_incomplete``; ``"pairwise"`` uses each pair's
        complete rows for its covariance, as ``psych::alpha`` does by default.
    level
        Confidence level of the Feldt interval, between 0 and 1.

    Returns
    -------
    AlphaResult
        Alpha, standardised alpha, Feldt interval, counts and item statistics.

    Raises
    ------
    InvalidParameterError
        If ``items`` is not a DataFrame of at least two numeric columns, or an option
        is invalid.
    ModelSpecificationError
        If an item has no variance or a pair of items has fewer than 3 rows.

    Notes
    -----
    With ``k`` items, item covariance matrix ``C`` and correlation matrix ``R``:

    ``alpha = k / (k - 1) * (1 - tr(C) / sum(C))``, ``std_alpha = k / (k - 1) *
    (1 - k / sum(R))``. Feldt's interval with ``n`` rows is ``1 - (1 - alpha) *
    F_{1 - a/2}`` to ``1 - (1 - alpha) * F_{a/2}``, ``F`` with ``n - 1`` and
    ``(n - 1)(k - 1)`` degrees of freedom and ``a = 1 - level``. The corrected
    item-total correlation of item ``i`` is ``(sum_j C_ij - C_ii) / sqrt(C_ii *
    sum(C_-i,-i))``. With ``pairwise`` missing data ``n`` is the number of rows, as
    in psych, and the interval is approximate.

    References
    ----------
    Cronbach LJ (1951). Coefficient alpha and the internal structure of tests.
    Psychometrika 16:297-334.
    Feldt LS, Woodruff DJ, Salih FA (1987). Statistical inference for coefficient
    alpha. Applied Psychological Measurement 11:93-103.

    Examples
    --------
    >>> import crtstats
    >>> fidelity = crtstats.datasets.load_example().fidelity
    >>> key = crtstats.scales.load_scale("core_crt_v2")
    >>> result = crtstats.cronbach_alpha(fidelity[list(key.columns)])
    >>> result.n + result.n_incomplete == len(fidelity)
    True
    >>> result.ci_lower < result.alpha < result.ci_upper
    True

    The R equivalent is ``psych::alpha(na.omit(items))`` (``psych::alpha(items)`` for
    ``missing="pairwise"``); its ``feldt`` element holds the interval.
    """
    check_option("missing", missing, _MISSING)
    if not isinstance(level, float | int) or not 0.0 < level < 1.0:
        raise InvalidParameterError(f"level must be between 0 and 1; got {level!r}.")
    x = _numeric_items(items)
    names = [str(c) for c in items.columns]
    incomplete = np.isnan(x).any(axis=1)
    cov = _covariance(x, names, missing)
    used = x[~incomplete] if missing == "listwise" else x
    n, k = used.shape[0], len(names)
    alpha, std_alpha = _alphas(cov)
    df1, df2 = n - 1, (n - 1) * (k - 1)
    tail = (1.0 - level) / 2.0
    lower = 1.0 - (1.0 - alpha) * stats.f.ppf(1.0 - tail, df1, df2)
    upper = 1.0 - (1.0 - alpha) * stats.f.ppf(tail, df1, df2)
    corr_sum = (cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))).sum()
    dropped = [_alphas(np.delete(np.delete(cov, i, 0), i, 1)) if k > 2 else (np.nan, np.nan)
               for i in range(k)]
    rest = np.array([np.delete(np.delete(cov, i, 0), i, 1).sum() for i in range(k)])
    r_drop = (cov.sum(axis=0) - np.diag(cov)) / np.sqrt(np.diag(cov) * rest)
    return AlphaResult(
        alpha=alpha, std_alpha=std_alpha, ci_lower=float(lower), ci_upper=float(upper),
        level=float(level), n=int(n), n_items=k, n_incomplete=int(incomplete.sum()),
        average_r=float((corr_sum - k) / (k * (k - 1))), missing=missing,
        items=tuple(names),
        item_n=tuple(int(v) for v in (~np.isnan(used)).sum(axis=0)),
        item_mean=tuple(float(v) for v in np.nanmean(used, axis=0)),
        item_sd=tuple(float(v) for v in np.nanstd(used, axis=0, ddof=1)),
        r_drop=tuple(float(v) for v in r_drop),
        alpha_if_deleted=tuple(a for a, _ in dropped),
        std_alpha_if_deleted=tuple(s for _, s in dropped),
    )
