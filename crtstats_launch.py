"""The ``crtstats`` console command.

A module of its own, outside the ``crtstats`` package, so that an interrupt (Ctrl-C)
while the package and its numerical libraries are still loading prints one line and
exits with code 130 instead of a traceback; everything else is
:func:`crtstats.cli.main`.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> int:
    """Load the command line and run it; returns the process exit code."""
    try:
        from crtstats.cli import main as run_command
    except KeyboardInterrupt:
        print("crtstats: interrupted (Ctrl-C)", file=sys.stderr)
        return 130
    return run_command()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
