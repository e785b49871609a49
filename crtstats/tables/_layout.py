"""Page layout shared by the Word and LaTeX renderers: paper, column widths, minus signs.

Widths are estimated from the text of the cells (characters times an average glyph
width), so a column is as wide as its longest unbreakable word at least, and as wide as
its longest cell when the page allows; a table too wide for a portrait page is set on a
landscape page. Everything here is a pure function of the table, so the bytes of a
rendered table never change between runs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    from crtstats.tables._table import Table

__all__ = ["MINUS", "PAPERS", "Layout", "Paper", "column_extents", "layout", "text_em",
           "true_minus"]

#: Paper sizes of the Word and LaTeX renderers (``paper=`` of :meth:`Table.render`).
Paper = Literal["a4", "letter"]
PAPERS: tuple[Paper, ...] = get_args(Paper)

#: Page width and height in points (1/72 inch), portrait.
PAGE_SIZE: dict[str, tuple[float, float]] = {
    "a4": (595.276, 841.89),  # 210 x 297 mm
    "letter": (612.0, 792.0),  # 8.5 x 11 in
}
#: Page margin on every side, in points (2.54 cm).
MARGIN = 72.0
#: Widths are estimates: each is widened by this factor so that a word never breaks.
_SAFETY = 1.08
#: The true minus sign (U+2212 MINUS SIGN).
MINUS = "\u2212"

_NUMBER_MINUS = re.compile(r"(?<![\w.\u2212])-(?=(\d|\.\d|inf))")


def true_minus(text: str) -> str:
    """``text`` with each hyphen that is the sign of a number written as U+2212.

    Hyphens inside words (``follow-up``) or ranges of words are kept.

    Examples
    --------
    >>> true_minus("-0.10 (-0.15 to -0.04)") == "\\u22120.10 (\\u22120.15 to \\u22120.04)"
    True
    >>> true_minus("follow-up, T-12")
    'follow-up, T-12'
    """
    return _NUMBER_MINUS.sub(MINUS, text)


@dataclass(frozen=True)
class Layout:
    """Where a table goes on the page.

    Attributes
    ----------
    landscape
        Whether the page is turned.
    widths
        Width of each column in points (cell padding included).
    text_width
        The width available between the margins, in points.
    fits
        Whether every column gets at least its longest word (no word is broken).
    """

    landscape: bool
    widths: tuple[float, ...]
    text_width: float
    fits: bool = True


#: Advance widths of Arial (and its metric twin Liberation Sans) in em, by character.
_EM = {
    **dict.fromkeys("abdeghnopqu0123456789", 0.556), **dict.fromkeys("cksvxyz", 0.5),
    **dict.fromkeys("ijl", 0.222), **dict.fromkeys("ft", 0.278), "r": 0.333, "m": 0.833,
    "w": 0.722, **dict.fromkeys(" .,:;!'|", 0.278), **dict.fromkeys("()[]-/", 0.333),
    **dict.fromkeys("<>=+\u2212\u00d7", 0.584), "%": 0.889, "\u00a0": 0.278,
    **dict.fromkeys("I", 0.278), "J": 0.5, **dict.fromkeys("MW", 0.9),
}
#: Capitals not listed, and any other character.
_EM_CAPITAL, _EM_OTHER = 0.7, 0.6


def text_em(text: str, *, bold: bool = False) -> float:
    """Estimated width of ``text`` in em, from the advance widths of Arial (Liberation
    Sans): e.g. digits 0.556, ``m`` 0.833, ``i`` 0.222, a space 0.278; bold 10% wider.

    Examples
    --------
    >>> round(text_em("0.97 (0.41 to 0.78)"), 3)
    8.172
    """
    total = 0.0
    for ch in text:
        if ch in _EM:
            total += _EM[ch]
        else:
            total += _EM_CAPITAL if ch.isupper() else _EM_OTHER
    return 1.1 * total if bold else total


def _longest_word(text: str, *, bold: bool = False) -> float:
    return max((text_em(w, bold=bold) for w in text.split()), default=0.0)


def column_extents(table: Table) -> list[tuple[float, float]]:
    """Per column: the width in em of its longest cell and of its longest word.

    Cells of numeric columns are unbreakable (an interval is one unit); header labels
    and text cells may wrap between words. Spanning headers and row-group headings are
    left out: they span several columns.
    """
    shown = table.formatted()
    extents = []
    for column in table.columns:
        # numbers as shown: with a true minus sign, which is wider than a hyphen
        cells = [true_minus(str(v)) if column.numeric else str(v)
                 for v in shown[column.name]]
        longest = max((text_em(c) for c in cells), default=0.0)
        if column.numeric:
            word = longest
        else:
            word = max((_longest_word(c) for c in cells), default=0.0)
        label = column.label  # headers are bold
        extents.append((_SAFETY * max(longest, text_em(label, bold=True)),
                        _SAFETY * max(word, _longest_word(label, bold=True))))
    return extents


def _fit(natural: Sequence[float], minimum: Sequence[float], available: float
         ) -> tuple[float, ...]:
    """Natural widths if they fit, else each column shrunk toward its minimum in
    proportion to its slack (so a long text column gives most)."""
    total, floor = sum(natural), sum(minimum)
    if total <= available:
        return tuple(natural)
    if floor >= available:
        return tuple(minimum)
    share = (available - floor) / (total - floor)
    return tuple(m + (n - m) * share for n, m in zip(natural, minimum, strict=True))


def layout(table: Table, *, paper: Paper, font_size: float, padding: float,
           wrap_tolerance: float = 1.25) -> Layout:
    """Orientation and column widths of ``table`` on ``paper``.

    Parameters
    ----------
    table
        The table.
    paper
        ``"a4"`` or ``"letter"``.
    font_size
        The cell font's size (one em), in points.
    padding
        Space added to each column (cell margins or ``2 * \\tabcolsep``), in points.
    wrap_tolerance
        The page is turned when the table's natural width exceeds the portrait text
        width by this factor, or when its longest words alone do not fit.

    Notes
    -----
    Column ``j`` has natural width :math:`n_j = s L_j + p` and minimum
    :math:`m_j = s W_j + p` (:math:`L_j` the longest cell and :math:`W_j` the longest
    word in em, :func:`text_em`; :math:`s` the font size, :math:`p` the padding).
    With text width :math:`T`: natural widths when :math:`\\sum n \\le T`, else
    :math:`w_j = m_j + (n_j - m_j)(T - \\sum m)/(\\sum n - \\sum m)`, so no word is
    broken while :math:`\\sum m \\le T`.
    """
    width, height = PAGE_SIZE[paper]
    extents = column_extents(table)
    natural = [font_size * n + padding for n, _ in extents]
    minimum = [font_size * w + padding for _, w in extents]
    portrait = width - 2 * MARGIN
    landscape = sum(minimum) > portrait or sum(natural) > wrap_tolerance * portrait
    available = (height if landscape else width) - 2 * MARGIN
    return Layout(landscape, _fit(natural, minimum, available), available,
                  sum(minimum) <= available)
