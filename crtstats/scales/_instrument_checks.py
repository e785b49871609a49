"""Strict checks of an instrument key's YAML contents.

Every entry is checked; an unknown entry is an error (a misspelt ``revers:`` must not be
ignored), and each message names the file and the entry at fault.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from crtstats.exceptions import ScaleKeyError
from crtstats.scales._instrument_types import InstrumentItem, InstrumentKey, Scoring

__all__ = ["build_instrument"]

#: The proration methods a key may name under ``missing: proration``.
PRORATION_METHODS = ("scored_item_mean",)

_TOP = {"key": True, "title": False, "item_range": True, "reverse": False,
        "scorings": True, "missing": True, "items": True}
_SCORING = {"recode": False, "total_range": True, "caseness": False}
_COLUMN = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_NAME = re.compile(r"[a-z][a-z0-9_]*")


class _Key:
    """The raw key and its file name, for messages."""

    def __init__(self, raw: Mapping[str, Any], name: str) -> None:
        self.raw, self.name = raw, name

    def fail(self, entry: str, what: str) -> ScaleKeyError:
        return ScaleKeyError(f"instrument key {self.name}: {entry}: {what} (docs/scoring.md "
                             "describes the key format)")


def _entries(key: _Key, raw: Any, allowed: Mapping[str, bool], where: str
             ) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise key.fail(where, f"must be a mapping; got {raw!r}")
    unknown = sorted(str(k) for k in raw if k not in allowed)
    if unknown:
        raise key.fail(where, f"unknown entr{'y' if len(unknown) == 1 else 'ies'} {unknown}; "
                       f"allowed: {list(allowed)}")
    absent = [k for k, needed in allowed.items() if needed and k not in raw]
    if absent:
        raise key.fail(where, f"lacks {absent}")
    return raw


def _whole(key: _Key, value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise key.fail(where, f"must be a whole number; got {value!r}")
    return value


def _number(key: _Key, value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
            value):
        raise key.fail(where, f"must be a finite number; got {value!r}")
    return float(value)


def _range(key: _Key, raw: Any, where: str, *, whole: bool) -> tuple[float, float]:
    entries = _entries(key, raw, {"min": True, "max": True}, where)
    read = _whole if whole else _number
    lo, hi = read(key, entries["min"], f"{where}.min"), read(key, entries["max"], f"{where}.max")
    if lo >= hi:
        raise key.fail(where, f"min {lo} must be below max {hi}")
    return lo, hi


def _items(key: _Key, raw: Any) -> tuple[InstrumentItem, ...]:
    if not isinstance(raw, list) or not raw:
        raise key.fail("items", f"must be a non-empty list of {{number, column}}; got {raw!r}")
    items = []
    for i, entry in enumerate(raw):
        where = f"items[{i}]"
        entries = _entries(key, entry, {"number": True, "column": True}, where)
        number = _whole(key, entries["number"], f"{where}.number")
        column = entries["column"]
        if not isinstance(column, str) or _COLUMN.fullmatch(column) is None:
            raise key.fail(f"{where}.column", "must be a column name (a letter, then letters, "
                           f"digits or _); got {column!r}")
        items.append(InstrumentItem(number, column))
    numbers = [item.number for item in items]
    if numbers != list(range(1, len(items) + 1)):
        raise key.fail("items", f"must be numbered 1 to n in order; got {numbers}")
    columns = [item.column for item in items]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise key.fail("items", f"columns repeat: {repeated}")
    return tuple(items)


def _reverse(key: _Key, raw: Any, n_items: int) -> tuple[int, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise key.fail("reverse", f"must be a list of item numbers; got {raw!r}")
    numbers = [_whole(key, v, f"reverse[{i}]") for i, v in enumerate(raw)]
    bad = [n for n in numbers if not 1 <= n <= n_items]
    if bad:
        raise key.fail("reverse", f"names item(s) {bad}, which the key does not have (items "
                       f"1 to {n_items})")
    if len(set(numbers)) != len(numbers):
        raise key.fail("reverse", f"lists an item twice: {numbers}")
    return tuple(sorted(numbers))


def _recode(key: _Key, raw: Any, lo: int, hi: int, where: str
            ) -> tuple[tuple[int, float], ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise key.fail(where, f"must map each item value to its score; got {raw!r}")
    table = {_whole(key, k, f"{where} key {k!r}"): _number(key, v, f"{where}[{k}]")
             for k, v in raw.items()}
    if sorted(table) != list(range(lo, hi + 1)):
        raise key.fail(where, f"must give a score for every item value {lo} to {hi}, and "
                       f"only those; got values {sorted(table)}")
    return tuple(sorted(table.items()))


def _scoring(key: _Key, name: Any, raw: Any, lo: int, hi: int, n_items: int) -> Scoring:
    where = f"scorings.{name}"
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise key.fail(where, "a scoring's name must be lower-case letters, digits or _")
    entries = _entries(key, raw, _SCORING, where)
    recode = _recode(key, entries.get("recode"), lo, hi, f"{where}.recode")
    values = [v for _, v in recode] if recode is not None else [lo, hi]
    implied = (n_items * min(values), n_items * max(values))
    total = _range(key, entries["total_range"], f"{where}.total_range", whole=False)
    if total != implied:
        raise key.fail(f"{where}.total_range", f"{total} must equal the number of items "
                       f"({n_items}) times the smallest and largest item score {implied}")
    threshold = None
    if "caseness" in entries:
        case = _entries(key, entries["caseness"], {"threshold": True}, f"{where}.caseness")
        threshold = _number(key, case["threshold"], f"{where}.caseness.threshold")
        if not total[0] < threshold <= total[1]:
            raise key.fail(f"{where}.caseness.threshold", f"{threshold} must be above the "
                           f"lowest total {total[0]} and at most the highest {total[1]}")
    return Scoring(name, recode, total[0], total[1], threshold)


def build_instrument(raw: Mapping[str, Any], name: str) -> InstrumentKey:
    """Check a key's YAML contents entry by entry and build the :class:`InstrumentKey`."""
    key = _Key(raw, name)
    entries = _entries(key, raw, _TOP, "the key")
    stem = Path(name).stem
    if entries["key"] != stem:
        raise key.fail("key", f"{entries['key']!r} must equal the file name stem {stem!r}")
    lo, hi = (int(v) for v in _range(key, entries["item_range"], "item_range", whole=True))
    items = _items(key, entries["items"])
    reverse = _reverse(key, entries.get("reverse"), len(items))
    scorings_raw = entries["scorings"]
    if not isinstance(scorings_raw, Mapping) or not scorings_raw:
        raise key.fail("scorings", f"must map one or more names to scorings; got "
                       f"{scorings_raw!r}")
    scorings = tuple(_scoring(key, n, s, lo, hi, len(items)) for n, s in scorings_raw.items())
    missing = _entries(key, entries["missing"], {"proration": True}, "missing")
    if missing["proration"] not in PRORATION_METHODS:
        raise key.fail("missing.proration", f"must be one of {list(PRORATION_METHODS)}; got "
                       f"{missing['proration']!r}")
    title = entries.get("title", stem)
    if not isinstance(title, str):
        raise key.fail("title", f"must be text; got {title!r}")
    return InstrumentKey(key=stem, title=title, item_min=lo, item_max=hi, items=items,
                         reverse=reverse, scorings=scorings,
                         proration=str(missing["proration"]))
