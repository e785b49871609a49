"""Checks across the tables of a trial: foreign keys and repeated team attributes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from crtstats.exceptions import ReasonCode
from crtstats.io import convert_column, load_schema

__all__ = ["cross_table_problems"]

#: The reason code of a foreign key that is not found, by the table it refers to.
_FK_REASON = {"teams": ReasonCode.UNKNOWN_TEAM}


def _frame(table: str, rows: np.ndarray, column: str, values: Any, check: Any,
           reason: ReasonCode) -> pd.DataFrame:
    return pd.DataFrame({"table": table, "row": rows, "column": column,
                         "value": values, "check": check, "reason_code": str(reason)})


def _foreign_keys(table: str, data: pd.DataFrame, tables: dict[str, pd.DataFrame]
                  ) -> list[pd.DataFrame]:
    out = []
    for fk in load_schema(table).get("foreignKeys", []):
        ref = fk["reference"]
        target = tables.get(ref["resource"])
        fields, ref_fields = list(fk["fields"]), list(ref["fields"])
        if target is None or not all(f in data for f in fields) or not all(
            f in target for f in ref_fields
        ):
            continue
        mine = pd.MultiIndex.from_frame(data[fields].astype(object))
        known = pd.MultiIndex.from_frame(target[ref_fields].astype(object))
        present = data[fields].notna().all(axis=1).to_numpy()
        rows = np.flatnonzero(present & ~mine.isin(known))
        if len(rows) == 0:
            continue
        values = data[fields].iloc[rows].astype(object)
        shown = values.iloc[:, 0] if len(fields) == 1 else list(values.itertuples(
            index=False, name=None))
        out.append(_frame(table, rows, ", ".join(fields), np.asarray(shown, dtype=object),
                          f"must appear in {ref['resource']} ({', '.join(ref_fields)})",
                          _FK_REASON.get(ref["resource"], ReasonCode.UNKNOWN_TEAM)))
    return out


def _repeated(table: str, data: pd.DataFrame, teams: pd.DataFrame) -> list[pd.DataFrame]:
    """Team attributes (arm, stratum, ...) repeated in another table must agree."""
    schema = load_schema("teams")
    key = list(schema["primaryKey"])
    out: list[pd.DataFrame] = []
    if not all(k in data and k in teams for k in key) or teams[key].duplicated().any():
        return out
    lookup = teams.set_index(key)
    for field in schema["fields"]:
        name = field["name"]
        if name in key or name not in data or name not in teams:
            continue
        mine = convert_column(data[name], field).values.reset_index(drop=True)
        index = pd.MultiIndex.from_frame(data[key].astype(object)) if len(key) > 1 else \
            pd.Index(data[key[0]].astype(object))
        theirs = lookup[name].reindex(index).reset_index(drop=True)
        present = mine.notna().to_numpy(dtype=bool) & theirs.notna().to_numpy(dtype=bool)
        differ = np.zeros(len(mine), dtype=bool)
        differ[present] = (mine.astype(object).to_numpy()[present]
                           != theirs.astype(object).to_numpy()[present])
        rows = np.flatnonzero(differ)
        if len(rows) == 0:
            continue
        checks = [f"{name} of this team in teams is {v!r}" for v in theirs.iloc[rows]]
        out.append(_frame(table, rows, name, data[name].iloc[rows].astype(object).to_numpy(),
                          checks, ReasonCode.INCONSISTENT))
    return out


def cross_table_problems(tables: dict[str, pd.DataFrame]) -> list[pd.DataFrame]:
    """Failure-case frames for foreign keys and repeated team attributes.

    ``tables`` holds each supplied table with its declared dtypes (``<NA>`` where a
    value was unreadable). Rows are 0-based positions in each table.
    """
    out: list[pd.DataFrame] = []
    # a table with a repeated column name is already reported (duplicate_column) and
    # cannot be matched against another table
    tables = {name: data for name, data in tables.items() if data.columns.is_unique}
    teams = tables.get("teams")
    for table, data in tables.items():
        out += _foreign_keys(table, data, tables)
        if teams is not None and table != "teams":
            out += _repeated(table, data, teams)
    return out
