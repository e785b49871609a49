"""Questionnaire tables for the trial tables: which are present, their instruments, labels.

The two questionnaire tables of the data model (``user_questionnaires`` and
``staff_questionnaires``) are scored with the instrument keys of
``data_schema/instruments/`` (:func:`crtstats.scales.score_questionnaire`); this module
finds them on a trial, checks the ``instruments=`` a builder is given, scores them and
names them for readers. Titles and total ranges come from the key, never from here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import pandas as pd

from crtstats.exceptions import InvalidParameterError
from crtstats.io import load_schema
from crtstats.scales import (
    InstrumentKey,
    available_instruments,
    load_instrument,
    score_questionnaire,
)
from crtstats.schema import field_levels

__all__ = [
    "DEFAULT_INSTRUMENTS",
    "FLOW_HEADINGS",
    "QUESTIONNAIRE_TABLES",
    "Questionnaire",
    "check_instruments",
    "id_column",
    "instrument_title",
    "present_questionnaires",
    "questionnaire_label",
    "short_title",
    "total_range",
    "wave_text",
    "waves",
]

#: The questionnaire tables of the data model and who answers each.
QUESTIONNAIRE_TABLES: Mapping[str, str] = {
    "user_questionnaires": "Service users",
    "staff_questionnaires": "Staff",
}
#: The section heading of each table's rows in the flow table.
FLOW_HEADINGS: Mapping[str, str] = {
    "user_questionnaires": "Service-user questionnaires",
    "staff_questionnaires": "Staff questionnaires",
}
#: The instrument each table is scored with unless a builder is told otherwise.
DEFAULT_INSTRUMENTS: Mapping[str, str] = {
    "user_questionnaires": "csq8",
    "staff_questionnaires": "ghq12",
}


@cache
def id_column(table: str) -> str:
    """The respondent id column of a questionnaire table (its key less team and wave)."""
    key = [str(k) for k in load_schema(table)["primaryKey"]]
    return next(k for k in key if k not in ("team_id", "wave"))


@cache
def waves(table: str) -> tuple[str, ...]:
    """The waves of ``table`` in time order, as its schema lists them."""
    return field_levels(table, "wave")


def wave_text(wave: str) -> str:
    """A wave as a reader writes it (``follow_up`` -> ``follow-up``)."""
    return wave.replace("_", "-")


def check_instruments(instruments: Any, scorings: Any = None
                      ) -> tuple[dict[str, str], dict[str, str | None]]:
    """``instruments`` and ``scorings`` checked, with the defaults filled in.

    Each is a mapping from questionnaire table name to an instrument key (or a scoring
    name); tables left out take :data:`DEFAULT_INSTRUMENTS` and the key's first scoring.
    """
    out: dict[str, Any] = {}
    for name, given, default in (("instruments", instruments, DEFAULT_INSTRUMENTS),
                                 ("scorings", scorings, {})):
        if given is None:
            given = {}
        if not isinstance(given, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in given.items()):
            raise InvalidParameterError(
                f"{name} must map questionnaire table names to text (e.g. "
                f"{{'user_questionnaires': 'csq8'}}); got {given!r}.")
        unknown = sorted(set(given) - set(QUESTIONNAIRE_TABLES))
        if unknown:
            raise InvalidParameterError(
                f"{name} names table(s) {unknown}; the questionnaire tables are "
                f"{list(QUESTIONNAIRE_TABLES)}.")
        out[name] = {t: given.get(t, default.get(t)) for t in QUESTIONNAIRE_TABLES}
    return out["instruments"], out["scorings"]


@dataclass(frozen=True)
class Questionnaire:
    """One questionnaire table of a trial, scored.

    Attributes
    ----------
    table
        The table's name (``user_questionnaires``...).
    who
        Who answers it (``Service users``, ``Staff``).
    instrument, scoring
        The instrument key and the scoring used (``None``: the key's first).
    name
        The instrument's title (``GHQ-12``).
    title
        The instrument's title with the scoring when it is not the only one.
    scores
        :func:`crtstats.scales.score_questionnaire` output, one row per sampled row.
    """

    table: str
    who: str
    instrument: str
    scoring: str | None
    name: str
    title: str
    scores: pd.DataFrame


def present_questionnaires(
    trial: Any, instruments: Any = None, scorings: Any = None,
    scored: Mapping[str, pd.DataFrame] | None = None,
) -> list[Questionnaire]:
    """The questionnaire tables ``trial`` has (``getattr``, absent = ``None``), scored.

    A table of ``scored`` (table name -> scored frame, e.g. the run's own) is used as it
    is instead of scoring the trial's table again.
    """
    keys, chosen = check_instruments(instruments, scorings)
    found = []
    for table, who in QUESTIONNAIRE_TABLES.items():
        frame = getattr(trial, table, None)
        instrument, scoring = keys[table], chosen[table]
        scores = (scored or {}).get(table)
        if scores is None:
            if not isinstance(frame, pd.DataFrame):
                continue
            scores = score_questionnaire(frame, instrument, scoring=scoring)
        found.append(Questionnaire(table, who, instrument, scoring,
                                   short_title(load_instrument(instrument)),
                                   instrument_title(instrument, scoring), scores))
    return found


_ABBREVIATION = re.compile(r"\(([^()]+)\)\s*$")


def short_title(key: InstrumentKey) -> str:
    """The name a table row uses: the abbreviation a key's title ends with in
    parentheses (``Client Satisfaction Questionnaire (CSQ-8)`` -> ``CSQ-8``), else the
    whole title."""
    match = _ABBREVIATION.search(key.title)
    return match.group(1).strip() if match else key.title


def instrument_title(instrument: str | InstrumentKey, scoring: str | None = None) -> str:
    """The instrument's short title (:func:`short_title`), with the scoring's name when
    the key has several (``GHQ-12 (GHQ scoring)``, ``GHQ-12 (Likert scoring)``).

    Raises
    ------
    InvalidParameterError
        If the key has no scoring ``scoring``.
    """
    key = load_instrument(instrument)
    chosen = key.scoring(scoring)
    if len(key.scorings) < 2:
        return short_title(key)
    name = chosen.name.upper() if len(chosen.name) <= 3 else chosen.name.capitalize()
    return f"{short_title(key)} ({name} scoring)"


def total_range(instrument: str | InstrumentKey, scoring: str | None = None
                ) -> tuple[float, float]:
    """The lowest and highest total of the instrument under ``scoring`` (from the key)."""
    chosen = load_instrument(instrument).scoring(scoring)
    return float(chosen.total_min), float(chosen.total_max)


@cache
def questionnaire_label(outcome: str) -> str | None:
    """A reader's name of a questionnaire outcome (``csq8`` -> ``CSQ-8 total``), or
    ``None`` when ``outcome`` does not name an instrument key (and scoring).

    The outcome names are the instrument key, or the key and a scoring or ``case``
    joined by ``_`` (``ghq12_likert``, ``ghq12_case``).
    """
    key, _, suffix = outcome.partition("_")
    if key not in available_instruments():
        return None
    instrument = load_instrument(key)
    if not suffix:
        return f"{instrument_title(key)} total"
    if suffix == "case":
        return f"{short_title(instrument)} caseness"
    if suffix in instrument.scoring_names:
        return f"{instrument_title(key, suffix)} total"
    return None
