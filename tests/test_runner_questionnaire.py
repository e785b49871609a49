"""Runs with questionnaires: outcome roles, scored tables, manifest inputs and the report."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import crtstats
from crtstats.datasets import example_paths, load_example, write_messy_example
from crtstats.runner import TIMESTAMP_FIELD, RunResult, parse_plan, run
from crtstats.runner._effects import primary_outcomes, with_outcome_roles
from crtstats.runner._stages import questionnaire_scorings

ROOT = Path(__file__).resolve().parents[1]
KEYS = ROOT / "data_schema" / "instruments"


def _spec(**extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "seed": 7, "data": {"example": True}, "primary": "satisfaction",
        "analysis": [
            {"name": "likert", "outcome": "questionnaire",
             "options": {"table": "staff_questionnaires", "instrument": "ghq12",
                         "scoring": "likert", "linked": True, "n_resamples": 200}},
            {"name": "satisfaction", "outcome": "questionnaire", "label": "CSQ-8",
             "options": {"table": "user_questionnaires", "instrument": "csq8",
                         "n_resamples": 200}},
            {"name": "cl", "role": "sensitivity", "fitter": "cluster_level",
             "data": "admissions", "where": {"period": "follow_up"},
             "options": {"outcome": "admitted"}},
        ],
        "output": {"tables": ["consort_flow", "baseline", "effects"],
                   "figures": ["questionnaire_means", "forest"],
                   "table_formats": ["csv", "md"], "figure_formats": ["svg"]},
    }
    spec.update(extra)
    return spec


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[RunResult]:
    base = tmp_path_factory.mktemp("questionnaire-runs")
    plan = parse_plan(_spec(), name="questionnaires.toml")
    return [run(plan, out=base / name) for name in ("a", "b")]


def test_effects_rows_carry_the_outcome_role(runs: list[RunResult]) -> None:
    effects = runs[0].effects
    columns = list(effects.columns)
    assert columns[columns.index("role") + 1] == "outcome_role"
    assert set(effects.loc[effects["outcome"] == "csq8", "outcome_role"]) == {"primary"}
    others = effects[effects["outcome"] != "csq8"]
    assert set(others["outcome"]) == {"ghq12_likert", "admitted"}
    assert set(others["outcome_role"]) == {"secondary"}
    # the primary outcome first, though the plan lists its analysis second
    n = int((effects["outcome"] == "csq8").sum())
    assert n >= 3 and (effects["outcome"].iloc[:n] == "csq8").all()
    assert effects.iloc[0]["role"] == "primary"
    written = pd.read_csv(runs[0].out / "tables" / "effects.csv")
    assert len(written) >= len(effects)
    for name, done in runs[0].analyses.items():
        assert "outcome_role" in done.effects.columns, name
    record = runs[0].manifest["analyses"]["satisfaction"]["effects"]
    assert {r["outcome_role"] for r in record} == {"primary"}


def test_without_primary_there_is_no_outcome_role(tmp_path: Path) -> None:
    spec = _spec(output={"tables": ["effects"], "figures": [], "table_formats": ["csv"]})
    del spec["primary"]
    spec["analysis"] = spec["analysis"][2:]
    result = run(parse_plan(spec), out=tmp_path / "out")
    assert "outcome_role" not in result.effects.columns
    assert result.manifest["primary"] is None


def test_outcome_roles_helpers() -> None:
    effects = pd.DataFrame({"outcome": ["a", "b", "b", "c"],
                            "role": ["sensitivity", "primary", "sensitivity", "primary"]})
    assert primary_outcomes(effects.iloc[1:3]) == ("b",)
    assert primary_outcomes(effects.iloc[:1]) == ("a",)  # no primary row: its outcomes
    out = with_outcome_roles(effects, ("c",))
    assert out["outcome"].tolist() == ["c", "a", "b", "b"]
    assert out["outcome_role"].tolist() == ["primary", "secondary", "secondary", "secondary"]
    assert list(out.columns) == ["outcome", "role", "outcome_role"]
    again = with_outcome_roles(out, ("a",))  # replaces an earlier column
    assert again["outcome_role"].tolist() == ["primary", "secondary", "secondary", "secondary"]


def test_questionnaires_are_scored_as_the_plan_says(runs: list[RunResult]) -> None:
    scored = runs[0].questionnaires
    assert set(scored) == {"user_questionnaires", "staff_questionnaires"}
    users = scored["user_questionnaires"]
    assert len(users) == len(load_example().user_questionnaires)
    assert users["total"].between(8, 32).all() or users["total"].isna().any()
    assert users["total"].dropna().between(8, 32).all()
    staff = scored["staff_questionnaires"]  # the Likert scoring of the plan's analysis
    assert staff["total"].dropna().max() > 12 and "case" not in staff.columns
    record = runs[0].manifest["scoring"]["questionnaires"]
    assert record["staff_questionnaires"] == {
        "instrument": "ghq12", "title": "General Health Questionnaire (GHQ-12)",
        "scoring": "likert", "total_range": [0.0, 36.0], "caseness_threshold": None,
        "max_missing": 0, "prorate": False, "analysis": "likert"}
    assert record["user_questionnaires"]["scoring"] == "total"


def test_a_table_no_analysis_names_gets_the_default_instrument() -> None:
    plan = parse_plan({"seed": 1, "data": {"example": True}})
    chosen = questionnaire_scorings(plan, {"user_questionnaires": None, "teams": None})
    assert list(chosen) == ["user_questionnaires"]
    assert (chosen["user_questionnaires"].instrument, chosen["user_questionnaires"].analysis
            ) == ("csq8", None)


def test_manifest_inputs_hold_the_questionnaire_files(runs: list[RunResult]) -> None:
    inputs = runs[0].manifest["inputs"]
    for table in ("user_questionnaires", "staff_questionnaires"):
        path = example_paths()[table]
        assert inputs[table] == {
            "file": path.name, "rows": len(crtstats.read_table(path, table=table).data),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert runs[0].manifest["primary"] == {"analysis": "satisfaction", "label": "CSQ-8",
                                           "outcomes": ["csq8"]}


def test_two_runs_are_byte_identical(runs: list[RunResult]) -> None:
    a, b = (r.out for r in runs)
    tables = sorted(p.name for p in (a / "tables").iterdir())
    assert tables and all((a / "tables" / t).read_bytes() == (b / "tables" / t).read_bytes()
                          for t in tables)

    def manifest(folder: Path) -> list[str]:
        lines = (folder / "manifest.json").read_text(encoding="utf-8").splitlines()
        return [line for line in lines if not line.startswith(f'  "{TIMESTAMP_FIELD}": ')]

    assert manifest(a) == manifest(b)


def test_no_person_id_in_any_output(runs: list[RunResult]) -> None:
    example = load_example()
    ids = {*example.user_questionnaires["respondent_id"],
           *example.staff_questionnaires["staff_id"]}
    for path in runs[0].out.rglob("*"):
        if path.is_file() and path.suffix in (".csv", ".md", ".svg", ".json", ".html"):
            text = path.read_text(encoding="utf-8")
            found = [i for i in ids if i in text]
            assert not found, (path.name, found[:3])


def test_report_says_which_analysis_is_primary(runs: list[RunResult]) -> None:
    html = (runs[0].out / "report.html").read_text(encoding="utf-8")
    assert ("<strong>Primary outcome.</strong> The plan names the analysis &#39;CSQ-8&#39; "
            "as primary: its outcome (csq8)") in html
    assert "Questionnaires were scored with their instrument keys" in html
    assert "Likert" not in html or "scoring likert (total 0-36" in html
    assert "CSQ-8 (primary outcome)" in html
    # the primary analysis is listed first among the pre-specified analyses
    listed = html.split("<caption>Pre-specified analyses</caption>", 1)[1]
    assert listed.index("CSQ-8 (primary outcome)") < listed.index("likert")


def test_mapping_and_key_files_are_inputs(tmp_path: Path) -> None:
    paths = write_messy_example(tmp_path / "export")
    for table in ("user_questionnaires", "staff_questionnaires"):
        shutil.copy(example_paths()[table], tmp_path / "export" / f"{table}.csv")
    key = tmp_path / "export" / "my_ghq.yaml"
    key.write_text((KEYS / "ghq12.yaml").read_text(encoding="utf-8").replace(
        "key: ghq12", "key: my_ghq"), encoding="utf-8")
    plan = tmp_path / "export" / "plan.toml"
    plan.write_text(
        "seed = 3\n"
        "[data]\n"
        f'teams = "{paths["workbook"].name}"\n'
        f'fidelity = "{paths["workbook"].name}"\n'
        'staff_questionnaires = "staff_questionnaires.csv"\n'
        f'mapping = "{paths["mapping"].name}"\n'
        "[[analysis]]\n"
        'name = "staff"\n'
        'outcome = "questionnaire"\n'
        'options = { table = "staff_questionnaires", instrument = "my_ghq.yaml", '
        'scoring = "likert", n_resamples = 100 }\n'
        '[output]\ntables = ["effects"]\nfigures = []\ntable_formats = ["csv"]\n',
        encoding="utf-8")
    result = run(plan, out=tmp_path / "out")
    inputs = result.manifest["inputs"]
    digest = hashlib.sha256(paths["mapping"].read_bytes()).hexdigest()
    assert inputs["mapping"] == {"file": paths["mapping"].name, "sha256": digest}
    assert inputs["instrument my_ghq"] == {
        "file": "my_ghq.yaml", "sha256": hashlib.sha256(key.read_bytes()).hexdigest()}
    assert set(result.effects["outcome"]) == {"my_ghq_likert"}
    assert result.manifest["analyses"]["staff"]["options"]["instrument"] == "my_ghq.yaml"
    text = json.dumps(result.manifest)
    assert str(tmp_path) not in text, "no machine paths in the manifest"
    html = (result.out / "report.html").read_text(encoding="utf-8")
    assert "mapping: <code>trust_export.mapping.toml</code>;" in html
