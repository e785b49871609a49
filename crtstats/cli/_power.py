"""``crtstats power PLAN.toml --sims N --out DIR``: power of the planned analyses."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser"]


def _grid(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--effect-grid must be numbers separated by commas, e.g. 0.5,1,1.5; got {text!r}"
        ) from None


def add_parser(subparsers: Any) -> None:
    """Register the ``power`` subcommand."""
    parser = subparsers.add_parser(
        "power",
        help="simulate the plan's [design] and estimate the power of its analyses",
        description="Simulate trials from the plan's [design] table through the data model, "
        "fit the plan's pre-specified analyses to each, and write power, type I error "
        "(from as many trials simulated under the null), mean estimate and coverage per "
        "analysis, with a power curve, into the output folder.",
    )
    parser.add_argument("plan", type=Path, help="the analysis plan (TOML) with a [design]")
    parser.add_argument("--sims", type=int, required=True,
                        help="simulated trials per scenario (and as many under the null)")
    parser.add_argument("--out", type=Path, required=True, help="the results folder to write")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes on this machine (default 1)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="run on this Dask distributed scheduler (tcp://host:8786)")
    parser.add_argument("--effect-grid", type=_grid, default=None, metavar="F1,F2,...",
                        help="scale factors of the design's effects for a power curve "
                        "(default 1)")
    parser.add_argument("--analysis", action="append", default=None, dest="analyses",
                        metavar="NAME", help="fit only this plan entry (repeatable)")
    parser.add_argument("--engine", choices=("tables", "batched"), default="tables",
                        help="batched: fit the fidelity LMM entries with BatchedLMM "
                        "(same trials, same numbers, faster)")
    parser.add_argument("--force", action="store_true",
                        help="replace the results folder if it is a crtstats results folder")
    parser.set_defaults(func=_handle)


def _handle(args: argparse.Namespace) -> int:
    from crtstats.power import simulate, write_power
    from crtstats.runner import ResultsLock, check_destination, results_folder

    show = sys.stderr.isatty() and not os.environ.get("CI")
    # lock and check the folder before the simulation, so that a second run into the
    # same folder, or one onto the plan itself, fails at once and not after all the work
    with ResultsLock(results_folder(args.out)):
        check_destination(results_folder(args.out), force=args.force, inputs=[args.plan])
        result = simulate(args.plan, sims=args.sims, workers=args.workers,
                          scheduler=args.scheduler, effect_grid=args.effect_grid,
                          analyses=args.analyses, engine=args.engine, progress=show)
        out = write_power(result, args.out, force=args.force, lock=False)
    print(f"crtstats: wrote {out}")
    return 0
