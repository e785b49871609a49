"""Text renderers of a :class:`~crtstats.tables.Table`: Markdown, HTML, LaTeX and CSV.

All of them read :meth:`Table.formatted` (so they show the same text), escape what
their format needs, end with a single newline and never include dates or random ids.
"""

from __future__ import annotations

import csv
import html
import io
import re
from typing import TYPE_CHECKING

from crtstats.io import neutralise_formula

if TYPE_CHECKING:
    from crtstats.tables._table import Table

__all__ = ["render_csv", "render_html", "render_latex", "render_markdown"]


# -- Markdown ---------------------------------------------------------------------------
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


def _md_escape(text: str) -> str:
    """Escape what Markdown would read as markup: backslash, pipe, star, and a ``<``
    that could open an HTML tag (``<5`` and ``< 0.001`` stay as they are)."""
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*")
    return _TAG_START.sub("\\\\<", text)


def render_markdown(table: Table) -> str:
    """A pipe table (GitHub / pandoc flavour) with the title in bold above it.

    Spanning column groups cannot be drawn in a pipe table, so each label is
    prefixed by its group (``Control: N``); a row group becomes a bold row.
    Footnotes follow the table, one paragraph each.
    """
    labels = [_md_escape(x) for x in table.flat_labels()]
    numeric = [c.numeric for c in table.columns]
    body: list[list[str]] = []
    for group, part in table.sections():
        if group is not None:
            body.append([f"**{_md_escape(group)}**"] + [""] * (len(labels) - 1))
        body.extend([_md_escape(str(v)) for v in row] for row in part.itertuples(index=False))
    widths = [max([3, len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(labels)]

    def line(cells: list[str]) -> str:
        padded = [
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(cells, widths, numeric, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(
        ("-" * (w + 1) + ":") if num else (":" + "-" * (w + 1))
        for w, num in zip(widths, numeric, strict=True)
    ) + "|"
    out = [f"**{_md_escape(table.title)}**", ""] if table.title else []
    out += [line(labels), rule] + [line(r) for r in body]
    for note in table.footnotes:
        out += ["", _md_escape(note)]
    return "\n".join(out) + "\n"


# -- HTML -------------------------------------------------------------------------------
def _align(numeric: bool) -> str:
    return ' style="text-align: right"' if numeric else ' style="text-align: left"'


def render_html(table: Table) -> str:
    """An HTML ``<table>`` fragment (caption, two-level header, sections, footnotes)."""
    esc = html.escape
    n = len(table.columns)
    out = ['<table class="crtstats-table">']
    if table.title:
        out.append(f"<caption>{esc(table.title)}</caption>")
    out.append("<thead>")
    for header in table.header_rows():
        cells = "".join(
            f'<th scope="col"{f" colspan={chr(34)}{span}{chr(34)}" if span > 1 else ""}>'
            f"{esc(text)}</th>"
            for text, span in header
        )
        out.append(f"<tr>{cells}</tr>")
    out.append("</thead>")
    out.append("<tbody>")
    numeric = [c.numeric for c in table.columns]
    for group, part in table.sections():
        if group is not None:
            out.append(f'<tr class="row-group"><th colspan="{n}" scope="rowgroup"'
                       f'{_align(False)}>{esc(group)}</th></tr>')
        for row in part.itertuples(index=False):
            cells = "".join(
                f"<td{_align(num)}>{esc(str(v))}</td>" for v, num in zip(row, numeric, strict=True)
            )
            out.append(f"<tr>{cells}</tr>")
    out.append("</tbody>")
    if table.footnotes:
        out.append("<tfoot>")
        out += [f'<tr><td colspan="{n}">{esc(note)}</td></tr>' for note in table.footnotes]
        out.append("</tfoot>")
    out.append("</table>")
    return "\n".join(out) + "\n"


# -- LaTeX ------------------------------------------------------------------------------
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
    "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
    "|": r"\textbar{}",
}


def latex_escape(text: str) -> str:
    r"""Escape LaTeX's special characters (``<`` and ``>`` too: they print as other
    glyphs in the default font encoding).

    Examples
    --------
    >>> latex_escape("p < 0.001 & 5%")
    'p \\textless{} 0.001 \\& 5\\%'
    """
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def render_latex(table: Table) -> str:
    r"""A ``table`` float with a ``booktabs`` ``tabular`` (``\usepackage{booktabs}``).

    Column groups become ``\multicolumn`` headers with ``\cmidrule``; row groups an
    italic full-width row; footnotes follow the tabular in ``\footnotesize``.
    """
    n = len(table.columns)
    spec = "".join("r" if c.numeric else "l" for c in table.columns)
    out = [r"\begin{table}[htbp]", r"\centering"]
    if table.title:
        out.append(rf"\caption{{{latex_escape(table.title)}}}")
    out += [rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    headers = table.header_rows()
    for level, header in enumerate(headers):
        cells, rules, start = [], [], 1
        for text, span in header:
            escaped = latex_escape(text)
            cells.append(rf"\multicolumn{{{span}}}{{c}}{{{escaped}}}" if span > 1 else escaped)
            if text and level < len(headers) - 1:
                rules.append(rf"\cmidrule(lr){{{start}-{start + span - 1}}}")
            start += span
        out.append(" & ".join(cells) + r" \\")
        if rules:
            out.append(" ".join(rules))
    out.append(r"\midrule")
    for group, part in table.sections():
        if group is not None:
            out.append(rf"\multicolumn{{{n}}}{{l}}{{\textit{{{latex_escape(group)}}}}} \\")
        for row in part.itertuples(index=False):
            out.append(" & ".join(latex_escape(str(v)) for v in row) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    if table.footnotes:
        out += [r"\par\smallskip", r"\begin{minipage}{\linewidth}\footnotesize"]
        out += [latex_escape(note) + r"\par" for note in table.footnotes]
        out.append(r"\end{minipage}")
    out.append(r"\end{table}")
    return "\n".join(out) + "\n"


# -- CSV --------------------------------------------------------------------------------
def render_csv(table: Table) -> str:
    """The displayed cells as CSV (RFC 4180 quoting, ``\\n`` line ends).

    The header is one line with group-prefixed labels; with a row group its value is
    the first column. Title and footnotes are not part of CSV; the numbers at full
    precision are in ``table.data``. A cell a spreadsheet would run as a formula gets a
    leading ``'`` (:func:`crtstats.io.neutralise_formula`); numbers stay numbers.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    labels = table.flat_labels()
    writer.writerow([neutralise_formula(str(v)) for v in
                     ([table.row_group] if table.row_group else []) + labels])
    for group, part in table.sections():
        lead = [group if group is not None else ""] if table.row_group else []
        for row in part.itertuples(index=False):
            writer.writerow([neutralise_formula(str(v)) for v in lead + list(row)])
    return buffer.getvalue()
