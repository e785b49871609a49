"""Reshaping declared by the schemas: long-format fidelity to wide, service use from
admissions. The rules (column names, item naming, aggregations) come from the
``x-crtstats-long-format`` and ``x-crtstats-derived-from`` entries of the JSON files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crtstats.exceptions import ReasonCode
from crtstats.io import load_schema
from crtstats.schema._hints import item_hint

__all__ = ["LongPivot", "derive_table", "is_long_format", "long_row", "pivot_long"]


def _long_spec(table: str) -> dict[str, Any] | None:
    spec: dict[str, Any] | None = load_schema(table).get("x-crtstats-long-format")
    return spec


def is_long_format(df: pd.DataFrame, *, table: str) -> bool:
    """True when ``df`` has the long-format key and value columns and no wide item column."""
    spec = _long_spec(table)
    if spec is None:
        return False
    pattern = re.compile(spec["fields"])
    wide = any(isinstance(c, str) and pattern.fullmatch(c) for c in df.columns)
    return spec["key"] in df.columns and spec["value"] in df.columns and not wide


@dataclass(frozen=True)
class LongPivot:
    """A long table pivoted to wide, with the long row behind every wide cell.

    ``wide`` has one row per key in order of first appearance; ``cell_rows`` has the
    same shape for the item columns (the long row of each score, ``-1`` if absent);
    ``key_rows`` the first long row of each wide row; ``problems`` the failure cases
    found in the long layout itself (unknown items, repeated items, inconsistent
    review-level values).
    """

    wide: pd.DataFrame
    cell_rows: pd.DataFrame
    key_rows: np.ndarray
    problems: list[dict[str, Any]]
    value_column: str


def _case(table: str, row: Any, column: str, value: Any, check: str,
          reason: ReasonCode) -> dict[str, Any]:
    return {"table": table, "row": row, "column": column, "value": value, "check": check,
            "reason_code": str(reason)}


def _item_names(items: pd.Series, spec: dict[str, Any], fields: list[str]) -> pd.Series:
    """Each long row's wide column name, or ``None`` for an item that is not a field."""
    pattern = re.compile(spec["fields"])
    known = {f for f in fields if pattern.fullmatch(f)}

    def name(v: Any) -> str | None:
        if isinstance(v, str) and v in known:
            return v
        text = str(v).strip() if isinstance(v, str | int | np.integer) else ""
        if text.isdigit():
            candidate = str(spec["numbered"]).format(int(text))
            return candidate if candidate in known else None
        return None

    return items.astype(object).map(name)


def pivot_long(df: pd.DataFrame, *, table: str) -> LongPivot:
    """Pivot long-format rows (key columns, item, score) to one row per key."""
    schema = load_schema(table)
    spec = _long_spec(table)
    if spec is None:
        raise ValueError(f"table {table} has no long format")
    fields = [f["name"] for f in schema["fields"]]
    key = list(schema["primaryKey"])
    item_col, value_col = spec["key"], spec["value"]
    problems: list[dict[str, Any]] = []
    frame = df.reset_index(drop=True)
    names = _item_names(frame[item_col], spec, fields)
    unknown = np.flatnonzero(names.isna().to_numpy())
    check = f"an item name matching {spec['fields']}, or its number"
    hint = item_hint(list(pd.unique(frame[item_col].iloc[unknown].astype(object))), table)
    check = f"{check}; {hint} in the data mapping" if hint else check
    for row in unknown:
        problems.append(_case(table, int(row), item_col, frame[item_col].iloc[row], check,
                              ReasonCode.ENUM))
    present = [k for k in key if k in frame]
    group = frame[present].astype(object).fillna("\x00<NA>")
    group_id = (pd.MultiIndex.from_frame(group).factorize()[0] if present
                else np.zeros(len(frame), dtype=np.intp))
    ok = names.notna().to_numpy()
    cell = pd.DataFrame({"g": group_id, "item": names, "row": np.arange(len(frame))})[ok]
    # without the whole key (reported as a missing column) rows cannot be told apart
    complete = len(present) == len(key)
    repeated = cell.duplicated(["g", "item"], keep=False).to_numpy() & complete
    for row in cell["row"].to_numpy()[repeated]:
        problems.append(_case(table, int(row), item_col, frame[item_col].iloc[row],
                              f"one {value_col} per {', '.join(key)} and {item_col}",
                              ReasonCode.DUPLICATE_KEY))
    cell = cell.drop_duplicates(["g", "item"], keep="first")
    n_groups = int(group_id.max()) + 1 if len(group_id) else 0
    # factorize numbers groups in order of first appearance: the first row of each
    key_rows = np.unique(group_id, return_index=True)[1].astype(np.int64)
    other = [c for c in frame.columns if c not in (item_col, value_col)]
    if complete:
        problems += _inconsistent(frame, other, key, group_id, key_rows, table)
    wide = frame.loc[key_rows, other].reset_index(drop=True)
    cell_rows = pd.DataFrame(-1, index=range(n_groups), columns=[
        f for f in fields if re.fullmatch(spec["fields"], f)])
    values = frame[value_col].astype(object)
    for item, grp in cell.groupby("item", sort=False):
        cell_rows.loc[grp["g"].to_numpy(), item] = grp["row"].to_numpy()
    if len(cell):  # an item with no row at all is an absent column, as in wide format
        for item in cell_rows.columns:
            if not bool((cell_rows[item] >= 0).any()):
                problems.append(_case(table, pd.NA, item, pd.NA,
                                      f"no {item_col} row names {item} (long format)",
                                      ReasonCode.MISSING_COLUMN))
    for item in cell_rows.columns:
        rows = cell_rows[item].to_numpy()
        col = values.reindex(rows).to_numpy()  # row -1 is absent: missing
        wide[item] = pd.Series(col, dtype=object)
    return LongPivot(wide, cell_rows, key_rows, problems, value_col)


def _inconsistent(frame: pd.DataFrame, columns: list[Any], key: list[str],
                  group_id: np.ndarray, key_rows: np.ndarray, table: str
                  ) -> list[dict[str, Any]]:
    """Rows whose review-level value differs from the most common value of their review
    (the first of the most common, in row order, on a tie)."""
    out = []
    for col in columns:
        if col in key:
            continue
        values = frame[col].astype(object)
        text = values.map(lambda v: "\x00<NA>" if pd.isna(v) else repr(v))
        cells = pd.DataFrame({"g": group_id, "v": text.to_numpy()})
        counts = cells.groupby(["g", "v"], sort=False)["v"].transform("size")
        best = counts.groupby(cells["g"]).transform("max")
        modal = cells["v"].where(counts == best).groupby(cells["g"]).transform("first")
        for row in np.flatnonzero((cells["v"] != modal).to_numpy()):
            out.append(_case(table, int(row), str(col), values.iloc[row],
                             f"one {col} per {', '.join(key)}", ReasonCode.INCONSISTENT))
    return out


def long_row(pivot: LongPivot, row: Any, column: Any) -> tuple[Any, Any]:
    """The long row and column behind a problem found in the wide table."""
    if pd.isna(row):
        return row, column
    if column in pivot.cell_rows.columns:
        long = int(pivot.cell_rows[column].iloc[int(row)])
        return (long if long >= 0 else int(pivot.key_rows[int(row)])), pivot.value_column
    return int(pivot.key_rows[int(row)]), column


def derive_table(table: str, sources: dict[str, pd.DataFrame],
                 order: dict[str, list[Any]]) -> pd.DataFrame | None:
    """Derive ``table`` from the table its schema names in ``x-crtstats-derived-from``.

    Counts are the number of rows with a value, sums are taken over the group and are
    ``<NA>`` when any value in the group is missing. Groups are sorted by ``order``
    (the order of each grouping column's values, e.g. teams as listed, periods as the
    schema's ``enum``). Returns None when the source table is not given.
    """
    spec = load_schema(table)["x-crtstats-derived-from"]
    source = sources.get(spec["resource"])
    if source is None:
        return None
    by = list(spec["groupBy"])
    grouped = source.groupby(by, sort=False, dropna=False)
    out = grouped.size().rename("__n").reset_index()[by]
    for target, agg in spec["fields"].items():
        (how, column), = agg.items()
        if column not in source:
            continue
        if how == "count":
            out[target] = grouped[column].count().to_numpy()
        else:
            sums = grouped[column].sum().to_numpy()
            gaps = source[column].isna().groupby([source[c] for c in by], sort=False,
                                                 dropna=False).any().to_numpy()
            out[target] = pd.Series(sums, dtype="Int64").mask(gaps).to_numpy()
    for name in out.columns[len(by):]:
        out[name] = out[name].astype("Int64")
    rank = [out[c].map({v: i for i, v in enumerate(order.get(c, []))}) for c in by]
    out = out.assign(**{f"__r{i}": r for i, r in enumerate(rank)})
    out = out.sort_values([f"__r{i}" for i in range(len(by))], kind="stable")
    return out.drop(columns=[f"__r{i}" for i in range(len(by))]).reset_index(drop=True)
