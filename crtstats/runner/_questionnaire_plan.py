"""The options of a plan's questionnaire analysis (``outcome = "questionnaire"``).

An entry such as::

    [[analysis]]
    name = "satisfaction"
    outcome = "questionnaire"
    options = { table = "user_questionnaires", instrument = "csq8" }

is passed to :func:`crtstats.analyse_questionnaire`. Every option is checked here,
before any data are read: the table (``user_questionnaires`` or
``staff_questionnaires``), the instrument (a key shipped with crtstats, or a key file
``*.yaml`` relative to the plan), the scoring (one of the key's), ``linked``,
``max_missing`` and ``prorate`` (proration only by explicit choice), ``n_resamples``
and ``seed``. Each problem is a :class:`~crtstats.exceptions.PlanError` naming the
option and the value found.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal, get_args

from crtstats.exceptions import CRTStatsError, PlanError
from crtstats.runner._plan_checks import OptionValue, choice, get_value, unknown_keys
from crtstats.scales import available_instruments, load_instrument

__all__ = ["QUESTIONNAIRE_OPTIONS", "QUESTIONNAIRE_TABLES", "QuestionnaireTable",
           "check_questionnaire_options"]

QuestionnaireTable = Literal["user_questionnaires", "staff_questionnaires"]
QUESTIONNAIRE_TABLES: tuple[QuestionnaireTable, ...] = get_args(QuestionnaireTable)
#: The options a questionnaire analysis takes (those of ``analyse_questionnaire``).
QUESTIONNAIRE_OPTIONS = ("table", "instrument", "scoring", "linked", "max_missing",
                         "prorate", "n_resamples", "seed")
_KEY_SUFFIXES = (".yaml", ".yml")


def _instrument_file(value: str, base: Path, where: str) -> Path | None:
    """The key file an ``instrument`` option names, or None for a shipped key."""
    shipped = available_instruments()
    if value in shipped:
        return None
    if not value.endswith(_KEY_SUFFIXES):
        raise PlanError(f"{where}: options.instrument must name an instrument key shipped "
                        f"with crtstats ({', '.join(map(repr, shipped))}) or a key file "
                        f"ending in .yaml beside the plan; got {value!r}.")
    path = base / value
    if not path.is_file():
        raise PlanError(f"{where}: options.instrument = {value!r}: no such key file "
                        f"(looked for {path.name} in the plan's folder).")
    return path


def _whole(options: Mapping[str, OptionValue], key: str, where: str, *, low: int,
           high: int | None = None, default: int) -> int:
    value: int = get_value(options, key, int, f"{where} options", default=default)
    if value < low or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise PlanError(f"{where}: options.{key} must be a whole number {span}; "
                        f"got {value!r}.")
    return value


def check_questionnaire_options(
    options: Mapping[str, OptionValue], base: Path, where: str,
) -> Path | None:
    """Check the options of a questionnaire analysis; return its instrument key file.

    Parameters
    ----------
    options
        The entry's ``options`` table.
    base
        The plan's folder (a key file named by ``instrument`` is relative to it).
    where
        The plan entry, for messages.

    Returns
    -------
    Path or None
        The instrument key file, when ``instrument`` names one; None for a key shipped
        with crtstats.

    Raises
    ------
    PlanError
        If an option is unknown, of the wrong type or outside its allowed values: the
        table, an instrument that is neither shipped nor a readable key file, a scoring
        the key does not define, ``max_missing`` outside 0 to the number of items less
        one, ``max_missing`` above 0 without ``prorate = true``, or ``n_resamples``
        below 1.
    """
    inner = f"{where} options"
    unknown_keys(options, QUESTIONNAIRE_OPTIONS, inner)
    choice(get_value(options, "table", str, inner, default="user_questionnaires"),
           QUESTIONNAIRE_TABLES, "options.table", where)
    instrument = get_value(options, "instrument", str, inner, default="csq8")
    path = _instrument_file(instrument, base, where)
    try:
        key = load_instrument(path if path is not None else instrument)
    except CRTStatsError as err:
        raise PlanError(f"{where}: options.instrument = {instrument!r}: {err}") from None
    scoring = get_value(options, "scoring", str, inner)
    if scoring is not None:
        choice(scoring, key.scoring_names, "options.scoring", f"{where} ({key.key})")
    get_value(options, "linked", bool, inner)
    max_missing = _whole(options, "max_missing", where, low=0, high=key.n_items - 1,
                         default=0)
    prorate = get_value(options, "prorate", bool, inner, default=False)
    if max_missing > 0 and not prorate:
        raise PlanError(f"{where}: options.max_missing = {max_missing} allows missing items "
                        "only with proration; add prorate = true (prorated totals are "
                        "flagged), or set max_missing = 0 for no total where any item is "
                        "missing.")
    _whole(options, "n_resamples", where, low=1, default=10000)
    _whole(options, "seed", where, low=0, high=2**32 - 1, default=0)
    return path
