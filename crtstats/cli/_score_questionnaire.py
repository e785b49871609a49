"""``crtstats score --user-questionnaires U.csv --instrument csq8 --out S.csv``."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import pandas as pd

__all__ = ["score_file"]

#: The table each questionnaire option reads.
_TABLES = (("user_questionnaires", "--user-questionnaires"),
           ("staff_questionnaires", "--staff-questionnaires"))


def _read(table: str, path: Path, mapping_file: Path | None) -> pd.DataFrame:
    """The questionnaire file read, mapped and validated against its table schema
    (without teams: the cross-table checks need ``crtstats validate``)."""
    from crtstats.schema import DataMapping, collect_problems, load_mapping
    from crtstats.trial import load_sources, validation_error, with_lines

    mapping = load_mapping(mapping_file) if mapping_file is not None else DataMapping()
    loaded, log = load_sources({table: path}, mapping)
    for recoding in log:
        print(f"crtstats: {recoding.describe()}")
    data, failures = collect_problems(loaded[table].frame, table=table)
    if len(failures):
        raise validation_error(with_lines(failures, loaded), subject=f"file {path.name}")
    return data


def score_file(args: argparse.Namespace) -> int:
    """Score the questionnaire file that ``args`` names and write ``--out``."""
    from crtstats.exceptions import CRTStatsWarning
    from crtstats.io import write_csv
    from crtstats.scales import load_instrument, score_questionnaire

    table, option = next((t, o) for t, o in _TABLES if getattr(args, t) is not None)
    if args.instrument is None:
        print(f"crtstats: error: {option} needs --instrument (a key such as csq8 or ghq12, "
              "or the path of a key file)", file=sys.stderr)
        return 2
    key = load_instrument(args.instrument)
    data = _read(table, getattr(args, table), args.mapping)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CRTStatsWarning)
        scores = score_questionnaire(data, key, scoring=args.scoring,
                                     max_missing=args.max_missing, prorate=args.prorate,
                                     caseness_threshold=args.caseness_threshold)
    for warning in caught:
        print(f"crtstats: warning: {warning.message}", file=sys.stderr)
    write_csv(scores, args.out)
    n_total = int(scores["total"].notna().sum())
    cases = (f", {int(scores['case'].sum())} case(s)" if "case" in scores.columns else "")
    print(f"crtstats: scored {len(scores)} {table} row(s) with {key.outcome_name(args.scoring)}"
          f", {n_total} with a total ({int(scores['prorated'].sum())} prorated{cases}); "
          f"wrote {args.out}")
    return 0
