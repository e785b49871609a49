"""Inter-rater reliability: the six intraclass correlations of Shrout and Fleiss (1979)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from crtstats._options import check_option, require_columns
from crtstats.exceptions import InvalidParameterError, ModelSpecificationError

__all__ = ["IccForm", "IccResult", "rater_icc"]

IccMissing = Literal["error", "drop_targets"]
_MISSING: tuple[IccMissing, ...] = ("error", "drop_targets")
_FORMS = ("ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k")
_DESCRIPTIONS = (
    "single rater, absolute agreement, one-way random",
    "single rater, absolute agreement, two-way random",
    "single rater, consistency, two-way mixed",
    "mean of k raters, one-way random",
    "mean of k raters, absolute agreement, two-way random",
    "mean of k raters, consistency, two-way mixed",
)


@dataclass(frozen=True)
class IccForm:
    """One Shrout-Fleiss form: estimate, F test of ICC = 0 and confidence interval."""

    type: str
    description: str
    icc: float
    f: float
    df1: float
    df2: float
    pvalue: float
    ci_lower: float
    ci_upper: float


@dataclass(frozen=True)
class IccResult:
    """The six Shrout-Fleiss ICCs of a targets x raters layout.

    Attributes
    ----------
    forms
        ``ICC1, ICC2, ICC3, ICC1k, ICC2k, ICC3k`` in that order.
    n_targets, n_raters
        The size of the (complete) layout analysed.
    ms_between, ms_within, ms_raters, ms_error
        Mean squares: between targets, within targets, between raters, residual.
    level
        The confidence level of the intervals.
    dropped_targets
        Targets left out because a rating was missing (``missing="drop_targets"``).
    """

    forms: tuple[IccForm, ...]
    n_targets: int
    n_raters: int
    ms_between: float
    ms_within: float
    ms_raters: float
    ms_error: float
    level: float
    dropped_targets: tuple[str, ...]

    def __getitem__(self, name: str) -> IccForm:
        """The form called ``name`` (e.g. ``result["ICC2"]``)."""
        for form in self.forms:
            if form.type == name:
                return form
        raise KeyError(f"{name!r} is not an ICC form; use one of {list(_FORMS)}.")

    def to_frame(self) -> pd.DataFrame:
        """One row per form: ``type, description, icc, f, df1, df2, pvalue, ci_lower,
        ci_upper``."""
        return pd.DataFrame([vars(form) for form in self.forms])


def _layout(data: pd.DataFrame, target: str, rater: str, rating: str,
            missing: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """The targets x raters matrix of ratings, and the targets dropped as incomplete."""
    if not isinstance(data, pd.DataFrame):
        raise InvalidParameterError(f"data must be a pandas DataFrame; got {type(data).__name__}.")
    require_columns(data, (target, rater, rating), used_by="rater_icc")
    if not pd.api.types.is_numeric_dtype(data[rating].dtype) or \
            pd.api.types.is_bool_dtype(data[rating].dtype):
        raise InvalidParameterError(f"rating column {rating!r} must be numeric; "
                                    f"got dtype {data[rating].dtype}.")
    if data[[target, rater]].isna().any().any():
        raise InvalidParameterError(f"{target!r} and {rater!r} must have no missing values.")
    pairs = data[[target, rater]]
    repeated = pairs[pairs.duplicated()]
    if len(repeated):
        shown = [tuple(map(str, r)) for r in repeated.to_numpy()[:5]]
        raise InvalidParameterError(
            f"{len(repeated)} target and rater pair(s) are rated more than once, e.g. "
            f"{shown}; give one rating per target and rater."
        )
    wide = data.pivot(index=target, columns=rater, values=rating)
    wide = wide.reindex(index=pd.unique(data[target]), columns=pd.unique(data[rater]))
    incomplete = wide.isna().any(axis=1).to_numpy()
    names = tuple(str(t) for t in wide.index[incomplete])
    if names and missing == "error":
        raise ModelSpecificationError(
            f"{len(names)} target(s) lack a rating from some rater, e.g. {list(names[:5])}; "
            "the Shrout-Fleiss ICCs need every target rated by every rater. Pass "
            "missing='drop_targets' to analyse the complete targets only."
        )
    matrix = wide.to_numpy(dtype=float, na_value=np.nan)[~incomplete]
    if matrix.shape[0] < 2 or matrix.shape[1] < 2:
        raise ModelSpecificationError(
            f"ICCs need at least 2 fully rated targets and 2 raters; got "
            f"{matrix.shape[0]} target(s) and {matrix.shape[1]} rater(s)."
        )
    return matrix, names


def _mean_squares(y: np.ndarray) -> tuple[float, float, float, float]:
    """MSB (targets), MSW (within targets), MSJ (raters), MSE (residual)."""
    n, k = y.shape
    grand = y.mean()
    ss_total = float(((y - grand) ** 2).sum())
    if ss_total == 0.0:
        raise ModelSpecificationError("all ratings are equal; the ICCs are undefined.")
    ss_between = k * float(((y.mean(axis=1) - grand) ** 2).sum())
    ss_raters = n * float(((y.mean(axis=0) - grand) ** 2).sum())
    ss_error = ss_total - ss_between - ss_raters
    return (ss_between / (n - 1), (ss_total - ss_between) / (n * (k - 1)),
            ss_raters / (k - 1), ss_error / ((n - 1) * (k - 1)))


def _forms(y: np.ndarray, level: float) -> list[IccForm]:
    n, k = y.shape
    msb, msw, msj, mse = _mean_squares(y)
    q = 1.0 - (1.0 - level) / 2.0
    icc1 = (msb - msw) / (msb + (k - 1) * msw)
    icc2 = (msb - mse) / (msb + (k - 1) * mse + k * (msj - mse) / n)
    icc3 = (msb - mse) / (msb + (k - 1) * mse)
    icc2k = (msb - mse) / (msb + (msj - mse) / n)
    df1, dfw, dfe = n - 1, n * (k - 1), (n - 1) * (k - 1)
    f1, f3 = msb / msw, msb / mse
    f1l, f1u = f1 / stats.f.ppf(q, df1, dfw), f1 * stats.f.ppf(q, dfw, df1)
    f3l, f3u = f3 / stats.f.ppf(q, df1, dfe), f3 * stats.f.ppf(q, dfe, df1)
    # ICC2: Satterthwaite df for the rater-and-error mean square (McGraw and Wong 1996)
    fj = msj / mse
    a = k * icc2 * fj + n * (1 + (k - 1) * icc2) - k * icc2
    v = (k - 1) * (n - 1) * a**2 / ((n - 1) * k**2 * icc2**2 * fj**2
                                     + (n * (1 + (k - 1) * icc2) - k * icc2) ** 2)
    fu, fl = stats.f.ppf(q, n - 1, v), stats.f.ppf(q, v, n - 1)
    c = k * msj + (k * n - k - n) * mse
    l2 = n * (msb - fu * mse) / (fu * c + n * msb)
    u2 = n * (fl * msb - mse) / (c + n * fl * msb)
    p1, p3 = stats.f.sf(f1, df1, dfw), stats.f.sf(f3, df1, dfe)
    rows = (
        (icc1, f1, df1, dfw, p1, (f1l - 1) / (f1l + k - 1), (f1u - 1) / (f1u + k - 1)),
        (icc2, f3, df1, dfe, p3, l2, u2),
        (icc3, f3, df1, dfe, p3, (f3l - 1) / (f3l + k - 1), (f3u - 1) / (f3u + k - 1)),
        ((msb - msw) / msb, f1, df1, dfw, p1, 1 - 1 / f1l, 1 - 1 / f1u),
        (icc2k, f3, df1, dfe, p3, l2 * k / (1 + l2 * (k - 1)), u2 * k / (1 + u2 * (k - 1))),
        ((msb - mse) / msb, f3, df1, dfe, p3, 1 - 1 / f3l, 1 - 1 / f3u),
    )
    return [IccForm(name, text, *(float(v) for v in row))
            for name, text, row in zip(_FORMS, _DESCRIPTIONS, rows, strict=True)]


def rater_icc(
    data: pd.DataFrame,
    *,
    target: str,
    rater: str,
    rating: str,
    missing: IccMissing = "error",
    level: float = 0.95,
) -> IccResult:
    """The six Shrout-Fleiss intraclass correlations, with F tests and intervals.

    For reviews (targets) each scored independently by the same raters.

    Parameters
    ----------
    data
        Long format: one row per target and rater.
    target, rater, rating
        The columns naming the target, the rater and holding the (numeric) rating.
    missing
        ``"error"`` (default) refuses a target without a rating from every rater;
        ``"drop_targets"`` leaves such targets out and lists them in
        ``dropped_targets`` (as ``psych::ICC`` does with ``na.omit``).
    level
        Confidence level of the intervals, between 0 and 1.

    Returns
    -------
    IccResult
        The six forms, the mean squares and the layout's size.

    Raises
    ------
    InvalidParameterError
        If a column is absent or not numeric, a target and rater pair repeats, or an
        option is invalid.
    ModelSpecificationError
        If a rating is missing (with ``missing="error"``), fewer than 2 targets or
        raters remain, or all ratings are equal.

    Notes
    -----
    From the two-way ANOVA of ``n`` targets by ``k`` raters with mean squares MSB
    (targets), MSW (within targets), MSJ (raters) and MSE (residual):
    ``ICC1 = (MSB - MSW) / (MSB + (k-1) MSW)``,
    ``ICC2 = (MSB - MSE) / (MSB + (k-1) MSE + k (MSJ - MSE) / n)``,
    ``ICC3 = (MSB - MSE) / (MSB + (k-1) MSE)``, ``ICC1k = (MSB - MSW) / MSB``,
    ``ICC2k = (MSB - MSE) / (MSB + (MSJ - MSE) / n)``, ``ICC3k = (MSB - MSE) / MSB``.
    ICC1 is tested with ``F = MSB / MSW`` on ``(n-1, n(k-1))`` df, the others with
    ``F = MSB / MSE`` on ``(n-1, (n-1)(k-1))`` df; intervals follow Shrout and Fleiss
    (1979), with the Satterthwaite-type df for ICC2 and ICC2k of McGraw and Wong (1996).
    Those two intervals are approximate: with very few targets the ICC2k limits, a
    transform of ICC2's, can fall on the wrong side of the estimate (psych agrees).
    Negative estimates are reported as computed, not truncated at 0. The layout must be
    crossed (every rater rates every target); when each target has its own raters, label
    them by position (first, second, ...) and read ICC1, the one-way form.

    References
    ----------
    Shrout PE, Fleiss JL (1979). Intraclass correlations: uses in assessing rater
    reliability. Psychological Bulletin 86:420-428.
    McGraw KO, Wong SP (1996). Forming inferences about some intraclass correlation
    coefficients. Psychological Methods 1:30-46.

    Examples
    --------
    >>> import pandas as pd
    >>> import crtstats
    >>> ratings = pd.DataFrame({
    ...     "review": ["A", "A", "B", "B", "C", "C", "D", "D"],
    ...     "rater": ["r1", "r2"] * 4,
    ...     "total": [120, 124, 98, 101, 140, 133, 110, 115],
    ... })
    >>> result = crtstats.rater_icc(ratings, target="review", rater="rater", rating="total")
    >>> print(f"{result['ICC2'].icc:.3f}")
    0.950

    The R equivalent is ``psych::ICC(wide, lmer = FALSE)`` on the targets x raters
    matrix ``wide``.
    """
    check_option("missing", missing, _MISSING)
    if not isinstance(level, float | int) or not 0.0 < level < 1.0:
        raise InvalidParameterError(f"level must be between 0 and 1; got {level!r}.")
    y, dropped = _layout(data, target, rater, rating, missing)
    msb, msw, msj, mse = _mean_squares(y)
    with np.errstate(divide="ignore", invalid="ignore"):
        forms = _forms(y, float(level))
    return IccResult(forms=tuple(forms), n_targets=y.shape[0], n_raters=y.shape[1],
                     ms_between=msb, ms_within=msw, ms_raters=msj, ms_error=mse,
                     level=float(level), dropped_targets=dropped)
