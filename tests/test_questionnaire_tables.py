"""The questionnaire tables: schemas, load_trial, cross-table checks, the data mapping
and ``crtstats validate``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import crtstats
from crtstats.cli import main
from crtstats.exceptions import InvalidParameterError, MappingError, SchemaValidationError
from crtstats.scales import load_instrument
from crtstats.schema import WAVES, parse_mapping, validate

TEAMS = crtstats.datasets.load_example().teams
CSQ = load_instrument("csq8")
GHQ = load_instrument("ghq12")


def users(n_per_wave: int = 2, seed: int = 1) -> pd.DataFrame:
    """CSQ-8 answers of ``n_per_wave`` fresh respondents per team and wave."""
    rng = np.random.default_rng(seed)
    rows = [{"team_id": t, "respondent_id": f"{t}-{w}-{r}", "wave": w,
             **{c: int(rng.integers(1, 5)) for c in CSQ.columns}}
            for t in TEAMS["team_id"] for w in WAVES for r in range(n_per_wave)]
    return pd.DataFrame(rows)


def staff(seed: int = 2) -> pd.DataFrame:
    """GHQ-12 answers of two staff per team, the first linked across waves."""
    rng = np.random.default_rng(seed)
    rows = [{"team_id": t, "staff_id": f"{t}-s{r if r == 0 or w == 'baseline' else 9}",
             "wave": w, "responded": True,
             **{c: int(rng.integers(0, 4)) for c in GHQ.columns}}
            for t in TEAMS["team_id"] for w in WAVES for r in range(2)]
    return pd.DataFrame(rows)


def problems(**tables: Any) -> pd.DataFrame:
    with pytest.raises(SchemaValidationError) as err:
        crtstats.load_trial(teams=TEAMS, **tables)
    return err.value.failure_cases


def codes(cases: pd.DataFrame) -> list[tuple[int | None, str, str]]:
    return [(None if pd.isna(r) else int(r), str(c), str(code))
            for r, c, code in zip(cases["row"], cases["column"], cases["reason_code"],
                                  strict=True)]


def test_valid_tables_load_with_declared_dtypes() -> None:
    trial = crtstats.load_trial(teams=TEAMS, user_questionnaires=users(),
                                staff_questionnaires=staff())
    assert trial.user_questionnaires is not None and trial.staff_questionnaires is not None
    assert sorted(trial.tables()) == ["staff_questionnaires", "teams", "user_questionnaires"]
    uq = trial.user_questionnaires
    assert str(uq["respondent_id"].dtype) == "string"
    assert all(str(uq[c].dtype) == "Int64" for c in CSQ.columns)
    assert str(trial.staff_questionnaires["responded"].dtype) == "boolean"
    # one table besides teams is enough; teams alone is not
    assert crtstats.load_trial(teams=TEAMS, staff_questionnaires=staff()).fidelity is None
    with pytest.raises(InvalidParameterError, match="user_questionnaires"):
        crtstats.load_trial(teams=TEAMS)


def test_validate_single_table_returns_it_unchanged() -> None:
    table = users()
    out = validate(table, table="user_questionnaires")
    pd.testing.assert_frame_equal(out, table.astype(
        {"team_id": "string", "respondent_id": "string", "wave": "string",
         **dict.fromkeys(CSQ.columns, "Int64")}))


def test_every_bad_input_is_reported_once() -> None:
    bad = users().astype(object)
    bad.loc[0, "team_id"] = "T99"  # unknown team
    bad.loc[1, "wave"] = "6m"  # not a wave
    bad.loc[2, "csq8_01"] = 2.5  # not a whole number
    bad.loc[3, "csq8_02"] = "x"  # not a number
    bad.loc[5, "respondent_id"] = bad.loc[4, "respondent_id"]  # one row per key
    bad.loc[6, "collected_on"] = "31/02/2015"
    found = codes(problems(user_questionnaires=bad))
    assert (0, "team_id", "unknown_team") in found
    assert (1, "wave", "enum") in found
    assert (2, "csq8_01", "not_integer") in found
    assert (3, "csq8_02", "type") in found
    assert (4, "team_id, respondent_id, wave", "duplicate_key") in found
    assert (5, "team_id, respondent_id, wave", "duplicate_key") in found
    assert (6, "collected_on", "type") in found
    assert len(found) == 7


def test_arm_and_stratum_must_agree_with_teams() -> None:
    table = users()
    arms = TEAMS.set_index("team_id")["arm"]
    table["arm"] = table["team_id"].map(arms)
    table["stratum"] = table["team_id"].map(TEAMS.set_index("team_id")["stratum"])
    crtstats.load_trial(teams=TEAMS, user_questionnaires=table)  # agreeing: valid
    table.loc[3, "arm"] = "control" if table.loc[3, "arm"] == "intervention" else \
        "intervention"
    table.loc[8, "stratum"] = "Trust Z"
    found = codes(problems(user_questionnaires=table))
    assert found == [(3, "arm", "inconsistent"), (8, "stratum", "inconsistent")]


def test_non_responders_must_have_empty_items() -> None:
    table = staff().astype(object)
    table.loc[0, "responded"] = False  # with items: a problem on each item
    table.loc[1, "responded"] = False
    table.loc[1, list(GHQ.columns)] = None  # empty: valid
    table.loc[2, "responded"] = ""  # required when the column is given
    found = codes(problems(staff_questionnaires=table))
    assert found[:1] == [(0, "ghq12_01", "nonresponse_items")]
    assert [f for f in found if f[0] == 0] == [(0, c, "nonresponse_items")
                                               for c in GHQ.columns]
    assert (2, "responded", "required") in found and len(found) == 13


def test_other_extra_columns_are_kept_untyped_as_items() -> None:
    table = users()
    table["sex"] = "f"
    table["age_band"] = "18-25"
    trial = crtstats.load_trial(teams=TEAMS, user_questionnaires=table)
    assert trial.user_questionnaires is not None
    assert trial.user_questionnaires["sex"].tolist()[:1] == ["f"]


def test_mapping_of_a_trusts_item_columns() -> None:
    own = users().rename(columns={"team_id": "Team", "respondent_id": "ID", "wave": "Wave",
                                  **{c: f"CSQ{i + 1}" for i, c in enumerate(CSQ.columns)}})
    own["Wave"] = own["Wave"].map({"baseline": "Baseline", "follow_up": "Follow-up"})
    mapping = {"user_questionnaires": {
        "columns": {"Team": "team_id", "ID": "respondent_id", "Wave": "wave"},
        "items": {"pattern": "CSQ{n}", "instrument": "csq8"},
        "values": {"wave": {"Baseline": "baseline", "Follow-up": "follow_up"}}}}
    trial = crtstats.load_trial(teams=TEAMS, user_questionnaires=own, columns=mapping)
    expected = crtstats.load_trial(teams=TEAMS, user_questionnaires=users())
    assert trial.user_questionnaires is not None and expected.user_questionnaires is not None
    pd.testing.assert_frame_equal(trial.user_questionnaires, expected.user_questionnaires)
    assert ("user_questionnaires: 8 columns CSQ1..CSQ8 read as item columns "
            "csq8_01..csq8_08") in trial.mapping_lines()
    # the mapping round-trips to its TOML shape
    parsed = parse_mapping(mapping)
    assert parse_mapping(parsed.to_dict()) == parsed


def test_mapping_of_several_instruments_in_one_table() -> None:
    table = staff()
    table["mbi_1"] = 3
    own = table.rename(columns={c: f"GHQ_{i + 1:02d}" for i, c in enumerate(GHQ.columns)})
    mapping = {"staff_questionnaires": {"items": [
        {"pattern": "GHQ_{n}", "instrument": "ghq12"}]}}
    trial = crtstats.load_trial(teams=TEAMS, staff_questionnaires=own, columns=mapping)
    assert trial.staff_questionnaires is not None
    assert set(GHQ.columns) <= set(trial.staff_questionnaires.columns)


@pytest.mark.parametrize(("items", "message"), [
    ("CSQ{n}", "must name the instrument"),
    ({"pattern": "CSQ", "instrument": "csq8"}, "one {n}"),
    ({"pattern": "CSQ{n}", "instrument": "csq9"}, "no instrument key 'csq9'"),
    ({"pattern": "CSQ{n}"}, "pattern = "),
    ([], "empty list"),
    ([{"pattern": "A{n}", "instrument": "csq8"}, {"pattern": "B{n}", "instrument": "csq8"}],
     "names an instrument twice"),
])
def test_malformed_item_mappings(items: Any, message: str) -> None:
    with pytest.raises(MappingError, match=message.replace("{", r"\{").replace("(", r"\(")):
        parse_mapping({"user_questionnaires": {"items": items}})


def test_item_mapping_that_matches_nothing_is_an_error() -> None:
    mapping = {"user_questionnaires": {"items": {"pattern": "Q{n}", "instrument": "csq8"}}}
    with pytest.raises(MappingError, match="matches no column"):
        crtstats.load_trial(teams=TEAMS, user_questionnaires=users(), columns=mapping)


def test_columns_may_map_onto_item_columns() -> None:
    own = users().rename(columns={"csq8_01": "satisfied_1"})
    mapping = {"user_questionnaires": {"columns": {"satisfied_1": "csq8_01"}}}
    trial = crtstats.load_trial(teams=TEAMS, user_questionnaires=own, columns=mapping)
    assert trial.user_questionnaires is not None
    assert "csq8_01" in trial.user_questionnaires.columns


def test_files_dates_sheet_and_encoding(tmp_path: Path) -> None:
    own = users().rename(columns={"collected": "x"})
    own["Completed"] = "03/04/2015"
    own["Team name"] = "é"  # needs the declared encoding
    path = tmp_path / "users.csv"
    own.to_csv(path, index=False, encoding="cp1252")
    book = tmp_path / "users.xlsx"
    with pd.ExcelWriter(book) as writer:
        pd.DataFrame({"x": [1]}).to_excel(writer, sheet_name="Notes", index=False)
        own.to_excel(writer, sheet_name="CSQ", index=False)
    for source, extra in ((path, {"encoding": "cp1252"}), (book, {"sheet": "CSQ"})):
        mapping = {"user_questionnaires": {"columns": {"Completed": "collected_on"},
                                           "dates": {"collected_on": "%d/%m/%Y"}, **extra}}
        trial = crtstats.load_trial(teams=TEAMS, user_questionnaires=source, columns=mapping)
        assert trial.user_questionnaires is not None
        assert trial.user_questionnaires["collected_on"].iloc[0] == "2015-04-03"
        assert trial.provenance["user_questionnaires"]["rows"] == len(own)


def test_problems_of_a_file_name_its_line(tmp_path: Path) -> None:
    table = users().astype(object)
    table.loc[4, "csq8_03"] = "three"
    path = tmp_path / "users.csv"
    table.to_csv(path, index=False)
    cases = problems(user_questionnaires=path)
    assert cases[["row", "column", "value", "line"]].values.tolist() == [
        [4, "csq8_03", "three", 6]]
    assert cases["file"].tolist() == ["users.csv"]


def test_cli_validate_questionnaires(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                    ) -> None:
    paths = {"teams": tmp_path / "teams.csv", "users": tmp_path / "users.csv",
             "staff": tmp_path / "staff.csv"}
    TEAMS.to_csv(paths["teams"], index=False)
    users().to_csv(paths["users"], index=False)
    staff().to_csv(paths["staff"], index=False)
    args = ["validate", "--teams", str(paths["teams"]), "--user-questionnaires",
            str(paths["users"]), "--staff-questionnaires", str(paths["staff"])]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "user_questionnaires (100 rows)" in out and "staff_questionnaires (100 rows)" in out
    bad = users().astype(object)
    bad.loc[2, "csq8_05"] = 1.5
    bad.loc[7, "team_id"] = "T77"
    bad.to_csv(paths["users"], index=False)
    report = tmp_path / "problems.csv"
    assert main([*args, "--report", str(report)]) == 1
    out = capsys.readouterr().out
    assert "not_integer" in out and "unknown_team" in out and "Traceback" not in out
    written = pd.read_csv(report, dtype=str, keep_default_na=False)
    assert written[["table", "row", "column", "line"]].values.tolist() == [
        ["user_questionnaires", "2", "csq8_05", "4"],
        ["user_questionnaires", "7", "team_id", "9"]]
    # respondent ids appear in no summary line beyond the problem's own value
    assert "T01-baseline" not in out


def test_mapping_of_responded_labels_from_a_file(tmp_path: Path) -> None:
    own = staff().astype(object)
    own["responded"] = "Returned"
    own.loc[3, "responded"] = "Not returned"
    own.loc[3, list(GHQ.columns)] = None
    path = tmp_path / "staff.csv"
    own.to_csv(path, index=False)
    mapping = {"staff_questionnaires": {"values": {"responded": {
        "Returned": "true", "Not returned": "false"}}}}
    trial = crtstats.load_trial(teams=TEAMS, staff_questionnaires=path, columns=mapping)
    assert trial.staff_questionnaires is not None
    assert trial.staff_questionnaires["responded"].tolist()[2:5] == [True, False, True]
    # without the mapping every label is a problem (none is guessed)
    cases = problems(staff_questionnaires=path)
    assert set(cases["column"]) == {"responded"} and len(cases) == len(own)
