"""The ``[data]`` table of an analysis plan: the trial's files and their mapping.

``[data]`` names one file per table of the data model (``teams``, ``fidelity``,
``admissions``, ``service_use``, ``user_questionnaires``, ``staff_questionnaires``:
whatever :data:`crtstats.io.TABLES` holds), or ``example = true`` for the trial shipped
with crtstats (all its tables), and how the files' columns and labels map onto the data
model (``[data.mapping]``, a mapping file, or ``[data.columns]`` renames).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from crtstats.exceptions import MappingError, PlanError
from crtstats.io import TABLES
from crtstats.runner._plan_checks import get_value, unknown_keys
from crtstats.schema import DataMapping, TableMapping, load_mapping, parse_mapping

__all__ = ["DataSpec", "parse_data"]


@dataclass(frozen=True)
class DataSpec:
    """The ``[data]`` table: where the trial's files are and how their columns map.

    Attributes
    ----------
    example
        True to analyse the example trial shipped with crtstats.
    files
        Table name -> path of its file, resolved against the plan's folder.
    columns
        Table name -> {column name in the file: crtstats column name}: the renames of
        ``mapping``, recorded in the manifest.
    mapping
        The data mapping (:func:`crtstats.schema.parse_mapping`): ``[data.mapping.<table>]``
        in the plan, or the file ``mapping = "file.toml"`` names (relative to the plan),
        with any ``[data.columns.<table>]`` renames merged in.
    mapping_file
        The mapping file, when the plan names one.
    """

    example: bool
    files: Mapping[str, Path] = field(default_factory=dict)
    columns: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    mapping: DataMapping = field(default_factory=DataMapping)
    mapping_file: Path | None = None



def _parse_columns(raw: Any, where: str) -> dict[str, dict[str, str]]:
    if not isinstance(raw, dict):
        raise PlanError(f"{where} must be a table of tables, e.g. [data.columns.teams].")
    unknown_keys(raw, TABLES, where)
    out: dict[str, dict[str, str]] = {}
    for table, mapping in raw.items():
        inner = f"{where}.{table}"
        if not isinstance(mapping, dict):
            raise PlanError(f"{inner} must be a table of \"your name\" = \"crtstats name\" "
                            "pairs.")
        for theirs, ours in mapping.items():
            if not isinstance(ours, str) or not ours:
                raise PlanError(f"{inner}: {theirs!r} must map to a crtstats column name; "
                                f"got {ours!r}.")
        out[table] = dict(mapping)
    return out


def _parse_mapping(raw: Mapping[str, Any], base: Path, columns: dict[str, dict[str, str]]
                   ) -> tuple[DataMapping, Path | None]:
    """``[data.mapping]`` or ``mapping = "file.toml"``, with ``[data.columns]`` merged."""
    value = raw.get("mapping")
    path = None
    try:
        if isinstance(value, str):
            path = base / value
            mapping = load_mapping(path)
        elif value is None or isinstance(value, dict):
            mapping = parse_mapping(value, where="[data.mapping]")
        else:
            raise PlanError("[data] mapping must be a file name (mapping = \"trust.toml\") or "
                            "a table ([data.mapping.teams]).")
    except MappingError as err:
        raise PlanError(f"[data] mapping: {err}") from None
    if mapping.shared:
        raise PlanError("[data.mapping] must be per table ([data.mapping.teams] ...).")
    tables = dict(mapping.tables)
    for table, renames in columns.items():
        current = tables.get(table, TableMapping())
        twice = sorted(set(renames) & set(current.columns))
        if twice:
            raise PlanError(f"[data.columns.{table}] and the mapping both rename {twice}; "
                            "declare each rename once.")
        tables[table] = replace(current, columns={**current.columns, **renames})
    return DataMapping(tables=tables), path


def parse_data(raw: Any, base: Path) -> DataSpec:
    where = "[data]"
    if not isinstance(raw, dict):
        raise PlanError(
            "the plan has no [data] table naming the trial's files (or example = true)."
        )
    unknown_keys(raw, ("example", *TABLES, "columns", "mapping"), where)
    example = get_value(raw, "example", bool, where, default=False)
    columns = _parse_columns(raw.get("columns", {}), "[data.columns]")
    mapping, mapping_file = _parse_mapping(raw, base, columns)
    columns = {t: dict(m.columns) for t, m in mapping.tables.items() if m.columns}
    named = [t for t in TABLES if t in raw]
    if example:
        if named or columns or "mapping" in raw:
            given = ", ".join([*named, *(["columns"] if columns else []),
                               *(["mapping"] if "mapping" in raw else [])])
            raise PlanError(
                f"[data] sets example = true and also names files or columns ({given}); "
                "the example trial uses the crtstats names: use one or the other."
            )
        return DataSpec(example=True, columns=columns)
    if "teams" not in raw:
        raise PlanError("[data] must name a teams file (teams = \"teams.csv\"), or set "
                        "example = true to analyse the shipped example trial.")
    if len(named) < 2:
        raise PlanError("[data] names only the teams file; a trial also needs at least one of "
                        f"{', '.join(TABLES[1:])}.")
    files = {t: base / get_value(raw, t, str, where) for t in named}
    return DataSpec(example=False, files=files, columns=columns, mapping=mapping,
                    mapping_file=mapping_file)
