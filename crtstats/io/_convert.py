"""Reading a column as its declared Frictionless type, flagging every unreadable value."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crtstats.exceptions import DataFileError, ReasonCode

__all__ = ["Conversion", "convert_column", "declared_dtype", "is_object", "missing_mask"]

#: pandas dtype of each Frictionless field type (dates are kept as ISO 8601 text).
_PANDAS_TYPES = {"string": "string", "integer": "Int64", "number": "Float64",
                 "boolean": "boolean", "date": "string"}

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TRUE = ("true", "True", "TRUE", "1")
_FALSE = ("false", "False", "FALSE", "0")
# integers beyond 2**53 cannot be read exactly through a float
_MAX_EXACT = 2.0**53


def declared_dtype(field: dict[str, Any]) -> str:
    """The pandas dtype that a Frictionless field's ``type`` is read as."""
    try:
        return _PANDAS_TYPES[field["type"]]
    except KeyError:
        raise DataFileError(
            f"schema field {field.get('name')!r} has type {field.get('type')!r}; crtstats "
            f"reads {', '.join(_PANDAS_TYPES)}."
        ) from None


@dataclass(frozen=True)
class Conversion:
    """A column read as its declared type.

    ``values`` has the declared dtype, with ``<NA>`` where the value was missing or
    unreadable; ``problems`` holds, per row, ``None`` or the :class:`ReasonCode` of an
    unreadable value (``type`` or ``not_integer``).
    """

    values: pd.Series
    problems: pd.Series

    @property
    def ok(self) -> bool:
        """True when every value was missing or readable."""
        return not bool(self.problems.notna().any())


def is_object(dtype: Any) -> bool:
    return isinstance(dtype, np.dtype) and dtype.kind == "O"


def missing_mask(values: pd.Series, missing: tuple[str, ...]) -> pd.Series:
    mask = values.isna()
    if is_object(values.dtype) or isinstance(values.dtype, pd.StringDtype):
        mask = mask | values.isin(list(missing))
    return mask.astype(bool)


def _kinds(values: pd.Series) -> pd.Series:
    """Classify the values of an object column: str, int, float, bool, date or other."""

    def kind(v: Any) -> str:
        if isinstance(v, bool | np.bool_):
            return "bool"
        if isinstance(v, str):
            return "str"
        if isinstance(v, int | np.integer):
            return "int"
        if isinstance(v, float | np.floating):
            return "float"
        if isinstance(v, dt.date):
            return "date"
        return "other"

    return values.map(kind).astype(object)


def _numbers(values: pd.Series, missing: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Numeric values (Float64) and a mask of present values that are not numbers."""
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return pd.Series(pd.NA, index=values.index, dtype="Float64"), ~missing
    if pd.api.types.is_numeric_dtype(dtype):
        return values.astype("Float64"), pd.Series(False, index=values.index)
    kinds = _kinds(values) if is_object(dtype) else None
    if kinds is None:  # text: parse each distinct value once
        codes, uniques = pd.factorize(values.astype("string").mask(missing))
        parsed = pd.to_numeric(pd.Series(uniques, dtype="string"), errors="coerce")
        lookup = np.append(parsed.astype("Float64").to_numpy(dtype=float, na_value=np.nan),
                           np.nan)  # code -1 (missing) takes the last entry
        num = pd.Series(lookup[codes], index=values.index, dtype="Float64")
        return num, ~missing & num.isna()
    numeric = kinds.isin(["int", "float"])
    text_like = kinds == "str"
    num = pd.Series(pd.NA, index=values.index, dtype="Float64")
    if numeric.any():
        num[numeric] = pd.to_numeric(values[numeric].astype(float)).astype("Float64")
    if text_like.any():
        num[text_like] = pd.to_numeric(
            values[text_like].astype("string"), errors="coerce"
        ).astype("Float64")
    bad = ~missing & ~(numeric | text_like)
    return num, bad | (~missing & text_like & num.isna())


def _to_integer(values: pd.Series, missing: pd.Series) -> Conversion:
    if pd.api.types.is_integer_dtype(values.dtype) and not pd.api.types.is_bool_dtype(
        values.dtype
    ):
        return Conversion(values.astype("Int64"), pd.Series(None, index=values.index,
                                                            dtype=object))
    num, unreadable = _numbers(values, missing)
    with np.errstate(invalid="ignore"):
        filled = num.fillna(0.0).to_numpy(dtype=float)
        finite = np.isfinite(filled) & (np.abs(filled) < _MAX_EXACT)
        whole = finite & (filled == np.floor(np.where(finite, filled, 0.0)))
    unreadable = unreadable | (~missing & ~unreadable & ~finite)
    not_whole = ~missing & ~unreadable & ~whole
    problems = pd.Series(None, index=values.index, dtype=object)
    problems[unreadable.to_numpy()] = ReasonCode.TYPE
    problems[not_whole.to_numpy()] = ReasonCode.NOT_INTEGER
    good = (~missing & problems.isna()).to_numpy()
    out = pd.Series(pd.NA, index=values.index, dtype="Int64")
    out[good] = filled[good].astype(np.int64)
    return Conversion(out, problems)


def _to_number(values: pd.Series, missing: pd.Series) -> Conversion:
    num, unreadable = _numbers(values, missing)
    filled = num.fillna(0.0).to_numpy(dtype=float)
    unreadable = unreadable | (~missing & ~np.isfinite(filled))
    problems = pd.Series(None, index=values.index, dtype=object)
    problems[unreadable.to_numpy()] = ReasonCode.TYPE
    return Conversion(num.mask(missing | unreadable), problems)


def _to_string(values: pd.Series, missing: pd.Series) -> Conversion:
    problems = pd.Series(None, index=values.index, dtype=object)
    dtype = values.dtype
    if isinstance(dtype, pd.StringDtype):
        return Conversion(values.astype("string").mask(missing), problems)
    if pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        return Conversion(values.astype("string").mask(missing), problems)
    if pd.api.types.is_float_dtype(dtype):  # e.g. ids 3.0 from a spreadsheet
        values = values.astype(object)
    elif not is_object(dtype):
        problems[(~missing).to_numpy()] = ReasonCode.TYPE
        return Conversion(pd.Series(pd.NA, index=values.index, dtype="string"), problems)
    kinds = _kinds(values)
    whole = kinds.eq("float") & values.map(_is_whole_float).astype(bool)
    ok = missing | kinds.isin(["str", "int"]) | whole
    problems[(~ok).to_numpy()] = ReasonCode.TYPE
    text = values.where(ok & ~missing).map(
        lambda v: v if pd.isna(v) else str(int(v)) if isinstance(v, float | np.floating)
        else str(v))
    return Conversion(text.astype("string"), problems)


def _is_whole_float(v: Any) -> bool:
    """A float that an Excel reader gives for a whole number (``3.0`` for ``3``)."""
    if not isinstance(v, float | np.floating) or not np.isfinite(v):
        return False
    number = float(v)
    return abs(number) < _MAX_EXACT and number == int(number)


def _to_date(values: pd.Series, missing: pd.Series) -> Conversion:
    """ISO 8601 dates as text: YYYY-MM-DD, or a date-time at midnight."""
    obj = values.astype(object)
    kinds = _kinds(obj)

    def iso(v: Any) -> Any:
        if isinstance(v, str):
            if _DATE.fullmatch(v) is None:
                return None
            try:
                dt.date.fromisoformat(v)
            except ValueError:
                return None
            return v
        if isinstance(v, dt.datetime):
            return v.date().isoformat() if v.time() == dt.time() and v.tzinfo is None else None
        return v.isoformat() if isinstance(v, dt.date) else None

    present = ~missing & kinds.isin(["str", "date"])
    text = obj.where(present).map(lambda v: None if pd.isna(v) else iso(v))
    problems = pd.Series(None, index=values.index, dtype=object)
    problems[(~missing & text.isna()).to_numpy()] = ReasonCode.TYPE
    return Conversion(text.astype("string"), problems)


def _to_boolean(values: pd.Series, missing: pd.Series) -> Conversion:
    if pd.api.types.is_bool_dtype(values.dtype):
        return Conversion(values.astype("boolean"),
                          pd.Series(None, index=values.index, dtype=object))
    obj = values.astype(object)
    text = obj.map(lambda v: v if isinstance(v, str) else None)
    flags = obj.map(lambda v: bool(v) if isinstance(v, bool | np.bool_) else None)
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    out[(text.isin(_TRUE) | flags.eq(True)).to_numpy()] = True
    out[(text.isin(_FALSE) | flags.eq(False)).to_numpy()] = False
    problems = pd.Series(None, index=values.index, dtype=object)
    problems[(~missing & out.isna()).to_numpy()] = ReasonCode.TYPE
    return Conversion(out, problems)


_CONVERTERS = {"string": _to_string, "integer": _to_integer, "number": _to_number,
               "date": _to_date, "boolean": _to_boolean}


def convert_column(
    values: pd.Series, field: dict[str, Any], *, missing_values: tuple[str, ...] = ("",)
) -> Conversion:
    """Read one column as the type its schema field declares, flagging unreadable values.

    Parameters
    ----------
    values
        The column, of any dtype.
    field
        The Frictionless field (its ``type`` decides the conversion).
    missing_values
        Text values that mean "missing" (the schema's ``missingValues``).

    Returns
    -------
    Conversion
        The converted column and, per row, the reason a value could not be read.

    Raises
    ------
    DataFileError
        If the field's ``type`` is not one crtstats reads.

    Notes
    -----
    Text and dates become ``string``; integers become ``Int64`` (a number written with
    a decimal point is accepted when it is whole, ``3.0``; ``2.5`` is ``not_integer``);
    numbers become ``Float64`` (finite only); booleans accept ``true``/``false`` in the
    Frictionless spellings, ``1``/``0`` and Python or NumPy booleans. Whole numbers in a
    text field become their decimal text, floats included (``3.0`` becomes ``"3"``, as
    an Excel number cell is read, so an id column that pandas made float matches the
    same ids read from a file); other non-text values in a text field are ``type`` problems.
    Missing values are ``NaN``, ``None``, ``<NA>`` and the listed ``missing_values``.

    References
    ----------
    Frictionless Table Schema, field types, https://specs.frictionlessdata.io/table-schema/

    Examples
    --------
    Like ``readr::parse_integer()`` in R, which also reports the values it cannot read:

    >>> conv = convert_column(pd.Series(["1", "x", "", "2.5"]), {"type": "integer"})
    >>> conv.values.tolist()
    [1, <NA>, <NA>, <NA>]
    >>> {row: str(reason) for row, reason in conv.problems.dropna().items()}
    {1: 'type', 3: 'not_integer'}
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
    missing = missing_mask(values, missing_values)
    declared_dtype(field)  # an unknown type is a schema error
    return _CONVERTERS[field["type"]](values, missing)
