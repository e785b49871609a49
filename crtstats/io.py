"""Reading trial tables from CSV, Parquet and Excel with the dtypes their schema declares."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from crtstats._options import check_option
from crtstats._resources import schema_dir
from crtstats.exceptions import DataFileError

__all__ = ["TABLES", "TableFile", "load_schema", "read_table", "write_csv"]

#: The tables of the data model.
TABLES = ("teams", "fidelity", "admissions", "service_use")


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


_PANDAS_TYPES = {"string": "string", "integer": "Int64", "number": "Float64",
                 "boolean": "boolean", "date": "string"}


def _read_raw(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix in (".xlsx", ".xls"):
        return pd.read_excel(path, dtype=str, keep_default_na=False)
    raise DataFileError(f"{path.name}: unknown file type {suffix!r}; use .csv, .parquet or .xlsx.")


def read_table(path: str | Path, *, table: str) -> TableFile:
    """Read one table of the data model with the dtypes its schema declares.

    Parameters
    ----------
    path
        A ``.csv``, ``.parquet`` or ``.xlsx`` file.
    table
        One of ``teams``, ``fidelity``, ``admissions``, ``service_use``.

    Returns
    -------
    TableFile
        The data, with the file's sha256 and row count.

    Raises
    ------
    DataFileError
        If the file does not exist or cannot be parsed.
    """
    check_option("table", table, TABLES)
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{table} file not found: {path}")
    raw = _read_raw(path)
    missing = set(_load_schema(table).get("missingValues", [""]))
    data = raw.copy()
    for field in _load_schema(table)["fields"]:
        name = field["name"]
        if name not in data.columns:
            continue
        col = data[name].astype("string")
        col = col.mask(col.isin(missing))
        dtype = _PANDAS_TYPES[field["type"]]
        data[name] = pd.to_numeric(col).astype(dtype) if dtype in ("Int64", "Float64") else col
    return TableFile(data=data, table=table, path=path, sha256=_sha256(path), n_rows=len(data))


def write_csv(data: pd.DataFrame, path: str | Path) -> Path:
    """Write ``data`` as UTF-8 CSV with ``\\n`` line endings and no index.

    Missing values are written as empty fields, the form every schema declares.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data.to_csv(path, index=False, lineterminator="\n", na_rep="")
    return path
