"""crtstats.validate: every rule reports the violating row, column and reason code."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import crtstats
from crtstats.datasets import load_example
from crtstats.exceptions import FAILURE_COLUMNS, InvalidParameterError, ReasonCode
from crtstats.io import TABLES, load_schema
from crtstats.schema import build_schema, validate

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def example() -> dict[str, pd.DataFrame]:
    return load_example().tables()


def problems(df: pd.DataFrame, table: str) -> pd.DataFrame:
    with pytest.raises(crtstats.SchemaValidationError) as err:
        validate(df, table=table)
    cases = err.value.failure_cases
    assert list(cases.columns) == list(FAILURE_COLUMNS)
    return cases


def only(cases: pd.DataFrame, reason: str) -> list[tuple[Any, Any, Any]]:
    sub = cases[cases["reason_code"] == reason]
    return [(None if pd.isna(r) else int(r), none(c), none(v))
            for r, c, v in zip(sub["row"], sub["column"], sub["value"], strict=True)]


def none(value: Any) -> Any:
    """Missing (NaN, None, <NA>) as None, for comparing failure cases."""
    return None if not isinstance(value, tuple) and pd.isna(value) else value


@pytest.mark.parametrize("table", TABLES)
def test_example_tables_are_valid_and_returned_unchanged(
    example: dict[str, pd.DataFrame], table: str
) -> None:
    df = example[table]
    out = validate(df, table=table)
    pd.testing.assert_frame_equal(out, df)


def test_validate_returns_declared_dtypes_same_rows_order_and_index() -> None:
    df = pd.DataFrame(
        {"team_id": ["B", "A"], "period": ["pre", "pre"], "n_users": [3, 4],
         "admissions": [1.0, 0.0], "bed_days": ["7", "0"], "note": [1, 2]},
        index=[10, 5],
    )
    out = validate(df, table="service_use")
    assert list(out.index) == [10, 5] and list(out.columns) == list(df.columns)
    assert out["team_id"].tolist() == ["B", "A"]
    assert str(out["team_id"].dtype) == "string"
    assert str(out["n_users"].dtype) == str(out["admissions"].dtype) == "Int64"
    assert out["bed_days"].tolist() == [7, 0]
    assert out["note"].tolist() == [1, 2]  # a column the schema does not declare: untouched


def test_type_every_unreadable_value_reported(example: dict[str, pd.DataFrame]) -> None:
    df = example["admissions"].astype({"bed_days": object, "admitted": object})
    df.loc[3, "bed_days"] = "n/a"
    df.loc[8, "bed_days"] = "twelve"
    df.loc[5, "admitted"] = "yes"
    cases = problems(df, "admissions")
    assert only(cases, "type") == [(3, "bed_days", "n/a"), (5, "admitted", "yes"),
                                   (8, "bed_days", "twelve")]
    # an unreadable required value is reported once, as type, not also as required
    assert only(cases, "required") == []


def test_not_integer_and_infinite(example: dict[str, pd.DataFrame]) -> None:
    df = example["fidelity"].astype({"item_04": "Float64", "item_09": float})
    df.loc[2, "item_04"] = 2.5
    df.loc[6, "item_09"] = np.inf
    cases = problems(df, "fidelity")
    assert only(cases, "not_integer") == [(2, "item_04", 2.5)]
    assert only(cases, "type") == [(6, "item_09", np.inf)]


def test_required(example: dict[str, pd.DataFrame]) -> None:
    df = example["admissions"].copy()
    df.loc[4, "person_id"] = ""
    df.loc[9, "period"] = None
    cases = problems(df, "admissions")
    assert [(r, c) for r, c, _ in only(cases, "required")] == [(4, "person_id"), (9, "period")]


def test_enum_is_case_sensitive(example: dict[str, pd.DataFrame]) -> None:
    df = example["teams"].copy()
    df.loc[7, "arm"] = "Control"
    df.loc[2, "arm"] = "intervention "
    cases = problems(df, "teams")
    assert only(cases, "enum") == [(2, "arm", "intervention "), (7, "arm", "Control")]
    # the check names the allowed values and the mapping line that would recode the
    # label; nothing is recoded without it
    assert cases.loc[cases["reason_code"] == "enum", "check"].iloc[0] == (
        "one of 'intervention', 'control'; to recode it declare [teams.values.arm] "
        "\"intervention \" = \"intervention\" in the data mapping"
    )


def test_minimum_maximum(example: dict[str, pd.DataFrame]) -> None:
    fid = example["fidelity"].copy()
    fid.loc[1, "item_39"] = 6
    fid.loc[3, "item_02"] = 0
    cases = problems(fid, "fidelity")
    assert only(cases, "maximum") == [(1, "item_39", 6)]
    assert only(cases, "minimum") == [(3, "item_02", 0)]


def test_exposure_has_its_own_code(example: dict[str, pd.DataFrame]) -> None:
    su = example["service_use"].copy()
    su.loc[11, "n_users"] = 0
    su.loc[12, "bed_days"] = -1
    cases = problems(su, "service_use")
    assert only(cases, "exposure") == [(11, "n_users", 0)]
    assert only(cases, "minimum") == [(12, "bed_days", -1)]


def test_pattern_trailing_space_in_id(example: dict[str, pd.DataFrame]) -> None:
    df = example["admissions"].copy()
    df.loc[0, "team_id"] = "T01 "
    df.loc[2, "person_id"] = " T01-P0003"
    cases = problems(df, "admissions")
    assert only(cases, "pattern") == [(0, "team_id", "T01 "), (2, "person_id", " T01-P0003")]


def test_duplicate_key_reports_every_copy(example: dict[str, pd.DataFrame]) -> None:
    fid = example["fidelity"]
    df = pd.concat([fid, fid.iloc[[4]]], ignore_index=True)
    cases = problems(df, "fidelity")
    dup = only(cases, "duplicate_key")
    assert [r for r, _, _ in dup] == [4, len(fid)]
    assert dup[0][1] == "team_id, review"
    assert dup[0][2] == (fid.loc[4, "team_id"], fid.loc[4, "review"])


def test_duplicate_single_key(example: dict[str, pd.DataFrame]) -> None:
    df = example["teams"].copy()
    df.loc[3, "team_id"] = df.loc[0, "team_id"]
    assert only(problems(df, "teams"), "duplicate_key") == [(0, "team_id", "T01"),
                                                            (3, "team_id", "T01")]


def test_missing_and_duplicate_columns(example: dict[str, pd.DataFrame]) -> None:
    df = example["teams"].drop(columns=["stratum"])
    cases = problems(df, "teams")
    assert only(cases, "missing_column") == [(None, "stratum", None)]
    twice = pd.concat([example["teams"], example["teams"][["arm"]]], axis=1)
    assert only(problems(twice, "teams"), "duplicate_column")[0][:2] == (None, "arm")


def test_optional_column_may_be_absent(example: dict[str, pd.DataFrame]) -> None:
    df = example["admissions"].drop(columns=["readmitted", "age", "sex"])
    assert validate(df, table="admissions").shape == df.shape


def test_empty_table() -> None:
    df = pd.DataFrame({"team_id": [], "arm": [], "stratum": []})
    cases = problems(df, "teams")
    assert only(cases, "empty_table") == [(None, None, None)]


def test_bed_days_not_admitted(example: dict[str, pd.DataFrame]) -> None:
    df = example["admissions"].copy()
    row = int(np.flatnonzero(df["admitted"].to_numpy() == 0)[0])
    df.loc[row, "bed_days"] = 4
    cases = problems(df, "admissions")
    assert only(cases, "bed_days_not_admitted") == [(row, "bed_days", 4)]
    assert len(cases) == 1


def test_too_few_teams_per_arm(example: dict[str, pd.DataFrame]) -> None:
    df = example["teams"]
    control = df[df["arm"] == "control"].index
    small = df.drop(index=control[1:]).reset_index(drop=True)
    cases = problems(small, "teams")
    assert only(cases, "too_few_teams") == [(None, "arm", "control")]
    assert "has 1" in cases["check"].iloc[0]


def test_date_must_be_a_real_iso_date(example: dict[str, pd.DataFrame]) -> None:
    df = example["fidelity"].copy()
    df.loc[0, "reviewed_on"] = "2014-02-30"
    df.loc[1, "reviewed_on"] = "16/03/2014"
    cases = problems(df, "fidelity")
    assert only(cases, "type") == [(0, "reviewed_on", "2014-02-30"),
                                   (1, "reviewed_on", "16/03/2014")]


def test_every_problem_in_one_pass(example: dict[str, pd.DataFrame]) -> None:
    df = example["admissions"].copy()
    df.loc[0, "period"] = "post"
    df.loc[1, "bed_days"] = -3
    df.loc[2, "team_id"] = None
    df = df.drop(columns=["admitted"])
    cases = problems(df, "admissions")
    assert set(cases["reason_code"]) == {"missing_column", "enum", "minimum", "required"}
    assert str(crtstats.SchemaValidationError) and len(cases) == 4


def test_non_string_ids_are_written_as_text_whole_floats_too() -> None:
    teams = pd.DataFrame({"team_id": [1, 2, 3, 4], "arm": ["intervention", "control"] * 2,
                          "stratum": ["a", "a", "b", "b"]})
    assert validate(teams, table="teams")["team_id"].tolist() == ["1", "2", "3", "4"]
    # whole-number floats (as a spreadsheet gives 3 as 3.0) read as Excel cells do: "3"
    checked = validate(teams.astype({"team_id": float}), table="teams")
    assert checked["team_id"].tolist() == ["1", "2", "3", "4"]
    cases = problems(teams.astype({"team_id": float}).assign(team_id=[1.5, 2, 3, 4]), "teams")
    assert only(cases, "type")[0] == (0, "team_id", 1.5)


def test_bad_arguments() -> None:
    with pytest.raises(InvalidParameterError, match="table must be one of"):
        validate(pd.DataFrame(), table="patients")
    with pytest.raises(InvalidParameterError, match="must be a pandas DataFrame"):
        validate([1, 2], table="teams")  # type: ignore[arg-type]


def test_reason_codes_are_all_documented() -> None:
    page = (ROOT / "docs" / "validation.md").read_text(encoding="utf-8")
    for code in ReasonCode:
        assert f"`{code.value}`" in page, code


def test_schema_is_built_from_the_json_files() -> None:
    for table in TABLES:
        spec = json.loads((ROOT / "data_schema" / f"{table}.schema.json").read_text())
        built = build_schema(table)
        assert list(built.schema.columns) == [f["name"] for f in spec["fields"]]
        assert built.key == tuple(spec["primaryKey"])
        for field in spec["fields"]:
            column = built.schema.columns[field["name"]]
            constraints = field.get("constraints", {})
            assert column.nullable is not bool(constraints.get("required"))
            assert column.required is not bool(field.get("x-crtstats-optional"))
            kinds = {"enum", "minimum", "maximum", "pattern"} & set(constraints)
            assert len(column.checks) == len(kinds)
    assert load_schema("teams")["fields"][0]["name"] == "team_id"


def test_missing_column_names_a_near_miss(example: dict[str, pd.DataFrame]) -> None:
    df = example["teams"].rename(columns={"arm": "Arm "})
    cases = problems(df, "teams")
    assert only(cases, "missing_column") == [(None, "arm", None)]
    assert "found 'Arm '" in cases["check"].iloc[0]


def test_unknown_column_where_the_schema_allows_no_others(
    example: dict[str, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    from crtstats.schema import _validate

    strict = dataclasses.replace(build_schema("teams"), extra_columns=False)
    monkeypatch.setattr(_validate, "build_schema", lambda table: strict)
    df = example["teams"].assign(beds=12)
    assert only(problems(df, "teams"), "unknown_column") == [(None, "beds", None)]


def test_a_constraint_crtstats_does_not_implement_is_refused(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    from crtstats.schema import _build

    spec = load_schema("teams")
    spec["fields"][2]["constraints"]["maxLength"] = 20
    monkeypatch.setattr(_build, "load_schema", lambda table: spec)
    with pytest.raises(ValueError, match="maxLength"):
        _build.build_schema.__wrapped__("teams")


SCHEMA_KEYS = {"name", "title", "description", "fields", "primaryKey", "foreignKeys",
               "missingValues", "x-crtstats-extra-columns", "x-crtstats-row-rules",
               "x-crtstats-table-rules", "x-crtstats-long-format", "x-crtstats-derived-from",
               "x-crtstats-item-columns"}
FIELD_KEYS = {"name", "type", "description", "constraints", "x-crtstats-optional",
              "x-crtstats-reason-codes", "x-crtstats-pattern-description"}


def _hook() -> Any:
    spec = importlib.util.spec_from_file_location(
        "schema_tables", ROOT / "docs" / "hooks" / "schema_tables.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("table", TABLES)
def test_schema_files_use_only_known_properties_and_all_are_rendered(table: str) -> None:
    spec = load_schema(table)
    assert set(spec) <= SCHEMA_KEYS
    for field in spec["fields"]:
        assert set(field) <= FIELD_KEYS, field["name"]
        for code in field.get("x-crtstats-reason-codes", {}).values():
            ReasonCode(code)  # every override is a stable code
    page = _hook().on_page_markdown(f"# t\n\n<!-- schema: {table} -->\n")
    assert "<!-- schema" not in page
    for field in spec["fields"]:
        assert f"| `{field['name']}` | {field['type']} |" in page
        if "pattern" in field.get("constraints", {}):
            assert field["constraints"]["pattern"] in page
    for rule in spec.get("x-crtstats-row-rules", []) + spec.get("x-crtstats-table-rules", []):
        assert f"`{rule['name']}`" in page and rule["description"] in page
    if "x-crtstats-long-format" in spec:
        assert "Long layout accepted" in page
    if "x-crtstats-derived-from" in spec:
        assert "Derived from `admissions`" in page
