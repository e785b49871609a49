"""The parts of an instrument key: items, scorings and the key itself."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from crtstats.exceptions import InvalidParameterError

__all__ = ["InstrumentItem", "InstrumentKey", "Scoring"]


@dataclass(frozen=True)
class InstrumentItem:
    """One item of an instrument: its number and the data column that holds its score."""

    number: int
    column: str


@dataclass(frozen=True)
class Scoring:
    """One named way of totalling an instrument's items.

    Attributes
    ----------
    name
        The scoring's name (``"ghq"``, ``"likert"``, ``"total"``...).
    recode
        ``(item value, scored value)`` pairs, the item value taken after any reversal;
        ``None`` scores the values as they are.
    total_min, total_max
        The range of the total.
    caseness_threshold
        A total at or above it is a case; ``None`` when the scoring defines no caseness.
    """

    name: str
    recode: tuple[tuple[int, float], ...] | None
    total_min: float
    total_max: float
    caseness_threshold: float | None = None

    @property
    def has_caseness(self) -> bool:
        """True when the scoring defines a caseness threshold."""
        return self.caseness_threshold is not None

    def scored_values(self, values: np.ndarray) -> np.ndarray:
        """``values`` (float, NaN = missing; whole numbers in the item range) recoded."""
        if self.recode is None:
            return values.astype(float)
        out = np.full(values.shape, np.nan)
        for source, target in self.recode:
            out[values == source] = target
        return out


@dataclass(frozen=True)
class InstrumentKey:
    """A questionnaire instrument key as read from its YAML file.

    Attributes
    ----------
    key
        The instrument's name (``"csq8"``), equal to the file's stem.
    title
        A human-readable title.
    item_min, item_max
        The range of an item score as entered (whole numbers, inclusive).
    items
        The items in number order.
    reverse
        The numbers of the items scored ``item_min + item_max - x``.
    scorings
        The named scorings; the first is the default.
    proration
        How a total with missing items is prorated when the user asks for it
        (``"scored_item_mean"``).
    """

    key: str
    title: str
    item_min: int
    item_max: int
    items: tuple[InstrumentItem, ...]
    reverse: tuple[int, ...]
    scorings: tuple[Scoring, ...]
    proration: str

    @cached_property
    def columns(self) -> tuple[str, ...]:
        """The item columns in item order."""
        return tuple(item.column for item in self.items)

    @property
    def n_items(self) -> int:
        """The number of items."""
        return len(self.items)

    @property
    def scoring_names(self) -> tuple[str, ...]:
        """The scorings' names, the default first."""
        return tuple(s.name for s in self.scorings)

    def scoring(self, name: str | None = None) -> Scoring:
        """The scoring called ``name`` (default: the first).

        Raises
        ------
        InvalidParameterError
            If the key has no scoring of that name.
        """
        if name is None:
            return self.scorings[0]
        for scoring in self.scorings:
            if scoring.name == name:
                return scoring
        raise InvalidParameterError(
            f"scoring must be one of {', '.join(map(repr, self.scoring_names))} (the "
            f"scorings of instrument {self.key}); got {name!r}."
        )

    def outcome_name(self, scoring: str | None = None) -> str:
        """The outcome's name: the key, plus the scoring's name when the key has several
        (``"csq8"``, ``"ghq12_likert"``)."""
        chosen = self.scoring(scoring).name
        return self.key if len(self.scorings) == 1 else f"{self.key}_{chosen}"

    def reversed_values(self, block: np.ndarray) -> np.ndarray:
        """Item values (rows x items, key order) with the reversed items turned round."""
        out = block.astype(float, copy=True)
        for number in self.reverse:
            out[:, number - 1] = self.item_min + self.item_max - out[:, number - 1]
        return out
