"""Reading trial tables from CSV, Parquet and Excel with the dtypes their schema declares.

Reading never changes a value the schema cannot represent: a column whose every value
can be read as its declared type gets that dtype (``string`` for text and dates,
``Int64`` for integers, ``Float64`` for numbers, ``boolean`` for booleans); a column
with any unreadable value is kept as text so that :func:`crtstats.validate` can report
each unreadable value with its row, column and value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crtstats._options import check_option
from crtstats._resources import schema_dir
from crtstats._safety import check_not_input, neutralise_formula, neutralise_formulas, printable
from crtstats.exceptions import DataFileError, InvalidParameterError, ReasonCode

__all__ = [
    "TABLES",
    "Conversion",
    "TableFile",
    "check_not_input",
    "convert_column",
    "declared_dtype",
    "load_schema",
    "neutralise_formula",
    "neutralise_formulas",
    "printable",
    "read_table",
    "write_csv",
    "write_files",
]

#: The tables of the data model.
TABLES = ("teams", "fidelity", "admissions", "service_use")

#: pandas dtype of each Frictionless field type (dates are kept as ISO 8601 text).
_PANDAS_TYPES = {"string": "string", "integer": "Int64", "number": "Float64",
                 "boolean": "boolean", "date": "string"}

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TRUE = ("true", "True", "TRUE", "1")
_FALSE = ("false", "False", "FALSE", "0")
# integers beyond 2**53 cannot be read exactly through a float
_MAX_EXACT = 2.0**53


@cache
def _load_schema(table: str) -> dict[str, Any]:
    path = schema_dir() / f"{table}.schema.json"
    with path.open(encoding="utf-8") as fh:
        schema: dict[str, Any] = json.load(fh)
    return schema


def load_schema(table: str) -> dict[str, Any]:
    """The Frictionless Table Schema of ``table`` as a dict (a fresh copy)."""
    check_option("table", table, TABLES)
    copy: dict[str, Any] = json.loads(json.dumps(_load_schema(table)))
    return copy


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


def _is_object(dtype: Any) -> bool:
    return isinstance(dtype, np.dtype) and dtype.kind == "O"


def _missing_mask(values: pd.Series, missing: tuple[str, ...]) -> pd.Series:
    mask = values.isna()
    if _is_object(values.dtype) or isinstance(values.dtype, pd.StringDtype):
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
    kinds = _kinds(values) if _is_object(dtype) else None
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
    if not _is_object(dtype):
        problems[(~missing).to_numpy()] = ReasonCode.TYPE
        return Conversion(pd.Series(pd.NA, index=values.index, dtype="string"), problems)
    kinds = _kinds(values)
    ok = missing | kinds.isin(["str", "int"])
    problems[(~ok).to_numpy()] = ReasonCode.TYPE
    text = values.where(ok & ~missing).map(lambda v: v if pd.isna(v) else str(v))
    return Conversion(text.astype("string"), problems)


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
    text = values.astype(object).map(lambda v: v if isinstance(v, str) else None)
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    out[text.isin(_TRUE).to_numpy()] = True
    out[text.isin(_FALSE).to_numpy()] = False
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
    Frictionless spellings and ``1``/``0``. Whole numbers in a text field become their
    decimal text; other non-text values in a text field are ``type`` problems.
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
    missing = _missing_mask(values, missing_values)
    declared_dtype(field)  # an unknown type is a schema error
    return _CONVERTERS[field["type"]](values, missing)


@dataclass(frozen=True)
class TableFile:
    """A table read from a file, with its provenance."""

    data: pd.DataFrame
    table: str
    path: Path
    sha256: str
    n_rows: int


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _with_header(raw: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Use the first row as the header, refusing a file with repeated column names."""
    if raw.shape[0] == 0:
        raise DataFileError(f"{path.name} is empty: it has no header row.")
    names = [str(v).strip("\ufeff") if not pd.isna(v) else "" for v in raw.iloc[0]]
    if names.count("") > 1:
        raise DataFileError(
            f"{path.name} has {names.count('')} columns without a name (often empty columns "
            "left at the right of a spreadsheet); delete them or give them names."
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DataFileError(
            f"{path.name} has repeated column name(s) {repeated}; give every column a "
            "unique name."
        )
    data = raw.iloc[1:].reset_index(drop=True)
    data.columns = pd.Index(names, dtype=object)
    return data


def _read_raw(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt"):
            raw = pd.read_csv(path, dtype=str, header=None, keep_default_na=False,
                              engine="pyarrow", encoding="utf-8")
            return _with_header(raw, path)
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix in (".xlsx", ".xlsm"):
            raw = pd.read_excel(path, header=None, dtype=object)
            return _with_header(raw, path)
    except DataFileError:
        raise
    except Exception as err:  # every parser error becomes one clear message
        raise DataFileError(
            f"{path.name} cannot be read as {suffix[1:]}: {err}. Check that it is a "
            "UTF-8 file with the same number of fields on every line."
        ) from None
    raise DataFileError(f"{path.name}: unknown file type {suffix!r}; use .csv, .parquet or .xlsx.")


def _infer_extra(values: pd.Series, missing: tuple[str, ...]) -> pd.Series:
    """A column the schema does not declare: integer, number or text, as its values allow."""
    for kind in ("integer", "number"):
        conv = convert_column(values, {"type": kind}, missing_values=missing)
        present = ~_missing_mask(values, missing)
        if conv.ok and bool(present.any()):
            return conv.values
    if _is_object(values.dtype) or isinstance(values.dtype, pd.StringDtype):
        conv = convert_column(values, {"type": "string"}, missing_values=missing)
        if conv.ok:
            return conv.values
    return values


def read_table(path: str | Path, *, table: str) -> TableFile:
    """Read one table of the data model with the dtypes its schema declares.

    Parameters
    ----------
    path
        A ``.csv`` (UTF-8, comma-separated, with or without a byte-order mark; any
        line endings), ``.parquet`` or ``.xlsx`` (first sheet) file whose first row
        names the columns.
    table
        One of ``teams``, ``fidelity``, ``admissions``, ``service_use``.

    Returns
    -------
    TableFile
        The data, with the file's sha256 and row count.

    Raises
    ------
    DataFileError
        If the file does not exist, cannot be parsed, has a line with too few or too
        many fields, or repeats a column name.

    Notes
    -----
    Identifiers and other text are read as text, so ``007`` stays ``007``. Every
    declared column whose values can all be read as the declared type gets its dtype
    (:func:`convert_column`); a column with any unreadable value (``"n/a"`` in an
    integer column) is kept as text for :func:`crtstats.validate` to report value by
    value. Columns the schema does not declare become ``Int64``, ``Float64`` or
    ``string``, whichever holds all their values. No row is dropped or reordered and
    no value is trimmed or recased.

    References
    ----------
    Frictionless Table Schema (field types, ``missingValues``),
    https://specs.frictionlessdata.io/table-schema/

    Examples
    --------
    Like ``readr::read_csv(path, col_types = cols(team_id = "c", ...))`` in R:

    >>> from crtstats.datasets import example_paths
    >>> teams = read_table(example_paths()["teams"], table="teams")
    >>> teams.n_rows, str(teams.data["team_id"].dtype)
    (25, 'string')
    """
    check_option("table", table, TABLES)
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{table} file not found: {path}")
    raw = _read_raw(path)
    schema = _load_schema(table)
    missing = tuple(schema.get("missingValues", [""]))
    fields = {f["name"]: f for f in schema["fields"]}
    data = {}
    for name in raw.columns:
        col = raw[name]
        if name not in fields:
            data[name] = _infer_extra(col, missing)
            continue
        conv = convert_column(col, fields[name], missing_values=missing)
        if conv.ok:
            data[name] = conv.values
        else:  # keep the file's values for validation to report one by one
            keep = col if _is_object(col.dtype) else col.astype("string")
            data[name] = keep.mask(_missing_mask(col, missing))
    frame = pd.DataFrame(data, index=pd.RangeIndex(len(raw)))
    return TableFile(data=frame, table=table, path=path, sha256=_sha256(path),
                     n_rows=len(frame))


def write_csv(data: pd.DataFrame, path: str | Path) -> Path:
    """Write ``data`` as UTF-8 CSV with ``\\n`` line endings and no index.

    Missing values are written as empty fields, the form every schema declares. Text
    cells that a spreadsheet would run as a formula are neutralised
    (:func:`neutralise_formula`); numbers are written as numbers.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    neutralise_formulas(data).to_csv(path, index=False, lineterminator="\n", na_rep="")
    return path


def write_files(path_stem: str | PathLike[str], contents: Mapping[str, bytes]) -> dict[str, Path]:
    """Write each ``contents[ext]`` to ``<path_stem>.<ext>``: rendered tables and figures.

    Parameters
    ----------
    path_stem
        The path without extension; its folder must exist and its name be a plain file
        name.
    contents
        The bytes to write, by extension (e.g. ``{"md": b"...", "csv": b"..."}``).

    Returns
    -------
    dict of str to Path
        The path written for each extension, in the order given.

    Raises
    ------
    InvalidParameterError
        If the file name is empty, ``.`` or ``..``.
    DataFileError
        If the folder does not exist or a file cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     [p.name for p in write_files(Path(folder) / "t", {"md": b"x\\n"}).values()]
    ['t.md']
    """
    stem = Path(path_stem)
    if stem.name in ("", ".", ".."):
        raise InvalidParameterError(
            f"the file name must be a plain name without extension; got {str(stem)!r}."
        )
    if not stem.parent.is_dir():
        raise DataFileError(f"folder {str(stem.parent)!r} does not exist; create it first.")
    written: dict[str, Path] = {}
    for ext, data in contents.items():
        path = stem.parent / f"{stem.name}.{ext}"
        try:
            path.write_bytes(data)
        except OSError as err:
            raise DataFileError(f"cannot write file {str(path)!r}: {err}") from err
        written[ext] = path
    return written

