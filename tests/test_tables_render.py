"""The Table type and its renderers: golden files, parsed HTML/CSV, docx read back.

Golden files live in tests/golden/. After an intended change of output, rewrite them with
``python tests/test_tables_render.py`` and review the diff before committing.
"""

from __future__ import annotations

import csv
import io
import math
import re
import zipfile
from pathlib import Path

import docx
import lxml.html
import numpy as np
import pandas as pd
import pytest
from docx.oxml.ns import qn
from hypothesis import given
from hypothesis import strategies as st

from crtstats import write_table
from crtstats.exceptions import DataFileError, InvalidParameterError
from crtstats.io import neutralise_formula
from crtstats.tables import Column, Table
from crtstats.tables._format import format_ci, format_number, format_pvalue
from crtstats.tables._layout import true_minus

GOLDEN = Path(__file__).resolve().parent / "golden"


def demo_table() -> Table:
    """A table using every feature: groups, sections, styles, escapes, suppression."""
    data = pd.DataFrame({
        "section": ["Fidelity", "Fidelity", "Service use & 50% <care>"],
        "label": ["Total | all items", "Mean_item", "Admitted"],
        "statistic": ["mean_sd", "mean_sd", "n_percent"],
        "c_n": [10.0, 10.0, 3.0],
        "c_value": [120.04, 3.0779, 3.0],
        "c_spread": [17.149, 0.4397, 0.3],
        "est": [9.834567, -0.0004, 0.7012],
        "lo": [2.1, -0.25, 0.49],
        "hi": [17.5649, 0.2449, 1.0049],
        "p": [0.01534, 0.99712, 0.00002],
        "df": [21.73, math.inf, np.nan],
        "prop": [0.5, 0.12345, np.nan],
    })
    columns = [
        Column("Measure", ("label",), "text"),
        Column("n", ("c_n",), "integer", key="c_n"),
        Column("Mean (SD) or n (%)", ("c_value", "c_spread"), "summary",
               decimals=1, statistic_column="statistic", key="c_summary"),
        Column("Estimate (95% CI)", ("est", "lo", "hi"), "ci", decimals=2),
        Column("p", ("p",), "pvalue", decimals=3),
        Column("df", ("df",), "number", decimals=1),
        Column("Share", ("prop",), "percent", decimals=1),
    ]
    return Table(
        data, columns, title="Demo: effects & 95% CIs",
        column_groups={"Control": ["c_n", "c_summary"], "Effect": ["Estimate (95% CI)", "p"]},
        row_group="section", footnotes=["CI: confidence interval; p < 0.05 is not a rule.",
                                        "<5: withheld."],
        suppressed=[(2, "c_n"), (2, "c_value")], suppression_marker="<5", na_rep="NA",
    )


RENDERERS = {"md": Table.to_markdown, "tex": Table.to_latex, "html": Table.to_html,
             "csv": Table.to_csv}


def regenerate() -> None:
    """Rewrite the golden files of this module (run by hand; see the module docstring)."""
    GOLDEN.mkdir(exist_ok=True)
    for ext, render in RENDERERS.items():
        (GOLDEN / f"demo.{ext}").write_text(render(demo_table()), encoding="utf-8", newline="")


# -- cell formatting --------------------------------------------------------------------
def test_formatted_cells_apply_styles_without_touching_numbers() -> None:
    table = demo_table()
    shown = table.formatted()
    assert shown.loc[0].tolist() == ["Total | all items", "10", "120.0 (17.1)",
                                     "9.83 (2.10 to 17.56)", "0.015", "21.7", "50.0%"]
    # -0.0004 rounds to 0.00, never "-0.00"; p near 1; z df shown as inf
    assert shown.loc[1].tolist() == ["Mean_item", "10", "3.1 (0.4)", "0.00 (-0.25 to 0.24)",
                                     "0.997", "inf", "12.3%"]
    # suppressed cells show the marker; NaN shows na_rep; tiny p shows "< 0.001"
    assert shown.loc[2].tolist() == ["Admitted", "<5", "<5", "0.70 (0.49 to 1.00)", "< 0.001",
                                     "NA", "NA"]
    assert table.data.loc[0, "est"] == 9.834567  # full precision kept
    assert table.data.loc[1, "c_value"] == 3.0779


@pytest.mark.parametrize(
    ("value", "decimals", "expected"),
    [(0.0005, 3, "0.001"), (0.00049, 3, "< 0.001"), (0.0009999, 3, "0.001"),
     (0.04, 2, "0.04"), (0.004, 2, "< 0.01"), (1.0, 3, "1.000"), (0.0, 3, "< 0.001")],
)
def test_pvalue_style(value: float, decimals: int, expected: str) -> None:
    assert format_pvalue(value, decimals) == expected


@given(st.floats(-1e6, 1e6), st.floats(0, 1e3), st.floats(0, 1e3), st.integers(0, 4))
def test_ci_text_contains_its_rounded_parts(est: float, below: float, above: float,
                                            d: int) -> None:
    text = format_ci(est, est - below, est + above, d)
    lo, hi = format_number(est - below, d), format_number(est + above, d)
    assert text == f"{format_number(est, d)} ({lo} to {hi})"
    # rounding keeps the order of the limits and the estimate
    assert float(lo) <= float(format_number(est, d)) <= float(hi)
    # never a negative zero such as "-0.00" or "-0"
    assert not re.search(r"(?<![\d.])-0(\.0*)?(?![\d.])", text)


# -- golden text formats ----------------------------------------------------------------
@pytest.mark.parametrize("ext", ["md", "tex", "csv", "html"])
def test_renderers_match_golden_files(ext: str) -> None:
    expected = (GOLDEN / f"demo.{ext}").read_text(encoding="utf-8")
    assert RENDERERS[ext](demo_table()) == expected


def test_latex_escapes_special_characters() -> None:
    tex = demo_table().to_latex()
    assert r"Service use \& 50\% \textless{}care\textgreater{}" in tex
    assert r"Total \textbar{} all items" in tex
    assert r"\textless{} 0.001" in tex and r"Mean\_item" in tex
    assert r"\multicolumn{2}{c}{Control}" in tex and r"\cmidrule(lr){2-3}" in tex


def test_html_parses_with_spans_sections_and_footnotes() -> None:
    root = lxml.html.fragment_fromstring(demo_table().to_html())
    assert root.tag == "table"
    assert root.findtext("caption") == "Demo: effects & 95% CIs"
    header_rows = root.findall("thead/tr")
    assert len(header_rows) == 2
    spans = [(th.text_content(), th.get("colspan")) for th in header_rows[0]]
    assert spans == [("", None), ("Control", "2"), ("Effect", "2"), ("", None), ("", None)]
    assert [th.text_content() for th in header_rows[1]][:3] == ["Measure", "n",
                                                               "Mean (SD) or n (%)"]
    body = root.findall("tbody/tr")
    groups = [tr.text_content() for tr in body if tr.get("class") == "row-group"]
    assert groups == ["Fidelity", "Service use & 50% <care>"]
    cells = [[td.text_content() for td in tr.findall("td")] for tr in body
             if tr.get("class") != "row-group"]
    assert cells == demo_table().formatted().to_numpy().tolist()
    assert [td.text_content() for td in root.findall("tfoot/tr/td")] == list(
        demo_table().footnotes)


def test_csv_reads_back_to_the_formatted_cells() -> None:
    rows = list(csv.reader(io.StringIO(demo_table().to_csv())))
    assert rows[0] == ["section", "Measure", "Control: n", "Control: Mean (SD) or n (%)",
                       "Effect: Estimate (95% CI)", "Effect: p", "df", "Share"]
    assert [r[1:] for r in rows[1:]] == demo_table().formatted().to_numpy().tolist()
    assert [r[0] for r in rows[1:]] == demo_table().data["section"].tolist()


# -- docx -------------------------------------------------------------------------------
def test_docx_reads_back_with_the_same_cells() -> None:
    document = docx.Document(io.BytesIO(demo_table().to_docx()))
    paragraphs = [p.text for p in document.paragraphs]
    assert paragraphs[0] == "Demo: effects & 95% CIs"
    assert paragraphs[1:] == list(demo_table().footnotes)
    (table,) = document.tables
    grid = [[cell.text for cell in row.cells] for row in table.rows]
    # merged cells repeat their text across the cells they span
    assert grid[0][1:5] == ["Control", "Control", "Effect", "Effect"]
    assert grid[1] == ["Measure", "n", "Mean (SD) or n (%)", "Estimate (95% CI)", "p", "df",
                       "Share"]
    assert grid[2] == ["Fidelity"] * 7  # a section row spans the table
    repeats = [row._tr.trPr is not None and row._tr.trPr.find(qn("w:tblHeader")) is not None
               for row in table.rows]
    assert repeats[:3] == [True, True, False]  # header rows repeat on each page
    # numbers as Word shows them: true minus signs, no-break spaces inside a cell
    shown = [[true_minus(v).replace(" ", "\u00a0") if c.numeric else v
              for v, c in zip(row, demo_table().columns, strict=True)]
             for row in demo_table().formatted().to_numpy().tolist()]
    assert grid[3:5] == shown[:2] and grid[6] == shown[2]


def test_docx_page_turns_landscape_for_wide_tables() -> None:
    from docx.enum.section import WD_ORIENT

    narrow = Table(pd.DataFrame({"x": [1.0]}), [Column("x", ("x",))])
    page = docx.Document(io.BytesIO(narrow.to_docx())).sections[0]
    assert page.orientation == WD_ORIENT.PORTRAIT
    # eight columns of long intervals: wider than a portrait A4 text width
    wide = Table(pd.DataFrame({f"c{i}": [-123456.0] for i in range(8)}),
                 [Column(f"interval c{i}", (f"c{i}", f"c{i}", f"c{i}"), "ci")
                  for i in range(8)])
    page = docx.Document(io.BytesIO(wide.to_docx())).sections[0]
    assert page.orientation == WD_ORIENT.LANDSCAPE
    assert page.page_width is not None and page.page_height is not None
    assert page.page_width > page.page_height


def test_every_format_is_byte_identical_across_renders() -> None:
    for render in (*RENDERERS.values(), Table.to_docx):
        assert render(demo_table()) == render(demo_table())


def test_docx_has_fixed_zip_times_and_core_properties() -> None:
    raw = demo_table().to_docx()
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    props = docx.Document(io.BytesIO(raw)).core_properties
    assert props.created == props.modified
    assert props.created is not None and props.created.year == 2000


# -- write_table ------------------------------------------------------------------------
def test_write_table_writes_each_format(tmp_path: Path) -> None:
    paths = write_table(demo_table(), tmp_path, "demo")
    assert sorted(p.name for p in paths.values()) == [
        "demo.csv", "demo.docx", "demo.html", "demo.md", "demo.tex"]
    assert paths["md"].read_bytes() == demo_table().to_markdown().encode("utf-8")
    assert paths["docx"].read_bytes() == demo_table().to_docx()


def test_write_table_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="formats must be one of"):
        write_table(demo_table(), tmp_path, "t", formats=["xlsx"])  # type: ignore[list-item]
    with pytest.raises(InvalidParameterError, match="stem must be a plain file name"):
        write_table(demo_table(), tmp_path, "a/b")
    with pytest.raises(DataFileError, match="does not exist"):
        write_table(demo_table(), tmp_path / "absent", "t")


# -- construction errors ----------------------------------------------------------------
@pytest.mark.parametrize("identifier", ["person_id", "respondent_id", "staff_id"])
def test_table_refuses_person_identifiers(identifier: str) -> None:
    frame = pd.DataFrame({identifier: ["P1"], "x": [1.0]})
    with pytest.raises(InvalidParameterError, match="person identifier"):
        Table(frame, [Column("x", ("x",))])


def test_table_names_missing_source_columns() -> None:
    with pytest.raises(InvalidParameterError, match=r"\['y'\].*the data has \['x'\]"):
        Table(pd.DataFrame({"x": [1.0]}), [Column("y", ("y",))])


def test_column_checks_style_and_sources() -> None:
    with pytest.raises(InvalidParameterError, match="style must be one of"):
        Column("x", ("x",), "fancy")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="reads 3 source column"):
        Column("x", ("x",), "ci")
    with pytest.raises(InvalidParameterError, match="decimals must be a whole number"):
        Column("x", ("x",), decimals=-1)
    with pytest.raises(InvalidParameterError, match="statistic_column is required"):
        Column("x", ("x", "y"), "summary")


def test_column_groups_must_be_adjacent_and_known() -> None:
    frame = pd.DataFrame({"a": [1.0], "b": [2.0], "c": [3.0]})
    cols = [Column(n, (n,)) for n in "abc"]
    with pytest.raises(InvalidParameterError, match="adjacent"):
        Table(frame, cols, column_groups={"g": ["a", "c"]})
    with pytest.raises(InvalidParameterError, match="names columns"):
        Table(frame, cols, column_groups={"g": ["z"]})
    with pytest.raises(InvalidParameterError, match="distinct"):
        Table(frame, [Column("a", ("a",)), Column("a", ("b",))])


def test_suppressed_cells_must_lie_in_the_data() -> None:
    with pytest.raises(InvalidParameterError, match=r"row position\(s\) \[3\]"):
        Table(pd.DataFrame({"x": [1.0]}), [Column("x", ("x",))], suppressed=[(3, "x")])


_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)


@given(st.lists(st.tuples(_TEXT, _TEXT), min_size=1, max_size=4), _TEXT)
def test_any_text_survives_every_renderer(cells: list[tuple[str, str]], title: str) -> None:
    frame = pd.DataFrame(cells, columns=["a", "b"])
    table = Table(frame, [Column("A|<x>", ("a",), "text"), Column("B & %", ("b",), "text")],
                  title=title)
    shown = table.formatted().to_numpy().tolist()
    # HTML: parsed text equals the formatted cells
    root = lxml.html.fragment_fromstring(table.to_html())
    parsed = [[td.text_content() for td in tr.findall("td")] for tr in root.findall("tbody/tr")]
    assert parsed == shown
    # CSV: read back exactly, but for the ' that keeps a formula-like cell text
    rows = list(csv.reader(io.StringIO(table.to_csv())))
    assert rows[1:] == [[neutralise_formula(c) for c in row] for row in shown]
    # Markdown: every body line has exactly one cell per column (pipes are escaped)
    body = table.to_markdown().split("\n")[(2 if title else 0) + 2:][: len(cells)]
    for line in body:
        assert len(re.findall(r"(?<!\\)\|", line)) == 3
    # LaTeX: no unescaped special character reaches the tabular body
    tex_body = table.to_latex().split("\\midrule\n")[1].split("\\bottomrule")[0]
    assert not re.search(r"(?<!\\)[%#_&$^~]", tex_body.replace(" & ", " "))


def test_summary_rows_need_a_known_statistic() -> None:
    frame = pd.DataFrame({"s": ["median"], "v": [1.0], "w": [2.0]})
    table = Table(frame, [Column("x", ("v", "w"), "summary", statistic_column="s")])
    with pytest.raises(InvalidParameterError, match="must be one of 'n', 'n_percent'"):
        table.formatted()


if __name__ == "__main__":  # pragma: no cover - rewrites golden files by hand
    regenerate()
