"""A whole trial's data: the tables of the data model, validated together."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from crtstats.exceptions import InvalidParameterError, SchemaValidationError
from crtstats.io import TABLES, load_schema, read_table
from crtstats.schema import (
    collect_problems,
    cross_table_problems,
    derive_table,
    failure_frame,
    is_long_format,
    long_row,
    pivot_long,
    records,
)

__all__ = ["EXCLUSION_COLUMNS", "TableSource", "TrialData", "load_trial"]

#: A table as a DataFrame, or the path of a file that :func:`crtstats.read_table` reads.
TableSource = pd.DataFrame | str | os.PathLike[str]

#: The columns of :attr:`TrialData.exclusions`.
EXCLUSION_COLUMNS = ("table", "reason", "rows", "detail")

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
    service_use_derived
        True when ``service_use`` was derived from ``admissions`` (not supplied).
    provenance
        For each table read from a file: ``{"file": name, "sha256": hex, "rows": n}``.
        Tables passed as DataFrames have no entry.
    exclusions
        Anything excluded while loading, one row per table and reason with the number
        of rows (columns ``table, reason, rows, detail``). Loading excludes nothing, so
        this is empty: invalid data raises instead.

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

    def tables(self) -> dict[str, pd.DataFrame]:
        """The supplied (or derived) tables by name."""
        found = {name: getattr(self, name) for name in TABLES}
        return {name: frame for name, frame in found.items() if frame is not None}


def _known_columns() -> set[str]:
    names: set[str] = set()
    for table in TABLES:
        schema = load_schema(table)
        names |= {f["name"] for f in schema["fields"]}
        long = schema.get("x-crtstats-long-format")
        if long:
            names |= {long["key"], long["value"]}
    return names


def _column_maps(columns: Mapping[str, Any] | None) -> dict[str, dict[str, str]]:
    """``columns`` as one {user name: schema name} mapping per table."""
    if columns is None:
        return {}
    if not isinstance(columns, Mapping):
        raise InvalidParameterError(
            f"columns must be a mapping of your column names to the schema's; got "
            f"{type(columns).__name__}."
        )
    if all(isinstance(v, str) for v in columns.values()):
        per_table = {table: dict(columns) for table in TABLES}
    elif all(isinstance(v, Mapping) for v in columns.values()):
        unknown = sorted(set(columns) - set(TABLES))
        if unknown:
            raise InvalidParameterError(
                f"columns has unknown table(s) {unknown}; use {list(TABLES)}."
            )
        per_table = {t: dict(m) for t, m in columns.items()}
    else:
        raise InvalidParameterError(
            "columns must map column names to schema names ({'Team': 'team_id'}) or table "
            "names to such mappings ({'teams': {'Team': 'team_id'}}); got a mix."
        )
    known = _known_columns()
    for mapping in per_table.values():
        bad = sorted(str(v) for v in mapping.values() if v not in known)
        if bad:
            raise InvalidParameterError(
                f"columns maps onto {bad}, which no schema knows; schema names include "
                "team_id, arm, stratum, review, item_01, person_id, period, n_users."
            )
    return per_table


def _rename(frame: pd.DataFrame, mapping: dict[str, str], table: str) -> pd.DataFrame:
    use = {k: v for k, v in mapping.items() if k in frame.columns and k != v}
    if not use:
        return frame
    targets = list(use.values())
    clash = sorted({t for t in targets if targets.count(t) > 1}
                   | {t for t in targets if t in frame.columns and t not in use})
    if clash:
        raise InvalidParameterError(
            f"columns would give {table} two columns named {clash}; map only one column "
            "onto each schema name."
        )
    return frame.rename(columns=use)


def _source(name: str, source: Any, provenance: dict[str, dict[str, Any]]) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source
    if isinstance(source, str | os.PathLike):
        read = read_table(Path(source), table=name)
        provenance[name] = {"file": read.path.name, "sha256": read.sha256,
                            "rows": read.n_rows}
        return read.data
    raise InvalidParameterError(
        f"{name} must be a DataFrame or the path of a file; got {type(source).__name__}."
    )


def _remap(failures: pd.DataFrame, row_map: _RowMap | None) -> pd.DataFrame:
    if row_map is None or failures.empty:
        return failures
    pairs = [row_map(r, c) for r, c in zip(failures["row"], failures["column"], strict=True)]
    out = failures.copy()
    out["row"] = pd.array([p[0] for p in pairs], dtype="Int64")
    out["column"] = [p[1] for p in pairs]
    return out


def _check_table(name: str, frame: pd.DataFrame
                 ) -> tuple[pd.DataFrame, list[pd.DataFrame], _RowMap | None]:
    """One table: validated data, failure frames, and the map from checked rows to the
    rows as supplied (for long-format fidelity)."""
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
    """Failures by table (in the data model's order), then row, as found within a row."""
    rank = failures["table"].map({t: i for i, t in enumerate(TABLES)})
    return (failures.assign(_t=rank).sort_values(["_t", "row"], na_position="first",
                                                 kind="stable")
            .drop(columns="_t").reset_index(drop=True))


def load_trial(
    *,
    teams: TableSource,
    fidelity: TableSource | None = None,
    admissions: TableSource | None = None,
    service_use: TableSource | None = None,
    columns: Mapping[str, Any] | None = None,
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
    columns
        Your column names mapped onto the schema's, for every table
        (``{"Team": "team_id"}``) or per table (``{"teams": {"Team": "team_id"}}``).

    Returns
    -------
    TrialData
        The validated tables with their declared dtypes, provenance and exclusions.

    Raises
    ------
    SchemaValidationError
        With every problem of every table, and of the tables together, in one
        ``failure_cases`` frame (``row`` is the 0-based row of the table as supplied).
    InvalidParameterError
        If fewer than two tables are given, or ``columns`` is malformed.
    DataFileError
        If a file cannot be read.

    Notes
    -----
    Each table is checked by :func:`crtstats.validate`. Across tables: every
    ``team_id`` is in ``teams`` (the schemas' ``foreignKeys``); a team attribute
    (``arm``, ``stratum``, ...) repeated in another table agrees with ``teams``.
    Within tables, the schemas give one row per key (one review per team and review),
    bed days 0 where not admitted, positive exposure and at least two teams per arm.

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
    given = {name: src for name, src in (("teams", teams), ("fidelity", fidelity),
             ("admissions", admissions), ("service_use", service_use)) if src is not None}
    if len(given) < 2:
        raise InvalidParameterError(
            "load_trial needs teams and at least one of fidelity, admissions, service_use."
        )
    maps = _column_maps(columns)
    provenance: dict[str, dict[str, Any]] = {}
    frames = {name: _rename(_source(name, src, provenance), maps.get(name, {}), name)
              for name, src in given.items()}
    checked: dict[str, pd.DataFrame] = {}
    failures: list[pd.DataFrame] = []
    row_maps: dict[str, _RowMap | None] = {}
    for name, frame in frames.items():
        checked[name], found, row_maps[name] = _check_table(name, frame)
        failures += found
    for cross in cross_table_problems(checked):
        failures.append(_remap(cross, row_maps.get(str(cross["table"].iloc[0]))))
    everything = failure_frame([f for f in failures if len(f)])
    derived = service_use is None and "admissions" in checked and everything.empty
    if derived:
        data = _derive_service_use(checked)
        if data is not None:
            checked["service_use"], more = collect_problems(data, table="service_use")
            everything = failure_frame([everything, more] if len(more) else [everything])
    if not everything.empty:
        everything = _sorted(everything)
        raise SchemaValidationError.from_cases(records(everything),
                                               subject="trial data")
    return TrialData(**checked, service_use_derived=derived, provenance=provenance)
