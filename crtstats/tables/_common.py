"""Helpers shared by the table builders: arms, reviews, input checks, suppression, scale key."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from crtstats.exceptions import InvalidParameterError, ReasonCode, SchemaValidationError
from crtstats.scales import available_scales, load_scale
from crtstats.schema import ARMS, PERIODS, REVIEWS
from crtstats.tables._questionnaire import questionnaire_label

__all__ = [
    "ARMS",
    "PERIODS",
    "REVIEWS",
    "ScaleLabels",
    "arm_by_team",
    "check_suppress_below",
    "outcome_label",
    "require_columns",
    "scale_labels",
    "suppression_note",
]

# ARMS (reporting order, reference first), REVIEWS and PERIODS (time order) are read
# from the enum constraints in data_schema/ by crtstats.schema.

_ITEM = re.compile(r"^item_(\d+)$")


def require_columns(frame: Any, name: str, columns: Iterable[str]) -> pd.DataFrame:
    """Check that ``frame`` is a DataFrame holding ``columns``; return it."""
    if not isinstance(frame, pd.DataFrame):
        raise InvalidParameterError(
            f"{name} must be a pandas DataFrame; got {type(frame).__name__}."
        )
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SchemaValidationError.from_cases(
            [
                {"table": name, "row": None, "column": c, "value": None,
                 "check": "column is required", "reason_code": ReasonCode.MISSING_COLUMN}
                for c in missing
            ],
            subject=f"table {name}",
        )
    return frame


def arm_by_team(teams: pd.DataFrame) -> pd.Series:
    """The arm of each team (indexed by ``team_id``), checked against :data:`ARMS`."""
    require_columns(teams, "teams", ("team_id", "arm"))
    if teams["team_id"].duplicated().any():
        dup = teams.loc[teams["team_id"].duplicated(), "team_id"].iloc[0]
        raise InvalidParameterError(
            f"teams lists team_id {dup!r} more than once; give one row per team."
        )
    unknown = sorted(set(teams["arm"].astype(str)) - set(ARMS))
    if unknown or teams["arm"].isna().any():
        raise InvalidParameterError(
            f"teams.arm must be one of {list(ARMS)} for every team; got {unknown or ['<NA>']}."
        )
    return pd.Series(teams["arm"].astype(str).to_numpy(), index=teams["team_id"].astype(str))


def join_arm(frame: pd.DataFrame, teams: pd.DataFrame, name: str) -> pd.Series:
    """The arm of each row of ``frame`` (by ``team_id``); unknown teams are an error."""
    arms = arm_by_team(teams)
    ids = frame["team_id"].astype(str)
    unknown = sorted(set(ids) - set(arms.index))
    if unknown:
        raise InvalidParameterError(
            f"{name} has team_id(s) {unknown[:5]} not in teams; check the team lists agree."
        )
    return pd.Series(arms.loc[ids].to_numpy(), index=frame.index, name="arm")


def by_key(series: pd.Series) -> dict[str, float]:
    """A count Series (e.g. from ``value_counts``) as a plain ``{str: float}`` dict."""
    return {str(k): float(v) for k, v in series.items()}


def check_suppress_below(value: Any) -> int | None:
    """Validate ``suppress_below``: ``None`` or a whole number >= 0; return the threshold.

    Counts from 1 to ``value - 1`` are withheld, so 0 and 1 withhold nothing and, like
    ``None``, return ``None`` (no suppression; an analysis plan writes 0 for "off").
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise InvalidParameterError(
            f"suppress_below must be None or 0 (no suppression) or a whole number >= 2 "
            f"(counts from 1 to suppress_below - 1 are withheld); got {value!r}."
        )
    return int(value) if value >= 2 else None


def is_small(count: Any, threshold: int | None) -> bool:
    """Whether a count of people is withheld: ``0 < count < threshold``."""
    if threshold is None or count is None or pd.isna(count):
        return False
    return 0 < float(count) < threshold


#: The text of a withheld cell. Not ``<5``: a total or a complementary cell withheld so
#: that a small count cannot be recovered may be large, and must not read as small.
SUPPRESSION_MARK = "*"


def suppression_marker(threshold: int) -> str:
    """The text shown in a withheld cell (the same for every threshold)."""
    return SUPPRESSION_MARK


def suppression_note(threshold: int, *, staff: bool = False) -> str:
    """The footnote explaining withheld cells (naming staff too when the table counts
    staff respondents)."""
    who, people = ("service user or staff member", "people") if staff else (
        "service user", "service users")
    return (
        f"{SUPPRESSION_MARK} Withheld so that no {who} can be identified: a count "
        f"of 1 to {threshold - 1} {people}, or a figure (a total, another category) "
        "from which one could be worked out."
    )


# -- scale key (labels only) ------------------------------------------------------------
@dataclass(frozen=True)
class ScaleLabels:
    """Display names from a scale key: domain labels and item labels, in key order."""

    domains: tuple[tuple[str, str], ...]  # (key, label)
    item_domains: Mapping[int, str]  # item number -> domain key
    items: Mapping[str, tuple[int, str]]  # column -> (number, label)
    bands: tuple[str, ...] = ()  # band names, ascending

    def domain_label(self, key: str) -> str:
        """The label of domain ``key``, or the key as text when the scale has none."""
        return dict(self.domains).get(key, key.replace("_", " ").capitalize())

    def item(self, column: str) -> tuple[int, str]:
        """Number and label of an item column (``item_07`` -> ``(7, "...")``)."""
        if column in self.items:
            return self.items[column]
        match = _ITEM.match(column)
        return (int(match.group(1)) if match else 0, "")

    def domain_of(self, number: int) -> str | None:
        """The domain key holding item ``number``, if the key says."""
        return self.item_domains.get(number)


@cache
def scale_labels(scale: str = "core_crt_v2") -> ScaleLabels:
    """Display labels from the scale key ``scale`` (via :func:`crtstats.scales.load_scale`).

    A scale with no key file gives empty labels (domain keys are then shown as text);
    a key file that exists but is malformed raises its ``ScaleKeyError``.
    """
    if scale not in available_scales():
        return ScaleLabels((), {}, {}, ())
    key = load_scale(scale)
    return ScaleLabels(
        domains=tuple((d.key, d.label) for d in key.domains),
        item_domains={i.number: i.domain for i in key.items},
        items={i.column: (i.number, i.label) for i in key.items},
        bands=key.band_names,
    )


def outcome_label(outcome: str, scale: str = "core_crt_v2") -> str:
    """A reader's name for an outcome column: scale-key labels for fidelity scores,
    instrument titles for questionnaire outcomes.

    ``total`` is the fidelity total, ``mean_item`` the mean item score and
    ``<domain>_mean`` / ``<domain>_sum`` a domain's mean item score or sum (labels from
    the scale key); an instrument key, alone or with a scoring or ``case`` (``csq8``,
    ``ghq12_likert``, ``ghq12_case``), is named from the instrument key ("CSQ-8
    total", "GHQ-12 (Likert scoring) total", "GHQ-12 caseness"); any other name is
    returned with underscores as spaces.

    Examples
    --------
    >>> outcome_label("referrals_access_mean")
    'Referrals and access (mean item score)'
    >>> outcome_label("csq8")
    'CSQ-8 total'
    >>> outcome_label("admissions per user")
    'admissions per user'
    """
    shown = questionnaire_label(outcome)
    if shown is not None:
        return shown
    labels = scale_labels(scale)
    if outcome == "total":
        return "Fidelity total"
    if outcome == "mean_item":
        return "Fidelity mean item score"
    domains = dict(labels.domains)
    for suffix, text in (("_mean", "mean item score"), ("_sum", "sum of item scores")):
        key = outcome.removesuffix(suffix)
        if outcome.endswith(suffix) and key in domains:
            return f"{domains[key]} ({text})"
    return outcome.replace("_", " ")


def item_columns(frame: pd.DataFrame) -> list[str]:
    """The ``item_NN`` columns of a fidelity table, in item-number order."""
    found = [c for c in frame.columns if _ITEM.match(str(c))]
    return sorted(found, key=lambda c: int(_ITEM.match(str(c)).group(1)))  # type: ignore[union-attr]


def present_reviews(values: Sequence[Any]) -> list[str]:
    """The reviews among ``values`` in time order; unknown review names are an error."""
    seen = {str(v) for v in values if not pd.isna(v)}
    unknown = sorted(seen - set(REVIEWS))
    if unknown:
        raise InvalidParameterError(
            f"review must be one of {list(REVIEWS)}; got {unknown}."
        )
    return [r for r in REVIEWS if r in seen]
