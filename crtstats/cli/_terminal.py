"""What the command line prints: user data never reaches the terminal raw.

Every line a subcommand prints goes through :func:`crtstats.io.printable` (the streams
are wrapped for the whole command), so a cell or file name holding ``ESC[2J`` is shown
as ``\\x1b[2J`` instead of clearing the screen. Tables of problems are escaped cell by
cell first, so their columns stay aligned.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import pandas as pd

from crtstats.io import printable

__all__ = ["escaped_output", "frame_text"]


class _EscapingStream:
    """A text stream that writes ``printable(text, newlines=True)`` to ``stream``."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(printable(text, newlines=True))
        return len(text)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, encoding, fileno...
        return getattr(self._stream, name)


@contextmanager
def escaped_output() -> Iterator[None]:
    """Escape control characters in everything written to stdout and stderr."""
    saved = sys.stdout, sys.stderr
    sys.stdout = _EscapingStream(saved[0])
    sys.stderr = _EscapingStream(saved[1])
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def frame_text(frame: pd.DataFrame) -> str:
    """``frame.to_string(index=False)`` with every text cell escaped first."""
    cells = frame.map(lambda v: printable(v) if isinstance(v, str) else v)
    cells.columns = [printable(c) for c in frame.columns]
    return str(cells.to_string(index=False))
