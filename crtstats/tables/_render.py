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
from crtstats.tables._layout import (
    MARGIN,
    MINUS,
    PAGE_SIZE,
    Layout,
    Paper,
    column_extents,
    layout,
    text_em,
    true_minus,
)

if TYPE_CHECKING:
    from crtstats.tables._table import Table

__all__ = ["LONG_ROWS", "latex_label", "render_csv", "render_html", "render_latex",
           "render_markdown"]


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


#: Font sizes tried for the table body in a 10 pt document (``\small``,
#: ``\footnotesize``, ``\scriptsize``), largest first: the first whose words fit.
_TEX_SIZES = ((9.0, r"\small"), (8.0, r"\footnotesize"), (7.0, r"\scriptsize"))
#: Twice ``\tabcolsep``, in points.
_TEX_PADDING = 12.0
#: Tables with more body rows than this, or taller than the page, are set as a
#: ``longtable`` (breaks across pages).
LONG_ROWS = 30
#: Space on the page kept for the caption, header rows and notes, in points.
_TEX_FURNITURE = 110.0
#: The packages a rendered table needs, named in its first line.
TEX_PACKAGES = "booktabs,array,longtable,pdflscape,graphicx"


def _latex_cell(text: str, numeric: bool) -> str:
    if not numeric:
        return latex_escape(text)
    return latex_escape(true_minus(text)).replace(MINUS, "$-$")


def _latex_spec(table: Table, placed: Layout, size: float) -> str:
    """Column types: ``r`` for numbers, ``l`` for text at its natural width, and a
    ragged-right paragraph column (a share of ``\\linewidth``) for text that must wrap."""
    natural = [size * n + _TEX_PADDING for n, _ in column_extents(table)]
    spec = []
    for column, width, full in zip(table.columns, placed.widths, natural, strict=True):
        if column.numeric or width >= full - 0.5:
            spec.append("r" if column.numeric else "l")
        else:
            share = (width - _TEX_PADDING) / placed.text_width
            spec.append(rf">{{\raggedright\arraybackslash}}p{{{share:.3f}\linewidth}}")
    return "".join(spec)


def _latex_header(table: Table) -> list[str]:
    out, headers = [], table.header_rows()
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
    return out


def _latex_body(table: Table) -> list[str]:
    n, numeric, out = len(table.columns), [c.numeric for c in table.columns], []
    for group, part in table.sections():
        if group is not None:
            out.append(rf"\multicolumn{{{n}}}{{l}}{{\textit{{{latex_escape(group)}}}}} \\")
        for row in part.itertuples(index=False):
            out.append(" & ".join(_latex_cell(str(v), num)
                                  for v, num in zip(row, numeric, strict=True)) + r" \\")
    return out


def _latex_height(table: Table, placed: Layout, size: float) -> float:
    """Estimated height of the body in points: each row as many lines as its most
    wrapped cell (paragraph columns hold ``width / size`` em per line)."""
    lines = 0.0
    for group, part in table.sections():
        lines += group is not None
        for i in range(len(part)):
            per_cell = [
                max(1.0, -(-text_em(str(part.iloc[i, k])) * size
                           // max(width - _TEX_PADDING, 1.0)))
                for k, width in enumerate(placed.widths)
            ]
            lines += max(per_cell)
    return 1.2 * size * lines


def latex_label(table: Table) -> str:
    """The ``\\label`` key: the table's ``label``, else ``tab:`` and its title's words."""
    if table.label:
        return table.label
    words = re.findall(r"[a-z0-9]+", table.title.lower())
    return "tab:" + ("-".join(words[:6]) or "table")


def _latex_notes(table: Table) -> list[str]:
    return [_latex_cell(note, True) + r"\par" for note in table.footnotes]


def _latex_float(table: Table, spec: str, size: str, resize: bool) -> list[str]:
    out = [r"\begin{table}[htbp]", r"\centering", size]
    if table.title:
        out.append(rf"\caption{{{latex_escape(table.title)}}}")
    out.append(rf"\label{{{latex_label(table)}}}")
    tabular = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule", *_latex_header(table),
               r"\midrule", *_latex_body(table), r"\bottomrule", r"\end{tabular}"]
    if resize:
        tabular = [r"\resizebox{\linewidth}{!}{%", *tabular, "}"]
    out += tabular
    if table.footnotes:
        out += [r"\par\smallskip", r"\begin{minipage}{\linewidth}\footnotesize"]
        out += _latex_notes(table)
        out.append(r"\end{minipage}")
    out.append(r"\end{table}")
    return out


def _latex_long(table: Table, spec: str, size: str) -> list[str]:
    n, header = len(table.columns), _latex_header(table)
    out = [rf"\begingroup{size}", rf"\begin{{longtable}}{{{spec}}}"]
    caption = rf"\caption{{{latex_escape(table.title)}}}" if table.title else ""
    out.append(caption + rf"\label{{{latex_label(table)}}} \\")
    out += [r"\toprule", *header, r"\midrule", r"\endfirsthead"]
    out += [r"\toprule", *header, r"\midrule", r"\endhead"]
    out += [r"\midrule", rf"\multicolumn{{{n}}}{{r}}{{\footnotesize continued}} \\",
            r"\endfoot", r"\bottomrule"]
    out += [r"\endlastfoot", *_latex_body(table), r"\end{longtable}"]
    if table.footnotes:  # after the table: a cell spanning it would not know its width
        out += [r"\vspace{-\smallskipamount}\footnotesize"] + _latex_notes(table)
    out.append(r"\endgroup")
    return out


def render_latex(table: Table, *, paper: Paper = "a4") -> str:
    r"""A ``booktabs`` table with a ``\caption`` and ``\label``, fitted to the page.

    The first line names the packages it needs (``booktabs``, ``array``,
    ``longtable``, ``pdflscape``, ``graphicx``). Column widths follow
    :func:`~crtstats.tables._layout.layout` for ``paper``: text that must wrap goes
    in a ragged-right paragraph column (a share of ``\linewidth``), numbers are
    right-aligned and never wrap, a table too wide for a portrait page is set in a
    ``landscape`` environment (rotated page) and in a smaller size
    (``\footnotesize``, ``\scriptsize``) if its words do not fit in ``\small``, one
    still too wide is scaled to the line width (``\resizebox``), and one with more
    than :data:`LONG_ROWS` body rows, or taller than the page, is a ``longtable`` whose
    header repeats on each page. Numbers carry a true minus sign (``$-$``). Column
    groups become ``\multicolumn`` headers with ``\cmidrule``; row groups an italic
    full-width row; footnotes follow in ``\footnotesize``.
    """
    for size, command in _TEX_SIZES:  # noqa: B007 (the size that fits is used below)
        placed = layout(table, paper=paper, font_size=size, padding=_TEX_PADDING)
        if placed.fits:
            break
    spec = _latex_spec(table, placed, size)
    n_body = sum(len(part) + (group is not None) for group, part in table.sections())
    width, height = PAGE_SIZE[paper]
    room = (width if placed.landscape else height) - 2 * MARGIN - _TEX_FURNITURE
    long = n_body > LONG_ROWS or _latex_height(table, placed, size) > room
    body = (_latex_long(table, spec, command) if long
            else _latex_float(table, spec, command, resize=not placed.fits))
    out = [f"% crtstats table: needs \\usepackage{{{TEX_PACKAGES}}}"]
    if placed.landscape:
        body = [r"\begin{landscape}", *body, r"\end{landscape}"]
    return "\n".join(out + body) + "\n"


# -- CSV --------------------------------------------------------------------------------
def render_csv(table: Table) -> str:
    """The displayed cells as CSV (RFC 4180 quoting, ``\\n`` line ends).

    The header is one line with group-prefixed labels; with a row group its value is
    the first column, headed by the table's ``row_group_label``. Title and footnotes
    are not part of CSV; the numbers at full
    precision are in ``table.data``. A cell a spreadsheet would run as a formula gets a
    leading ``'`` (:func:`crtstats.io.neutralise_formula`); numbers stay numbers.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    labels = table.flat_labels()
    writer.writerow([neutralise_formula(str(v)) for v in
                     ([table.row_group_label] if table.row_group else []) + labels])
    for group, part in table.sections():
        lead = [group if group is not None else ""] if table.row_group else []
        for row in part.itertuples(index=False):
            writer.writerow([neutralise_formula(str(v)) for v in lead + list(row)])
    return buffer.getvalue()
