"""Checks of a questionnaire table's item scores against an instrument key.

Every bad cell is collected before anything is raised, as validation does: absent
columns, values that are not numbers or not whole, values outside the key's item range,
``responded`` values that are not true or false, and item scores on a row marked
``responded = false``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crtstats.exceptions import InvalidParameterError, ReasonCode, SchemaValidationError
from crtstats.io import convert_column
from crtstats.scales._instrument_types import InstrumentKey

__all__ = ["ID_COLUMNS", "CheckedItems", "check_questionnaire", "table_of"]

#: The id column of each questionnaire table.
ID_COLUMNS = {"user_questionnaires": "respondent_id", "staff_questionnaires": "staff_id"}


def table_of(frame: pd.DataFrame) -> tuple[str, str | None]:
    """The questionnaire table ``frame`` is (by its id column), and that column."""
    for table, column in ID_COLUMNS.items():
        if column in frame.columns:
            return table, column
    return "questionnaires", None


@dataclass(frozen=True)
class CheckedItems:
    """A questionnaire table's item scores in key order (float, NaN = missing) and
    whether each row responded."""

    values: np.ndarray
    responded: np.ndarray
    table: str
    id_column: str | None


def _case(table: str, row: Any, column: str, value: Any, check: str,
          code: ReasonCode) -> dict[str, Any]:
    return {"table": table, "row": row, "column": column, "value": value, "check": check,
            "reason_code": str(code)}


def _column(frame: pd.DataFrame, name: str, key: InstrumentKey, table: str
            ) -> tuple[np.ndarray, list[dict[str, Any]]]:
    raw = frame[name]
    if pd.api.types.is_bool_dtype(raw.dtype):
        bad = raw.notna().to_numpy(dtype=bool)
        values = np.full(len(raw), np.nan)
    else:
        conv = convert_column(raw, {"name": name, "type": "number"})
        values = conv.values.to_numpy(dtype=float, na_value=np.nan)
        bad = conv.problems.notna().to_numpy(dtype=bool)
    cases = [_case(table, int(i), name, raw.iloc[i], "item score is a number",
                   ReasonCode.TYPE) for i in np.flatnonzero(bad)]
    with np.errstate(invalid="ignore"):
        checks = ((np.isfinite(values) & (values != np.round(values)),
                   "item score is a whole number", ReasonCode.NOT_INTEGER),
                  (values < key.item_min, f"item score >= {key.item_min}", ReasonCode.MINIMUM),
                  (values > key.item_max, f"item score <= {key.item_max}", ReasonCode.MAXIMUM))
    for failed, check, code in checks:
        cases += [_case(table, int(i), name, raw.iloc[i], f"{check} (instrument {key.key})",
                        code) for i in np.flatnonzero(failed)]
        values[failed] = np.nan
    return values, cases


def _responded(frame: pd.DataFrame, table: str) -> tuple[np.ndarray, list[dict[str, Any]]]:
    if "responded" not in frame.columns:
        return np.ones(len(frame), dtype=bool), []
    raw = frame["responded"]
    conv = convert_column(raw, {"name": "responded", "type": "boolean"})
    values = conv.values
    cases = [_case(table, int(i), "responded", raw.iloc[i], "must be true or false",
                   ReasonCode.TYPE if conv.problems.iloc[i] is not None else ReasonCode.REQUIRED)
             for i in np.flatnonzero(values.isna().to_numpy())]
    return values.fillna(True).to_numpy(dtype=bool), cases


def check_questionnaire(frame: pd.DataFrame, key: InstrumentKey) -> CheckedItems:
    """Check a questionnaire table against ``key`` and return its item scores.

    Raises
    ------
    InvalidParameterError
        If ``frame`` is not a DataFrame or repeats a column name.
    SchemaValidationError
        With one failure case per problem (``row`` = 0-based position).
    """
    if not isinstance(frame, pd.DataFrame):
        raise InvalidParameterError(
            f"the questionnaire table must be a pandas DataFrame; got {type(frame).__name__}."
        )
    repeated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if repeated:
        raise InvalidParameterError(f"the questionnaire table has repeated column names "
                                    f"{repeated}; give every column a unique name.")
    table, id_column = table_of(frame)
    cases = [_case(table, pd.NA, name, pd.NA, f"column present (instrument {key.key})",
                   ReasonCode.MISSING_COLUMN)
             for name in ("team_id", "wave", *key.columns) if name not in frame.columns]
    values = np.full((len(frame), key.n_items), np.nan)
    for j, name in enumerate(key.columns):
        if name in frame.columns:
            values[:, j], found = _column(frame, name, key, table)
            cases += found
    responded, found = _responded(frame, table)
    cases += found
    answered = ~np.isnan(values) & ~responded[:, None]
    for i, j in zip(*np.nonzero(answered), strict=True):
        name = key.columns[j]
        cases.append(_case(table, int(i), name, frame[name].iloc[i],
                           "empty where responded is false (a non-responder has no item "
                           "scores)", ReasonCode.NONRESPONSE_ITEMS))
    if cases:
        cases.sort(key=lambda c: (-1 if c["row"] is pd.NA else c["row"], str(c["column"])))
        raise SchemaValidationError.from_cases(cases, subject=f"{table} items ({key.key})")
    return CheckedItems(values, responded, table, id_column)
