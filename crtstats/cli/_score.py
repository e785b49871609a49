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
    parser.add_argument("--mapping", type=Path, metavar="FILE.toml",
                        help="a data mapping for the fidelity file: column names, item "
                        "pattern (Q{n}), review labels, date format, Excel sheet, encoding")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.set_defaults(func=_handle)


def _handle(args: argparse.Namespace) -> int:
    from crtstats.exceptions import CRTStatsWarning
    from crtstats.io import check_not_input, write_csv
    from crtstats.scales import score_fidelity

    scale_file = Path(args.scale) if Path(args.scale).is_file() else None
    check_not_input(args.out, [args.fidelity, scale_file, getattr(args, "mapping", None)],
                    option="--out")
    if args.out.exists() and not args.force:
        print(f"crtstats: error: {args.out} exists; pass --force to replace it",
              file=sys.stderr)
        return 1
    data = _read_fidelity(args.fidelity, args.mapping, checked=args.scale == _SCHEMA_SCALE)
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


def _read_fidelity(path: Path, mapping_file: Path | None, *, checked: bool) -> Any:
    """The fidelity file read, mapped and (for the schema's scale) validated; a long
    layout (one row per item) is pivoted to wide, as :func:`crtstats.load_trial` does."""
    from crtstats.exceptions import DataFileError
    from crtstats.schema import DataMapping, failure_frame, load_mapping
    from crtstats.trial import check_table, load_sources, validation_error, with_lines

    mapping = load_mapping(mapping_file) if mapping_file is not None else DataMapping()
    loaded, log = load_sources({"fidelity": path}, mapping)
    for recoding in log:
        print(f"crtstats: {recoding.describe()}")
    frame = loaded["fidelity"].frame
    if not checked:
        from crtstats.schema import is_long_format

        if is_long_format(frame, table="fidelity"):
            raise DataFileError(
                f"{path.name} is in long format (one row per item); with a scale other than "
                f"{_SCHEMA_SCALE} crtstats score reads the wide format only. Pivot it first."
            )
        return frame
    data, found, _ = check_table("fidelity", frame)
    failures = failure_frame([f for f in found if len(f)])
    if len(failures):
        raise validation_error(with_lines(failures, loaded), subject=f"file {path.name}")
    return data
