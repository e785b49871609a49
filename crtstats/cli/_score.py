"""``crtstats score --fidelity F.csv --out scores.csv``: score fidelity reviews; and
``crtstats score --user-questionnaires U.csv --instrument csq8 --out scores.csv``: score
questionnaires by an instrument key."""

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
        help="score fidelity reviews or questionnaires",
        description="Validate a fidelity file, then write one row per team and review "
        "with the total, mean item score, items scored, proration flag, band and the "
        "sum and mean of each domain; or validate a questionnaire file and write one row "
        "per person and wave with the instrument's total, items scored, proration flag "
        "and caseness. Exit code 0 on success, 1 if the data are rejected (every "
        "problem is listed).",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--fidelity", type=Path,
                        help="the fidelity reviews file (.csv, .parquet or .xlsx)")
    source.add_argument("--user-questionnaires", dest="user_questionnaires", type=Path,
                        help="a service-user questionnaires file (needs --instrument)")
    source.add_argument("--staff-questionnaires", dest="staff_questionnaires", type=Path,
                        help="a staff questionnaires file (needs --instrument)")
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
        "total when any item is missing); prorated totals are flagged. For a "
        "questionnaire it needs --prorate",
    )
    parser.add_argument(
        "--instrument", metavar="KEY",
        help="questionnaires: an instrument key shipped with crtstats (csq8, ghq12) or the "
        "path of a key file",
    )
    parser.add_argument("--scoring", help="questionnaires: the instrument's scoring "
                        "(e.g. ghq or likert for ghq12; default the key's first)")
    parser.add_argument("--prorate", action="store_true",
                        help="questionnaires: prorate totals with up to --max-missing "
                        "missing items (flagged)")
    parser.add_argument("--caseness-threshold", dest="caseness_threshold", type=float,
                        metavar="T", help="questionnaires: a case is a total >= T (default "
                        "the key's threshold)")
    parser.add_argument("--mapping", type=Path, metavar="FILE.toml",
                        help="a data mapping for the file: column names, item pattern "
                        "(Q{n}), value labels, date format, Excel sheet, encoding")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.set_defaults(func=_handle)


def _handle(args: argparse.Namespace) -> int:
    from crtstats.exceptions import CRTStatsWarning
    from crtstats.io import check_not_input, write_csv
    from crtstats.scales import score_fidelity

    misplaced = _misplaced(args)
    if misplaced:
        print(f"crtstats: error: {misplaced}", file=sys.stderr)
        return 2
    scale_file = Path(args.scale) if Path(args.scale).is_file() else None
    key_file = (Path(args.instrument) if args.instrument and Path(args.instrument).is_file()
                else None)
    inputs = [args.fidelity, args.user_questionnaires, args.staff_questionnaires]
    check_not_input(args.out, [*inputs, scale_file, key_file,
                               getattr(args, "mapping", None)], option="--out")
    if args.out.exists() and not args.force:
        print(f"crtstats: error: {args.out} exists; pass --force to replace it",
              file=sys.stderr)
        return 1
    if args.fidelity is None:
        from crtstats.cli._score_questionnaire import score_file

        return score_file(args)
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


def _misplaced(args: argparse.Namespace) -> str | None:
    """An option given for the other kind of file (never silently ignored), or None."""
    if args.fidelity is not None:
        given = [o for o, v in (("--instrument", args.instrument), ("--scoring", args.scoring),
                                ("--prorate", args.prorate or None),
                                ("--caseness-threshold", args.caseness_threshold))
                 if v is not None]
        return (f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to "
                "questionnaires, not to --fidelity") if given else None
    if args.scale != _SCHEMA_SCALE:
        return "--scale applies to --fidelity; a questionnaire takes --instrument"
    return None


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
