"""read_table: declared dtypes, provenance, and files that are accepted or reported,
never half-read."""

from __future__ import annotations

import csv
import hashlib
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import crtstats
from crtstats.datasets import example_paths
from crtstats.exceptions import DataFileError, SchemaValidationError
from crtstats.io import convert_column, read_table

TEAMS = "team_id,arm,stratum\n007,intervention,A\n008,control,A\n009,intervention,B\n" \
        "010,control,B\n"


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def test_ids_stay_text_and_provenance_is_recorded(tmp_path: Path) -> None:
    path = write(tmp_path, "teams.csv", TEAMS)
    read = read_table(path, table="teams")
    assert read.data["team_id"].tolist() == ["007", "008", "009", "010"]
    assert str(read.data["team_id"].dtype) == "string"
    assert read.n_rows == 4 and read.table == "teams" and read.path == path
    assert read.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_example_files_read_with_declared_dtypes() -> None:
    read = read_table(example_paths()["admissions"], table="admissions")
    dtypes = read.data.dtypes.astype(str).to_dict()
    assert dtypes["team_id"] == dtypes["sex"] == "string"
    assert dtypes["admitted"] == dtypes["bed_days"] == dtypes["age"] == "Int64"


@pytest.mark.parametrize("raw", [
    "\ufeff" + TEAMS,                       # byte-order mark
    TEAMS.replace("\n", "\r\n"),            # Windows line endings
    TEAMS.replace("\n", "\r"),              # old Mac line endings
    TEAMS + "\n\n",                         # trailing blank lines
])
def test_encoding_level_normalisations_are_accepted(tmp_path: Path, raw: str) -> None:
    read = read_table(write(tmp_path, "teams.csv", raw), table="teams")
    assert list(read.data.columns) == ["team_id", "arm", "stratum"]
    assert read.data["team_id"].tolist() == ["007", "008", "009", "010"]
    assert read.data["stratum"].tolist() == ["A", "A", "B", "B"]  # no stray \r
    crtstats.validate(read.data, table="teams")


def test_trailing_spaces_and_mixed_case_are_reported_not_changed(tmp_path: Path) -> None:
    raw = TEAMS.replace("007,intervention", "007 ,Intervention").replace("010,control",
                                                                         "010,CONTROL")
    read = read_table(write(tmp_path, "teams.csv", raw), table="teams")
    assert read.data["team_id"].tolist()[0] == "007 "
    with pytest.raises(SchemaValidationError) as err:
        crtstats.validate(read.data, table="teams")
    cases = err.value.failure_cases
    rows = cases[cases["row"].notna()]
    found = set(zip(rows["row"], rows["column"], rows["reason_code"], strict=True))
    assert found == {(0, "team_id", "pattern"), (0, "arm", "enum"), (3, "arm", "enum")}
    # the labels are the root cause: "too few teams in an arm", which they cause, is not
    # reported on top of them
    assert cases.loc[cases["row"].isna(), "reason_code"].tolist() == []


def test_unreadable_integers_are_kept_as_text_and_each_reported(tmp_path: Path) -> None:
    raw = ("team_id,period,n_users,admissions,bed_days\n"
           "T1,pre,12,3,40\nT1,follow_up,n/a,2,30\nT2,pre,9,1.5,10\nT2,follow_up,8,?,0\n")
    read = read_table(write(tmp_path, "su.csv", raw), table="service_use")
    assert str(read.data["n_users"].dtype) == "string"
    assert read.data["n_users"].tolist() == ["12", "n/a", "9", "8"]
    assert str(read.data["bed_days"].dtype) == "Int64"
    with pytest.raises(SchemaValidationError) as err:
        crtstats.validate(read.data, table="service_use")
    cases = err.value.failure_cases
    got = list(zip(cases["row"], cases["column"], cases["value"], cases["reason_code"],
                   strict=True))
    assert got == [(1, "n_users", "n/a", "type"), (2, "admissions", "1.5", "not_integer"),
                   (3, "admissions", "?", "type")]


def test_missing_values_are_empty_cells_only(tmp_path: Path) -> None:
    raw = "team_id,arm,stratum,pair_id\nNA,intervention,A,\nT2,control,NULL,\n"
    read = read_table(write(tmp_path, "teams.csv", raw), table="teams")
    assert read.data["team_id"].tolist()[0] == "NA"  # "NA" is a valid identifier
    assert read.data["pair_id"].isna().all()


@pytest.mark.parametrize("raw, message", [
    ("team_id,arm,stratum\nT1,control\n", "cannot be read"),              # short row
    ("team_id,arm,stratum\nT1,control,A,extra\n", "cannot be read"),      # long row
    ("team_id,arm,arm\nT1,control,control\n", "repeated column name"),
    ("team_id,arm,stratum,,\nT1,control,A,,\n", "2 columns without a name"),
    ("", "cannot be read"),
])
def test_malformed_csv_is_refused_whole(tmp_path: Path, raw: str, message: str) -> None:
    with pytest.raises(DataFileError, match=message):
        read_table(write(tmp_path, "teams.csv", raw), table="teams")


def test_not_utf8_is_refused(tmp_path: Path) -> None:
    raw = "team_id,arm,stratum\nT1,control,Trust \u00e9\n".encode("latin-1")
    with pytest.raises(DataFileError, match="UTF-8"):
        read_table(write(tmp_path, "teams.csv", raw), table="teams")


def test_missing_file_and_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="not found"):
        read_table(tmp_path / "nope.csv", table="teams")
    with pytest.raises(DataFileError, match="unknown file type"):
        read_table(write(tmp_path, "teams.json", "{}"), table="teams")


def test_parquet_and_excel_round_trip(tmp_path: Path) -> None:
    source = read_table(write(tmp_path, "teams.csv", TEAMS), table="teams").data
    source["randomised_on"] = pd.array(["2014-03-01"] * 4, dtype="string")
    parquet = tmp_path / "teams.parquet"
    source.to_parquet(parquet)
    excel = tmp_path / "teams.xlsx"
    frame = source.astype(object)
    frame["randomised_on"] = pd.to_datetime(frame["randomised_on"])  # an Excel date cell
    frame.to_excel(excel, index=False)
    for path in (parquet, excel):
        read = read_table(path, table="teams")
        pd.testing.assert_frame_equal(read.data, source, check_dtype=True)


def test_extra_columns_are_typed_by_their_values(tmp_path: Path) -> None:
    raw = TEAMS.replace("stratum\n", "stratum,beds,share,note\n")
    lines = raw.splitlines()
    lines[1:] = [line + f",{i},{i / 2},x{i}" for i, line in enumerate(lines[1:])]
    read = read_table(write(tmp_path, "teams.csv", "\n".join(lines) + "\n"), table="teams")
    dtypes = read.data.dtypes.astype(str).to_dict()
    assert (dtypes["beds"], dtypes["share"], dtypes["note"]) == ("Int64", "Float64", "string")


def test_convert_column_rules() -> None:
    ints = convert_column(pd.Series(["1", " 2", "3.0", "2.5", "x", "", "inf"]),
                          {"type": "integer"})
    assert ints.values.tolist()[:3] == [1, 2, 3]
    assert [None if pd.isna(p) else str(p) for p in ints.problems] == [
        None, None, None, "not_integer", "type", None, "type"]
    bools = convert_column(pd.Series([True, 1, "x"], dtype=object), {"type": "integer"})
    assert [None if pd.isna(p) else str(p) for p in bools.problems] == ["type", None, "type"]
    text = convert_column(pd.Series(["a", 7, 1.5, None], dtype=object), {"type": "string"})
    assert text.values.tolist()[:2] == ["a", "7"]
    assert [None if pd.isna(p) else str(p) for p in text.problems] == [None, None, "type", None]
    flags = convert_column(pd.Series(["true", "0", "yes"]), {"type": "boolean"})
    assert flags.values.tolist()[:2] == [True, False] and not flags.ok
    nums = convert_column(pd.Series(["1.5", "-inf"]), {"type": "number"})
    assert nums.values.tolist()[0] == 1.5 and str(nums.problems.iloc[1]) == "type"


def test_semicolon_file_is_reported_with_a_hint(tmp_path: Path) -> None:
    read = read_table(write(tmp_path, "teams.csv", TEAMS.replace(",", ";")), table="teams")
    with pytest.raises(SchemaValidationError) as err:
        crtstats.validate(read.data, table="teams")
    cases = err.value.failure_cases
    assert cases["reason_code"].tolist() == ["missing_column"] * 3
    assert "commas between fields" in cases["check"].iloc[0]


cells = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
                max_size=5)


@given(st.lists(st.tuples(cells, cells, cells), min_size=1, max_size=5),
       st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_csv_round_trip_is_exact_or_refused(rows: list[tuple[str, str, str]], newline: str,
                                            bom: bool) -> None:
    """Whatever text a CSV holds, read_table gives it back cell for cell (empty cells as
    missing) or refuses the file; it never returns a partly read table."""
    frame = pd.DataFrame(rows, columns=["team_id", "arm", "stratum"])
    # every field quoted: with minimal quoting a lone "\r" in a cell is written bare when
    # lines end in "\n", and any CSV reader then takes it for part of a line end
    text = frame.to_csv(index=False, lineterminator=newline, quoting=csv.QUOTE_ALL)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "teams.csv"
        path.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
        try:
            read = read_table(path, table="teams")
        except DataFileError:
            return
    # rows at the end with no value in any field are skipped, and counted
    blank = frame.eq("").all(axis=1).to_numpy()
    trailing = len(frame) - (int(np.flatnonzero(~blank)[-1]) + 1 if (~blank).any() else 0)
    assert read.skipped_blank == trailing
    frame = frame.iloc[: len(frame) - trailing]
    assert read.n_rows == len(frame)
    for column in frame.columns:
        want = [None if v == "" else v for v in frame[column]]
        got = [None if pd.isna(v) else v for v in read.data[column]]
        assert got == want
