"""Data mappings: how a trial's own files map onto the data model.

One shape serves every entry point: the ``columns=`` argument of
:func:`crtstats.load_trial`, the plan's ``[data.mapping]`` (or ``mapping = "file.toml"``)
and the ``--mapping FILE.toml`` option of ``crtstats validate`` and ``crtstats score``.
Per table it declares ``columns`` (your name -> schema name), ``items`` (a pattern such
as ``"Q{n}"``), ``values`` (per column, your label -> schema value), ``dates`` (per
column, a ``strptime`` format), ``sheet`` (of an Excel workbook) and ``encoding`` (of a
text file). Nothing is recoded unless declared, and every recoding applied is recorded
(:class:`Recoding`) so that a report can show it.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from crtstats.exceptions import MappingError
from crtstats.io import TABLES, load_schema
from crtstats.schema._mapping_items import (
    InstrumentItems,
    parse_instrument_items,
    rename_instrument_items,
)

__all__ = [
    "MAPPING_KEYS",
    "DataMapping",
    "InstrumentItems",
    "Recoding",
    "TableMapping",
    "apply_mapping",
    "load_mapping",
    "parse_mapping",
]

#: The keys of one table's mapping, in the order they are applied.
MAPPING_KEYS = ("columns", "items", "values", "dates", "sheet", "encoding")

Action = Literal["rename", "items", "values", "dates"]
Label = str | int


@dataclass(frozen=True)
class TableMapping:
    """The mapping of one table (see the module docstring for each key)."""

    columns: Mapping[str, str] = field(default_factory=dict)
    items: str | tuple[InstrumentItems, ...] | None = None
    values: Mapping[str, Mapping[str, Label]] = field(default_factory=dict)
    dates: Mapping[str, str] = field(default_factory=dict)
    sheet: str | None = None
    encoding: str | None = None

    def is_empty(self) -> bool:
        """True when the mapping declares nothing."""
        return not (self.columns or self.items or self.values or self.dates
                    or self.sheet or self.encoding)

    def to_dict(self) -> dict[str, Any]:
        """The mapping in its TOML shape, declared keys only."""
        out: dict[str, Any] = {}
        for key in MAPPING_KEYS:
            value = getattr(self, key)
            if value and isinstance(value, tuple):  # questionnaire items, per instrument
                out[key] = [v.to_dict() for v in value]
            elif value:
                out[key] = ({k: (dict(v) if isinstance(v, Mapping) else v)
                             for k, v in value.items()} if isinstance(value, Mapping)
                            else value)
        return out


@dataclass(frozen=True)
class DataMapping:
    """The mapping of every table of a trial.

    ``tables`` holds the per-table mappings; ``shared`` the flat form's renames
    (``{"Team": "team_id"}``), applied to every table that has the column.
    """

    tables: Mapping[str, TableMapping] = field(default_factory=dict)
    shared: Mapping[str, str] = field(default_factory=dict)

    def table(self, name: str) -> TableMapping:
        """The mapping of table ``name`` (empty when none is declared)."""
        return self.tables.get(name, TableMapping())

    def to_dict(self) -> dict[str, Any]:
        """The mapping in its TOML shape (the flat form stays flat)."""
        if self.shared:
            return dict(self.shared)
        return {name: m.to_dict() for name, m in self.tables.items() if not m.is_empty()}


@dataclass(frozen=True)
class Recoding:
    """One declared recoding applied to the data.

    ``action`` is ``rename`` (a column renamed), ``items`` (item columns, or the item
    names of long-format rows, renamed by pattern), ``values`` (a label recoded) or
    ``dates`` (dates read with a declared format); ``rows`` is the number of values
    changed (``None`` for a rename of a whole column).
    """

    table: str
    action: Action
    column: str
    source: str
    target: str
    rows: int | None = None

    def describe(self) -> str:
        """The recoding as one sentence for a report."""
        where = f"{self.table}.{self.column}"
        if self.action == "rename":
            return f"{self.table}: column {self.source!r} read as {self.target!r}"
        if self.action == "items" and self.column == "columns":
            return (f"{self.table}: {self.rows} columns {self.source} read as item columns "
                    f"{self.target}")
        if self.action == "items":
            return (f"{where}: {self.rows} item names matching {self.source!r} read as "
                    f"{self.target}")
        if self.action == "dates":
            return f"{where}: {self.rows} date(s) read as {self.source} -> {self.target}"
        return f"{where}: {self.source!r} recoded to {self.target!r} ({self.rows} rows)"

    def to_dict(self) -> dict[str, Any]:
        """The recoding as a JSON-ready dict."""
        return {"table": self.table, "action": self.action, "column": self.column,
                "from": self.source, "to": self.target, "rows": self.rows}


# -- parsing -------------------------------------------------------------------------------


def _text_map(raw: Any, where: str, *, values: bool = False) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise MappingError(f"{where} must be a table of \"name\" = value pairs; got {raw!r}.")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        ok = isinstance(value, str) and value != "" or (
            values and isinstance(value, int) and not isinstance(value, bool))
        if not ok:
            kind = "text or a whole number" if values else "text"
            raise MappingError(f"{where}: {key!r} must map to {kind}; got {value!r}.")
        out[str(key)] = value
    return out


def _item_pattern(pattern: Any, where: str) -> str:
    if not isinstance(pattern, str) or pattern.count("{n}") != 1:
        raise MappingError(
            f"{where}.items must be a pattern with one {{n}} for the item number, such as "
            f"\"Q{{n}}\" or \"item_{{n}}\"; got {pattern!r}."
        )
    return pattern


def _items(raw: Any, where: str, table: str | None) -> str | tuple[InstrumentItems, ...]:
    """A table's ``items``: a pattern for fidelity, per instrument for a questionnaire."""
    per_instrument = table is not None and bool(
        load_schema(table).get("x-crtstats-item-columns"))
    if per_instrument:
        if isinstance(raw, str):
            raise MappingError(
                f"{where}.items for {table} must name the instrument the columns belong "
                f"to: items = {{ pattern = {raw!r}, instrument = \"csq8\" }} (a list of "
                "such tables for several instruments)."
            )
        return parse_instrument_items(raw, f"{where}.items")
    return _item_pattern(raw, where)


def _table_mapping(raw: Any, where: str, table: str | None = None) -> TableMapping:
    if not isinstance(raw, Mapping):
        raise MappingError(f"{where} must be a table with keys {', '.join(MAPPING_KEYS)}.")
    unknown = sorted(set(raw) - set(MAPPING_KEYS))
    if unknown:
        raise MappingError(f"{where} has unknown key(s) {unknown}; allowed: "
                           f"{', '.join(MAPPING_KEYS)}.")
    columns = _text_map(raw.get("columns", {}), f"{where}.columns")
    known = _known_columns()
    bad = sorted(v for v in columns.values() if not _is_known(v, known))
    if bad:
        raise MappingError(f"{where}.columns maps onto {bad}, which no schema knows; schema "
                           "names include team_id, arm, stratum, review, person_id, period, "
                           "respondent_id, staff_id, wave and item columns such as csq8_01.")
    values_raw = raw.get("values", {})
    if not isinstance(values_raw, Mapping):
        raise MappingError(f"{where}.values must be a table per column, e.g. "
                           f"[{where.strip('[]')}.values.arm].")
    values = {str(c): _text_map(m, f"{where}.values.{c}", values=True)
              for c, m in values_raw.items()}
    dates = _text_map(raw.get("dates", {}), f"{where}.dates")
    for column, fmt in dates.items():
        if "%" not in fmt:
            raise MappingError(f"{where}.dates.{column} must be a strptime format such as "
                               f"\"%d/%m/%Y\"; got {fmt!r}.")
    text = {}
    for key in ("sheet", "encoding"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise MappingError(f"{where}.{key} must be text; got {value!r}.")
        text[key] = value
    if text["encoding"] is not None:
        _check_encoding(text["encoding"], where)
    items = _items(raw["items"], where, table) if "items" in raw else None
    return TableMapping(columns=columns, items=items, values=values, dates=dates,
                        sheet=text["sheet"], encoding=text["encoding"])


def _check_encoding(name: str, where: str) -> None:
    import codecs

    try:
        codecs.lookup(name)
    except LookupError:
        raise MappingError(f"{where}.encoding {name!r} is not an encoding Python knows; use "
                           "e.g. \"utf-8\", \"cp1252\" or \"latin-1\".") from None


def _known_columns() -> set[str]:
    names: set[str] = set()
    for table in TABLES:
        schema = load_schema(table)
        names |= {f["name"] for f in schema["fields"]}
        long = schema.get("x-crtstats-long-format")
        if long:
            names |= {long["key"], long["value"]}
    return names


def _item_column_patterns() -> list[re.Pattern[str]]:
    """The name patterns of the item columns of questionnaire tables (``csq8_01``)."""
    specs = [load_schema(t).get("x-crtstats-item-columns") for t in TABLES]
    return [re.compile(str(s["pattern"])) for s in specs if s]


def _is_known(name: str, known: set[str]) -> bool:
    return name in known or any(p.fullmatch(name) for p in _item_column_patterns())


def _is_table_mapping(raw: Any) -> bool:
    """A table's entry is a mapping (not renames) when its keys are mapping keys or any
    of its values is a table."""
    return isinstance(raw, Mapping) and bool(raw) and (
        set(raw) <= set(MAPPING_KEYS) or any(isinstance(v, Mapping) for v in raw.values()))


def parse_mapping(raw: Any, *, where: str = "columns") -> DataMapping:
    """Check a mapping given as a dict (the TOML shape) and return it.

    Parameters
    ----------
    raw
        ``{table: {"columns": ..., "items": ..., "values": ..., "dates": ...,
        "sheet": ..., "encoding": ...}}``; also accepted, for renames only: the flat
        ``{"Team": "team_id"}`` (every table) and ``{table: {"Team": "team_id"}}``.
        ``None`` is an empty mapping.
    where
        How to name the mapping in messages (``"[data.mapping]"``, a file name...).

    Returns
    -------
    DataMapping
        The checked mapping.

    Raises
    ------
    MappingError
        If a key is unknown, a value has the wrong type, a column maps onto a name no
        schema knows, an ``items`` pattern lacks ``{n}`` or an encoding is unknown.

    Notes
    -----
    A table's entry is read as a mapping (with the keys above) when every key it has is
    one of ``columns, items, values, dates, sheet, encoding``, or any of its values is a
    table; otherwise as renames.

    Examples
    --------
    Like the ``col_names``/``col_types`` and ``forcats::fct_recode()`` steps of an R script:

    >>> m = parse_mapping({"teams": {"columns": {"Allocation": "arm"},
    ...                              "values": {"arm": {"Intervention": "intervention"}}}})
    >>> m.table("teams").columns
    {'Allocation': 'arm'}
    """
    if raw is None:
        return DataMapping()
    if not isinstance(raw, Mapping):
        raise MappingError(f"{where} must be a mapping of tables (or of column names); got "
                           f"{type(raw).__name__}.")
    if raw and all(isinstance(v, str) for v in raw.values()):
        return DataMapping(shared=_table_mapping({"columns": raw}, where).columns)
    if any(isinstance(v, str) for v in raw.values()):
        raise MappingError(
            f"{where} must map column names to schema names ({{'Team': 'team_id'}}) or table "
            "names to table mappings ({'teams': {'columns': {'Team': 'team_id'}}}); got a mix."
        )
    unknown = sorted(set(map(str, raw)) - set(TABLES))
    if unknown:
        raise MappingError(f"{where} has unknown table(s) {unknown}; use {list(TABLES)}, or "
                           "map column names to schema names for every table "
                           "({'Team': 'team_id'}).")
    tables = {}
    for table, entry in raw.items():
        inner = f"{where}.{table}"
        if not _is_table_mapping(entry):
            entry = {"columns": entry}  # renames only: {table: {"Team": "team_id"}}
        tables[str(table)] = _table_mapping(entry, inner, str(table))
    return DataMapping(tables=tables)


def load_mapping(path: str | Path) -> DataMapping:
    """Read the mapping in the TOML file ``path`` (see :func:`parse_mapping`).

    Raises
    ------
    MappingError
        If the file does not exist, is not valid TOML or not a valid mapping.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "m.toml").write_text('[fidelity]\\nitems = "Q{n}"\\n')
    >>> load_mapping(folder / "m.toml").table("fidelity").items
    'Q{n}'
    """
    path = Path(path)
    if not path.is_file():
        raise MappingError(f"mapping file not found: {path}")
    try:
        raw = tomllib.loads(path.read_bytes().decode("utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise MappingError(f"{path.name} is not a valid TOML file: {err}") from None
    return parse_mapping(raw, where=path.name)


# -- applying ------------------------------------------------------------------------------


def _label(value: Any) -> str | None:
    """A cell as the text a mapping's label is compared with (None when missing)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating) and np.isfinite(value) and value == int(value):
        return str(int(value))
    return None


def _number_pattern(pattern: str) -> re.Pattern[str]:
    head, tail = pattern.split("{n}")
    return re.compile(re.escape(head) + r"0*([1-9]\d*)" + re.escape(tail))


def _item_targets(names: list[Any], pattern: str, table: str) -> dict[Any, str]:
    """Which names the items pattern matches, and the schema item column of each."""
    spec = load_schema(table).get("x-crtstats-long-format") or {}
    numbered = str(spec.get("numbered", "item_{:02d}"))
    fields = {f["name"] for f in load_schema(table)["fields"]}
    compiled = _number_pattern(pattern)
    out = {}
    for name in names:
        match = compiled.fullmatch(name) if isinstance(name, str) else None
        if match and numbered.format(int(match.group(1))) in fields:
            out[name] = numbered.format(int(match.group(1)))
    return out


def _resolve(column: str, frame: pd.DataFrame, renames: Mapping[str, str]) -> str | None:
    """A ``values``/``dates`` key, given as the file's name or the schema's, as the column
    of the renamed frame."""
    if column in renames and renames[column] in frame.columns:
        return renames[column]
    return column if column in frame.columns else None


def _rename(frame: pd.DataFrame, renames: Mapping[str, str], table: str) -> pd.DataFrame:
    use = {k: v for k, v in renames.items() if k != v}
    targets = list(use.values())
    clash = sorted({t for t in targets if targets.count(t) > 1}
                   | {t for t in targets if t in frame.columns and t not in use})
    if clash:
        raise MappingError(f"the mapping would give {table} two columns named {clash}; map "
                           "only one column onto each schema name.")
    return frame.rename(columns=use) if use else frame


def _missing_source(kind: str, names: list[str], frame: pd.DataFrame, table: str) -> None:
    if names:
        shown = ", ".join(map(repr, map(str, frame.columns[:12])))
        more = ", ..." if len(frame.columns) > 12 else ""
        raise MappingError(f"the mapping's {kind} for {table} names column(s) {names}, which "
                           f"the {table} data do not have; its columns are {shown}{more}.")


def _apply_items(frame: pd.DataFrame, pattern: str, table: str, log: list[Recoding]
                 ) -> pd.DataFrame:
    spec = load_schema(table).get("x-crtstats-long-format") or {}
    item_col = str(spec.get("key", "item"))
    wide = _item_targets(list(frame.columns), pattern, table)
    if wide:
        frame = _rename(frame, wide, table)
        first, last = list(wide.items())[0], list(wide.items())[-1]
        log.append(Recoding(table, "items", "columns", f"{first[0]}..{last[0]}",
                            f"{first[1]}..{last[1]}", len(wide)))
        return frame
    if item_col in frame.columns:
        labels = [v for v in pd.unique(frame[item_col].astype(object)) if isinstance(v, str)]
        long = _item_targets(labels, pattern, table)
        if long:
            out = frame.copy()
            out[item_col] = frame[item_col].astype(object).map(lambda v: long.get(v, v))
            n = int(frame[item_col].isin(list(long)).sum())
            log.append(Recoding(table, "items", item_col, pattern, "item_NN", n))
            return out
    raise MappingError(f"the mapping's items pattern {pattern!r} for {table} matches no "
                       f"column{' and no value of ' + repr(item_col) if item_col in frame else ''}"
                       f"; columns are {', '.join(map(repr, map(str, frame.columns[:12])))}.")


def _recode_values(frame: pd.DataFrame, column: str, labels: Mapping[str, Label],
                   table: str, log: list[Recoding]) -> None:
    text = frame[column].astype(object).map(_label)
    out = frame[column].astype(object).copy()
    for source, target in labels.items():
        hit = (text == source).to_numpy()
        if hit.any():
            out[hit] = target
            log.append(Recoding(table, "values", column, source, str(target), int(hit.sum())))
    frame[column] = out


def _read_dates(frame: pd.DataFrame, column: str, fmt: str, table: str,
                log: list[Recoding]) -> None:
    def iso(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return dt.datetime.strptime(value, fmt).date().isoformat()
        except ValueError:
            return value  # left as written: validation reports it

    values = frame[column].astype(object)
    out = values.map(iso)
    changed = int((out != values).fillna(False).sum())
    frame[column] = out
    log.append(Recoding(table, "dates", column, fmt, "YYYY-MM-DD", changed))


def apply_mapping(frame: pd.DataFrame, mapping: TableMapping, *, table: str
                  ) -> tuple[pd.DataFrame, list[Recoding]]:
    """Rename, recode and read the dates of one table as its mapping declares.

    Parameters
    ----------
    frame
        The table as read from the file (or given).
    mapping
        Its mapping; ``sheet`` and ``encoding`` are used by the reader, not here.
    table
        The table's name in the data model.

    Returns
    -------
    tuple of (pandas.DataFrame, list of Recoding)
        A new frame (``frame`` itself is not changed) and every recoding applied, in
        order: column renames, item renames, value recodings, dates.

    Raises
    ------
    MappingError
        If a column the mapping names is not in ``frame``, an items pattern matches
        nothing, or two columns would get the same name.

    Notes
    -----
    A label is compared with the cell's text exactly (``"Yes"`` is not ``"yes"``); a
    whole number cell (``1`` or ``1.0``) is compared as ``"1"``. Cells whose label is
    not declared are left as they are, for validation to report. A date that does not
    match its declared format is left as written, for validation to report.

    Examples
    --------
    >>> m = parse_mapping({"admissions": {"values": {"admitted": {"Yes": 1, "No": 0}}}})
    >>> frame, log = apply_mapping(pd.DataFrame({"admitted": ["Yes", "No", "Yes"]}),
    ...                            m.table("admissions"), table="admissions")
    >>> frame["admitted"].tolist(), [r.describe() for r in log]
    ([1, 0, 1], ["admissions.admitted: 'Yes' recoded to '1' (2 rows)", \
"admissions.admitted: 'No' recoded to '0' (1 rows)"])
    """
    log: list[Recoding] = []
    renames = dict(mapping.columns)
    _missing_source("columns", [c for c in renames if c not in frame.columns], frame, table)
    out = _rename(frame, renames, table)
    for source, target in renames.items():
        if source != target:
            log.append(Recoding(table, "rename", target, source, target))
    if isinstance(mapping.items, tuple):
        renames_items, described = rename_instrument_items(out, mapping.items, table)
        out = _rename(out, renames_items, table)
        log += [Recoding(table, "items", "columns", src, dst, n) for src, dst, n in described]
    elif mapping.items is not None:
        out = _apply_items(out, mapping.items, table, log)
    out = out.copy()
    for kind, declared in (("values", mapping.values), ("dates", mapping.dates)):
        resolved = {c: _resolve(c, out, renames) for c in declared}
        _missing_source(kind, [c for c, r in resolved.items() if r is None], frame, table)
        for column, spec in declared.items():
            name = str(resolved[column])
            if kind == "values":
                _recode_values(out, name, spec, table, log)  # type: ignore[arg-type]
            else:
                _read_dates(out, name, str(spec), table, log)
    return out, log
