"""Scoring fidelity reviews: totals, mean item score, domain scores, bands, proration."""

from __future__ import annotations

import warnings
from os import PathLike

import numpy as np
import pandas as pd

from crtstats.exceptions import InvalidParameterError, ProrationWarning
from crtstats.scales._checks import ID_COLUMNS, check_item_scores
from crtstats.scales._key import ScaleKey, load_scale

__all__ = ["assign_band", "score_columns", "score_fidelity"]


def score_columns(key: ScaleKey) -> list[str]:
    """The columns of :func:`score_fidelity`'s output for ``key``, in order.

    Parameters
    ----------
    key
        A loaded scale key.

    Returns
    -------
    list of str
        ``team_id, review, total, mean_item, n_items_scored, prorated, band``, then
        ``<domain>_sum, <domain>_mean`` for each domain in key order.

    Examples
    --------
    >>> score_columns(load_scale("core_crt_v2"))[7:9]
    ['referrals_access_sum', 'referrals_access_mean']
    """
    columns = [*ID_COLUMNS, "total", "mean_item", "n_items_scored", "prorated", "band"]
    for domain in key.domains:
        columns += [f"{domain.key}_sum", f"{domain.key}_mean"]
    return columns


def assign_band(total: np.ndarray, key: ScaleKey) -> pd.Series:
    """The band of each total: the last band whose lower bound is at most the total.

    Parameters
    ----------
    total
        Totals (float; NaN where there is none).
    key
        The scale key whose ``bands`` are used.

    Returns
    -------
    pandas.Series
        A ``string`` Series of band names, ``<NA>`` where the total is NaN.

    Notes
    -----
    With lower bounds ``b_1 < b_2 < ... < b_J`` the band of ``t`` is the ``j`` with
    ``b_j <= t < b_{j+1}``; in R, ``cut(t, c(b, Inf), right = FALSE)``.

    Examples
    --------
    >>> assign_band(np.array([116.0, 117.0, 155.5, 156.0, np.nan]), load_scale("core_crt_v2"))
    0         low
    1    moderate
    2    moderate
    3        high
    4        <NA>
    dtype: string
    """
    bounds = np.array([lower for _, lower in key.bands])
    names = np.array(key.band_names, dtype=object)
    position = np.searchsorted(bounds, np.nan_to_num(total, nan=-np.inf), side="right") - 1
    bands = np.where(np.isnan(total), None, names[np.clip(position, 0, None)])
    return pd.Series(bands, dtype="string")


def _check_max_missing(max_missing: int, key: ScaleKey) -> None:
    if (isinstance(max_missing, bool) or not isinstance(max_missing, int | np.integer)
            or not 0 <= max_missing < key.n_items):
        raise InvalidParameterError(
            f"max_missing must be a whole number from 0 to {key.n_items - 1} (the most "
            f"missing items a review may have and still be prorated); got {max_missing!r}."
        )


def _prorated_sum(block: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Sums of complete rows, prorated sums of allowed incomplete rows, else NaN.

    The prorated sum is ``S * m / s``: the sum ``S`` of the ``s`` scored items times
    the number of items ``m`` over ``s``, computed so that an exact whole-number
    result (e.g. a band boundary) comes out exactly.
    """
    n_items = block.shape[1]
    scored = np.sum(~np.isnan(block), axis=1)
    sums = np.nansum(block, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        prorated = sums * n_items / scored
    return np.where(scored == n_items, sums,
                    np.where(allowed & (scored > 0), prorated, np.nan))


def score_fidelity(
    fidelity: pd.DataFrame,
    *,
    scale: str | PathLike[str] | ScaleKey = "core_crt_v2",
    max_missing: int = 0,
) -> pd.DataFrame:
    """Score fidelity reviews: total, mean item score, domain sums and means, band.

    Parameters
    ----------
    fidelity
        The wide fidelity table: one row per team and review with ``team_id``,
        ``review`` and the key's item columns (e.g. ``item_01`` ... ``item_39``);
        empty cells are missing items. Other columns are allowed and left out of
        the result. An optional ``scale_version`` column must name ``scale``.
    scale
        The scale key: a name in ``data_schema/scales/``, the path of a key file, or a
        key loaded with :func:`crtstats.scales.load_scale`.
    max_missing
        The most missing items a review may have and still be scored, by proration.
        The default 0 gives no total to a review with any missing item.

    Returns
    -------
    pandas.DataFrame
        One row per input row, in input order and with the input's index, with the
        columns ``team_id, review, total, mean_item, n_items_scored, prorated, band``
        and ``<domain>_sum, <domain>_mean`` for each domain of the key, in key order.
        ``total``, ``mean_item`` and the domain columns are float64 (NaN where not
        computable), ``n_items_scored`` int64, ``prorated`` bool and ``band`` a
        ``string`` column (``<NA>`` where there is no total).

    Raises
    ------
    SchemaValidationError
        If a column is absent or an item score is not a whole number within the
        key's item range; every bad cell is listed, with its row position.
    InvalidParameterError
        If ``max_missing`` is not a whole number from 0 to the number of items - 1.
    ScaleKeyError
        If the scale key is unknown or malformed.

    Warns
    -----
    ProrationWarning
        When any total was prorated.

    Notes
    -----
    With ``m`` items, scored items ``x_1 .. x_s`` (``s <= m``) and ``S = sum x_i``:

    * complete review (``s = m``): ``total = S``;
    * ``m - s <= max_missing`` (and ``s > 0``): ``total = S * m / s``, the mean of the
      scored items times ``m``, flagged ``prorated = True``;
    * otherwise ``total`` is NaN.

    ``mean_item = total / m``. A domain with ``m_d`` items follows the same rule on
    its own items: its sum is complete, or prorated as ``S_d * m_d / s_d`` when the
    review's missing count is within ``max_missing`` (NaN when none of its items was
    scored), and its mean is ``sum / m_d``. The band is the last band of the key whose
    lower bound is at most the (prorated) total: for the CORE scale low below 117,
    moderate 117 to below 156, high 156 and above.

    References
    ----------
    Lloyd-Evans B, et al. (2016). Development of a measure of model fidelity for mental
    health Crisis Resolution Teams. BMC Psychiatry 16:427.

    Examples
    --------
    >>> import crtstats
    >>> fidelity = crtstats.datasets.load_example().fidelity
    >>> scores = crtstats.score_fidelity(fidelity)
    >>> print(scores.loc[0, ["team_id", "review", "total", "band"]].to_string())
    team_id         T01
    review     baseline
    total         125.0
    band       moderate

    In R, for complete reviews, ``rowSums(fidelity[, sprintf("item_%02d", 1:39)])``
    gives the same totals.
    """
    key = load_scale(scale)
    _check_max_missing(max_missing, key)
    scores = check_item_scores(fidelity, key)
    n_scored = np.sum(~np.isnan(scores), axis=1)
    allowed = key.n_items - n_scored <= max_missing
    total = _prorated_sum(scores, allowed)
    columns: dict[str, object] = {name: fidelity[name].array for name in ID_COLUMNS}
    columns["total"] = total
    columns["mean_item"] = total / key.n_items
    columns["n_items_scored"] = n_scored.astype(np.int64)
    columns["prorated"] = (n_scored < key.n_items) & ~np.isnan(total)
    columns["band"] = pd.array(assign_band(total, key).to_numpy(dtype=object), dtype="string")
    position = {column: j for j, column in enumerate(key.columns)}
    for domain in key.domains:
        block = scores[:, [position[c] for c in domain.columns]]
        domain_sum = _prorated_sum(block, allowed)
        columns[f"{domain.key}_sum"] = domain_sum
        columns[f"{domain.key}_mean"] = domain_sum / len(domain.columns)
    out = pd.DataFrame(columns, index=fidelity.index)
    n_prorated = int(out["prorated"].sum())
    if n_prorated:
        rows = np.flatnonzero(out["prorated"].to_numpy()).tolist()
        warnings.warn(
            f"{n_prorated} of {len(out)} review totals were prorated from incompletely "
            f"scored reviews (max_missing={max_missing}; row positions {rows[:10]}"
            f"{' ...' if len(rows) > 10 else ''}); they are flagged in the 'prorated' "
            "column. Use max_missing=0 to leave incomplete reviews without a total.",
            ProrationWarning,
            stacklevel=2,
        )
    return out
