"""The data mapping: one shape for columns=, the plan and --mapping; declared, recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import crtstats
from crtstats.cli import main
from crtstats.exceptions import MappingError, PlanError, SchemaValidationError
from crtstats.runner import load_plan
from crtstats.schema import apply_mapping, load_mapping, parse_mapping
from crtstats.trial import load_trial

ITEMS = [f"item_{i:02d}" for i in range(1, 40)]

MAPPING = {
    "teams": {"columns": {"Team code": "team_id", "Allocation": "arm", "Trust": "stratum"},
              "values": {"arm": {"Intervention": "intervention", "Control": "control"}}},
    "fidelity": {"columns": {"Team code": "team_id", "Review": "review"},
                 "items": "Q{n}",
                 "values": {"Review": {"Baseline": "baseline", "6 months": "6m",
                                       "12 months": "12m"}},
                 "dates": {"reviewed_on": "%d/%m/%Y"}},
}


@pytest.fixture(scope="module")
def ex() -> dict[str, pd.DataFrame]:
    return crtstats.datasets.load_example().tables()


def messy(ex: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The example's teams and fidelity as a trust might export them."""
    teams = ex["teams"].drop(columns="randomised_on").rename(
        columns={"team_id": "Team code", "arm": "Allocation", "stratum": "Trust"})
    teams["Allocation"] = teams["Allocation"].str.capitalize()
    fid = ex["fidelity"].rename(columns={"team_id": "Team code", "review": "Review",
                                         **{c: f"Q{int(c[5:])}" for c in ITEMS}})
    fid["Review"] = fid["Review"].map({"baseline": "Baseline", "6m": "6 months",
                                       "12m": "12 months"})
    fid["reviewed_on"] = pd.to_datetime(fid["reviewed_on"]).dt.strftime("%d/%m/%Y")
    return {"teams": teams, "fidelity": fid.astype({"reviewed_on": object})}


def test_nested_mapping_gives_the_clean_trial(ex: dict[str, pd.DataFrame]) -> None:
    raw = messy(ex)
    trial = load_trial(teams=raw["teams"], fidelity=raw["fidelity"], columns=MAPPING)
    clean = load_trial(teams=ex["teams"].drop(columns="randomised_on"),
                       fidelity=ex["fidelity"])
    pd.testing.assert_frame_equal(trial.teams, clean.teams)
    assert trial.fidelity is not None and clean.fidelity is not None
    pd.testing.assert_frame_equal(trial.fidelity[clean.fidelity.columns], clean.fidelity)
    # every recoding is recorded, with its count
    lines = trial.mapping_lines()
    assert "teams.arm: 'Intervention' recoded to 'intervention' (15 rows)" in lines
    assert "fidelity: 39 columns Q1..Q39 read as item columns item_01..item_39" in lines
    assert any(line.startswith("fidelity.reviewed_on: 74 date(s) read as %d/%m/%Y")
               for line in lines)
    assert {r.action for r in trial.mapping} == {"rename", "items", "values", "dates"}


def test_nothing_is_recoded_unless_declared(ex: dict[str, pd.DataFrame]) -> None:
    raw = messy(ex)
    teams = raw["teams"].copy()
    teams.loc[3, "Allocation"] = "intervention "  # not a declared label
    with pytest.raises(SchemaValidationError) as err:
        load_trial(teams=teams, fidelity=raw["fidelity"], columns=MAPPING)
    cases = err.value.failure_cases
    assert cases[["row", "column", "value", "reason_code"]].values.tolist() == [
        [3, "arm", "intervention ", "enum"]]


def test_the_three_shapes_of_columns(ex: dict[str, pd.DataFrame]) -> None:
    teams = ex["teams"].rename(columns={"team_id": "Team"})
    adm = ex["admissions"].rename(columns={"team_id": "Team"})
    for columns in ({"Team": "team_id"}, {"teams": {"Team": "team_id"},
                                          "admissions": {"Team": "team_id"}},
                    {"teams": {"columns": {"Team": "team_id"}},
                     "admissions": {"columns": {"Team": "team_id"}}}):
        trial = load_trial(teams=teams, admissions=adm, columns=columns)
        assert trial.teams["team_id"].iloc[0] == "T01"


@pytest.mark.parametrize("mapping, message", [
    ({"teams": {"columns": {"Nope": "team_id"}}}, r"names column\(s\) \['Nope'\]"),
    ({"teams": {"values": {"Nope": {"a": "b"}}}}, r"values for teams names column\(s\)"),
    ({"teams": {"dates": {"Nope": "%d/%m/%Y"}}}, r"dates for teams names column\(s\)"),
    ({"fidelity": {"items": "P{n}"}}, "matches no column"),
    ({"Nope": "team_id"}, "none of the tables"),
])
def test_a_source_that_does_not_exist_is_an_error(ex: dict[str, pd.DataFrame],
                                                  mapping: dict[str, Any],
                                                  message: str) -> None:
    with pytest.raises(MappingError, match=message):
        load_trial(teams=ex["teams"], fidelity=ex["fidelity"], columns=mapping)


@pytest.mark.parametrize("mapping, message", [
    ({"teams": {"colums": {}}}, "unknown key"),
    ({"fidelity": {"items": "Q"}}, "one {n}"),
    ({"teams": {"encoding": "klingon"}}, "not an encoding"),
    ({"teams": {"columns": {"a": "team"}}}, "no schema knows"),
    ({"teams": {"dates": {"randomised_on": "dd/mm/yyyy"}}}, "strptime format"),
    ({"teams": {"values": {"arm": {"a": 1.5}}}}, "text or a whole number"),
    (["a"], "must be a mapping"),
])
def test_malformed_mappings(mapping: Any, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        parse_mapping(mapping)


def test_sheet_or_encoding_for_a_dataframe_is_refused(ex: dict[str, pd.DataFrame]) -> None:
    with pytest.raises(MappingError, match="apply to files"):
        load_trial(teams=ex["teams"], fidelity=ex["fidelity"],
                   columns={"teams": {"sheet": "Teams"}})


def test_item_patterns_and_labels() -> None:
    frame = pd.DataFrame({"item_7": [3], "item_12": [4], "admitted": ["Yes"],
                          "readmitted": [1.0]})
    mapping = parse_mapping({"fidelity": {"items": "item_{n}"}}).table("fidelity")
    out, log = apply_mapping(frame, mapping, table="fidelity")
    assert {"item_07", "item_12"} <= set(out.columns) and "item_7" not in out.columns
    adm = parse_mapping({"admissions": {"values": {"admitted": {"Yes": 1, "No": 0},
                                                   "readmitted": {"1": 1}}}})
    out, log = apply_mapping(frame, adm.table("admissions"), table="admissions")
    assert out["admitted"].tolist() == [1] and len(log) == 2
    assert frame["admitted"].tolist() == ["Yes"]  # the input is not changed


def test_long_format_items_by_pattern(ex: dict[str, pd.DataFrame]) -> None:
    long = ex["fidelity"].melt(id_vars=["team_id", "review", "reviewed_on",
                                        "scale_version"], value_vars=ITEMS,
                               var_name="Question", value_name="Rating")
    long["Question"] = long["Question"].str.replace("item_", "Q")
    # unmapped: recognised as long, one problem with the mapping to declare
    with pytest.raises(SchemaValidationError) as err:
        load_trial(teams=ex["teams"], fidelity=long)
    cases = err.value.failure_cases
    assert cases["reason_code"].tolist() == ["long_format"]
    assert "[fidelity.columns] \"Question\" = \"item\"" in cases["check"].iloc[0]
    assert 'items = "Q{n}"' in cases["check"].iloc[0]
    mapping = {"fidelity": {"columns": {"Question": "item", "Rating": "score"},
                            "items": "Q{n}"}}
    trial = load_trial(teams=ex["teams"], fidelity=long, columns=mapping)
    assert trial.fidelity is not None and len(trial.fidelity) == 74
    # an item with no row in long format is a problem, as an absent column is in wide
    with pytest.raises(SchemaValidationError) as err:
        load_trial(teams=ex["teams"], fidelity=long[long["Question"] != "Q07"],
                   columns=mapping)
    cases = err.value.failure_cases
    assert cases[["column", "reason_code"]].values.tolist() == [["item_07",
                                                                  "missing_column"]]


def test_wide_items_under_other_names_are_named_once(ex: dict[str, pd.DataFrame]) -> None:
    fid = ex["fidelity"].rename(columns={c: f"Q{int(c[5:])}" for c in ITEMS})
    with pytest.raises(SchemaValidationError) as err:
        load_trial(teams=ex["teams"], fidelity=fid)
    cases = err.value.failure_cases
    assert len(cases) == 1 and 'declare items = "Q{n}"' in cases["check"].iloc[0]


def test_root_cause_first(ex: dict[str, pd.DataFrame]) -> None:
    teams = ex["teams"].copy()
    teams["arm"] = teams["arm"].replace({"intervention": "Intervention"})
    with pytest.raises(SchemaValidationError) as err:
        load_trial(teams=teams, fidelity=ex["fidelity"])
    cases = err.value.failure_cases
    assert set(cases["reason_code"]) == {"enum"} and len(cases) == 15
    assert '[teams.values.arm] "Intervention" = "intervention"' in cases["check"].iloc[0]
    assert "Intervention" in str(err.value)


def test_missing_team_or_arm_is_a_problem_never_dropped(ex: dict[str, pd.DataFrame]) -> None:
    teams = ex["teams"].copy().astype(object)
    teams.loc[4, "arm"] = None
    fid = ex["fidelity"].copy().astype({"team_id": object})
    fid.loc[10, "team_id"] = None
    with pytest.raises(SchemaValidationError) as err:
        load_trial(teams=teams, fidelity=fid)
    cases = err.value.failure_cases
    found = set(zip(cases["table"], cases["row"], cases["column"], cases["reason_code"],
                    strict=True))
    assert ("teams", 4, "arm", "required") in found
    assert ("fidelity", 10, "team_id", "required") in found


def test_mapping_file_plan_and_cli(tmp_path: Path, ex: dict[str, pd.DataFrame],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    raw = messy(ex)
    raw["teams"].to_csv(tmp_path / "teams.csv", index=False)
    raw["fidelity"].to_csv(tmp_path / "fidelity.csv", index=False)
    (tmp_path / "m.toml").write_text(
        '[teams.columns]\n"Team code" = "team_id"\nAllocation = "arm"\nTrust = "stratum"\n'
        '[teams.values.arm]\nIntervention = "intervention"\nControl = "control"\n'
        '[fidelity]\nitems = "Q{n}"\n[fidelity.columns]\n"Team code" = "team_id"\n'
        'Review = "review"\n[fidelity.values.review]\nBaseline = "baseline"\n'
        '"6 months" = "6m"\n"12 months" = "12m"\n[fidelity.dates]\n'
        'reviewed_on = "%d/%m/%Y"\n', encoding="utf-8")
    assert load_mapping(tmp_path / "m.toml").to_dict()["fidelity"]["items"] == "Q{n}"
    args = ["validate", "--teams", str(tmp_path / "teams.csv"), "--fidelity",
            str(tmp_path / "fidelity.csv")]
    assert main(args) == 1
    assert main([*args, "--mapping", str(tmp_path / "m.toml")]) == 0
    out = capsys.readouterr().out
    assert "'Intervention' recoded to 'intervention' (15 rows)" in out
    assert "crtstats: valid: teams (25 rows), fidelity (74 rows)" in out
    code = main(["score", "--fidelity", str(tmp_path / "fidelity.csv"), "--mapping",
                 str(tmp_path / "m.toml"), "--out", str(tmp_path / "s.csv")])
    assert code == 0 and len(pd.read_csv(tmp_path / "s.csv")) == 74
    # the plan: a mapping file relative to the plan, or inline
    plan_text = ('seed = 1\n[data]\nteams = "teams.csv"\nfidelity = "fidelity.csv"\n'
                 'mapping = "m.toml"\n')
    (tmp_path / "p.toml").write_text(plan_text, encoding="utf-8")
    plan = load_plan(tmp_path / "p.toml")
    assert plan.data.mapping.table("fidelity").items == "Q{n}"
    assert plan.data.columns["teams"]["Allocation"] == "arm"
    inline = ('seed = 1\n[data]\nteams = "teams.csv"\nfidelity = "fidelity.csv"\n'
              '[data.mapping.fidelity]\nitems = "Q{n}"\n')
    (tmp_path / "q.toml").write_text(inline, encoding="utf-8")
    assert load_plan(tmp_path / "q.toml").data.mapping.table("fidelity").items == "Q{n}"


@pytest.mark.parametrize("data, message", [
    ('mapping = "missing.toml"', "mapping file not found"),
    ('mapping = 3', "must be a file name"),
    ('[data.mapping.teams]\ncolums = {}', "unknown key"),
    ('[data.mapping.teams.columns]\nA = "arm"\n[data.columns.teams]\nA = "arm"',
     "both rename"),
])
def test_plan_mapping_errors(tmp_path: Path, data: str, message: str) -> None:
    text = f'seed = 1\n[data]\nteams = "t.csv"\nfidelity = "f.csv"\n{data}\n'
    (tmp_path / "p.toml").write_text(text, encoding="utf-8")
    with pytest.raises(PlanError, match=message):
        load_plan(tmp_path / "p.toml")


def test_cli_bad_mapping_is_one_line(tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    paths = crtstats.datasets.example_paths()
    (tmp_path / "m.toml").write_text('[teams.columns]\nAllocation = "arm"\n')
    code = main(["validate", "--teams", str(paths["teams"]), "--fidelity",
                 str(paths["fidelity"]), "--mapping", str(tmp_path / "m.toml")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "'Allocation'" in err
    assert "Traceback" not in err


def test_cli_says_a_long_table_was_read_as_long(tmp_path: Path, ex: dict[str, pd.DataFrame],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    long = ex["fidelity"].melt(id_vars=["team_id", "review"], value_vars=ITEMS,
                               var_name="item", value_name="score")
    long.to_csv(tmp_path / "long.csv", index=False)
    paths = crtstats.datasets.example_paths()
    assert main(["validate", "--teams", str(paths["teams"]), "--fidelity",
                 str(tmp_path / "long.csv")]) == 0
    out = capsys.readouterr().out
    assert "fidelity read in long format (2886 rows, one per item) and pivoted to 74" in out
