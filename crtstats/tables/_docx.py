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

if TYPE_CHECKING:
    from crtstats.tables._table import Table

__all__ = ["render_docx"]

#: Fixed document timestamps, so the same table always gives the same bytes.
FIXED_TIME = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
#: Fixed zip member time (the earliest a zip file can record).
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
#: Tables with more columns than this are laid out on a landscape page.
_PORTRAIT_MAX_COLUMNS = 7


def _set_cell(cell: Any, text: str, *, bold: bool = False, align: str = "left") -> None:
    paragraph = cell.paragraphs[0]
    run = paragraph.add_run(text)
    run.bold = bold
    paragraph.alignment = {
        "left": WD_ALIGN_PARAGRAPH.LEFT,
        "right": WD_ALIGN_PARAGRAPH.RIGHT,
        "center": WD_ALIGN_PARAGRAPH.CENTER,
    }[align]


def _fill(doc_table: Any, table: Table) -> None:
    numeric = [c.numeric for c in table.columns]
    n = len(numeric)
    r = 0
    for header in table.header_rows():
        c = 0
        for text, span in header:
            cell = doc_table.cell(r, c)
            if span > 1:
                cell = cell.merge(doc_table.cell(r, c + span - 1))
            _set_cell(cell, text, bold=True, align="center" if span > 1 else
                      ("right" if numeric[c] else "left"))
            c += span
        r += 1
    for group, part in table.sections():
        if group is not None:
            cell = doc_table.cell(r, 0).merge(doc_table.cell(r, n - 1))
            _set_cell(cell, group, bold=True)
            r += 1
        for row in part.itertuples(index=False):
            for c, value in enumerate(row):
                _set_cell(doc_table.cell(r, c), str(value), align="right" if numeric[c] else "left")
            r += 1


def _repeat_header(doc_table: Any, n_header: int) -> None:
    """Mark the header rows to repeat at the top of each page (``w:tblHeader``)."""
    for row in doc_table.rows[:n_header]:
        flag = OxmlElement("w:tblHeader")
        flag.set(qn("w:val"), "true")
        row._tr.get_or_add_trPr().append(flag)


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


def render_docx(table: Table) -> bytes:
    """A Word document holding the table: caption, header rows, sections, footnotes.

    The document uses python-docx's default template and its ``Table Grid`` style, on a
    landscape page when the table has more than seven columns;
    core properties (author, dates, revision) and zip member times are fixed, so
    rendering the same table twice gives identical bytes.
    """
    document = docx.Document()
    props = document.core_properties
    props.author = "crtstats"
    props.last_modified_by = "crtstats"
    props.title = table.title
    props.created = FIXED_TIME
    props.modified = FIXED_TIME
    props.revision = 1
    if len(table.columns) > _PORTRAIT_MAX_COLUMNS:
        section = document.sections[0]
        width, height = section.page_width, section.page_height
        section.orientation = WD_ORIENT.LANDSCAPE
        section.page_width, section.page_height = height, width
    if table.title:
        document.add_paragraph(table.title, style="Caption")
    doc_table = document.add_table(rows=_n_rows(table), cols=len(table.columns))
    doc_table.style = "Table Grid"
    _fill(doc_table, table)
    _repeat_header(doc_table, len(table.header_rows()))
    for note in table.footnotes:
        paragraph = document.add_paragraph()
        paragraph.add_run(note).font.size = Pt(8)
    buffer = io.BytesIO()
    document.save(buffer)
    return _reproducible_zip(buffer.getvalue())
