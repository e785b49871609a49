"""Reading trial tables from CSV, Parquet and Excel with the dtypes their schema declares.

Reading never changes a value the schema cannot represent: a column whose every value
can be read as its declared type gets that dtype (``string`` for text and dates,
``Int64`` for integers, ``Float64`` for numbers, ``boolean`` for booleans); a column
with any unreadable value is kept as text so that :func:`crtstats.validate` can report
each unreadable value with its row, column and value.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crtstats._options import check_option
from crtstats._resources import schema_dir
from crtstats._safety import check_not_input, neutralise_formula, neutralise_formulas, printable
from crtstats.exceptions import DataFileError, InvalidParameterError
from crtstats.io._convert import (
    Conversion,
    convert_column,
    declared_dtype,
    is_object,
    missing_mask,
)

__all__ = [
    "TABLES",
    "Conversion",
    "TableFile",
    "check_not_input",
    "convert_column",
    "declared_dtype",
    "load_schema",
    "read_raw",
    "neutralise_formula",
    "neutralise_formulas",
    "printable",
    "read_table",
    "typed_frame",
    "write_csv",
    "write_files",
]

#: The tables of the data model.
TABLES = ("teams", "fidelity", "admissions", "service_use", "user_questionnaires",
          "staff_questionnaires")

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


@dataclass(frozen=True)
class TableFile:
    """A table read from a file, with its provenance.

    ``sheet`` is the Excel sheet read (None for other files) and ``sheets`` every sheet
    of the workbook, ``encoding`` the text
    encoding of a CSV file, ``skipped_blank`` the number of rows at the end of the file
    with no value in any field (a spreadsheet's ``,,,,`` rows), which are not read.
    """

    data: pd.DataFrame
    table: str
    path: Path
    sha256: str
    n_rows: int
    sheet: str | None = None
    encoding: str | None = None
    skipped_blank: int = 0
    sheets: tuple[str, ...] = ()

    def line_numbers(self) -> np.ndarray:
        """The line of the file of each data row (the header is line 1).

        For a CSV file this is the line where the row's record starts (blank lines and
        line breaks inside quoted fields counted); for Excel, the row number of the
        sheet; for Parquet, the row's position plus 2.
        """
        return _line_numbers(self.path, self.encoding, self.sheet, self.n_rows)

    def describe(self) -> str:
        """The file as named in messages: its name, and the sheet for Excel."""
        return self.path.name if self.sheet is None else f"{self.path.name} [{self.sheet}]"


def _line_numbers(path: Path, encoding: str | None, sheet: str | None, n: int) -> np.ndarray:
    if sheet is not None or path.suffix.lower() not in (".csv", ".txt"):
        return np.arange(n, dtype=np.int64) + 2
    text = path.read_bytes().decode(encoding or "utf-8-sig", errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""))
    starts: list[int] = []
    previous = 0
    for record in reader:
        if record:
            starts.append(previous + 1)
        previous = reader.line_num
        if len(starts) > n:
            break
    return np.asarray(starts[1:n + 1], dtype=np.int64)


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


def _trailing_blank(data: pd.DataFrame) -> int:
    """The number of rows at the end with no value in any field."""
    if data.shape[1] == 0 or len(data) == 0:
        return 0
    end, block = len(data), 64
    while end > 0:  # look back from the end only: a large file costs no more
        start = max(0, end - block)
        tail = data.iloc[start:end]
        filled = ~(tail.isna() | tail.isin([""])).all(axis=1).to_numpy()
        if filled.any():
            return len(data) - (start + int(np.flatnonzero(filled)[-1]) + 1)
        end, block = start, block * 4
    return len(data)


#: File signatures: what a file is, by its first bytes.
_MAGIC = ((b"PK\x03\x04", "an Excel workbook (.xlsx) or another zip archive"),
          (b"\xd0\xcf\x11\xe0", "an old-style Excel workbook (.xls)"),
          (b"PAR1", "a Parquet file"), (b"%PDF", "a PDF document"))


def _sniff_text(path: Path, suffix: str) -> None:
    """Refuse a file named .csv that is not text, in one line and without its bytes."""
    with path.open("rb") as fh:
        head = fh.read(8192)
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            hint = (f"rename it {path.stem}.xlsx (crtstats reads .xlsx files), or save it "
                    "from Excel as CSV" if magic == b"PK\x03\x04" else
                    "save it as CSV (UTF-8)")
            raise DataFileError(f"{path.name} is named {suffix} but is {kind}; {hint}.")
    if b"\x00" in head:
        raise DataFileError(f"{path.name} is named {suffix} but is a binary file, not text; "
                            "export the table as CSV (UTF-8) and read that.")


def _encoding_error(path: Path, encoding: str) -> DataFileError:
    """Where a file stops being ``encoding``, with what to do."""
    data = path.read_bytes()
    for number, line in enumerate(data.split(b"\n"), start=1):
        try:
            line.decode(encoding)
        except UnicodeDecodeError as err:
            byte = line[err.start]
            seen = bytes([byte]).decode("cp1252", errors="replace")
            return DataFileError(
                f"{path.name} is not {encoding} text: line {number} has the byte 0x{byte:02X} "
                f"({seen!r} in Windows-1252/latin-1). Re-save the file as UTF-8 (\"CSV UTF-8\" "
                "in Excel), or declare its encoding in the mapping (encoding = \"cp1252\")."
            )
    return DataFileError(f"{path.name} cannot be decoded as {encoding}.")


def _read_csv(path: Path, encoding: str | None) -> pd.DataFrame:
    declared = encoding or "utf-8"
    _sniff_text(path, path.suffix.lower())
    if encoding is None:
        with path.open("rb") as fh:
            head = fh.read(3)
        declared = "utf-8-sig" if head == b"\xef\xbb\xbf" else "utf-8"
    try:
        raw = pd.read_csv(path, dtype=str, header=None, keep_default_na=False,
                          engine="pyarrow", encoding=declared)
    except Exception:
        try:
            path.read_bytes().decode(declared)
        except UnicodeDecodeError:
            raise _encoding_error(path, declared) from None
        raise
    return _with_header(raw, path)


def _read_excel(path: Path, sheet: str | None) -> tuple[pd.DataFrame, str, tuple[str, ...]]:
    with pd.ExcelFile(path) as book:
        names = [str(n) for n in book.sheet_names]
        if sheet is not None and sheet not in names:
            raise DataFileError(f"{path.name} has no sheet {sheet!r}; its sheets are "
                                f"{', '.join(map(repr, names))}.")
        chosen = sheet if sheet is not None else names[0]
        raw = pd.read_excel(book, sheet_name=chosen, header=None, dtype=object)
    return _with_header(raw, path), chosen, tuple(names)


def _read_raw(path: Path, *, sheet: str | None = None, encoding: str | None = None
              ) -> tuple[pd.DataFrame, str | None, tuple[str, ...]]:
    """The file's rows with its header as column names, the sheet read and the sheets."""
    suffix = path.suffix.lower()
    if sheet is not None and suffix not in (".xlsx", ".xlsm"):
        raise DataFileError(f"{path.name} is not an Excel workbook; a sheet ({sheet!r}) "
                            "applies only to .xlsx files.")
    try:
        if suffix in (".csv", ".txt"):
            return _read_csv(path, encoding), None, ()
        if suffix == ".parquet":
            return pd.read_parquet(path), None, ()
        if suffix in (".xlsx", ".xlsm"):
            return _read_excel(path, sheet)
    except DataFileError:
        raise
    except Exception as err:  # every parser error becomes one clear message
        text = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise DataFileError(
            f"{path.name} cannot be read as {suffix[1:]}: {text}. Check that it is a "
            "UTF-8 file with the same number of fields on every line."
        ) from None
    raise DataFileError(f"{path.name}: unknown file type {suffix!r}; use .csv, .parquet or .xlsx.")


def _infer_extra(values: pd.Series, missing: tuple[str, ...]) -> pd.Series:
    """A column the schema does not declare: integer, number or text, as its values allow."""
    for kind in ("integer", "number"):
        conv = convert_column(values, {"type": kind}, missing_values=missing)
        present = ~missing_mask(values, missing)
        if conv.ok and bool(present.any()):
            return conv.values
    if is_object(values.dtype) or isinstance(values.dtype, pd.StringDtype):
        conv = convert_column(values, {"type": "string"}, missing_values=missing)
        if conv.ok:
            return conv.values
    return values


def read_table(path: str | Path, *, table: str, sheet: str | None = None,
               encoding: str | None = None) -> TableFile:
    """Read one table of the data model with the dtypes its schema declares.

    Parameters
    ----------
    path
        A ``.csv`` (comma-separated, UTF-8 with or without a byte-order mark unless
        ``encoding`` says otherwise; any line endings), ``.parquet`` or ``.xlsx`` file
        whose first row names the columns.
    table
        One of ``teams``, ``fidelity``, ``admissions``, ``service_use``,
        ``user_questionnaires``, ``staff_questionnaires``.
    sheet
        The sheet of an Excel workbook to read (default: the first sheet).
    encoding
        The text encoding of a CSV file (default UTF-8), e.g. ``"cp1252"``.

    Returns
    -------
    TableFile
        The data, with the file's sha256, row count, sheet, encoding and the number of
        blank rows skipped at its end.

    Raises
    ------
    DataFileError
        If the file does not exist, cannot be parsed, has a line with too few or too
        many fields, repeats a column name, is not in its encoding (the message names
        the first line that is not), is binary or a workbook under a ``.csv`` name, or
        lacks the ``sheet`` asked for.

    Notes
    -----
    Identifiers and other text are read as text, so ``007`` stays ``007``. Every
    declared column whose values can all be read as the declared type gets its dtype
    (:func:`convert_column`); a column with any unreadable value (``"n/a"`` in an
    integer column) is kept as text for :func:`crtstats.validate` to report value by
    value. Columns the schema does not declare become ``Int64``, ``Float64`` or
    ``string``, whichever holds all their values. Rows at the end of the file with no
    value in any field (``,,,,`` left by a spreadsheet) are skipped and counted in
    ``skipped_blank``; no other row is dropped or reordered and no value is trimmed or
    recased. A file is recognised by its first bytes: an Excel workbook or another
    binary file named ``.csv`` is refused with a one-line message (rename a workbook
    ``.xlsx``). An Excel cell holding a whole number (``3.0``) reads as ``3``.

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
    read = read_raw(path, table=table, sheet=sheet, encoding=encoding)
    return replace(read, data=typed_frame(read.data, table=table))


def read_raw(path: str | Path, *, table: str, sheet: str | None = None,
             encoding: str | None = None) -> TableFile:
    """Read a table's file as parsed, before any value is typed.

    The first step of :func:`read_table` (same parameters and errors): CSV values are
    text, Excel cells Python objects. A caller that renames or recodes columns (a data
    mapping) does so on this frame and then types it with :func:`typed_frame`, so that
    a column renamed to ``team_id`` keeps its leading zeros.
    """
    check_option("table", table, TABLES)
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{table} file not found: {path}")
    raw, sheet_read, sheets = _read_raw(path, sheet=sheet, encoding=encoding)
    blank = 0 if path.suffix.lower() == ".parquet" else _trailing_blank(raw)
    if blank:
        raw = raw.iloc[: len(raw) - blank]
    return TableFile(data=raw, table=table, path=path, sha256=_sha256(path),
                     n_rows=len(raw), sheet=sheet_read, encoding=encoding,
                     skipped_blank=blank, sheets=sheets)


def typed_frame(raw: pd.DataFrame, *, table: str) -> pd.DataFrame:
    """``raw`` with every declared column that can be read as its type in that type.

    The step of :func:`read_table` after parsing, for a frame renamed or recoded by a
    mapping before it is typed. Columns with an unreadable value are kept as given.
    """
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
            keep = col if is_object(col.dtype) else col.astype("string")
            data[name] = keep.mask(missing_mask(col, missing))
    return pd.DataFrame(data, index=pd.RangeIndex(len(raw)))


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

