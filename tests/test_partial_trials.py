"""Partial trials run: defaults adapt, and the report says what was not possible and why.

Three trials a statistician meets before the final analysis: one with admissions data
only, an interim analysis before the 12-month review, and a control arm without 6-month
reviews. Each is cut from the shipped example, so nothing here is simulated afresh.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import crtstats
from crtstats import OutputNotAvailableError
from crtstats.cli import main
from crtstats.datasets import example_paths

#: A formula analysis whose estimand is the arm effect at 12 months.
AT_12M = {
    "name": "fidelity-12m", "fitter": "lmm", "data": "scores", "role": "sensitivity",
    "formula": "total ~ arm * review + stratum",
    "contrast": {"arm[T.intervention]": 1, "arm[T.intervention]:review[T.12m]": 1},
}
FIDELITY = {"name": "fidelity", "outcome": "fidelity",
            "options": {"outcomes": ["total"], "did": False}}


def _files(folder: Path, *, keep_fidelity: pd.Series | None = None) -> dict[str, str]:
    """The example's teams, admissions and (a selection of) fidelity rows as CSV files."""
    paths = example_paths()
    files = {}
    for table in ("teams", "admissions"):
        files[table] = str(folder / f"{table}.csv")
        Path(files[table]).write_bytes(paths[table].read_bytes())
    if keep_fidelity is not None:
        fidelity = pd.read_csv(paths["fidelity"], dtype=str, keep_default_na=False)
        files["fidelity"] = str(folder / "fidelity.csv")
        fidelity[keep_fidelity.to_numpy()].to_csv(files["fidelity"], index=False)
    return files


def _fidelity_rows() -> pd.DataFrame:
    return pd.read_csv(example_paths()["fidelity"], dtype=str, keep_default_na=False)


def _teams() -> pd.DataFrame:
    return pd.read_csv(example_paths()["teams"], dtype=str)


def _not_possible(result: crtstats.runner.RunResult) -> dict[str, str]:
    return {item["what"]: item["reason"] for item in result.manifest["not_possible"]}


def test_an_admissions_only_trial_runs_with_its_default_tables_and_figures(
    tmp_path: Path,
) -> None:
    plan = {"seed": 1, "data": _files(tmp_path),
            "analysis": [{"name": "admitted-gee", "fitter": "gee", "data": "admissions",
                          "role": "primary",
                          "formula": "admitted ~ arm + stratum",
                          "where": {"period": "follow_up"},
                          "options": {"family": "binomial"}}],
            "output": {"table_formats": ["md"], "figure_formats": ["png"]}}
    result = crtstats.run(plan, out=tmp_path / "out")
    missing = _not_possible(result)
    fidelity_outputs = {"table 'fidelity_by_arm'", "table 'item_change'",
                        "figure 'trajectories'", "figure 'domain_profile'"}
    assert fidelity_outputs <= set(missing)
    assert all("fidelity" in missing[k] for k in fidelity_outputs)
    assert {"consort_flow", "baseline", "effects"} <= set(result.tables)
    assert "fidelity_by_arm" not in result.tables and "trajectories" not in result.figures
    report = (tmp_path / "out" / "report.html").read_text("utf-8")
    assert "Not possible with these data" in report
    assert "figure &#39;trajectories&#39;: &#39;trajectories&#39; needs fidelity scores" in report


def test_a_table_asked_for_by_name_that_the_trial_cannot_support_is_an_error(
    tmp_path: Path,
) -> None:
    plan = {"seed": 1, "data": _files(tmp_path),
            "output": {"tables": ["consort_flow", "fidelity_by_arm"], "figures": []}}
    with pytest.raises(OutputNotAvailableError, match="'fidelity_by_arm' needs fidelity"):
        crtstats.run(plan, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_interim_analysis_before_the_12_month_review(tmp_path: Path) -> None:
    rows = _fidelity_rows()
    plan = {"seed": 1, "data": _files(tmp_path, keep_fidelity=rows["review"] != "12m"),
            "analysis": [FIDELITY, AT_12M],
            "output": {"tables": ["fidelity_by_arm", "item_change", "effects"],
                       "figures": ["trajectories", "forest"], "table_formats": ["md"],
                       "figure_formats": ["png"]}}
    result = crtstats.run(plan, out=tmp_path / "out")
    assert set(result.effects["estimand"]) == {"arm effect at 6m"}
    missing = _not_possible(result)
    assert "review[T.12m]" in missing["analysis 'fidelity-12m'"]
    assert "baseline to 6m" in missing["table 'item_change'"]
    assert result.tables["item_change"].title == "Item scores: change from baseline to 6m"
    notes = result.manifest["analyses"]["fidelity"]["notes"]
    assert any("ANCOVA of the 12-month score is not possible" in n for n in notes)
    assert result.analyses["fidelity-12m"].fits == {}


def test_a_control_arm_without_6_month_reviews(tmp_path: Path) -> None:
    rows = _fidelity_rows()
    teams = _teams()
    control = set(teams.loc[teams["arm"] == "control", "team_id"])
    keep = ~((rows["review"] == "6m") & rows["team_id"].isin(control))
    plan = {"seed": 1, "data": _files(tmp_path, keep_fidelity=keep),
            "analysis": [FIDELITY],
            "output": {"tables": ["fidelity_by_arm", "item_change", "effects"],
                       "figures": ["trajectories"], "table_formats": ["md"],
                       "figure_formats": ["png"]}}
    result = crtstats.run(plan, out=tmp_path / "out")
    estimands = set(result.effects["estimand"])
    assert "arm effect at 12m" in estimands and "arm effect at 6m" not in estimands
    notes = result.manifest["analyses"]["fidelity"]["notes"]
    assert any("no control team was reviewed at 6m" in n for n in notes)
    assert result.manifest["not_possible"] == []  # 12m is there: the item change is as planned


def test_the_command_line_says_what_was_not_possible(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    rows = _fidelity_rows()
    files = _files(tmp_path, keep_fidelity=rows["review"] != "12m")
    lines = ["seed = 1", "[data]", *(f'{k} = "{Path(v).name}"' for k, v in files.items()),
             "[[analysis]]", 'name = "fidelity-12m"', 'fitter = "lmm"', 'data = "scores"',
             'role = "primary"', 'formula = "total ~ arm * review + stratum"',
             'contrast = { "arm[T.intervention]" = 1, '
             '"arm[T.intervention]:review[T.12m]" = 1 }',
             "[output]", "tables = []", "figures = []", 'table_formats = ["md"]']
    (tmp_path / "plan.toml").write_text("\n".join(lines) + "\n", "utf-8")
    code = main(["run", str(tmp_path / "plan.toml"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "not possible with these data: analysis 'fidelity-12m'" in err
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text("utf-8"))
    assert manifest["not_possible"][0]["what"] == "analysis 'fidelity-12m'"
