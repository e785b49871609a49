"""``crtstats score --fidelity F.csv --out scores.csv``: score fidelity reviews."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

__all__ = ["add_parser"]

#: The scale that ``data_schema/fidelity.schema.json`` describes.
_SCHEMA_SCALE = "core_crt_v2"


def add_parser(subparsers: Any) -> None:
    """Register the ``score`` subcommand."""
    parser = subparsers.add_parser(
        "score",
        help="score fidelity reviews: totals, domain scores and bands",
        description="Validate a fidelity file, then write one row per team and review "
        "with the total, mean item score, items scored, proration flag, band and the "
        "sum and mean of each domain. Exit code 0 on success, 1 if the data are "
        "rejected (every problem is listed).",
    )
    parser.add_argument("--fidelity", type=Path, required=True,
                        help="the fidelity reviews file (.csv, .parquet or .xlsx)")
    parser.add_argument("--out", type=Path, required=True, help="the scores CSV to write")
    parser.add_argument(
        "--scale", default=_SCHEMA_SCALE,
        help=f"a scale key shipped with crtstats or the path of a key file "
        f"(default {_SCHEMA_SCALE}); the fidelity table schema is checked only for "
        f"{_SCHEMA_SCALE}, other scales are checked against their key",
    )
    parser.add_argument(
        "--max-missing", dest="max_missing", type=int, default=0, metavar="N",
        help="prorate the total of a review with up to N missing items (default 0: no "
        "total when any item is missing); prorated totals are flagged",
    )
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.set_defaults(func=_handle)


def _handle(args: argparse.Namespace) -> int:
    from crtstats.exceptions import CRTStatsWarning
    from crtstats.io import check_not_input, read_table, write_csv
    from crtstats.scales import score_fidelity
    from crtstats.schema import validate

    scale_file = Path(args.scale) if Path(args.scale).is_file() else None
    check_not_input(args.out, [args.fidelity, scale_file, getattr(args, "mapping", None)],
                    option="--out")
    if args.out.exists() and not args.force:
        print(f"crtstats: error: {args.out} exists; pass --force to replace it",
              file=sys.stderr)
        return 1
    data = read_table(args.fidelity, table="fidelity").data
    _refuse_long_format(data, args.fidelity)
    if args.scale == _SCHEMA_SCALE:
        data = validate(data, table="fidelity")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CRTStatsWarning)
        scores = score_fidelity(data, scale=args.scale, max_missing=args.max_missing)
    for warning in caught:
        print(f"crtstats: warning: {warning.message}", file=sys.stderr)
    write_csv(scores, args.out)
    n_total = int(scores["total"].notna().sum())
    print(f"crtstats: scored {len(scores)} review(s), {n_total} with a total "
          f"({int(scores['prorated'].sum())} prorated); wrote {args.out}")
    return 0


def _refuse_long_format(data: Any, path: Path) -> None:
    """Say plainly that a long-format file (one row per item) must be made wide first."""
    from crtstats.exceptions import DataFileError
    from crtstats.io import load_schema

    spec = load_schema("fidelity").get("x-crtstats-long-format")
    if spec and spec["key"] in data.columns and spec["value"] in data.columns:
        raise DataFileError(
            f"{path.name} is in long format (columns {spec['key']!r} and "
            f"{spec['value']!r}); crtstats score reads the wide format, one row per team "
            "and review with one column per item. Pivot it first, or load it with "
            "crtstats.load_trial, which accepts both."
        )
