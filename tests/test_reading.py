"""Reading files as trusts export them: wrong names, encodings, blank rows, Excel ids."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import crtstats
from crtstats.cli import main
from crtstats.exceptions import DataFileError, SchemaValidationError
from crtstats.io import read_table
from crtstats.trial import load_trial

TEAMS = ("team_id,arm,stratum\nT1,intervention,Trust A\nT2,intervention,Trust A\n"
         "T3,control,Trust B\nT4,control,Trust B\n")
SU = ("team_id,period,n_users,admissions,bed_days,readmissions\n"
      "T1,pre,10,2,20,1\nT2,pre,10,2,20,1\nT3,pre,10,2,20,1\nT4,pre,10,2,20,1\n")


def write(folder: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = folder / name
    path.write_bytes(text.encode(encoding))
    return path


def test_xlsx_named_csv_is_refused_in_one_line(tmp_path: Path) -> None:
    frame = pd.read_csv(write(tmp_path, "t.csv", TEAMS))
    frame.to_excel(tmp_path / "book.xlsx", index=False)
    (tmp_path / "teams.csv").write_bytes((tmp_path / "book.xlsx").read_bytes())
    with pytest.raises(DataFileError, match="Excel workbook") as err:
        read_table(tmp_path / "teams.csv", table="teams")
    assert "rename it teams.xlsx" in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "teams.csv").rename(tmp_path / "teams.xlsx")  # renamed, it is read
    assert read_table(tmp_path / "teams.xlsx", table="teams").n_rows == 4


def test_latin1_names_the_line_and_what_to_do(tmp_path: Path) -> None:
    path = write(tmp_path, "teams.csv", TEAMS.replace("T3,control,Trust B",
                                                      "T3,control,Trust Bé"), "latin-1")
    with pytest.raises(DataFileError) as err:
        read_table(path, table="teams")
    message = str(err.value)
    assert "line 4" in message and "0xE9" in message and "UTF-8" in message
    assert 'encoding = "cp1252"' in message
    read = read_table(path, table="teams", encoding="latin-1")
    assert read.data["stratum"].iloc[2] == "Trust Bé"
    trial = load_trial(teams=path, service_use=write(tmp_path, "su.csv", SU),
                       columns={"teams": {"encoding": "cp1252"}})
    assert trial.provenance["teams"]["encoding"] == "cp1252"


def test_binary_file_is_one_line_without_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "teams.csv"
    path.write_bytes(b"\x1b[2J\x00\x01\x02garbage\xff\xfe" * 50)
    with pytest.raises(DataFileError) as err:
        read_table(path, table="teams")
    message = str(err.value)
    assert "binary file" in message and message.isprintable()


def test_trailing_comma_rows_are_skipped_and_counted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "teams.csv", TEAMS + ",,\n,,\r\n,,\n")
    read = read_table(path, table="teams")
    assert read.n_rows == 4 and read.skipped_blank == 3
    trial = load_trial(teams=path, service_use=write(tmp_path, "su.csv", SU))
    assert trial.exclusions[["table", "reason", "rows"]].values.tolist() == [
        ["teams", "blank rows", 3]]
    assert trial.provenance["teams"]["skipped_blank_rows"] == 3
    assert main(["validate", "--teams", str(path)]) == 0
    assert "3 row(s) with no value in any field" in capsys.readouterr().out
    # a blank row inside the data is not skipped: it is reported, at its line
    inner = write(tmp_path, "inner.csv", TEAMS.replace("T3,", ",,\nT3,"))
    with pytest.raises(SchemaValidationError) as err:
        load_trial(teams=inner, service_use=write(tmp_path, "su.csv", SU))
    cases = err.value.failure_cases
    assert cases.loc[cases["reason_code"] == "required", "line"].unique().tolist() == [4]


def test_float_ids_in_a_dataframe_read_as_from_excel(tmp_path: Path) -> None:
    teams = pd.DataFrame({"team_id": [1, 2, 3, 4], "arm": ["intervention"] * 2 + ["control"]
                          * 2, "stratum": ["A", "A", "B", "B"]})
    su = pd.read_csv(write(tmp_path, "su.csv", SU.replace("T", "")), dtype=str)
    teams.to_excel(tmp_path / "teams.xlsx", index=False)
    from_file = load_trial(teams=tmp_path / "teams.xlsx", service_use=su)
    from_frame = load_trial(teams=teams.astype({"team_id": float}), service_use=su)
    assert from_file.teams["team_id"].tolist() == from_frame.teams["team_id"].tolist() == [
        "1", "2", "3", "4"]


def test_line_numbers_count_blank_lines_and_quoted_breaks(tmp_path: Path) -> None:
    text = ('team_id,arm,stratum,note\nT1,intervention,A,"two\nlines"\n\n'
            "T2,intervention,A,\nT3,Control,B,\nT4,control,B,\n")
    with pytest.raises(SchemaValidationError) as err:
        load_trial(teams=write(tmp_path, "teams.csv", text),
                   service_use=write(tmp_path, "su.csv", SU))
    cases = err.value.failure_cases
    bad = cases[cases["reason_code"] == "enum"]
    assert bad[["row", "line", "file"]].values.tolist() == [[2, 6, "teams.csv"]]
    assert "teams.csv line 6" in str(err.value)


def test_excel_sheets_and_rows(tmp_path: Path) -> None:
    teams = pd.read_csv(write(tmp_path, "t.csv", TEAMS)).assign(
        arm=["intervention", "Intervention", "control", "control"])
    with pd.ExcelWriter(tmp_path / "trust.xlsx") as book:
        pd.DataFrame({"Notes": ["exported from the trust"]}).to_excel(
            book, sheet_name="Notes", index=False)
        teams.to_excel(book, sheet_name="Teams", index=False)
    su = write(tmp_path, "su.csv", SU)
    with pytest.raises(DataFileError, match="has no sheet 'Team'; its sheets are 'Notes'"):
        load_trial(teams=tmp_path / "trust.xlsx", service_use=su,
                   columns={"teams": {"sheet": "Team"}})
    with pytest.raises(SchemaValidationError) as err:
        load_trial(teams=tmp_path / "trust.xlsx", service_use=su,
                   columns={"teams": {"sheet": "Teams"}})
    cases = err.value.failure_cases
    assert cases[["line", "file"]].values.tolist() == [[3, "trust.xlsx [Teams]"]]


def test_cli_errors_exit_1_without_traceback(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "teams.csv"
    path.write_bytes(b"\x00\x01binary")
    paths = crtstats.datasets.example_paths()
    for args in (["validate", "--teams", str(path)],
                 ["validate", "--teams", str(path), "--admissions", str(paths["admissions"])],
                 ["score", "--fidelity", str(path), "--out", str(tmp_path / "s.csv")],
                 ["validate", "--teams", str(paths["teams"]), "--mapping",
                  str(tmp_path / "none.toml")]):
        assert main(args) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err
