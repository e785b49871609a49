"""load_trial and TrialData: cross-table rules, long fidelity, column mapping, derivation."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import crtstats
from crtstats.datasets import example_paths, load_example
from crtstats.exceptions import InvalidParameterError, SchemaValidationError
from crtstats.trial import EXCLUSION_COLUMNS, TrialData, load_trial


@pytest.fixture(scope="module")
def ex() -> dict[str, pd.DataFrame]:
    return load_example().tables()


def failures(**tables: Any) -> pd.DataFrame:
    with pytest.raises(SchemaValidationError) as err:
        load_trial(**tables)
    return err.value.failure_cases


def rows_of(cases: pd.DataFrame, reason: str) -> list[tuple[str, int, str]]:
    sub = cases[cases["reason_code"] == reason]
    return [(t, int(r), c) for t, r, c in zip(sub["table"], sub["row"], sub["column"],
                                              strict=True)]


def long_fidelity(wide: pd.DataFrame) -> pd.DataFrame:
    ids = ["team_id", "review", "reviewed_on", "scale_version"]
    long = wide.melt(id_vars=ids, var_name="item", value_name="score")
    long["item"] = long["item"].str.removeprefix("item_").astype(int)
    return long


def test_shipped_example_loads(ex: dict[str, pd.DataFrame]) -> None:
    trial = crtstats.load_trial(**ex)
    assert isinstance(trial, TrialData)
    assert (len(trial.teams), len(trial.fidelity), len(trial.admissions)) == (25, 74, 2813)
    assert trial.service_use_derived is False and dict(trial.provenance) == {}
    assert list(trial.exclusions.columns) == list(EXCLUSION_COLUMNS)
    assert trial.exclusions.empty
    assert int(trial.fidelity.filter(like="item_").isna().sum().sum()) == 4
    for name, frame in trial.tables().items():
        pd.testing.assert_frame_equal(frame, ex[name])
    with pytest.raises(dataclasses.FrozenInstanceError):
        trial.teams = trial.teams  # type: ignore[misc]


def test_paths_record_provenance_and_service_use_is_derived() -> None:
    paths = example_paths()
    trial = load_trial(teams=paths["teams"], fidelity=str(paths["fidelity"]),
                       admissions=paths["admissions"])
    assert trial.service_use_derived is True
    assert set(trial.provenance) == {"teams", "fidelity", "admissions"}
    assert trial.provenance["admissions"]["rows"] == 2813
    assert trial.provenance["teams"]["file"] == "example_teams.csv"
    assert len(str(trial.provenance["fidelity"]["sha256"])) == 64
    # the shipped service_use is the aggregation of the shipped admissions
    shipped = load_example().service_use
    pd.testing.assert_frame_equal(trial.service_use, shipped)


def test_derived_readmissions_missing_when_any_user_missing(ex: dict[str, pd.DataFrame]
                                                            ) -> None:
    adm = ex["admissions"].copy()
    adm.loc[0, "readmitted"] = pd.NA
    su = load_trial(teams=ex["teams"], admissions=adm).service_use
    assert su is not None
    assert pd.isna(su.loc[0, "readmissions"]) and su["readmissions"].notna().sum() == 49
    assert su.loc[0, "n_users"] == ex["service_use"].loc[0, "n_users"]


def test_unknown_team_in_every_table(ex: dict[str, pd.DataFrame]) -> None:
    fid, adm, su = ex["fidelity"].copy(), ex["admissions"].copy(), ex["service_use"].copy()
    fid.loc[2, "team_id"] = "T99"
    adm.loc[7, "team_id"] = "t01"
    su.loc[3, "team_id"] = "T26"
    cases = failures(teams=ex["teams"], fidelity=fid, admissions=adm, service_use=su)
    assert rows_of(cases, "unknown_team") == [
        ("fidelity", 2, "team_id"), ("admissions", 7, "team_id"), ("service_use", 3, "team_id")]
    assert set(cases["reason_code"]) == {"unknown_team"}


def test_arm_and_stratum_must_agree_where_repeated(ex: dict[str, pd.DataFrame]) -> None:
    adm = ex["admissions"].merge(ex["teams"][["team_id", "arm", "stratum"]], on="team_id")
    adm.loc[10, "arm"] = "control" if adm.loc[10, "arm"] == "intervention" else "intervention"
    adm.loc[20, "stratum"] = "Trust Z"
    cases = failures(teams=ex["teams"], admissions=adm)
    assert rows_of(cases, "inconsistent") == [("admissions", 10, "arm"),
                                              ("admissions", 20, "stratum")]
    assert "in teams is" in cases["check"].iloc[0]


def test_one_review_per_team_and_review(ex: dict[str, pd.DataFrame]) -> None:
    fid = pd.concat([ex["fidelity"], ex["fidelity"].iloc[[0]]], ignore_index=True)
    cases = failures(teams=ex["teams"], fidelity=fid)
    assert rows_of(cases, "duplicate_key") == [("fidelity", 0, "team_id, review"),
                                               ("fidelity", 74, "team_id, review")]


def test_bed_days_exposure_and_arm_size_through_load_trial(ex: dict[str, pd.DataFrame]
                                                           ) -> None:
    adm, su = ex["admissions"].copy(), ex["service_use"].copy()
    not_admitted = int(np.flatnonzero(adm["admitted"].to_numpy() == 0)[1])
    adm.loc[not_admitted, "bed_days"] = 3
    su.loc[5, "n_users"] = 0
    teams = ex["teams"]
    teams = teams[(teams["arm"] == "intervention") | (teams["team_id"] == "T02")]
    cases = failures(teams=teams, admissions=adm, service_use=su)
    assert ("admissions", not_admitted, "bed_days") in rows_of(cases, "bed_days_not_admitted")
    assert rows_of(cases, "exposure") == [("service_use", 5, "n_users")]
    assert cases.loc[cases["reason_code"] == "too_few_teams", "value"].tolist() == ["control"]


def test_problems_of_all_tables_in_one_error(ex: dict[str, pd.DataFrame]) -> None:
    teams, fid = ex["teams"].copy(), ex["fidelity"].copy()
    teams.loc[0, "stratum"] = None
    fid.loc[1, "item_03"] = 9
    cases = failures(teams=teams, fidelity=fid)
    assert cases[["table", "reason_code"]].values.tolist() == [["teams", "required"],
                                                               ["fidelity", "maximum"]]


def test_long_fidelity_is_pivoted_to_wide(ex: dict[str, pd.DataFrame]) -> None:
    long = long_fidelity(ex["fidelity"]).sample(frac=1.0, random_state=3)
    trial = load_trial(teams=ex["teams"], fidelity=long)
    assert trial.fidelity is not None
    got = trial.fidelity.set_index(["team_id", "review"]).sort_index()
    want = ex["fidelity"].set_index(["team_id", "review"]).sort_index()
    pd.testing.assert_frame_equal(got, want)
    names = long.assign(item=[f"item_{i:02d}" for i in long["item"]])
    assert load_trial(teams=ex["teams"], fidelity=names).fidelity.shape == (74, 43)


def test_long_fidelity_problems_point_at_long_rows(ex: dict[str, pd.DataFrame]) -> None:
    long = long_fidelity(ex["fidelity"])
    long.loc[5, "score"] = 7
    long.loc[9, "item"] = 40
    long.loc[12, "team_id"] = "T99"
    long.loc[30, "reviewed_on"] = "2020-01-01"
    long = pd.concat([long, long.iloc[[20]]], ignore_index=True)
    cases = failures(teams=ex["teams"], fidelity=long)
    got = set(zip(cases["row"].astype(int), cases["column"], cases["reason_code"],
                  strict=True))
    assert got == {(5, "score", "maximum"), (9, "item", "enum"), (12, "team_id", "unknown_team"),
                   (30, "reviewed_on", "inconsistent"), (20, "item", "duplicate_key"),
                   (len(long) - 1, "item", "duplicate_key")}


def test_columns_maps_user_names(ex: dict[str, pd.DataFrame]) -> None:
    teams = ex["teams"].rename(columns={"team_id": "Team", "arm": "Allocation"})
    adm = ex["admissions"].rename(columns={"team_id": "Team"})
    trial = load_trial(teams=teams, admissions=adm,
                       columns={"Team": "team_id", "Allocation": "arm"})
    assert list(trial.teams.columns[:2]) == ["team_id", "arm"]
    per_table = load_trial(teams=teams, admissions=adm,
                           columns={"teams": {"Team": "team_id", "Allocation": "arm"},
                                    "admissions": {"Team": "team_id"}})
    pd.testing.assert_frame_equal(per_table.teams, trial.teams)


@pytest.mark.parametrize("columns, message", [
    ({"Team": "team"}, "no schema knows"),
    ({"patients": {"a": "team_id"}}, "unknown table"),
    ({"Team": "team_id", "teams": {"a": "arm"}}, "got a mix"),
    ({"stratum": "arm"}, "two columns named"),
])
def test_bad_column_maps(ex: dict[str, pd.DataFrame], columns: dict[str, Any],
                         message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        load_trial(teams=ex["teams"], admissions=ex["admissions"], columns=columns)


def test_needs_teams_and_one_more_table(ex: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="at least one of"):
        load_trial(teams=ex["teams"])
    with pytest.raises(InvalidParameterError, match="DataFrame or the path"):
        load_trial(teams=ex["teams"], fidelity=[1, 2])  # type: ignore[arg-type]
    with pytest.raises(crtstats.DataFileError):
        load_trial(teams=ex["teams"], fidelity=tmp_path / "missing.csv")


def test_long_fidelity_from_a_csv_file(ex: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    path = tmp_path / "fidelity_long.csv"
    long = long_fidelity(ex["fidelity"])
    long.loc[3, "score"] = pd.NA
    crtstats.io.write_csv(long, path)
    trial = load_trial(teams=example_paths()["teams"], fidelity=path)
    assert trial.fidelity is not None and trial.fidelity.shape == (74, 43)
    assert trial.provenance["fidelity"]["rows"] == len(long)
    assert int(trial.fidelity.filter(like="item_").isna().sum().sum()) == 5


def test_long_fidelity_without_its_key_reports_only_the_missing_column(
    ex: dict[str, pd.DataFrame]
) -> None:
    long = long_fidelity(ex["fidelity"])
    for drop in (["review"], ["team_id", "review"]):
        cases = failures(teams=ex["teams"], fidelity=long.drop(columns=drop))
        assert set(cases["reason_code"]) == {"missing_column"}
        assert cases["column"].tolist() == drop
    cases = failures(teams=ex["teams"], fidelity=long.iloc[:0])
    assert cases["reason_code"].tolist() == ["empty_table"]
