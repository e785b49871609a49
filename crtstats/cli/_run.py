"""``crtstats run PLAN.toml --out DIR``: run a whole analysis plan."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    """Register the ``run`` subcommand."""
    parser = subparsers.add_parser(
        "run",
        help="run an analysis plan and write its results folder",
        description="Validate the data, score fidelity, fit the pre-specified analyses and "
        "write tables, figures, a report and manifest.json into the output folder.",
    )
    parser.add_argument("plan", type=Path, help="the analysis plan (TOML)")
    parser.add_argument("--out", type=Path, required=True, help="the results folder to write")
    parser.add_argument(
        "--force", action="store_true", help="replace the results folder if it exists"
    )
    parser.set_defaults(func=_handle)


def _handle(args: argparse.Namespace) -> int:
    from crtstats.runner import run

    result = run(args.plan, out=args.out, force=args.force)
    print(f"crtstats: wrote {result.out}")
    return 0
