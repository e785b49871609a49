"""Word (.docx) renderer of a :class:`~crtstats.tables.Table`, with reproducible bytes."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from typing import TYPE_CHECKING, Any

import docx
from docx.enum.section import WD_ORIENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Pt
from docx.table import _Cell

from crtstats.tables._layout import MARGIN, PAGE_SIZE, Layout, Paper, layout, true_minus

if TYPE_CHECKING:
    from crtstats.tables._table import Table

__all__ = ["render_docx"]

#: Fixed document timestamps, so the same table always gives the same bytes.
FIXED_TIME = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
#: Fixed zip member time (the earliest a zip file can record).
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
#: The document font: Arial, which LibreOffice sets in its metric twin Liberation Sans,
#: so the widths estimated by :func:`~crtstats.tables._layout.text_em` hold in both.
_FONT = "Arial"
#: Font sizes tried for the cells, largest first: the first whose words all fit is used.
_CELL_SIZES = (9.0, 8.0, 7.0)
_NOTE_PT = 8.0
#: Left plus right cell margin of Word's default table (0.08 in each side).
_PADDING = 2 * 0.08 * 72


def _set_cell(cell: Any, text: str, *, size: float, bold: bool = False,
              align: str = "left") -> None:
    paragraph = cell.paragraphs[0]
    run = paragraph.add_run(text)
    run.bold = bold
    run.font.size = Pt(size)
    paragraph.paragraph_format.space_after = Pt(0)
    paragraph.alignment = {
        "left": WD_ALIGN_PARAGRAPH.LEFT,
        "right": WD_ALIGN_PARAGRAPH.RIGHT,
        "center": WD_ALIGN_PARAGRAPH.CENTER,
    }[align]


def _number_text(text: str) -> str:
    """A numeric cell: true minus signs, and no-break spaces (an interval is one unit)."""
    return true_minus(text).replace(" ", "\u00a0")


def _fill(doc_table: Any, table: Table, size: float) -> None:
    numeric = [c.numeric for c in table.columns]
    n = len(numeric)
    r = 0
    for header in table.header_rows():
        c = 0
        for text, span in header:
            cell = doc_table.cell(r, c)
            if span > 1:
                cell = cell.merge(doc_table.cell(r, c + span - 1))
            _set_cell(cell, text, size=size, bold=True, align="center" if span > 1 else
                      ("right" if numeric[c] else "left"))
            c += span
        r += 1
    for group, part in table.sections():
        if group is not None:
            cell = doc_table.cell(r, 0).merge(doc_table.cell(r, n - 1))
            _set_cell(cell, group, size=size, bold=True)
            r += 1
        for row in part.itertuples(index=False):
            # the row's own cells (a data row has no merged cells): doc_table.cell(r, c)
            # walks the whole table on every call, quadratic in its size
            cells = [_Cell(tc, doc_table) for tc in doc_table._tbl.tr_lst[r].tc_lst]
            for c, value in enumerate(row):
                text = _number_text(str(value)) if numeric[c] else str(value)
                _set_cell(cells[c], text, size=size, align="right" if numeric[c] else "left")
            r += 1


def _row_flags(doc_table: Any, n_header: int) -> None:
    """Header rows repeat at the top of each page (``w:tblHeader``); no row is split
    across pages (``w:cantSplit``)."""
    for i, row in enumerate(doc_table.rows):
        properties = row._tr.get_or_add_trPr()
        flags = ["w:cantSplit"] + (["w:tblHeader"] if i < n_header else [])
        for name in flags:
            flag = OxmlElement(name)
            flag.set(qn("w:val"), "true")
            properties.append(flag)


def _set_widths(doc_table: Any, widths: tuple[float, ...]) -> None:
    """Fixed layout with the computed widths in the grid and in every cell."""
    properties = doc_table._tbl.tblPr
    fixed = OxmlElement("w:tblLayout")
    fixed.set(qn("w:type"), "fixed")
    properties.append(fixed)
    doc_table.autofit = False
    for column, width in zip(doc_table.columns, widths, strict=True):
        column.width = Pt(round(width, 1))
        for cell in column.cells:
            cell.width = Pt(round(width, 1))


def _n_rows(table: Table) -> int:
    sections = table.sections()
    groups = sum(1 for g, _ in sections if g is not None)
    return len(table.header_rows()) + groups + sum(len(p) for _, p in sections)


def _reproducible_zip(raw: bytes) -> bytes:
    """Rewrite a zip with fixed member times and order-preserving, fixed compression."""
    source = zipfile.ZipFile(io.BytesIO(raw))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            member = zipfile.ZipInfo(info.filename, date_time=_ZIP_TIME)
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o644 << 16
            target.writestr(member, source.read(info.filename))
    return out.getvalue()


def _page(document: Any, paper: Paper, placed: Layout) -> None:
    section = document.sections[0]
    width, height = PAGE_SIZE[paper]
    if placed.landscape:
        section.orientation = WD_ORIENT.LANDSCAPE
        width, height = height, width
    section.page_width, section.page_height = Pt(width), Pt(height)
    for side in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
        setattr(section, side, Pt(MARGIN))


def _fixed_properties(document: Any, title: str) -> None:
    props = document.core_properties
    props.author = "crtstats"
    props.last_modified_by = "crtstats"
    props.title = title
    props.created = FIXED_TIME
    props.modified = FIXED_TIME
    props.revision = 1


def render_docx(table: Table, *, paper: Paper = "a4") -> bytes:
    """A Word document holding the table: caption, header rows, sections, footnotes.

    The page is ``paper`` (A4 or US Letter) with 2.54 cm margins, turned to landscape
    when the table is too wide for a portrait page (:func:`~crtstats.tables._layout.layout`).
    Columns have fixed widths estimated from their text, so no word is broken (the
    cells are set in 9 pt Arial, or 8 or 7 pt when a wide table needs it); header
    rows repeat on every page and rows are not split across pages; numbers are written
    with the true minus sign (U+2212). The caption is Word's ``Caption`` style, kept
    with the table. Core properties (author, dates, revision) and zip member times are
    fixed, so rendering the same table twice gives identical bytes.
    """
    size, placed = _CELL_SIZES[0], None
    for size in _CELL_SIZES:
        placed = layout(table, paper=paper, font_size=size, padding=_PADDING)
        if placed.fits:
            break
    assert placed is not None  # _CELL_SIZES is not empty
    document = docx.Document()
    style = document.styles["Normal"]
    style.font.name = _FONT
    style.element.rPr.rFonts.set(qn("w:eastAsia"), _FONT)
    _fixed_properties(document, table.title)
    _page(document, paper, placed)
    if table.title:
        caption = document.add_paragraph(table.title, style="Caption")
        caption.paragraph_format.keep_with_next = True
    doc_table = document.add_table(rows=_n_rows(table), cols=len(table.columns))
    doc_table.style = "Table Grid"
    _set_widths(doc_table, placed.widths)
    _fill(doc_table, table, size)
    _row_flags(doc_table, len(table.header_rows()))
    for note in table.footnotes:
        paragraph = document.add_paragraph()
        paragraph.paragraph_format.space_after = Pt(0)
        paragraph.add_run(true_minus(note)).font.size = Pt(_NOTE_PT)
    buffer = io.BytesIO()
    document.save(buffer)
    return _reproducible_zip(buffer.getvalue())
