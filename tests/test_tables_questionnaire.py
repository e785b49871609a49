"""Questionnaire rows of the flow and baseline tables, and questionnaire outcomes in the
effects table.

The counts and summaries are computed again here from the item columns with plain
pandas / the standard library (not through crtstats' scoring), on questionnaire tables
simulated in the test. Tolerance of means, SDs and quartiles: ``rel=1e-12``, as they
are sums of a few hundred small integers divided once, so only the order of
floating-point summation differs.
"""

from __future__ import annotations

import io
import shutil
import statistics
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import docx
import numpy as np
import pandas as pd
import pytest
from docx.oxml.ns import qn

from crtstats.analysis import EFFECT_COLUMNS, OPTIONAL_EFFECT_COLUMNS
from crtstats.datasets import load_example
from crtstats.exceptions import InvalidParameterError
from crtstats.scales import score_questionnaire
from crtstats.tables import Column, Table, baseline, consort_flow, effects, outcome_label

EXAMPLE = load_example()
TEAMS = EXAMPLE.teams
ARMS = ("control", "intervention")
WAVES = ("baseline", "follow_up")
RTOL = 1e-12  # see the module docstring
CSQ8 = [f"csq8_{i:02d}" for i in range(1, 9)]
GHQ12 = [f"ghq12_{i:02d}" for i in range(1, 13)]


def questionnaire(items: list[str], low: int, high: int, id_column: str, per_team: int,
                  *, seed: int, teams: pd.DataFrame = TEAMS) -> pd.DataFrame:
    """Rows per team and wave: about 20% non-responders (items empty), about 3% of the
    responders' items missing."""
    rng = np.random.default_rng(seed)
    rows = []
    for team in teams["team_id"]:
        for wave in WAVES:
            for k in range(per_team):
                responded = bool(rng.random() > 0.2)
                row: dict[str, Any] = {"team_id": team, id_column: f"{team}-{wave}-{k}",
                                       "wave": wave, "responded": responded}
                for item in items:
                    keep = responded and rng.random() > 0.03
                    row[item] = float(rng.integers(low, high + 1)) if keep else np.nan
                rows.append(row)
    frame = pd.DataFrame(rows)
    frame[items] = frame[items].astype("Int64")
    return frame


USERS = questionnaire(CSQ8, 1, 4, "respondent_id", 15, seed=1)
STAFF = questionnaire(GHQ12, 0, 3, "staff_id", 6, seed=2)


def trial(**tables: Any) -> SimpleNamespace:
    base = {"teams": TEAMS, "fidelity": EXAMPLE.fidelity, "admissions": EXAMPLE.admissions}
    return SimpleNamespace(**(base | tables))


def arm_of(frame: pd.DataFrame) -> pd.Series:
    arms = dict(zip(TEAMS["team_id"], TEAMS["arm"], strict=True))
    return frame["team_id"].map(arms)


def complete_total(frame: pd.DataFrame, items: list[str], recode: dict[int, int] | None = None
                   ) -> pd.Series:
    """The total of a responder with every item, else NaN (the default missing rule)."""
    values = frame[items].astype(float)
    if recode is not None:
        values = values.replace(recode)
    full = values.notna().all(axis=1) & frame.get("responded", True)
    return values.sum(axis=1).where(full)


def flow_rows(table: Any, unit: str) -> pd.DataFrame:
    data = table.data
    return data[data["unit"] == unit].set_index("stage")


# -- consort_flow -----------------------------------------------------------------------
def test_flow_counts_respondents_per_arm_and_wave() -> None:
    flow = consort_flow(trial(user_questionnaires=USERS, staff_questionnaires=STAFF))
    for frame, items, unit in ((USERS, CSQ8, "Service-user questionnaires (CSQ-8)"),
                               (STAFF, GHQ12, "Staff questionnaires (GHQ-12)")):
        rows = flow_rows(flow, unit)
        arm, total = arm_of(frame), complete_total(frame, items)
        for wave in WAVES:
            text = wave.replace("_", "-")
            at = frame["wave"] == wave
            for arm_name in ARMS:
                mine = at & (arm == arm_name)
                assert rows.loc[f"sampled at {text}", arm_name] == mine.sum()
                assert rows.loc[f"responded at {text}", arm_name] == (
                    mine & frame["responded"]).sum()
                assert rows.loc[f"analysed at {text} (total scored)", arm_name] == (
                    mine & total.notna()).sum()
            assert rows.loc[f"sampled at {text}", "total"] == at.sum()
    assert flow.title.startswith("Flow of teams, service users and questionnaire")
    # the teams and service-user rows are those of the trial without questionnaires
    plain = consort_flow(trial()).data
    assert flow.data.iloc[: len(plain)].equals(plain)


def test_flow_without_questionnaires_is_unchanged() -> None:
    flow = consort_flow(trial(user_questionnaires=None))
    assert set(flow.data["unit"]) == {"Teams", "Service users"}
    assert flow.title == "Flow of teams and service users through the trial"
    assert consort_flow(SimpleNamespace(teams=TEAMS)).data["unit"].tolist() == ["Teams"]


def test_flow_with_only_the_staff_table() -> None:
    flow = consort_flow(trial(staff_questionnaires=STAFF))
    units = list(dict.fromkeys(flow.data["unit"]))
    assert units == ["Teams", "Service users", "Staff questionnaires (GHQ-12)"]
    assert len(flow_rows(flow, units[-1])) == 6  # three stages at each of two waves


def test_flow_without_a_responded_column_counts_every_row_as_responding() -> None:
    users = USERS.drop(columns="responded")
    rows = flow_rows(consort_flow(trial(user_questionnaires=users)),
                     "Service-user questionnaires (CSQ-8)")
    assert (rows.loc["responded at baseline"] == rows.loc["sampled at baseline"]).all()
    scored = users[CSQ8].notna().all(axis=1) & (users["wave"] == "baseline")
    assert rows.loc["analysed at baseline (total scored)", "total"] == scored.sum()


def test_flow_uses_given_scores_and_instruments() -> None:
    scores = score_questionnaire(USERS, "csq8").assign(total=np.nan)
    rows = flow_rows(consort_flow(trial(user_questionnaires=USERS),
                                  questionnaire_scores={"user_questionnaires": scores}),
                     "Service-user questionnaires (CSQ-8)")
    assert rows.loc["analysed at follow-up (total scored)", "total"] == 0
    with pytest.raises(InvalidParameterError, match="names table"):
        consort_flow(trial(), instruments={"questionnaires": "csq8"})
    with pytest.raises(InvalidParameterError, match="must map"):
        consort_flow(trial(), instruments={"user_questionnaires": 8})


def small_teams() -> pd.DataFrame:
    return TEAMS.iloc[[0, 1, 2, 3]].assign(arm=["control", "intervention"] * 2)


def test_flow_withholds_small_counts_of_respondents_but_not_teams() -> None:
    teams = small_teams()
    users = questionnaire(CSQ8, 1, 4, "respondent_id", 2, seed=3, teams=teams)
    flow = consort_flow(SimpleNamespace(teams=teams, user_questionnaires=users),
                        suppress_below=5)
    shown = flow.formatted()
    data = flow.data
    respondents = data.index[data["unit"].str.startswith("Service-user")]
    assert len(respondents) == 6
    for i in respondents:  # at most 4 per arm and wave: every count is withheld
        for column in ("control", "intervention", "total"):
            if (int(i), column) in flow.suppressed:
                assert shown.iloc[i][column.capitalize()] == "*"
                assert np.isnan(data.loc[i, column])
    assert any((int(i), "total") in flow.suppressed for i in respondents)
    teams_rows = data.index[data["unit"] == "Teams"]
    assert not any((int(i), c) in flow.suppressed for i in teams_rows for c in ARMS)
    assert any("Withheld" in note for note in flow.footnotes)


# -- baseline ---------------------------------------------------------------------------
def _row(table: Any, label: str, level: str | None = None) -> pd.Series:
    data = table.data
    hit = data[(data["label"] == label) & ((data["level"] == level) if level else True)]
    assert len(hit) == 1, (label, data["label"].tolist())
    return hit.iloc[0]


def test_baseline_questionnaire_rows_at_team_and_person_level() -> None:
    table = baseline(trial(user_questionnaires=USERS, staff_questionnaires=STAFF))
    recode = {0: 0, 1: 0, 2: 1, 3: 1}  # GHQ scoring of the GHQ-12
    cases = ((USERS, CSQ8, None, "CSQ-8", "CSQ-8", "Service users"),
             (STAFF, GHQ12, recode, "GHQ-12 (GHQ scoring)", "GHQ-12", "Staff"))
    for frame, items, rec, title, name, who in cases:
        base = frame[frame["wave"] == "baseline"]
        total, arm = complete_total(base, items, rec), arm_of(base)
        level = f"{who} answering the {name} at baseline"
        teams_row = _row(table, f"Teams with {name} respondents at baseline")
        team_means = _row(table, f"{title} total at baseline, team means")
        respondents = _row(table, "Respondents", level)
        mean = _row(table, f"{title} total", level)
        median = _row(table, f"{title} total, median (IQR)", level)
        for group in (*ARMS, "overall"):
            mine = arm.notna() if group == "overall" else arm == group
            values = total[mine].dropna().tolist()
            means = [statistics.fmean(total[mine & (base["team_id"] == t)].dropna())
                     for t in sorted(set(base.loc[mine, "team_id"]))
                     if total[mine & (base["team_id"] == t)].notna().any()]
            assert teams_row[f"{group}_value"] == base.loc[mine & base["responded"],
                                                            "team_id"].nunique()
            assert team_means[f"{group}_n"] == len(means)
            assert team_means[f"{group}_value"] == pytest.approx(statistics.fmean(means),
                                                                 rel=RTOL)
            assert team_means[f"{group}_spread"] == pytest.approx(statistics.stdev(means),
                                                                  rel=RTOL)
            assert respondents[f"{group}_value"] == (mine & base["responded"]).sum()
            assert mean[f"{group}_n"] == len(values)
            assert mean[f"{group}_value"] == pytest.approx(statistics.fmean(values), rel=RTOL)
            assert mean[f"{group}_spread"] == pytest.approx(statistics.stdev(values), rel=RTOL)
            q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")  # R type 7
            assert median[f"{group}_value"] == pytest.approx(q2, rel=RTOL)
            assert median[f"{group}_spread"] == pytest.approx(q1, rel=RTOL)
            assert median[f"{group}_upper"] == pytest.approx(q3, rel=RTOL)
    shown = table.formatted()
    i = int(np.flatnonzero(table.data["label"] == "CSQ-8 total, median (IQR)")[0])
    assert " to " in shown.iloc[i]["overall_summary"]
    assert "Overall (25 teams)" in table.to_markdown()


def test_baseline_with_only_one_questionnaire_table() -> None:
    table = baseline(trial(user_questionnaires=USERS))
    assert "Service users answering the CSQ-8 at baseline" in set(table.data["level"])
    assert not table.data["label"].str.contains("GHQ").any()
    plain = baseline(trial())
    assert not plain.data["label"].str.contains("CSQ").any()
    assert "median" not in " ".join(c.label for c in plain.columns).lower()


def test_baseline_withholds_small_groups_of_respondents_and_the_overall() -> None:
    teams = small_teams()
    users = questionnaire(CSQ8, 1, 4, "respondent_id", 3, seed=4, teams=teams)
    users.loc[arm_of_small(users, teams) == "intervention", "responded"] = True
    table = baseline(SimpleNamespace(teams=teams, user_questionnaires=users),
                     suppress_below=8)
    data = table.data
    level = "Service users answering the CSQ-8 at baseline"
    for label in ("Respondents", "CSQ-8 total", "CSQ-8 total, median (IQR)"):
        i = int(np.flatnonzero((data["label"] == label) & (data["level"] == level))[0])
        for group in (*ARMS, "overall"):
            assert (i, f"{group}_value") in table.suppressed  # at most 6 per arm
            assert np.isnan(data.loc[i, f"{group}_value"])
    # team rows are never withheld
    i = int(np.flatnonzero(data["label"] == "CSQ-8 total at baseline, team means")[0])
    assert not any((i, f"{g}_value") in table.suppressed for g in (*ARMS, "overall"))


def arm_of_small(frame: pd.DataFrame, teams: pd.DataFrame) -> pd.Series:
    return frame["team_id"].map(dict(zip(teams["team_id"], teams["arm"], strict=True)))


# -- the effects table ------------------------------------------------------------------
REQUIRED = [c for c in EFFECT_COLUMNS if c not in OPTIONAL_EFFECT_COLUMNS]


def effect_rows(outcomes: list[str], roles: list[str] | None = None) -> pd.DataFrame:
    rows = [[o, "LMM (KR)", "primary", "intervention vs control", "difference", 0.97,
             -1.02, 2.97, 0.34, 21.9, "kenward-roger", "REML", 0.05, 0.0, 0.2, 25, 375]
            for o in outcomes]
    frame = pd.DataFrame(rows, columns=REQUIRED)
    if roles is not None:
        frame["outcome_role"] = roles
    return frame


def test_effects_heading_names_the_outcome_and_its_role_in_the_plan() -> None:
    frame = effect_rows(["csq8", "ghq12_ghq", "ghq12_likert", "ghq12_case", "total"],
                        ["primary", "secondary", "secondary", "secondary", "secondary"])
    table = effects(frame)
    headings = [group for group, _ in table.sections()]
    assert headings == ["CSQ-8 total (primary outcome)",
                        "GHQ-12 (GHQ scoring) total (secondary outcome)",
                        "GHQ-12 (Likert scoring) total (secondary outcome)",
                        "GHQ-12 caseness (secondary outcome)",
                        "Fidelity total (secondary outcome)"]
    assert table.to_csv().splitlines()[1].startswith("CSQ-8 total (primary outcome),")


def test_effects_without_outcome_role_and_csv_header() -> None:
    table = effects(effect_rows(["csq8"]))
    assert [g for g, _ in table.sections()] == ["CSQ-8 total"]
    assert table.to_csv().splitlines()[0].startswith("Outcome,Analysis,")
    assert outcome_label("csq8_unknown") == "csq8 unknown"


def test_effects_outcome_role_is_checked() -> None:
    with pytest.raises(InvalidParameterError, match="outcome_role must be one of"):
        effects(effect_rows(["csq8"], ["main"]))
    frame = pd.concat([effect_rows(["csq8"], ["primary"]),
                       effect_rows(["csq8"], ["secondary"]).assign(role="sensitivity")])
    with pytest.raises(InvalidParameterError, match="both primary and secondary"):
        effects(frame)


# -- on the page --------------------------------------------------------------------------
FULL = trial(user_questionnaires=USERS, staff_questionnaires=STAFF)
PAGE_TABLES = {
    "consort_flow": lambda: consort_flow(FULL, suppress_below=8),
    "baseline": lambda: baseline(FULL, suppress_below=8),
}


@pytest.mark.parametrize("name", sorted(PAGE_TABLES))
def test_questionnaire_tables_fit_the_page_in_word(name: str) -> None:
    document = docx.Document(io.BytesIO(PAGE_TABLES[name]().to_docx()))
    section = document.sections[0]
    grid = document.tables[0]._tbl.tblGrid
    widths = [int(col.get(qn("w:w"))) / 20.0 for col in grid.findall(qn("w:gridCol"))]
    assert section.page_width is not None and section.left_margin is not None
    assert section.right_margin is not None
    available = section.page_width.pt - section.left_margin.pt - section.right_margin.pt
    assert sum(widths) <= available + 0.5  # half a point: rounding of the stored twips


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
@pytest.mark.parametrize("name", sorted(PAGE_TABLES))
def test_questionnaire_tables_compile_within_the_text_width(name: str, tmp_path: Path
                                                            ) -> None:
    source = tmp_path / "table.tex"
    source.write_text(
        "\\documentclass[10pt,a4paper]{article}\n\\usepackage[margin=2.54cm]{geometry}\n"
        "\\usepackage{booktabs,array,longtable,pdflscape,graphicx}\n"
        f"\\begin{{document}}\n{PAGE_TABLES[name]().to_latex()}\\end{{document}}\n",
        encoding="utf-8")
    for _ in range(2):  # longtable settles its column widths on the second run
        done = subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", source.name],
            cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-2000:]
    log = (tmp_path / "table.log").read_text(encoding="utf-8", errors="replace")
    assert "Overfull \\hbox" not in log


def test_suppression_note_names_staff_when_staff_are_counted() -> None:
    teams = small_teams()
    staff = questionnaire(GHQ12, 0, 3, "staff_id", 2, seed=5, teams=teams)
    for build in (consort_flow, baseline):
        table = build(SimpleNamespace(teams=teams, staff_questionnaires=staff),
                      suppress_below=5)
        assert any("no service user or staff member can be identified" in note
                   for note in table.footnotes)


def test_questionnaire_rows_do_not_depend_on_row_order_or_ids() -> None:
    shuffled = USERS.sample(frac=1.0, random_state=11).reset_index(drop=True)
    shuffled["respondent_id"] = [f"R{i}" for i in range(len(shuffled))]
    for build in (consort_flow, baseline):
        first = build(trial(user_questionnaires=USERS)).data
        again = build(trial(user_questionnaires=shuffled)).data
        pd.testing.assert_frame_equal(first, again, rtol=RTOL)
    assert "respondent_id" not in baseline(trial(user_questionnaires=USERS)).data.columns


def test_summary_column_writes_median_and_quartiles() -> None:
    frame = pd.DataFrame({"statistic": ["median_iqr", "n"], "v": [27.5, 12.0],
                          "s": [24.0, np.nan], "u": [30.0, np.nan]})
    column = Column("Summary", ("v", "s", "u"), "summary", decimals=1,
                    statistic_column="statistic")
    assert Table(frame, [column]).formatted()["Summary"].tolist() == [
        "27.5 (24.0 to 30.0)", "12"]
    two = Column("Summary", ("v", "s"), "summary", statistic_column="statistic")
    with pytest.raises(InvalidParameterError, match="needs three sources"):
        Table(frame, [two]).formatted()
    with pytest.raises(InvalidParameterError, match="reads 2 or 3 source"):
        Column("Summary", ("v",), "summary", statistic_column="statistic")
