"""Tables a journal accepts: page size, column widths, landscape, minus signs, LaTeX.

Each standard table is built from the shipped example and rendered to Word and LaTeX;
the LaTeX is compiled with pdflatex where it is installed (skipped otherwise).
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import docx
import numpy as np
import pandas as pd
import pytest
from docx.enum.section import WD_ORIENT
from docx.oxml.ns import qn

import crtstats
from crtstats.analysis import EFFECT_COLUMNS, OPTIONAL_EFFECT_COLUMNS
from crtstats.datasets import load_example
from crtstats.exceptions import InvalidParameterError
from crtstats.tables import (
    Column,
    Table,
    baseline,
    consort_flow,
    effects,
    fidelity_by_arm,
    item_change,
)
from crtstats.tables._effects import BOUNDARY_MARK, SEPARATE_ICC_MARK
from crtstats.tables._layout import MINUS, PAGE_SIZE, column_extents, text_em, true_minus

TRIAL = load_example()
SCORES = crtstats.score_fidelity(TRIAL.fidelity)
REQUIRED = [c for c in EFFECT_COLUMNS if c not in OPTIONAL_EFFECT_COLUMNS]


def effect_rows(**changes: object) -> pd.DataFrame:
    """Two hand-made effects rows (fidelity LMM primary, GEE sensitivity)."""
    nan = float("nan")
    rows = [
        ["total", "LMM arm x review (KR)", "primary", "arm effect at 12m", "difference",
         -6.97, -19.9, 5.96, 0.274, 19.8, "kenward-roger", "REML", 0.83, -0.12, 0.95, 25,
         70],
        ["admitted", "GEE independence (Kauermann-Carroll)", "sensitivity",
         "intervention vs control, follow-up", "odds ratio", 0.57, 0.46, 0.70, 0.0001,
         15.0, "between", "KC", nan, nan, nan, 25, 1388],
    ]
    frame = pd.DataFrame(rows, columns=REQUIRED)
    for column, values in changes.items():
        frame[column] = values
    return frame


def standard_tables() -> dict[str, Table]:
    fidelity = effect_rows()
    return {
        "consort_flow": consort_flow(TRIAL, suppress_below=5),
        "baseline": baseline(TRIAL, scores=SCORES, suppress_below=5),
        "fidelity_by_arm": fidelity_by_arm(SCORES, TRIAL.teams),
        "item_change": item_change(TRIAL.fidelity, TRIAL.teams),
        "effects": effects(pd.concat([fidelity] * 1, ignore_index=True)),
    }


TABLES = standard_tables()


# -- minus signs ------------------------------------------------------------------------
def test_true_minus_changes_signs_of_numbers_only() -> None:
    assert true_minus("-0.10 (-0.15 to -0.04)") == f"{MINUS}0.10 ({MINUS}0.15 to {MINUS}0.04)"
    assert true_minus("-inf") == f"{MINUS}inf"
    assert true_minus("follow-up; T-12; between-within") == "follow-up; T-12; between-within"


def _docx_cells(table: Table, **options: object) -> list[list[str]]:
    document = docx.Document(io.BytesIO(table.render("docx", **options)))  # type: ignore[arg-type]
    return [[cell.text for cell in row.cells] for row in document.tables[0].rows]


def test_docx_and_tex_write_numbers_with_a_true_minus_sign() -> None:
    table = effects(effect_rows())
    text = "\n".join("\t".join(row) for row in _docx_cells(table))
    assert f"{MINUS}6.97\u00a0({MINUS}19.90\u00a0to\u00a05.96)" in text
    assert not re.search(r"-\d", text)  # no hyphen-minus before a digit anywhere
    assert "kenward-roger" in text  # hyphens in words stay
    tex = table.to_latex()
    assert "$-$6.97 ($-$19.90 to 5.96)" in tex
    assert not re.search(r"(?<![$\w])-\d", tex)


# -- Word page and columns --------------------------------------------------------------
@pytest.mark.parametrize(("paper", "size"), [("a4", "a4"), ("letter", "letter")])
def test_docx_page_is_a4_by_default_and_letter_by_option(paper: str, size: str) -> None:
    narrow = Table(pd.DataFrame({"x": [1.0]}), [Column("x", ("x",))])
    raw = narrow.to_docx() if paper == "a4" else narrow.render("docx", paper="letter")
    section = docx.Document(io.BytesIO(raw)).sections[0]
    width, height = PAGE_SIZE[size]
    assert section.orientation == WD_ORIENT.PORTRAIT
    # Word stores twentieths of a point: within one twip of the paper size
    assert section.page_width is not None and section.page_height is not None
    assert abs(section.page_width.pt - width) < 0.05
    assert abs(section.page_height.pt - height) < 0.05


def test_paper_option_is_checked() -> None:
    with pytest.raises(InvalidParameterError, match="paper"):
        TABLES["consort_flow"].render("docx", paper="a3")  # type: ignore[arg-type]


def _grid_widths(raw: bytes) -> tuple[list[float], float, bool]:
    document = docx.Document(io.BytesIO(raw))
    section = document.sections[0]
    grid = document.tables[0]._tbl.tblGrid
    widths = [int(col.get(qn("w:w"))) / 20.0 for col in grid.findall(qn("w:gridCol"))]
    assert section.page_width is not None and section.left_margin is not None
    assert section.right_margin is not None
    available = section.page_width.pt - section.left_margin.pt - section.right_margin.pt
    return widths, available, section.orientation == WD_ORIENT.LANDSCAPE


@pytest.mark.parametrize("name", sorted(TABLES))
def test_docx_columns_hold_their_longest_word_and_fit_the_page(name: str) -> None:
    table = TABLES[name]
    widths, available, _ = _grid_widths(table.to_docx())
    assert sum(widths) <= available + 0.5  # half a point: rounding of the stored twips
    extents = column_extents(table)
    document = docx.Document(io.BytesIO(table.to_docx()))
    size = max(r.font.size.pt for r in document.tables[0].rows[-1].cells[0].paragraphs[0].runs)
    for width, (_, word) in zip(widths, extents, strict=True):
        # the column holds its longest unbreakable word (estimated width) plus padding
        assert width >= size * word + 11.0


def test_wide_effects_table_turns_the_page_and_repeats_its_header() -> None:
    frame = pd.concat([effect_rows()] * 30, ignore_index=True)
    frame["outcome"] = [f"outcome {i // 2}" for i in range(len(frame))]
    raw = effects(frame).to_docx()
    _, _, landscape = _grid_widths(raw)
    assert landscape
    document = docx.Document(io.BytesIO(raw))
    assert document.paragraphs[0].style.name == "Caption"
    assert document.paragraphs[0].text == "Estimated effects"
    rows = document.tables[0].rows
    header = [r._tr.trPr.find(qn("w:tblHeader")) is not None for r in rows]
    assert header[0] and not any(header[1:])
    assert all(r._tr.trPr.find(qn("w:cantSplit")) is not None for r in rows)


def test_text_widths_follow_arial_metrics() -> None:
    assert text_em("m") > text_em("n") > text_em("i")
    assert text_em("Teams", bold=True) == pytest.approx(1.1 * text_em("Teams"))


# -- LaTeX ------------------------------------------------------------------------------
def test_tex_has_booktabs_caption_and_label() -> None:
    tex = TABLES["effects"].to_latex()
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert r"\caption{Estimated effects}" in tex and r"\label{tab:effects}" in tex
    assert r"\label{tab:consort-flow}" in TABLES["consort_flow"].to_latex()
    labelled = Table(pd.DataFrame({"x": [1.0]}), [Column("x", ("x",))], label="tab:mine")
    assert r"\label{tab:mine}" in labelled.to_latex()


def test_tex_long_tables_are_longtables_and_wide_ones_landscape() -> None:
    item = TABLES["item_change"].to_latex()
    assert r"\begin{longtable}" in item and r"\endhead" in item  # 43 rows: breaks pages
    frame = pd.concat([effect_rows()] * 4, ignore_index=True)
    frame["outcome"] = [f"outcome {i // 2}" for i in range(len(frame))]
    wide = effects(frame).to_latex()
    assert r"\begin{landscape}" in wide and r"\begin{table}" in wide
    assert r"\raggedright\arraybackslash}p{" in wide  # long text wraps in its column


def _compile(tex: str, folder: Path) -> str:
    source = folder / "table.tex"
    source.write_text(
        "\\documentclass{article}\n\\usepackage[a4paper,margin=2.54cm]{geometry}\n"
        "\\usepackage[T1]{fontenc}\n"
        "\\usepackage{booktabs,array,longtable,pdflscape,graphicx}\n"
        f"\\begin{{document}}\n{tex}\\end{{document}}\n", encoding="utf-8")
    for _ in range(2):  # longtable settles its column widths on the second run
        done = subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", source.name],
            cwd=folder, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-2000:]
    return (folder / "table.log").read_text(encoding="utf-8", errors="replace")


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
@pytest.mark.parametrize("name", sorted(TABLES))
def test_each_standard_table_compiles_within_the_a4_text_width(name: str,
                                                               tmp_path: Path) -> None:
    log = _compile(TABLES[name].to_latex(), tmp_path)
    assert "Overfull \\hbox" not in log


# -- the effects table ------------------------------------------------------------------
def test_boundary_fit_is_marked_with_a_footnote() -> None:
    table = effects(effect_rows(boundary=[True, False]))
    shown = table.formatted()
    assert shown.loc[0, "Analysis"] == f"LMM arm x review (KR) {BOUNDARY_MARK}"
    assert shown.loc[1, "Analysis"] == "GEE independence (Kauermann-Carroll)"
    assert any(n.startswith(f"{BOUNDARY_MARK} Boundary fit") for n in table.footnotes)
    assert not any("Boundary" in n for n in effects(effect_rows()).footnotes)


def test_negative_lower_icc_limit_is_shown_as_zero_with_a_note() -> None:
    table = effects(effect_rows())
    assert table.formatted().loc[0, "ICC (95% CI)"] == "0.83 (0.00 to 0.95)"
    assert table.data.loc[0, "icc_low"] == -0.12  # the number underneath is kept
    assert any("below 0 are shown as 0" in n for n in table.footnotes)


def test_an_icc_not_from_the_rows_model_is_marked() -> None:
    table = effects(effect_rows(icc=[0.83, 0.03], icc_low=[0.1, 0.0], icc_high=[0.9, 0.06],
                                icc_source=["model", "separate"]))
    shown = table.formatted()
    assert shown.loc[1, "ICC (95% CI)"] == f"0.03 (0.00 to 0.06) {SEPARATE_ICC_MARK}"
    assert not shown.loc[0, "ICC (95% CI)"].endswith(SEPARATE_ICC_MARK)
    assert any(n.startswith(SEPARATE_ICC_MARK) for n in table.footnotes)


def test_one_primary_row_per_outcome() -> None:
    two = pd.concat([effect_rows().iloc[[0]]] * 2, ignore_index=True)
    with pytest.raises(InvalidParameterError, match="2 rows labelled primary"):
        effects(two)
    two.loc[1, "role"] = "secondary"
    assert effects(two).formatted()["Role"].tolist() == ["primary", "secondary"]
    with pytest.raises(InvalidParameterError, match="role must be one of"):
        effects(effect_rows(role=["main", "sensitivity"]))


def test_estimand_columns_are_shown_compactly_when_present() -> None:
    plain = effects(effect_rows()).formatted()
    assert plain["Measure"].tolist() == ["difference", "odds ratio"]
    stated = effects(effect_rows(population=["cluster-average", "participant-average"],
                                 measure=["mean difference", "odds ratio"],
                                 conditioning=["conditional", "marginal"]))
    assert stated.formatted()["Measure"].tolist() == [
        "mean difference (conditional, cluster-average)",
        "odds ratio (marginal, participant-average)"]
    assert any(n.startswith("Measure: conditional = within a team") for n in stated.footnotes)


def test_outcomes_are_labelled_for_readers() -> None:
    frame = effect_rows(outcome=["referrals_access_mean", "admitted"])
    sections = [label for label, _ in effects(frame).sections()]
    assert sections == ["Referrals and access (mean item score)", "admitted"]


def test_effects_rows_from_the_analyses_carry_boundary_and_icc_source() -> None:
    out = crtstats.analyse_fidelity(SCORES, TRIAL.teams, outcomes=["total"], did=False)
    eff = out.effects
    assert eff["boundary"].tolist() == [False] * len(eff)
    lmm = eff[eff["analysis"].str.startswith("LMM")]
    fit = out.results["total: LMM arm x review (KR)"]
    assert (lmm["icc"] == fit.icc).all() and (lmm["icc_source"] == "model").all()
    assert lmm["role"].tolist() == ["secondary", "primary"]
    assert np.isnan(eff.loc[eff["analysis"].str.startswith("ANCOVA"), "icc"]).all()


# -- suppression ------------------------------------------------------------------------
def test_withheld_large_counts_never_read_as_small() -> None:
    flow = consort_flow(TRIAL, suppress_below=2000)  # every count of people withheld
    shown = flow.formatted()
    users = (flow.data["unit"] == "Service users").to_numpy()
    assert set(shown.loc[users, "Total"]) == {"*"}  # a total of 1419 is not "<2000"
    assert not any("<" in v for v in shown.to_numpy().ravel())
    assert any(n.startswith("* Withheld") for n in flow.footnotes)


# -- determinism ------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(TABLES))
def test_word_and_latex_bytes_are_identical_across_builds(name: str) -> None:
    again = standard_tables()[name]
    for fmt in ("docx", "tex"):
        assert TABLES[name].render(fmt) == again.render(fmt)  # type: ignore[arg-type]


# -- the plan's [output] paper ----------------------------------------------------------
def test_plan_paper_reaches_the_word_and_latex_files(tmp_path: Path) -> None:
    from crtstats import write_table
    from crtstats.exceptions import PlanError
    from crtstats.runner import parse_plan

    base = {"title": "t", "seed": 1, "data": {"example": True}}
    assert parse_plan(base).output.paper == "a4"
    assert parse_plan({**base, "output": {"paper": "letter"}}).output.paper == "letter"
    with pytest.raises(PlanError, match="paper must be one of 'a4', 'letter'"):
        parse_plan({**base, "output": {"paper": "A3"}})
    paths = write_table(TABLES["consort_flow"], tmp_path, "flow", formats=["docx"],
                        paper="letter")
    section = docx.Document(str(paths["docx"])).sections[0]
    assert section.page_width is not None and abs(section.page_width.pt - 612.0) < 0.05
