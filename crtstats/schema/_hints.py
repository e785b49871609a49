"""Root-cause hints for a fidelity table whose item columns are absent.

Two layouts are recognised, and said so, instead of listing 39 absent columns: item
columns under other names (``Q1`` ... ``Q39``: declare ``items = "Q{n}"``), and a long
layout (one row per item) whose columns are not mapped. Recognising a layout changes
only the message: nothing is renamed or reshaped unless the mapping declares it.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from crtstats.exceptions import ReasonCode
from crtstats.io import load_schema

__all__ = ["item_hint", "layout_hints"]

#: A name with one number in it: a prefix, the number (leading zeros allowed), a suffix.
_NUMBERED = re.compile(r"(\D*?)0*([1-9]\d?)(\D*)")


def _numbered_run(names: list[Any], n_items: int) -> tuple[str, list[str]] | None:
    """The pattern (``"Q{n}"``) most of ``names`` follow with item numbers 1..n_items,
    and the names that follow it, when at least half the items are there."""
    groups: dict[str, list[str]] = {}
    for name in names:
        match = _NUMBERED.fullmatch(name) if isinstance(name, str) else None
        if match and 1 <= int(match.group(2)) <= n_items:
            groups.setdefault(f"{match.group(1)}{{n}}{match.group(3)}", []).append(name)
    if not groups:
        return None
    pattern, found = max(groups.items(), key=lambda kv: len(set(kv[1])))
    return (pattern, found) if len(set(found)) * 2 >= n_items else None


def item_hint(values: list[Any], table: str) -> str | None:
    """A mapping line for long-format item names such as ``Q7``, or None."""
    items = _item_fields(table)
    run = _numbered_run(values, len(items))
    if run is None or run[0] == "{n}":
        return None
    return f"the item names look like {run[1][0]!r}: declare items = \"{run[0]}\" for {table}"


def _item_fields(table: str) -> list[str]:
    spec = load_schema(table).get("x-crtstats-long-format") or {}
    pattern = spec.get("fields")
    if not pattern:
        return []
    return [f["name"] for f in load_schema(table)["fields"] if re.fullmatch(pattern, f["name"])]


def _long_columns(df: pd.DataFrame, n_items: int) -> tuple[Any, str] | None:
    """The column whose values name most of the items (``Q1``.. or ``1``..: at least
    four in five of them), and its pattern."""
    best: tuple[Any, str] | None = None
    most = 0
    for j, column in enumerate(df.columns):  # by position: names may repeat
        values = [v for v in pd.unique(df.iloc[:, j].astype(object)) if not pd.isna(v)]
        if not 2 <= len(values) <= 2 * n_items:
            continue
        run = _numbered_run([str(v) for v in values], n_items)
        n = len(set(run[1])) if run is not None else 0
        if run is not None and n * 5 >= 4 * n_items and n > most:
            best, most = (column, run[0]), n
    return best


def layout_hints(failures: pd.DataFrame, df: pd.DataFrame, *, table: str) -> pd.DataFrame:
    """Replace the absent-item-column problems by one that names the layout found."""
    items = _item_fields(table)
    if not items or failures.empty:
        return failures
    absent = (failures["reason_code"] == str(ReasonCode.MISSING_COLUMN)) & failures[
        "column"].isin(items)
    if int(absent.sum()) < len(items) // 2:
        return failures
    spec = load_schema(table)["x-crtstats-long-format"]
    wide = _numbered_run(list(df.columns), len(items))
    span = f"{items[0]}..{items[-1]}"
    if wide is not None:
        case: dict[str, Any] = {"column": span, "value": f"{wide[1][0]}..{wide[1][-1]}",
                "reason_code": str(ReasonCode.MISSING_COLUMN),
                "check": f"{int(absent.sum())} item columns are absent; columns "
                f"{wide[1][0]!r}..{wide[1][-1]!r} look like the items: declare items = "
                f"\"{wide[0]}\" for {table} in the data mapping"}
    else:
        long = _long_columns(df, len(items))
        if long is None:
            return failures
        column, pattern = long
        items_line = "" if pattern == "{n}" else f", items = \"{pattern}\""
        case = {"column": str(column), "value": pd.NA,
                "reason_code": str(ReasonCode.LONG_FORMAT),
                "check": f"{table} is in long format (one row per item: column {column!r} "
                f"names the items); declare it in the data mapping: [{table}.columns] "
                f"\"{column}\" = \"{spec['key']}\", \"<score column>\" = \"{spec['value']}\""
                f"{items_line}"}
    hint = pd.DataFrame([{"table": table, "row": pd.NA, **case}])
    if case["reason_code"] == str(ReasonCode.LONG_FORMAT):  # a key repeats on every row
        absent = absent | (failures["reason_code"] == str(ReasonCode.DUPLICATE_KEY))
    kept = failures.loc[~absent]
    out = pd.concat([hint.astype({"row": "Int64", "value": object}), kept], ignore_index=True)
    return out[list(failures.columns)]
