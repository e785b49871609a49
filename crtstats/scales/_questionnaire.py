"""Scoring questionnaires by instrument key: totals, proration, caseness, alpha."""

from __future__ import annotations

import warnings
from os import PathLike

import numpy as np
import pandas as pd

from crtstats._options import check_option
from crtstats.exceptions import InvalidParameterError, ProrationWarning
from crtstats.scales._alpha import AlphaResult, cronbach_alpha
from crtstats.scales._instrument import load_instrument
from crtstats.scales._instrument_types import InstrumentKey, Scoring
from crtstats.scales._questionnaire_checks import check_questionnaire
from crtstats.schema import field_levels

__all__ = ["questionnaire_alpha", "questionnaire_columns", "score_questionnaire"]

Instrument = str | PathLike[str] | InstrumentKey


def questionnaire_columns(key: InstrumentKey, *, scoring: str | None = None,
                          id_column: str | None = None) -> list[str]:
    """The columns of :func:`score_questionnaire`'s result, in order.

    Examples
    --------
    >>> questionnaire_columns(load_instrument("ghq12"), id_column="staff_id")
    ['team_id', 'staff_id', 'wave', 'responded', 'total', 'n_items_scored', 'prorated', 'case']
    """
    ids = ["team_id", *([id_column] if id_column else []), "wave"]
    case = ["case"] if key.scoring(scoring).has_caseness else []
    return [*ids, "responded", "total", "n_items_scored", "prorated", *case]


def _check_options(key: InstrumentKey, scoring: Scoring, max_missing: int, prorate: bool,
                   caseness_threshold: float | None) -> float | None:
    if not isinstance(prorate, bool | np.bool_):
        raise InvalidParameterError(f"prorate must be True or False; got {prorate!r}.")
    if (isinstance(max_missing, bool) or not isinstance(max_missing, int | np.integer)
            or not 0 <= max_missing < key.n_items):
        raise InvalidParameterError(
            f"max_missing must be a whole number from 0 to {key.n_items - 1} (the most "
            f"missing items of {key.key} a total may be prorated over); got {max_missing!r}."
        )
    if max_missing > 0 and not prorate:
        raise InvalidParameterError(
            f"max_missing={max_missing} allows missing items only with proration; pass "
            "prorate=True to prorate those totals (flagged), or max_missing=0 for no total "
            "where any item is missing."
        )
    if caseness_threshold is None:
        return scoring.caseness_threshold
    if not scoring.has_caseness:
        raise InvalidParameterError(
            f"caseness_threshold applies to a scoring with caseness; scoring "
            f"{scoring.name!r} of {key.key} has none."
        )
    if (isinstance(caseness_threshold, bool)
            or not isinstance(caseness_threshold, int | float | np.integer | np.floating)
            or not scoring.total_min < caseness_threshold <= scoring.total_max):
        raise InvalidParameterError(
            f"caseness_threshold must be a number above {scoring.total_min:g} and at most "
            f"{scoring.total_max:g} (the {scoring.name} total range of {key.key}); got "
            f"{caseness_threshold!r}."
        )
    return float(caseness_threshold)


def _totals(scored: np.ndarray, responded: np.ndarray, max_missing: int, prorate: bool
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Totals (NaN where not scored), items scored and the proration flag."""
    n_items = scored.shape[1]
    n_scored = np.sum(~np.isnan(scored), axis=1)
    sums = np.nansum(scored, axis=1)
    allowed = prorate & (n_items - n_scored <= max_missing) & (n_scored > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        prorated_sums = sums * n_items / n_scored
    total = np.where(n_scored == n_items, sums, np.where(allowed, prorated_sums, np.nan))
    total = np.where(responded, total, np.nan)
    prorated = (n_scored < n_items) & ~np.isnan(total)
    return total, n_scored.astype(np.int64), prorated


def score_questionnaire(
    table: pd.DataFrame,
    instrument: Instrument,
    *,
    scoring: str | None = None,
    max_missing: int = 0,
    prorate: bool = False,
    caseness_threshold: float | None = None,
) -> pd.DataFrame:
    """Score a questionnaire table by an instrument key: one total per row.

    Parameters
    ----------
    table
        A ``user_questionnaires`` or ``staff_questionnaires`` table (``team_id``, the
        id column, ``wave``, optional ``responded``, and the key's item columns; empty
        cells are missing items). Other columns are left out of the result.
    instrument
        The instrument key: a name in ``data_schema/instruments/`` (``"csq8"``,
        ``"ghq12"``), the path of a key file, or a loaded key.
    scoring
        The key's scoring to use (``"ghq"`` or ``"likert"`` for the GHQ-12); default
        the key's first.
    max_missing
        The most missing items a total may be prorated over; more than 0 needs
        ``prorate=True``.
    prorate
        Prorate the totals of rows with 1 to ``max_missing`` missing items (flagged in
        ``prorated``). The default leaves every incomplete row without a total.
    caseness_threshold
        Override the scoring's caseness threshold (a case is ``total >= threshold``).

    Returns
    -------
    pandas.DataFrame
        One row per input row, in input order and with the input's index: ``team_id``,
        the table's id column (``respondent_id`` or ``staff_id``, when present),
        ``wave``, ``responded`` (bool), ``total`` (float64, NaN where not scored),
        ``n_items_scored`` (int64), ``prorated`` (bool) and, for a scoring with caseness,
        ``case`` (``Int64`` 0/1, ``<NA>`` where there is no total).

    Raises
    ------
    SchemaValidationError
        If a column is absent, an item score is not a whole number within the key's
        item range, ``responded`` is not true or false, or a row with ``responded =
        false`` has item scores; every bad cell is listed with table, row, column and
        value.
    InvalidParameterError
        If an option is invalid, including ``max_missing > 0`` without ``prorate=True``.
    ScaleKeyError
        If the instrument key is unknown or malformed.

    Warns
    -----
    ProrationWarning
        When any total was prorated.

    Notes
    -----
    Each item score ``x`` of a reversed item becomes ``min + max - x``; the scoring's
    ``recode`` then maps it to its scored value ``v``. With ``m`` items and ``s``
    scored items of sum ``S``: ``total = S`` when ``s = m``; ``total = S * m / s`` (the
    mean of the scored items times ``m``) when ``prorate`` and ``m - s <= max_missing``
    and ``s > 0``, flagged; otherwise NaN. A non-responder (``responded = false``) has
    no total. ``case = 1`` when ``total >= threshold``.

    References
    ----------
    Attkisson CC, Zwick R (1982). The Client Satisfaction Questionnaire. Evaluation and
    Program Planning 5:233-237. Goldberg D, Williams P (1988). A User's Guide to the
    General Health Questionnaire. Windsor: NFER-Nelson.

    Examples
    --------
    >>> import pandas as pd
    >>> key = load_instrument("ghq12")
    >>> staff = pd.DataFrame({"team_id": ["T1", "T1"], "staff_id": ["s1", "s2"],
    ...                       "wave": ["baseline", "baseline"],
    ...                       **{c: [3, 0] for c in key.columns}})
    >>> score_questionnaire(staff, "ghq12")[["total", "case"]]
       total  case
    0   12.0     1
    1    0.0     0
    >>> score_questionnaire(staff, "ghq12", scoring="likert")["total"].tolist()
    [36.0, 0.0]

    In R, ``rowSums(ifelse(items >= 2, 1, 0))`` and ``rowSums(items)`` give the two
    totals of complete rows.
    """
    key = load_instrument(instrument)
    chosen = key.scoring(scoring)
    threshold = _check_options(key, chosen, max_missing, prorate, caseness_threshold)
    checked = check_questionnaire(table, key)
    scored = chosen.scored_values(key.reversed_values(checked.values))
    total, n_scored, prorated = _totals(scored, checked.responded, max_missing, prorate)
    ids = ["team_id", *([checked.id_column] if checked.id_column else []), "wave"]
    out = pd.DataFrame({name: table[name].array for name in ids}, index=table.index)
    out["responded"] = checked.responded
    out["total"] = total
    out["n_items_scored"] = np.where(checked.responded, n_scored, 0).astype(np.int64)
    out["prorated"] = prorated
    if threshold is not None:
        case = pd.array(np.where(total >= threshold, 1, 0), dtype="Int64")
        case[np.isnan(total)] = pd.NA
        out["case"] = case
    if prorated.any():
        rows = np.flatnonzero(prorated).tolist()
        warnings.warn(
            f"{len(rows)} of {len(out)} {key.key} totals were prorated from incomplete "
            f"questionnaires (max_missing={max_missing}; row positions {rows[:10]}"
            f"{' ...' if len(rows) > 10 else ''}); they are flagged in the 'prorated' "
            "column. Use prorate=False to leave incomplete questionnaires without a total.",
            ProrationWarning, stacklevel=2,
        )
    return out


def questionnaire_alpha(
    table: pd.DataFrame,
    instrument: Instrument,
    *,
    scoring: str | None = None,
    wave: str | None = None,
) -> AlphaResult:
    """Cronbach's alpha of an instrument's scored items (reversed and recoded).

    Parameters
    ----------
    table
        A questionnaire table (see :func:`score_questionnaire`).
    instrument
        The instrument key (name, path or loaded key).
    scoring
        The scoring whose item values are used (default the key's first): alpha of the
        GHQ-12 differs between its 0-0-1-1 and 0-1-2-3 scorings.
    wave
        Use only the rows of this wave (``"baseline"`` or ``"follow_up"``); default all.

    Returns
    -------
    AlphaResult
        As :func:`crtstats.cronbach_alpha`, over the responders with every item scored
        (``n_incomplete`` counts the responders left out).

    Raises
    ------
    SchemaValidationError
        If the items fail the checks of :func:`score_questionnaire`.
    InvalidParameterError
        If ``wave`` is not a wave of the data model, or an option is invalid.
    ModelSpecificationError
        If an item has no variance or too few rows.

    Notes
    -----
    ``alpha = k / (k - 1) * (1 - tr(C) / sum(C))`` over the scored item values, with
    the Feldt interval (see :func:`crtstats.cronbach_alpha`). Non-responders are left
    out; responders with a missing item are left out listwise.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> key = load_instrument("csq8")
    >>> rng = np.random.default_rng(1)
    >>> base = rng.integers(1, 5, size=(40, 1))
    >>> items = np.clip(base + rng.integers(-1, 2, size=(40, 8)), 1, 4)
    >>> users = pd.DataFrame({"team_id": "T1", "respondent_id": [f"r{i}" for i in range(40)],
    ...                       "wave": "follow_up", **dict(zip(key.columns, items.T))})
    >>> res = questionnaire_alpha(users, "csq8")
    >>> 0 < res.alpha < 1, res.n
    (True, 40)

    In R, ``psych::alpha(na.omit(items))``.
    """
    key = load_instrument(instrument)
    chosen = key.scoring(scoring)
    checked = check_questionnaire(table, key)
    keep = checked.responded.copy()
    if wave is not None:
        table_name = checked.table if checked.id_column else "user_questionnaires"
        check_option("wave", wave, field_levels(table_name, "wave"))
        keep &= (table["wave"].astype("string") == wave).fillna(False).to_numpy(dtype=bool)
    scored = chosen.scored_values(key.reversed_values(checked.values))[keep]
    return cronbach_alpha(pd.DataFrame(scored, columns=list(key.columns)))
