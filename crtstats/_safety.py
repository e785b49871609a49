"""Safe output: never over an input, no spreadsheet formulas, no terminal control.

Pure helpers that :mod:`crtstats.io` exports and every command uses: the check that an
output path is not one of the inputs, the neutraliser of spreadsheet formulas in CSV
cells, and the escaping of control characters in text printed to a terminal.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crtstats.exceptions import OutputPathError

__all__ = ["FORMULA_STARTS", "check_not_input", "neutralise_formula", "neutralise_formulas",
           "printable"]



def check_not_input(
    output: str | PathLike[str], inputs: Iterable[str | PathLike[str] | None], *,
    option: str, folder: bool = False,
) -> None:
    """Refuse to write ``output`` when it is one of ``inputs`` (or, for a ``folder``
    that is replaced as a whole, when it holds one).

    Paths are compared as files (:func:`os.path.samefile`, so a symbolic or hard link
    to an input is caught) and as resolved paths (for outputs not yet written).

    Raises
    ------
    OutputPathError
        If ``output`` is an input, or a folder ``output`` contains one.

    Examples
    --------
    >>> from crtstats.datasets import example_paths
    >>> teams = example_paths()["teams"]
    >>> check_not_input(teams, [teams], option="--report")
    Traceback (most recent call last):
    ...
    crtstats.exceptions.OutputPathError: --report ... is the input file ...
    """
    out = Path(output)
    target = out.resolve()
    for given in inputs:
        if given is None:
            continue
        source = Path(given)
        same = source.resolve() == target or (
            out.exists() and source.exists() and os.path.samefile(out, source))
        if same:
            raise OutputPathError(
                f"{option} {str(out)!r} is the input file {str(source)!r}; writing it would "
                f"destroy the input. Choose another {option} path (the input is untouched)."
            )
        if folder and source.resolve().is_relative_to(target):
            raise OutputPathError(
                f"the input {str(source)!r} is inside the results folder {str(out)!r} "
                f"({option}), which is replaced as a whole; choose an {option} that holds "
                "no input."
            )


#: What a spreadsheet reads as the start of a formula (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d*)?(?:[eE][+-]?\d+)?%?")


def neutralise_formula(cell: str) -> str:
    """Prefix ``'`` to a text cell that a spreadsheet would run as a formula.

    A cell beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
    prefixed, unless the whole cell is a plain number (``-0.5``, ``+3``, ``-1,234``,
    ``1e-05``, ``-5%``), which stays a number.

    References
    ----------
    OWASP, CSV Injection, https://owasp.org/www-community/attacks/CSV_Injection

    Examples
    --------
    >>> [neutralise_formula(c) for c in ["=1+2", "@SUM(A1)", "-0.5", "-0.5 (-1, 0)", "ok"]]
    ["'=1+2", "'@SUM(A1)", '-0.5', "'-0.5 (-1, 0)", 'ok']
    """
    if not cell.startswith(FORMULA_STARTS):
        return cell
    if any(ch.isdigit() for ch in cell) and _NUMBER.fullmatch(cell):
        return cell
    return "'" + cell


def neutralise_formulas(data: pd.DataFrame) -> pd.DataFrame:
    """``data`` with :func:`neutralise_formula` applied to every text cell (a copy when
    any cell changes); numeric columns and non-text cells are left as they are."""
    changed: dict[Any, pd.Series] = {}
    for name in data.columns:
        col = data[name]
        is_text = isinstance(col.dtype, pd.StringDtype) or (
            isinstance(col.dtype, np.dtype) and col.dtype.kind == "O")
        if not is_text:
            continue
        text = col.map(lambda v: neutralise_formula(v) if isinstance(v, str) else v,
                       na_action="ignore")
        if not text.equals(col):
            changed[name] = text.astype(col.dtype)
    if not changed:
        return data
    out = data.copy()
    for name, values in changed.items():
        out[name] = values
    return out


_CONTROL = "\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff"
_UNSAFE = re.compile(f"[\\t\\n{_CONTROL}\\ud800-\\udfff]")
_UNSAFE_KEEP_NEWLINES = re.compile(f"[\\t{_CONTROL}\\ud800-\\udfff]")
_NAMED_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED_ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable(text: object, *, newlines: bool = False) -> str:
    r"""``str(text)`` with every control character written as an escape, for a terminal.

    Escape sequences (``ESC[2J`` clears a screen), carriage returns, backspaces,
    bidirectional overrides and undecodable bytes (surrogates) are shown as ``\x1b``,
    ``\r``, ``\u202e``, ``\udc9b``..., so user data can never move the cursor, clear
    the screen or hide text. Line breaks are kept when ``newlines`` is true.

    Examples
    --------
    >>> printable("team \x1b[2J\rT01")
    'team \\x1b[2J\\rT01'
    >>> print(printable("two\nlines", newlines=True))
    two
    lines
    """
    pattern = _UNSAFE_KEEP_NEWLINES if newlines else _UNSAFE
    return pattern.sub(_escape_char, str(text))
