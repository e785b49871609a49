"""The ``crtstats`` command line.

Every subcommand lives in a module of its own beside this one and exposes
``add_parser(subparsers)``, which registers it and sets ``func`` to a handler that
takes the parsed arguments and returns an exit code. Errors the user can fix are
printed as one line, never as a traceback; exit code 1 means the data or plan was
rejected, 2 a bad command line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from crtstats import __version__
from crtstats.cli import _power, _run, _score, _validate
from crtstats.cli._terminal import escaped_output, frame_text
from crtstats.exceptions import CRTStatsError, SchemaValidationError

__all__ = ["main"]

_SUBCOMMANDS = (_run, _validate, _score, _power)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit with code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every subcommand registered."""
    parser = _Parser(
        prog="crtstats",
        description="Statistics for cluster-randomised trials of Crisis Resolution Team "
        "model fidelity.",
    )
    parser.add_argument("--version", action="version", version=f"crtstats {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for module in _SUBCOMMANDS:
        module.add_parser(subparsers)
    return parser


def _print_problems(err: SchemaValidationError) -> None:
    cases = err.failure_cases
    print(f"crtstats: error: {err}", file=sys.stderr)
    print(frame_text(cases.head(50)), file=sys.stderr)
    if len(cases) > 50:
        print(f"... and {len(cases) - 50} more problems", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code.

    Everything printed is escaped (:func:`crtstats.io.printable`); an interrupt
    (Ctrl-C) at any stage prints one line and returns 130, with no traceback.
    """
    with escaped_output():
        try:
            return _dispatch(argv)
        except KeyboardInterrupt:
            print("crtstats: interrupted (Ctrl-C)", file=sys.stderr)
            return 130


def _dispatch(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except SchemaValidationError as err:
        _print_problems(err)
        return 1
    except (CRTStatsError, OSError) as err:
        print(f"crtstats: error: {err}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
