"""Property tests: validate on arbitrary frames returns the frame or raises
SchemaValidationError, never anything else, and never changes what it returns."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import given, note, settings
from hypothesis import strategies as st

from crtstats.datasets import load_example
from crtstats.exceptions import FAILURE_COLUMNS, ReasonCode, SchemaValidationError
from crtstats.io import TABLES, load_schema
from crtstats.schema import validate
from crtstats.schema._build import _full_match
from crtstats.trial import load_trial

CODES = {code.value for code in ReasonCode}

# values of every kind a messy spreadsheet or a careless script can produce
scalars = st.one_of(
    st.none(),
    st.just(np.nan),
    st.just(pd.NA),
    st.sampled_from([np.inf, -np.inf, 0.5, -1.0, 1e300]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=6),
    st.sampled_from(["", " ", "T01", "T01 ", "007", "pre", "follow_up", "intervention",
                     "Control", "baseline", "6m", "1", "5", "3.0", "2.5", "n/a",
                     "2014-03-01", "2014-02-30", "\ufeffT1", "é", "\u00a0"]),
)


@st.composite
def columns(draw: st.DrawFn, table: str) -> list[Any]:
    names = [f["name"] for f in load_schema(table)["fields"]]
    chosen = draw(st.lists(st.sampled_from(names), max_size=len(names)))  # may repeat
    extra = draw(st.lists(st.one_of(st.text(max_size=4), st.integers(0, 3)), max_size=2))
    return chosen + extra


@st.composite
def arbitrary_frames(draw: st.DrawFn) -> tuple[str, pd.DataFrame]:
    table = draw(st.sampled_from(TABLES))
    names = draw(columns(table))
    n = draw(st.integers(min_value=0, max_value=6))
    data = {}
    for i, _ in enumerate(names):
        values = draw(st.lists(scalars, min_size=n, max_size=n))
        dtype = draw(st.sampled_from([object, None, "string", "Int64", "Float64", float]))
        try:
            data[i] = pd.Series(values, dtype=dtype)
        except (TypeError, ValueError, OverflowError, RuntimeWarning):
            data[i] = pd.Series(values, dtype=object)
    frame = pd.DataFrame(data, index=pd.RangeIndex(n))
    frame.columns = pd.Index(names, dtype=object)
    return table, frame


@st.composite
def plausible_service_use(draw: st.DrawFn) -> pd.DataFrame:
    """Frames that are often valid, so the success branch is exercised too."""
    n = draw(st.integers(min_value=1, max_value=5))
    teams = draw(st.lists(st.sampled_from(["A", "B", "007", "Ω"]), min_size=n, max_size=n))
    periods = draw(st.lists(st.sampled_from(["pre", "follow_up"]), min_size=n, max_size=n))
    counts = st.lists(st.one_of(st.integers(0, 50), st.sampled_from(["3", 4.0, -1])),
                      min_size=n, max_size=n)
    return pd.DataFrame({"team_id": teams, "period": periods, "n_users": draw(counts),
                         "admissions": draw(counts), "bed_days": draw(counts)})


def same_value(before: Any, after: Any, kind: str) -> bool:
    """The value returned is the value given, read as the declared type."""
    if pd.isna(after):
        return bool(pd.isna(before)) or before == ""
    if kind == "string" or kind == "date":
        return str(before) == str(after) or (
            hasattr(before, "date") and str(before.date()) == str(after))
    return math.isclose(float(before), float(after))


def check_returned(df: pd.DataFrame, out: pd.DataFrame, table: str) -> None:
    assert out.index.equals(df.index)
    assert list(out.columns) == list(df.columns)
    types = {f["name"]: f["type"] for f in load_schema(table)["fields"]}
    for name in df.columns:
        if name not in types:
            pd.testing.assert_series_equal(out[name], df[name])
            continue
        for before, after in zip(df[name], out[name], strict=True):
            assert same_value(before, after, types[name]), (name, before, after)


def check_error(err: SchemaValidationError, df: pd.DataFrame) -> None:
    cases = err.failure_cases
    # load_trial adds the file and its line to validate's columns
    assert list(cases.columns)[:len(FAILURE_COLUMNS)] == list(FAILURE_COLUMNS)
    assert list(cases.columns)[len(FAILURE_COLUMNS):] in ([], ["file", "line"])
    assert len(cases) > 0
    assert set(cases["reason_code"]) <= CODES
    rows = cases["row"].dropna()
    assert ((rows >= 0) & (rows < len(df))).all()


@given(arbitrary_frames())
def test_validate_returns_or_raises_schema_error(case: tuple[str, pd.DataFrame]) -> None:
    table, df = case
    note(repr(df))
    before = df.copy()
    try:
        out = validate(df, table=table)
    except SchemaValidationError as err:
        check_error(err, df)
    else:
        check_returned(df, out, table)
    pd.testing.assert_frame_equal(df, before)  # the input is never modified


@given(plausible_service_use())
def test_plausible_frames_round_trip(df: pd.DataFrame) -> None:
    try:
        out = validate(df, table="service_use")
    except SchemaValidationError as err:
        check_error(err, df)
        return
    check_returned(df, out, "service_use")
    assert str(out["n_users"].dtype) == "Int64"


@given(st.lists(st.one_of(st.text(max_size=8), st.text(alphabet=" \t\u00a0\u3000x\x0bé",
                                                        max_size=4)), min_size=1))
def test_pattern_check_agrees_with_python_re(values: list[str]) -> None:
    """The fast pattern check (Arrow's RE2 for plain ASCII) means what ``re`` means."""
    pattern = load_schema("teams")["fields"][0]["constraints"]["pattern"]
    got = _full_match(pattern)(pd.Series(values, dtype=object)).tolist()
    assert got == [re.fullmatch(pattern, v) is not None for v in values]


EXAMPLE_ADMISSIONS = load_example().admissions

# (column, bad value, reason code it must be reported with)
BREAKS = [
    ("period", "Pre", "enum"),
    ("admitted", 2, "enum"),
    ("person_id", "", "required"),
    ("team_id", "T01 ", "pattern"),
    ("bed_days", -5, "minimum"),
    ("age", 121, "maximum"),
    ("readmitted", "yes", "type"),
    ("age", 40.5, "not_integer"),
]


@given(st.lists(st.tuples(st.integers(0, len(EXAMPLE_ADMISSIONS) - 1),
                          st.sampled_from(BREAKS)), min_size=1, max_size=6,
                unique_by=lambda t: t[0]))
def test_each_break_is_reported_at_its_row_and_nowhere_else(
    breaks: list[tuple[int, tuple[str, Any, str]]]
) -> None:
    df = EXAMPLE_ADMISSIONS.astype(object)
    for row, (column, value, _) in breaks:
        df.loc[row, column] = value
    try:
        validate(df, table="admissions")
    except SchemaValidationError as err:
        cases = err.failure_cases
    else:
        raise AssertionError("a broken table passed validation")
    found = set(zip(cases["row"], cases["column"], cases["reason_code"], strict=True))
    for row, (column, _, reason) in breaks:
        assert (row, column, reason) in found
    assert set(cases["row"]) <= {row for row, _ in breaks}


TEAMS = load_example().teams


@st.composite
def long_fidelity_frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(min_value=0, max_value=12))
    pick = st.lists(st.one_of(st.sampled_from(["T01", "T02", "T99", None, ""]), scalars),
                    min_size=n, max_size=n)
    frame = pd.DataFrame({
        "team_id": draw(pick),
        "review": draw(st.lists(st.sampled_from(["baseline", "6m", "12m", "x", None]),
                                min_size=n, max_size=n)),
        "item": draw(st.lists(st.one_of(st.integers(-1, 41), scalars), min_size=n, max_size=n)),
        "score": draw(st.lists(st.one_of(st.integers(0, 6), scalars), min_size=n, max_size=n)),
    }, dtype=object)
    drop = draw(st.lists(st.sampled_from(["team_id", "review"]), max_size=1))
    return frame.drop(columns=drop)


# each example validates a 43-column table (~0.3 s): 25 examples keep the file's share of
# the suite small; the same property ran clean on 300 examples when written
@settings(max_examples=25)
@given(long_fidelity_frames())
def test_load_trial_on_arbitrary_long_fidelity(long: pd.DataFrame) -> None:
    note(repr(long))
    try:
        trial = load_trial(teams=TEAMS, fidelity=long)
    except SchemaValidationError as err:
        check_error(err, long)
    else:
        assert trial.fidelity is not None
        assert len(trial.fidelity) <= len(long)


@st.composite
def messy_tables(draw: st.DrawFn, table: str) -> pd.DataFrame:
    """Frames with the table's columns (some repeated or missing), sometimes also the
    team attributes, and values that are often plausible."""
    names = draw(columns(table)) + draw(st.sampled_from([[], ["arm", "stratum"]]))
    n = draw(st.integers(min_value=0, max_value=5))
    plausible = st.sampled_from(["T01", "T02", "intervention", "control", "pre", "A", "0"])
    data = {i: pd.Series(draw(st.lists(st.one_of(plausible, scalars), min_size=n,
                                       max_size=n)), dtype=object)
            for i, _ in enumerate(names)}
    frame = pd.DataFrame(data, index=pd.RangeIndex(n))
    frame.columns = pd.Index(names, dtype=object)
    return frame


@given(messy_tables("teams"), messy_tables("admissions"), st.booleans())
def test_load_trial_on_arbitrary_tables(teams: pd.DataFrame, admissions: pd.DataFrame,
                                        shipped_teams: bool) -> None:
    if shipped_teams:
        teams = TEAMS
    try:
        load_trial(teams=teams, admissions=admissions)
    except SchemaValidationError as err:
        cases = err.failure_cases
        # load_trial adds the file and its line (missing for tables given as frames)
        assert list(cases.columns) == [*FAILURE_COLUMNS, "file", "line"]
        assert cases["line"].isna().all()
        assert set(cases["reason_code"]) <= CODES
        sizes = {"teams": len(teams), "admissions": len(admissions),
                 "service_use": len(admissions)}
        for table, row in zip(cases["table"], cases["row"], strict=True):
            assert pd.isna(row) or 0 <= row < sizes[table]
