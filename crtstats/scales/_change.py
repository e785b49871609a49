"""Change in fidelity scores between two reviews of the same team."""

from __future__ import annotations

from os import PathLike
from typing import Literal

import numpy as np
import pandas as pd

from crtstats.exceptions import InvalidParameterError
from crtstats.scales._key import ScaleKey, load_scale
from crtstats.scales._score import score_columns

__all__ = ["CHANGE_STATUS", "fidelity_change"]

ChangeStatus = Literal[
    "complete", "incomplete_total", "missing_from_review", "missing_to_review",
    "missing_both_reviews",
]
#: The values of the ``status`` column of :func:`fidelity_change`.
CHANGE_STATUS: tuple[ChangeStatus, ...] = (
    "complete", "incomplete_total", "missing_from_review", "missing_to_review",
    "missing_both_reviews",
)


def _check_scores(scores: pd.DataFrame, needed: list[str], reviews: tuple[str, str]) -> None:
    if not isinstance(scores, pd.DataFrame):
        raise InvalidParameterError(
            f"scores must be a pandas DataFrame; got {type(scores).__name__}."
        )
    absent = [c for c in needed if c not in scores.columns]
    if absent:
        raise InvalidParameterError(
            f"scores lacks the column(s) {absent}; pass the output of score_fidelity "
            "scored with the same scale."
        )
    if reviews[0] == reviews[1]:
        raise InvalidParameterError(
            f"from_review and to_review must differ; both are {reviews[0]!r}."
        )
    present = set(scores["review"].dropna().astype(str))
    unknown = [r for r in reviews if r not in present]
    if unknown:
        raise InvalidParameterError(
            f"review(s) {unknown} do not occur in scores; reviews present: {sorted(present)}."
        )
    pairs = scores[["team_id", "review"]]
    repeated = pairs[pairs.duplicated(keep=False)].drop_duplicates()
    if len(repeated):
        shown = [tuple(map(str, r)) for r in repeated.to_numpy()[:5]]
        raise InvalidParameterError(
            f"scores has {len(repeated)} team and review pair(s) more than once, e.g. "
            f"{shown}; keep one score per team and review."
        )


def _status(has_from: np.ndarray, has_to: np.ndarray, change: np.ndarray) -> pd.Series:
    status = np.select(
        [has_from & has_to & ~np.isnan(change), has_from & has_to, has_to, has_from],
        list(CHANGE_STATUS[:4]),
        default=CHANGE_STATUS[4],
    )
    return pd.Series(status, dtype="string")


def fidelity_change(
    scores: pd.DataFrame,
    *,
    from_review: str = "baseline",
    to_review: str = "12m",
    scale: str | PathLike[str] | ScaleKey = "core_crt_v2",
) -> pd.DataFrame:
    """Per-team change in fidelity total, domain scores and band between two reviews.

    Parameters
    ----------
    scores
        The output of :func:`score_fidelity` (one row per team and review).
    from_review, to_review
        The earlier and later review, values of the ``review`` column.
    scale
        The scale key the scores were computed with (for its domains and band order).

    Returns
    -------
    pandas.DataFrame
        One row per team of ``scores``, in order of first appearance, including
        teams lacking either review (never dropped): ``team_id, from_review,
        to_review, status, total_from, total_to, total_change, mean_item_change,
        band_from, band_to, band_step``, then ``<domain>_sum_change`` and
        ``<domain>_mean_change`` for each domain. ``status`` is one of
        ``complete`` (both totals), ``incomplete_total`` (both reviews, a total
        missing), ``missing_from_review``, ``missing_to_review`` and
        ``missing_both_reviews``; changes are NaN where not computable.

    Raises
    ------
    InvalidParameterError
        If ``scores`` lacks a score column, a team has a review twice, the reviews are
        equal, or a review does not occur in ``scores`` at all (likely a typo).

    Notes
    -----
    ``change = score[to_review] - score[from_review]`` for the total, the mean item
    score and each domain sum and mean. ``band_step`` is the number of bands moved
    (``+1`` from low to moderate, ``-1`` from moderate to low, ``<NA>`` if either
    band is missing), counted in the key's band order.

    References
    ----------
    Lloyd-Evans B, et al. (2019). The CORE service improvement programme for mental
    health crisis resolution teams: results from a cluster-randomised trial. British
    Journal of Psychiatry 216(6):314-322.

    Examples
    --------
    >>> import crtstats
    >>> scores = crtstats.score_fidelity(crtstats.datasets.load_example().fidelity)
    >>> change = crtstats.fidelity_change(scores, from_review="baseline", to_review="12m")
    >>> print(change.loc[0, ["team_id", "total_from", "total_to", "total_change"]].to_string())
    team_id           T01
    total_from      125.0
    total_to        137.0
    total_change     12.0

    The R equivalent is a reshape and a difference, e.g. ``tidyr::pivot_wider(scores,
    id_cols = team_id, names_from = review, values_from = total)`` then ``` `12m` -
    baseline ```.
    """
    key = load_scale(scale)
    value_columns = [c for c in score_columns(key)[2:] if c not in ("n_items_scored",
                                                                     "prorated", "band")]
    _check_scores(scores, [*score_columns(key)[:2], *value_columns, "band"],
                  (from_review, to_review))
    teams = pd.unique(scores["team_id"])
    table = scores.set_index(["team_id", "review"])
    index = pd.MultiIndex.from_product([teams, [from_review, to_review]])
    present = pd.Series(True, index=table.index).reindex(index, fill_value=False)
    wide = table.reindex(index)
    before, after = wide.xs(from_review, level=1), wide.xs(to_review, level=1)
    out = pd.DataFrame({"team_id": teams, "from_review": from_review,
                        "to_review": to_review})
    total_change = (after["total"] - before["total"]).to_numpy(dtype=float)
    out["status"] = _status(present.xs(from_review, level=1).to_numpy(dtype=bool),
                            present.xs(to_review, level=1).to_numpy(dtype=bool),
                            total_change)
    out["total_from"] = before["total"].to_numpy(dtype=float)
    out["total_to"] = after["total"].to_numpy(dtype=float)
    out["total_change"] = total_change
    out["mean_item_change"] = (after["mean_item"] - before["mean_item"]).to_numpy(dtype=float)
    out["band_from"] = pd.array(before["band"].to_numpy(), dtype="string")
    out["band_to"] = pd.array(after["band"].to_numpy(), dtype="string")
    out["band_step"] = _band_step(out["band_from"], out["band_to"], key.band_names)
    for column in value_columns[2:]:
        out[f"{column}_change"] = (after[column] - before[column]).to_numpy(dtype=float)
    return out


def _band_step(band_from: pd.Series, band_to: pd.Series, names: tuple[str, ...]) -> pd.Series:
    """Bands moved from ``band_from`` to ``band_to`` in the order ``names`` (Int64)."""
    rank = {name: float(i) for i, name in enumerate(names)}
    start = np.array([rank.get(b, np.nan) if isinstance(b, str) else np.nan
                      for b in band_from.to_numpy(dtype=object)])
    end = np.array([rank.get(b, np.nan) if isinstance(b, str) else np.nan
                    for b in band_to.to_numpy(dtype=object)])
    return pd.Series(pd.array(end - start, dtype="Float64"), index=band_from.index).astype(
        "Int64")
