"""Checks of item scores against a scale key, reporting every bad cell at once."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from crtstats.exceptions import InvalidParameterError, ReasonCode, SchemaValidationError
from crtstats.io import convert_column
from crtstats.scales._key import ScaleKey

__all__ = ["check_item_scores"]

#: Columns a fidelity table must have besides the item columns.
ID_COLUMNS = ("team_id", "review")


def _case(row: Any, column: str, value: Any, check: str, code: ReasonCode) -> dict[str, Any]:
    return {"table": "fidelity", "row": row, "column": column, "value": value,
            "check": check, "reason_code": code}


def _is_numeric(column: pd.Series) -> bool:
    dtype = column.dtype
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def _column_values(column: pd.Series) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """A non-numeric column as float64 (NaN = missing) and TYPE cases for bad cells.

    Text is read as :func:`crtstats.io.convert_column` reads a ``number`` field, so a
    cell is a number here exactly when it is one for :func:`crtstats.validate`.
    """
    name = str(column.name)
    if pd.api.types.is_bool_dtype(column.dtype):
        values = np.full(len(column), np.nan)
        bad = column.notna().to_numpy(dtype=bool)
    else:
        conversion = convert_column(column, {"name": name, "type": "number"})
        values = conversion.values.to_numpy(dtype=float, na_value=np.nan)
        bad = conversion.problems.notna().to_numpy(dtype=bool)
    cases = [
        _case(int(i), name, column.iloc[i], "item score is a number", ReasonCode.TYPE)
        for i in np.flatnonzero(bad)
    ]
    return values, cases


def _item_matrix(fidelity: pd.DataFrame, key: ScaleKey) -> tuple[np.ndarray,
                                                                   list[dict[str, Any]]]:
    """Item scores as a float64 matrix in key order, and TYPE cases; absent columns NaN."""
    scores = np.full((len(fidelity), key.n_items), np.nan)
    position = [j for j, name in enumerate(key.columns) if name in fidelity.columns]
    numeric = [j for j in position if _is_numeric(fidelity[key.columns[j]])]
    if numeric:
        block = fidelity[[key.columns[j] for j in numeric]]
        scores[:, numeric] = block.to_numpy(dtype=float, na_value=np.nan)
    cases: list[dict[str, Any]] = []
    for i, j in zip(*np.nonzero(np.isinf(scores)), strict=True):
        name = key.columns[j]
        cases.append(_case(int(i), name, fidelity[name].iloc[i],
                           "item score is a finite number", ReasonCode.TYPE))
        scores[i, j] = np.nan
    for j in sorted(set(position) - set(numeric)):
        scores[:, j], type_cases = _column_values(fidelity[key.columns[j]])
        cases += type_cases
    return scores, cases


def _range_cases(scores: np.ndarray, fidelity: pd.DataFrame,
                 key: ScaleKey) -> list[dict[str, Any]]:
    with np.errstate(invalid="ignore"):
        checks = (
            (np.isfinite(scores) & (scores != np.round(scores)),
             "item score is a whole number", ReasonCode.NOT_INTEGER),
            (scores < key.item_min, f"item score >= {key.item_min}", ReasonCode.MINIMUM),
            (scores > key.item_max, f"item score <= {key.item_max}", ReasonCode.MAXIMUM),
        )
    cases = []
    for failed, check, code in checks:
        for i, j in zip(*np.nonzero(failed), strict=True):
            name = key.columns[j]
            cases.append(_case(int(i), name, fidelity[name].iloc[i],
                               f"{check} (scale {key.key})", code))
    return cases


def _version_cases(fidelity: pd.DataFrame, key: ScaleKey) -> list[dict[str, Any]]:
    if "scale_version" not in fidelity.columns:
        return []
    version = fidelity["scale_version"]
    wrong = (version.notna() & (version.astype("string") != key.key)).to_numpy(dtype=bool)
    return [
        _case(int(i), "scale_version", version.iloc[i],
              f"scale_version equals the key used to score ({key.key!r})", ReasonCode.ENUM)
        for i in np.flatnonzero(wrong)
    ]


def check_item_scores(fidelity: pd.DataFrame, key: ScaleKey) -> np.ndarray:
    """Check a wide fidelity table against ``key`` and return its item scores.

    Every problem is collected before anything is raised: absent identifier or item
    columns (``MISSING_COLUMN``), cells that are not numbers (``TYPE``), scores that
    are not whole numbers (``NOT_INTEGER``) or fall outside the key's item range
    (``MINIMUM``, ``MAXIMUM``), and a ``scale_version`` naming another key (``ENUM``).
    Empty cells are missing items, not problems.

    Parameters
    ----------
    fidelity
        The wide fidelity table.
    key
        The scale key to check against.

    Returns
    -------
    numpy.ndarray
        Float64 scores, one row per table row and one column per item in key order,
        NaN where an item is missing.

    Raises
    ------
    InvalidParameterError
        If ``fidelity`` is not a DataFrame or its column names repeat.
    SchemaValidationError
        With one failure case per problem (row = 0-based position).

    Examples
    --------
    >>> import pandas as pd
    >>> from crtstats.scales import load_scale
    >>> key = load_scale("core_crt_v2")
    >>> row = {"team_id": "T1", "review": "baseline", **dict.fromkeys(key.columns, 3)}
    >>> check_item_scores(pd.DataFrame([row]), key).sum()
    np.float64(117.0)
    """
    if not isinstance(fidelity, pd.DataFrame):
        raise InvalidParameterError(
            f"fidelity must be a pandas DataFrame; got {type(fidelity).__name__}."
        )
    repeated = sorted({str(c) for c in fidelity.columns[fidelity.columns.duplicated()]})
    if repeated:
        raise InvalidParameterError(f"fidelity has repeated column names {repeated}; "
                                    "give every column a unique name.")
    cases = [
        _case(pd.NA, name, pd.NA, f"column present (scale {key.key})",
              ReasonCode.MISSING_COLUMN)
        for name in (*ID_COLUMNS, *key.columns) if name not in fidelity.columns
    ]
    scores, type_cases = _item_matrix(fidelity, key)
    cases += type_cases + _range_cases(scores, fidelity, key) + _version_cases(fidelity, key)
    if cases:
        cases.sort(key=lambda c: (-1 if c["row"] is pd.NA else c["row"], str(c["column"])))
        raise SchemaValidationError.from_cases(cases, subject=f"fidelity items ({key.key})")
    return scores
