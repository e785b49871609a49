"""``crtstats validate --teams T.csv [...]``: check a trial's data files, report problems."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd

from crtstats.cli._terminal import frame_text
from crtstats.exceptions import FAILURE_COLUMNS, SchemaValidationError
from crtstats.io import check_not_input, write_csv
from crtstats.schema import DataMapping, collect_problems, failure_frame, load_mapping
from crtstats.trial import exclusions, load_sources, load_trial, with_lines

__all__ = ["add_parser", "summarise"]

_TABLE_OPTIONS = (("teams", "--teams"), ("fidelity", "--fidelity"),
                  ("admissions", "--admissions"), ("service_use", "--service-use"),
                  ("user_questionnaires", "--user-questionnaires"),
                  ("staff_questionnaires", "--staff-questionnaires"))


def add_parser(subparsers: Any) -> None:
    """Register the ``validate`` subcommand."""
    parser = subparsers.add_parser(
        "validate",
        help="check a trial's data files against the data model",
        description="Read the data files, check every table against its schema and the "
        "tables against each other, and list every problem. Exit code 0 means the data "
        "are valid, 1 that they are not (or a file cannot be read).",
    )
    parser.add_argument("--teams", type=Path, required=True, help="the teams file")
    parser.add_argument("--fidelity", type=Path, help="the fidelity reviews file")
    parser.add_argument("--admissions", type=Path, help="the admissions file")
    parser.add_argument("--service-use", dest="service_use", type=Path,
                        help="the service use file")
    parser.add_argument("--user-questionnaires", dest="user_questionnaires", type=Path,
                        help="the service-user questionnaires file (e.g. CSQ-8 items)")
    parser.add_argument("--staff-questionnaires", dest="staff_questionnaires", type=Path,
                        help="the staff questionnaires file (e.g. GHQ-12 items)")
    parser.add_argument("--mapping", type=Path, metavar="FILE.toml",
                        help="a data mapping: your column names, item pattern, value labels, "
                        "date formats, Excel sheets and encodings (docs: Data model)")
    parser.add_argument("--report", type=Path,
                        help="write every problem to this CSV file (header only when clean)")
    parser.set_defaults(func=_handle)


def summarise(failures: pd.DataFrame) -> pd.DataFrame:
    """One row per table, column, reason and check: the number of problems, the first
    line of the file (header = line 1; the sheet row for Excel) or, for a table given as
    a DataFrame, the first 0-based row, and the first value seen."""
    keys = ["table", "column", "reason_code", "check"]
    columns = ["table", "column", "reason_code", "problems", "first_line", "first_value",
               "check"]
    if failures.empty:
        return pd.DataFrame(columns=columns)
    where = failures["line"] if "line" in failures.columns else failures["row"]
    if "line" in failures.columns:
        where = where.where(where.notna(), failures["row"])
    grouped = failures.assign(_where=where).astype({"column": str}).groupby(
        keys, sort=False, dropna=False)
    out = grouped.agg(problems=("row", "size"), first_line=("_where", "first"),
                      first_value=("value", "first")).reset_index()
    return out[columns]


def _mapping(args: argparse.Namespace) -> DataMapping | None:
    return None if args.mapping is None else load_mapping(args.mapping)


def _teams_alone(path: Path, mapping: DataMapping | None
                 ) -> tuple[pd.DataFrame, dict[str, int], list[str]]:
    loaded, log = load_sources({"teams": path}, mapping or DataMapping())
    _, failures = collect_problems(loaded["teams"].frame, table="teams")
    notes = [r.describe() for r in log]
    notes += [str(d) for d in exclusions(loaded)["detail"]]
    return with_lines(failures, loaded), {"teams": len(loaded["teams"].frame)}, notes


def _problems(args: argparse.Namespace) -> tuple[pd.DataFrame, dict[str, int], list[str]]:
    paths = {name: getattr(args, name) for name, _ in _TABLE_OPTIONS
             if getattr(args, name) is not None}
    mapping = _mapping(args)
    if len(paths) == 1:  # teams alone: check that table only
        return _teams_alone(paths["teams"], mapping)
    try:
        trial = load_trial(**paths, columns=mapping)
    except SchemaValidationError as err:
        return err.failure_cases, {}, []
    rows = {name: len(frame) for name, frame in trial.tables().items()}
    if trial.service_use_derived:
        rows["service_use (derived)"] = rows.pop("service_use")
    notes = trial.mapping_lines()
    notes += [str(d) for d in trial.exclusions["detail"]]
    notes += [f"{name} read in long format ({p['rows']} rows, one per item) and pivoted "
              f"to {rows.get(name)} reviews" for name, p in trial.provenance.items()
              if p.get("layout") == "long"]
    return failure_frame([]), rows, notes


def _handle(args: argparse.Namespace) -> int:
    if args.report is not None:  # before reading: the report must not replace an input
        check_not_input(args.report, [getattr(args, name) for name, _ in _TABLE_OPTIONS]
                        + [getattr(args, "mapping", None)], option="--report")
    failures, rows, notes = _problems(args)
    if args.report is not None:
        report = failures if not failures.empty else pd.DataFrame(
            columns=[*FAILURE_COLUMNS, "file", "line"])
        write_csv(report, args.report)
    for note in notes:
        print(f"crtstats: {note}")
    if failures.empty:
        tables = ", ".join(f"{name} ({n} rows)" for name, n in rows.items())
        print(f"crtstats: valid: {tables}")
        return 0
    n_tables = failures["table"].nunique()
    print(f"crtstats: {len(failures)} problem(s) in {n_tables} table(s); first_line is the "
          "line of the file (header = line 1; for Excel, the row of the sheet)")
    with pd.option_context("display.max_colwidth", 110, "display.width", 250):
        print(frame_text(summarise(failures)))
    if args.report is not None:
        print(f"crtstats: every problem is listed in {args.report}")
    return 1
