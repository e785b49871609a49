"""``crtstats validate --teams T.csv [...]``: check a trial's data files, report problems."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd

from crtstats.cli._terminal import frame_text
from crtstats.exceptions import FAILURE_COLUMNS, SchemaValidationError
from crtstats.io import check_not_input, read_table, write_csv
from crtstats.schema import collect_problems, failure_frame
from crtstats.trial import load_trial

__all__ = ["add_parser", "summarise"]

_TABLE_OPTIONS = (("teams", "--teams"), ("fidelity", "--fidelity"),
                  ("admissions", "--admissions"), ("service_use", "--service-use"))


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
    parser.add_argument("--report", type=Path,
                        help="write every problem to this CSV file (header only when clean)")
    parser.set_defaults(func=_handle)


def summarise(failures: pd.DataFrame) -> pd.DataFrame:
    """One row per table, column, reason and check: the number of problems, the first
    row and the first value seen."""
    keys = ["table", "column", "reason_code", "check"]
    if failures.empty:
        return pd.DataFrame(columns=[*keys, "problems", "first_row", "first_value"])
    grouped = failures.astype({"column": str}).groupby(keys, sort=False, dropna=False)
    out = grouped.agg(problems=("row", "size"), first_row=("row", "first"),
                      first_value=("value", "first")).reset_index()
    return out[["table", "column", "reason_code", "problems", "first_row", "first_value",
                "check"]]


def _problems(args: argparse.Namespace) -> tuple[pd.DataFrame, dict[str, int]]:
    paths = {name: getattr(args, name) for name, _ in _TABLE_OPTIONS
             if getattr(args, name) is not None}
    if len(paths) == 1:  # teams alone: check that table only
        read = read_table(paths["teams"], table="teams")
        _, failures = collect_problems(read.data, table="teams")
        return failures, {"teams": read.n_rows}
    try:
        trial = load_trial(**paths)
    except SchemaValidationError as err:
        return err.failure_cases, {}
    rows = {name: len(frame) for name, frame in trial.tables().items()}
    if trial.service_use_derived:
        rows["service_use (derived)"] = rows.pop("service_use")
    return failure_frame([]), rows


def _handle(args: argparse.Namespace) -> int:
    if args.report is not None:  # before reading: the report must not replace an input
        check_not_input(args.report, [getattr(args, name) for name, _ in _TABLE_OPTIONS]
                        + [getattr(args, "mapping", None)], option="--report")
    failures, rows = _problems(args)
    if args.report is not None:
        report = failures if not failures.empty else pd.DataFrame(
            columns=list(FAILURE_COLUMNS))
        write_csv(report, args.report)
    if failures.empty:
        tables = ", ".join(f"{name} ({n} rows)" for name, n in rows.items())
        print(f"crtstats: valid: {tables}")
        return 0
    n_tables = failures["table"].nunique()
    print(f"crtstats: {len(failures)} problem(s) in {n_tables} table(s)")
    with pd.option_context("display.max_colwidth", 70, "display.width", 200):
        print(frame_text(summarise(failures)))
    if args.report is not None:
        print(f"crtstats: every problem is listed in {args.report}")
    return 1
