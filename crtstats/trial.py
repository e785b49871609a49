"""A whole trial's data: the tables of the data model, validated together."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from crtstats.exceptions import (
    FAILURE_COLUMNS,
    InvalidParameterError,
    MappingError,
    ReasonCode,
    SchemaValidationError,
    _format_value,
)
from crtstats.io import TABLES, TableFile, load_schema, read_raw, typed_frame
from crtstats.schema import (
    DataMapping,
    Recoding,
    TableMapping,
    apply_mapping,
    collect_problems,
    cross_table_problems,
    derive_table,
    failure_frame,
    is_long_format,
    long_row,
    parse_mapping,
    pivot_long,
    records,
)

__all__ = ["EXCLUSION_COLUMNS", "Loaded", "TableSource", "TrialData", "check_table",
           "exclusions", "load_sources", "load_trial", "validation_error", "with_lines"]

#: A table as a DataFrame, or the path of a file that :func:`crtstats.read_table` reads.
TableSource = pd.DataFrame | str | os.PathLike[str]

#: The columns of :attr:`TrialData.exclusions`.
EXCLUSION_COLUMNS = ("table", "reason", "rows", "detail")

#: Problems that follow from another (a team unknown because its id is mistyped in teams,
#: too few teams in an arm): listed after the root causes of each table.
_DERIVED = (ReasonCode.UNKNOWN_TEAM, ReasonCode.INCONSISTENT, ReasonCode.TOO_FEW_TEAMS)

_RowMap = Callable[[Any, Any], tuple[Any, Any]]


def _no_exclusions() -> pd.DataFrame:
    return pd.DataFrame(columns=list(EXCLUSION_COLUMNS)).astype({"rows": "Int64"})


@dataclass(frozen=True)
class TrialData:
    """The validated tables of one trial.

    Attributes
    ----------
    teams, fidelity, admissions, service_use
        The tables with the schema's column names and declared dtypes (``string`` for
        text, ``Int64`` for integers), or None where not supplied. ``fidelity`` is wide
        (``item_01`` ... ``item_39``) whatever layout was supplied.
    user_questionnaires, staff_questionnaires
        Service-user and staff questionnaires (one row per person and wave, the item
        columns of their instruments as ``Int64``), or None where not supplied. Score
        them with :func:`crtstats.scales.score_questionnaire`.
    service_use_derived
        True when ``service_use`` was derived from ``admissions`` (not supplied).
    provenance
        For each table read from a file: ``{"file": name, "sha256": hex, "rows": n}``.
        Tables passed as DataFrames have no entry.
    exclusions
        Anything excluded while loading, one row per table and reason with the number
        of rows (columns ``table, reason, rows, detail``). Loading drops no data row
        (invalid data raise instead); only rows at the end of a file with no value in
        any field are skipped, under the reason ``blank rows``.
    mapping
        Every recoding the data mapping applied (:class:`crtstats.schema.Recoding`), in
        order; empty when nothing was mapped. :meth:`mapping_lines` words them.

    Examples
    --------
    >>> import crtstats
    >>> paths = crtstats.datasets.example_paths()
    >>> trial = crtstats.load_trial(teams=paths["teams"], admissions=paths["admissions"])
    >>> sorted(trial.tables()), trial.service_use_derived
    (['admissions', 'service_use', 'teams'], True)
    >>> trial.provenance["teams"]["rows"]
    25
    """

    teams: pd.DataFrame
    fidelity: pd.DataFrame | None = None
    admissions: pd.DataFrame | None = None
    service_use: pd.DataFrame | None = None
    service_use_derived: bool = False
    provenance: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    exclusions: pd.DataFrame = field(default_factory=_no_exclusions)
    mapping: tuple[Recoding, ...] = ()
    user_questionnaires: pd.DataFrame | None = None
    staff_questionnaires: pd.DataFrame | None = None

    def mapping_lines(self) -> list[str]:
        """The recodings applied, one sentence each, for a report's "Data mapping"."""
        return [r.describe() for r in self.mapping]

    def tables(self) -> dict[str, pd.DataFrame]:
        """The supplied (or derived) tables by name."""
        found = {name: getattr(self, name) for name in TABLES}
        return {name: frame for name, frame in found.items() if frame is not None}


@dataclass
class Loaded:
    """One table as read and mapped: the frame, and the file behind it (if any)."""

    frame: pd.DataFrame
    file: TableFile | None = None


def _shared_renames(frames: dict[str, pd.DataFrame], shared: Mapping[str, str]
                    ) -> dict[str, dict[str, str]]:
    """The flat ``{"Team": "team_id"}`` form, per table that has each column."""
    absent = [c for c in shared if not any(c in f.columns for f in frames.values())]
    if absent:
        raise MappingError(
            f"columns names {absent}, which none of the tables ({', '.join(frames)}) has."
        )
    return {name: {k: v for k, v in shared.items() if k in frame.columns}
            for name, frame in frames.items()}


def _read(name: str, source: Any, mapping: TableMapping) -> Loaded:
    if isinstance(source, pd.DataFrame):
        if mapping.sheet or mapping.encoding:
            raise MappingError(
                f"the mapping of {name} declares a sheet or encoding, which apply to files; "
                f"{name} was given as a DataFrame."
            )
        return Loaded(source)
    if isinstance(source, str | os.PathLike):
        read = read_raw(Path(source), table=name, sheet=mapping.sheet,
                        encoding=mapping.encoding)
        return Loaded(read.data, read)
    raise InvalidParameterError(
        f"{name} must be a DataFrame or the path of a file; got {type(source).__name__}."
    )


def load_sources(given: dict[str, Any], mapping: DataMapping
                  ) -> tuple[dict[str, Loaded], list[Recoding]]:
    """Read every table and apply its mapping: each table as mapped (with the file it
    came from) and the recodings applied, in order."""
    loaded = {name: _read(name, src, mapping.table(name)) for name, src in given.items()}
    shared = _shared_renames({n: x.frame for n, x in loaded.items()}, mapping.shared)
    log: list[Recoding] = []
    for name, item in loaded.items():
        table_map = mapping.table(name)
        if shared[name]:
            table_map = replace(table_map, columns={**shared[name], **table_map.columns})
        frame, done = apply_mapping(item.frame, table_map, table=name)
        log += done
        if item.file is not None:
            frame = typed_frame(frame, table=name)
        item.frame = frame
    return loaded, log


def _provenance(loaded: dict[str, Loaded]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, item in loaded.items():
        read = item.file
        if read is None:
            continue
        out[name] = {"file": read.path.name, "sha256": read.sha256, "rows": read.n_rows}
        if read.sheet is not None:
            out[name]["sheet"] = read.sheet
        if read.encoding is not None:
            out[name]["encoding"] = read.encoding
        if read.skipped_blank:
            out[name]["skipped_blank_rows"] = read.skipped_blank
        if is_long_format(item.frame, table=name):
            out[name]["layout"] = "long"
    return out


def exclusions(loaded: dict[str, Loaded]) -> pd.DataFrame:
    rows = [{"table": name, "reason": "blank rows", "rows": item.file.skipped_blank,
             "detail": f"{item.file.skipped_blank} row(s) with no value in any field at the "
                       f"end of {item.file.describe()} were skipped"}
            for name, item in loaded.items()
            if item.file is not None and item.file.skipped_blank]
    if not rows:
        return _no_exclusions()
    return pd.DataFrame(rows, columns=list(EXCLUSION_COLUMNS)).astype({"rows": "Int64"})


def _sheet_hint(out: pd.DataFrame, mine: Any, read: TableFile, table: str) -> None:
    """Absent columns of a table read from the first of several sheets, by default:
    say which sheet was read and how to choose another."""
    if read.sheet is None or len(read.sheets) < 2 or read.sheet != read.sheets[0]:
        return
    absent = mine & (out["reason_code"] == str(ReasonCode.MISSING_COLUMN)).to_numpy()
    others = ", ".join(repr(s) for s in read.sheets[1:])
    out.loc[absent, "check"] = out.loc[absent, "check"].astype(str) + (
        f" (read from sheet {read.sheet!r}, the first; the workbook also has {others}: "
        f"declare sheet = \"...\" for {table} in the data mapping)")


def with_lines(failures: pd.DataFrame, loaded: dict[str, Loaded]) -> pd.DataFrame:
    """Add ``file`` (name, and sheet for Excel) and ``line`` (the file's line; header is
    line 1) to each problem of a table read from a file."""
    out = failures.copy()
    out["file"] = pd.Series(pd.NA, index=out.index, dtype="string")
    out["line"] = pd.Series(pd.NA, index=out.index, dtype="Int64")
    for name, item in loaded.items():
        if item.file is None:
            continue
        mine = (out["table"] == name).to_numpy()
        out.loc[mine, "file"] = item.file.describe()
        _sheet_hint(out, mine, item.file, name)
        rows = out.loc[mine, "row"]
        has_row = rows.notna().to_numpy()
        if has_row.any():
            lines = item.file.line_numbers()
            index = rows[has_row].astype("int64").to_numpy()
            valid = index < len(lines)
            target = rows[has_row].index[valid]
            out.loc[target, "line"] = lines[index[valid]]
    return out


def _remap(failures: pd.DataFrame, row_map: _RowMap | None) -> pd.DataFrame:
    if row_map is None or failures.empty:
        return failures
    pairs = [row_map(r, c) for r, c in zip(failures["row"], failures["column"], strict=True)]
    out = failures.copy()
    out["row"] = pd.array([p[0] for p in pairs], dtype="Int64")
    out["column"] = [p[1] for p in pairs]
    return out


def check_table(name: str, frame: pd.DataFrame
                ) -> tuple[pd.DataFrame, list[pd.DataFrame], _RowMap | None]:
    """One table (wide, or long-format fidelity pivoted to wide): the validated data, its
    failure frames (rows as supplied), and the map from checked rows to supplied rows."""
    if not is_long_format(frame, table=name):
        data, failures = collect_problems(frame, table=name)
        return data, [failures], None
    pivot = pivot_long(frame, table=name)
    data, failures = collect_problems(pivot.wide, table=name)

    def row_map(row: Any, column: Any) -> tuple[Any, Any]:
        return long_row(pivot, row, column)

    order = [f["name"] for f in load_schema(name)["fields"] if f["name"] in data]
    data = data[order + [c for c in data.columns if c not in order]]
    return data, [failure_frame(list(pivot.problems)), _remap(failures, row_map)], row_map


def _derive_service_use(checked: dict[str, pd.DataFrame]) -> pd.DataFrame | None:
    """service_use aggregated from admissions, teams in teams' order, periods in the
    schema's order."""
    schema = load_schema("service_use")
    spec = schema["x-crtstats-derived-from"]
    order: dict[str, list[Any]] = {}
    fields = {f["name"]: f for f in schema["fields"]}
    for column in spec["groupBy"]:
        if column in checked["teams"]:
            order[column] = list(checked["teams"][column])
        else:
            order[column] = list(fields[column].get("constraints", {}).get("enum", []))
    return derive_table("service_use", {spec["resource"]: checked[spec["resource"]]}, order)


def _sorted(failures: pd.DataFrame) -> pd.DataFrame:
    """Failures by table (in the data model's order), root causes before the problems
    that follow from them (unknown team, inconsistent, too few teams), then row."""
    rank = failures["table"].map({t: i for i, t in enumerate(TABLES)})
    derived = failures["reason_code"].isin(list(map(str, _DERIVED)))
    return (failures.assign(_t=rank, _d=derived)
            .sort_values(["_t", "_d", "row"], na_position="first", kind="stable")
            .drop(columns=["_t", "_d"]).reset_index(drop=True))


def load_trial(
    *,
    teams: TableSource,
    fidelity: TableSource | None = None,
    admissions: TableSource | None = None,
    service_use: TableSource | None = None,
    user_questionnaires: TableSource | None = None,
    staff_questionnaires: TableSource | None = None,
    columns: Mapping[str, Any] | DataMapping | None = None,
) -> TrialData:
    """Load and validate the tables of one trial, each on its own and together.

    Parameters
    ----------
    teams
        The teams table: a DataFrame or a ``.csv``/``.parquet``/``.xlsx`` path.
    fidelity
        Fidelity reviews, wide (``item_01`` ... ``item_39``) or long (``team_id,
        review, item, score``; ``item`` holds ``item_07`` or ``7``).
    admissions, service_use
        Service-user and team-level service use. When ``service_use`` is not given
        and ``admissions`` is, it is derived from ``admissions``.
    user_questionnaires, staff_questionnaires
        Service-user questionnaires (``team_id, respondent_id, wave``) and staff
        questionnaires (``team_id, staff_id, wave``), with optional ``collected_on``,
        ``responded``, ``arm`` and ``stratum`` and the item columns of their
        instruments (``csq8_01`` ..., ``ghq12_01`` ...: whole numbers or empty).
    columns
        The data mapping: per table, ``columns`` (your names -> the schema's),
        ``items`` (``"Q{n}"``; for a questionnaire table ``{pattern = "CSQ{n}",
        instrument = "csq8"}`` or a list of such tables), ``values`` (per column,
        your labels -> the schema's), ``dates`` (per column, a ``strptime`` format),
        ``sheet`` and ``encoding``; the
        shape of a plan's ``[data.mapping]`` and of a ``--mapping`` file (see
        :func:`crtstats.schema.parse_mapping`). Renames alone may also be given flat,
        for every table (``{"Team": "team_id"}``), or per table
        (``{"teams": {"Team": "team_id"}}``).

    Returns
    -------
    TrialData
        The validated tables with their declared dtypes, provenance, exclusions and the
        recodings the mapping applied (:attr:`TrialData.mapping`).

    Raises
    ------
    SchemaValidationError
        With every problem of every table, and of the tables together, in one
        ``failure_cases`` frame: ``row`` is the 0-based row of the table as supplied,
        and the extra columns ``file`` and ``line`` give, for a table read from a file,
        its name (with the sheet for Excel) and the line of the file (the header is
        line 1; for Excel, the row of the sheet).
    MappingError
        If the mapping is malformed or names a column or sheet the data do not have.
    InvalidParameterError
        If ``teams`` comes without any other table.
    DataFileError
        If a file cannot be read.

    Notes
    -----
    Each table is checked by :func:`crtstats.validate`. Across tables: every
    ``team_id`` is in ``teams`` (the schemas' ``foreignKeys``); a team attribute
    (``arm``, ``stratum``, ...) repeated in another table agrees with ``teams``.
    Within tables, the schemas give one row per key (one review per team and review,
    one questionnaire per person and wave), bed days 0 where not admitted, positive
    exposure and at least two teams per arm. Questionnaire item columns must hold
    whole numbers (or be empty) and be empty where ``responded`` is false; their range
    is checked against the instrument key when they are scored.
    Nothing is recoded unless the mapping declares it, and no row is dropped: only
    rows at the end of a file with no value in any field are skipped (counted in
    :attr:`TrialData.exclusions`).

    References
    ----------
    Frictionless Table Schema (foreign keys, primary keys),
    https://specs.frictionlessdata.io/table-schema/

    Examples
    --------
    Like reading the tables with ``readr`` and checking them with ``pointblank`` in R:

    >>> import crtstats
    >>> trial = crtstats.load_trial(**crtstats.datasets.load_example().tables())
    >>> len(trial.teams), len(trial.fidelity), trial.service_use_derived
    (25, 74, False)
    """
    sources = (("teams", teams), ("fidelity", fidelity), ("admissions", admissions),
               ("service_use", service_use), ("user_questionnaires", user_questionnaires),
               ("staff_questionnaires", staff_questionnaires))
    given = {name: src for name, src in sources if src is not None}
    if len(given) < 2:
        raise InvalidParameterError(
            "load_trial needs teams and at least one of fidelity, admissions, service_use, "
            "user_questionnaires, staff_questionnaires."
        )
    mapping = columns if isinstance(columns, DataMapping) else parse_mapping(columns)
    loaded, log = load_sources(given, mapping)
    checked, everything, derived = _validate_all(
        {n: x.frame for n, x in loaded.items()}, derive=service_use is None)
    if not everything.empty:
        raise validation_error(with_lines(_sorted(everything), loaded))
    return TrialData(**checked, service_use_derived=derived, provenance=_provenance(loaded),
                     exclusions=exclusions(loaded), mapping=tuple(log))


def _validate_all(frames: dict[str, pd.DataFrame], *, derive: bool
                  ) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, bool]:
    """Every table on its own and together: the checked tables, every problem, and
    whether service_use was derived."""
    checked: dict[str, pd.DataFrame] = {}
    failures: list[pd.DataFrame] = []
    row_maps: dict[str, _RowMap | None] = {}
    for name, frame in frames.items():
        checked[name], found, row_maps[name] = check_table(name, frame)
        failures += found
    for cross in cross_table_problems(checked):
        failures.append(_remap(cross, row_maps.get(str(cross["table"].iloc[0]))))
    everything = failure_frame([f for f in failures if len(f)])
    derived = derive and "admissions" in checked and everything.empty
    if derived:
        data = _derive_service_use(checked)
        if data is not None:
            checked["service_use"], more = collect_problems(data, table="service_use")
            everything = failure_frame([everything, more] if len(more) else [everything])
    return checked, everything, derived


def validation_error(failures: pd.DataFrame, *, subject: str = "trial data"
                     ) -> SchemaValidationError:
    """The error listing ``failures``; the message names the first by file and line when
    the failures carry ``file`` and ``line``."""
    err = SchemaValidationError.from_cases(records(failures[list(FAILURE_COLUMNS)]),
                                           subject=subject)
    if "line" in failures.columns:
        first = failures.iloc[0]
        where = (f"{first['file']} line {first['line']}" if not pd.isna(first["line"])
                 else str(first["file"]) if not pd.isna(first["file"])
                 else f"table {first['table']}, row {first['row']}")
        message = (f"{subject} failed validation with {len(failures)} problem(s); first: "
                   f"{where}, column {first['column']}, value "
                   f"{_format_value(first['value'])}: {first['check']}")
        err = SchemaValidationError(message, failures.reset_index(drop=True))
    return err
