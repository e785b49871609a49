"""``crtstats run PLAN.toml --out DIR``: run a whole analysis plan."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

__all__ = ["add_parser", "progress_printer"]


def add_parser(subparsers: Any) -> None:
    """Register the ``run`` subcommand."""
    parser = subparsers.add_parser(
        "run",
        help="run an analysis plan and write its results folder",
        description="Validate the data, score fidelity, fit the pre-specified analyses and "
        "write tables, figures, report.html and manifest.json into the output folder. The "
        "folder is written in full or not at all.",
    )
    parser.add_argument("plan", type=Path, help="the analysis plan (TOML)")
    parser.add_argument("--out", type=Path, required=True, help="the results folder to write")
    parser.add_argument(
        "--force", action="store_true",
        help="replace the results folder if it exists (only a crtstats results folder)",
    )
    parser.set_defaults(func=_handle)


def progress_printer(
    stream: TextIO | None = None, environ: Mapping[str, str] | None = None,
) -> Callable[[str], None] | None:
    """A printer of progress messages to ``stream`` (stderr), or None to stay silent.

    Progress is shown only on a terminal, and never when the ``CI`` environment
    variable is set (continuous-integration logs stay clean).
    """
    out = sys.stderr if stream is None else stream
    env = os.environ if environ is None else environ
    if env.get("CI") or not out.isatty():
        return None

    def show(message: str) -> None:
        print(f"crtstats: {message} ...", file=out, flush=True)

    return show


def _handle(args: argparse.Namespace) -> int:
    from crtstats.runner import run

    result = run(args.plan, out=args.out, force=args.force, progress=progress_printer())
    for warning in result.warnings:
        print(f"crtstats: warning: {warning.stage}: {warning.category}: {warning.message}",
              file=sys.stderr)
    for item in result.manifest.get("not_possible", ()):
        print(f"crtstats: not possible with these data: {item['what']}: {item['reason']}",
              file=sys.stderr)
    print(f"crtstats: wrote {result.out}")
    return 0
