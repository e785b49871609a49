"""Item columns: extra columns of a table that hold item scores of a keyed instrument.

A schema's ``x-crtstats-item-columns`` entry gives the pattern of their names (e.g.
``csq8_01``), their type (whole numbers) and, under ``emptyWhere``, the rows on which
they must be empty (a non-responder has no item scores). Their range is the
instrument key's business and is checked when the items are scored.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from crtstats.exceptions import ReasonCode
from crtstats.io import convert_column

__all__ = ["item_column_names", "item_problems"]


def item_column_names(columns: list[Any], spec: dict[str, Any] | None,
                      declared: dict[str, Any]) -> list[str]:
    """The columns whose names follow the item pattern (declared fields excluded)."""
    if not spec:
        return []
    pattern = re.compile(str(spec["pattern"]))
    return [c for c in columns if isinstance(c, str) and c not in declared
            and pattern.fullmatch(c) is not None and columns.count(c) == 1]


def _frame(table: str, rows: np.ndarray, column: str, values: Any, check: str,
           reason: Any) -> pd.DataFrame:
    return pd.DataFrame({"table": table, "row": rows, "column": column, "value": values,
                         "check": check, "reason_code": reason})


def item_problems(frame: pd.DataFrame, work: pd.DataFrame, table: str,
                  spec: dict[str, Any] | None, declared: dict[str, Any],
                  missing_values: tuple[str, ...]
                  ) -> tuple[dict[str, pd.Series], list[pd.DataFrame]]:
    """The item columns typed (``Int64``, where every value is readable) and the
    problems: values that are not whole numbers, and item scores on rows where the
    ``emptyWhere`` rule says there are none."""
    names = item_column_names(list(frame.columns), spec, declared)
    if not names or spec is None:
        return {}, []
    field = {"type": spec.get("type", "integer")}
    typed: dict[str, pd.Series] = {}
    out: list[pd.DataFrame] = []
    present = np.zeros((len(frame), len(names)), dtype=bool)
    for j, name in enumerate(names):
        raw = frame[name]
        conv = convert_column(raw, field, missing_values=missing_values)
        present[:, j] = conv.values.notna().to_numpy(dtype=bool) | conv.problems.notna(
            ).to_numpy(dtype=bool)
        if conv.ok:
            typed[name] = conv.values.reset_index(drop=True)
            continue
        bad = np.flatnonzero(conv.problems.notna().to_numpy())
        out.append(_frame(table, bad, name, raw.iloc[bad].astype(object).to_numpy(),
                          "an item score: a whole number, or empty for a missing item",
                          conv.problems.iloc[bad].astype(str).to_numpy()))
    rule = spec.get("emptyWhere")
    if rule and rule["field"] in work:
        where = (work[rule["field"]] == rule["equals"]).fillna(False).to_numpy(dtype=bool)
        rows, cols = np.nonzero(present & where[:, None])
        if len(rows):
            values = [frame[names[j]].iloc[i] for i, j in zip(rows, cols, strict=True)]
            out.append(pd.DataFrame({
                "table": table, "row": rows, "column": [names[j] for j in cols],
                "value": pd.Series(values, dtype=object).to_numpy(),
                "check": f"empty where {rule['field']} is {str(rule['equals']).lower()} "
                         "(a non-responder has no item scores)",
                "reason_code": str(ReasonCode.NONRESPONSE_ITEMS)}))
    return typed, out
