"""Formulas as R users write them: column names, powers, lme4 terms, binary responses,
ordered factors. R reference: tests/reference/formulas.R -> formulas.json."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import REFERENCE
from formulaic import Formula
from hypothesis import given, settings
from hypothesis import strategies as st

import crtstats
from crtstats.exceptions import MissingColumnError, ModelSpecificationError
from crtstats.models._design import build_design, new_model_matrix
from crtstats.models._formula_text import clean_message, scan_formula

REF = json.loads((REFERENCE / "formulas.json").read_text())
TRANSFORM_NAMES = ("center", "scale", "log", "exp", "C", "I", "Q", "poly", "bs", "lag")
# Least squares on the same 60 rows: only rounding differs from R's QR solution.
EXACT = 1e-9


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "data" / "formulas.csv")


def _fitters() -> dict[str, Callable[[str, pd.DataFrame], Any]]:
    return {
        "lmm": lambda f, d: crtstats.lmm(f, d, cluster="team"),
        "ols": lambda f, d: crtstats.ols(f, d, cluster="team"),
        "glmm": lambda f, d: crtstats.glmm(f, d, cluster="team", family="binomial"),
        "gee": lambda f, d: crtstats.gee(f, d, cluster="team", family="binomial"),
    }


# --- 1. a column may have any name -------------------------------------------------


@pytest.mark.parametrize("fitter", ["lmm", "ols", "glmm", "gee"])
@pytest.mark.parametrize("name", TRANSFORM_NAMES)
def test_column_named_like_a_transform_is_a_plain_variable(
    data: pd.DataFrame, fitter: str, name: str
) -> None:
    fit = _fitters()[fitter]
    d = data.assign(admitted=(data["admitted"] == "yes").astype(int))
    response = "y" if fitter in ("lmm", "ols") else "admitted"
    renamed = d.rename(columns={"center": name})
    got = fit(f"{response} ~ {name} + arm", renamed)
    want = fit(f"{response} ~ center + arm", d)
    assert got.param_names[1] == name
    # Same data, same fit: identical apart from the column's name.
    np.testing.assert_allclose(np.asarray(got.params), np.asarray(want.params), rtol=0,
                               atol=0)


def test_bare_name_is_the_column_and_a_call_is_the_transform(data: pd.DataFrame) -> None:
    d = data.assign(log=data["center"])  # a column called `log` beside log10(age)
    design = build_design("y ~ log + log10(age) + center(age) + scale(age)", d,
                          cluster="team")
    assert design.names == ("Intercept", "log", "log10(age)", "center(age)", "scale(age)")
    age = d["age"].to_numpy()
    np.testing.assert_array_equal(design.X[:, 1], d["center"].to_numpy())
    np.testing.assert_allclose(design.X[:, 2], np.log10(age), rtol=1e-15)
    np.testing.assert_allclose(design.X[:, 3], age - age.mean(), rtol=1e-12)
    # formulaic's scale() divides by the SD with ddof=1, as R's scale() does.
    np.testing.assert_allclose(design.X[:, 4], (age - age.mean()) / age.std(ddof=1),
                               rtol=1e-12)


def test_a_transform_named_column_used_only_in_a_call_does_not_shadow(
    data: pd.DataFrame,
) -> None:
    d = data.assign(log=np.nan)  # not used bare: neither hides log() nor drops rows
    design = build_design("y ~ log(age)", d, cluster="team")
    assert design.n_excluded == 0
    np.testing.assert_allclose(design.X[:, 1], np.log(d["age"]), rtol=1e-15)


def test_a_column_used_bare_and_called_is_refused(data: pd.DataFrame) -> None:
    with pytest.raises(ModelSpecificationError, match=r"calls center\(\.\.\.\) and also "
                       r"uses the column 'center'.*Rename the column"):
        build_design("y ~ center + center(age)", data, cluster="team")


def test_a_bare_transform_name_without_such_a_column_is_a_missing_column(
    data: pd.DataFrame,
) -> None:
    with pytest.raises(MissingColumnError, match=r"\['scale'\]"):
        build_design("y ~ scale + arm", data, cluster="team")


def test_missing_values_in_a_transform_named_column_exclude_rows(data: pd.DataFrame
                                                                  ) -> None:
    d = data.rename(columns={"center": "C"})
    d.loc[[0, 7], "C"] = np.nan
    design = build_design("y ~ C + arm", d, cluster="team")
    assert design.n_excluded == 2
    assert not design.used[0] and not design.used[7]


# --- 2. powers and crossing ---------------------------------------------------------


def test_r_power_inside_i_matches_r(data: pd.DataFrame) -> None:
    res = crtstats.ols("y ~ center + arm + I(age^2)", data, cluster="team")
    ref = REF["power"]["coef"]
    assert res.param_names == ("Intercept", "center", "arm[T.intervention]",
                               "I(age ** 2)")
    np.testing.assert_allclose(np.asarray(res.params), list(ref.values()), rtol=EXACT)


def test_power_written_either_way_is_the_same(data: pd.DataFrame) -> None:
    a = build_design("y ~ I(age^2) + log(age^2)", data, cluster="team")
    b = build_design("y ~ I(age**2) + log(age**2)", data, cluster="team")
    assert a.names == b.names
    np.testing.assert_array_equal(a.X, b.X)


def test_caret_outside_calls_is_r_crossing(data: pd.DataFrame) -> None:
    res = crtstats.ols("y ~ (a + b + c)^2", data, cluster="team")
    ref = REF["crossing"]
    assert res.param_names == ("Intercept", *ref["names"][1:])
    np.testing.assert_allclose(np.asarray(res.params), ref["coef"], rtol=EXACT)
    same = build_design("y ~ (a + b + c)**2", data, cluster="team")
    assert same.names == res.param_names


@pytest.mark.parametrize(("formula", "python"), [
    ("y ~ I(age^2)", "y ~ I(age**2)"),
    ("y ~ (a + b)^2 + I((a + b)^3)", "y ~ (a + b)^2 + I((a + b)**3)"),
    ("y ~ Q('a^b') + I(x ^ 2)", "y ~ Q('a^b') + I(x ** 2)"),
    ("y ~ `odd^name` + log(x^2)", "y ~ `odd^name` + log(x**2)"),
])
def test_caret_rewrite_only_inside_calls_and_never_in_quotes(formula: str, python: str
                                                             ) -> None:
    assert scan_formula(formula).python == python


# --- 3. lme4 random-effect terms and clean messages --------------------------------


@pytest.mark.parametrize("term", ["(1 | team)", "(1|team)", "(center | team)",
                                  "(1 || team)"])
def test_random_effect_term_is_refused_in_one_line(data: pd.DataFrame, term: str) -> None:
    with pytest.raises(ModelSpecificationError) as info:
        build_design(f"y ~ arm + {term}", data, cluster="team")
    message = str(info.value)
    assert "\n" not in message
    assert "random intercept per cluster, given by cluster=" in message
    assert "cluster='team'" in message


def test_bar_outside_parentheses_is_refused(data: pd.DataFrame) -> None:
    with pytest.raises(ModelSpecificationError, match=r"uses '\|'.*cluster="):
        build_design("y ~ arm | team", data, cluster="team")


@pytest.mark.parametrize("formula", ["y ~ arm +", "y ~ arm + (center", "y ~ nope(arm)",
                                     "y ~ arm * * center", "~ arm"])
def test_messages_have_no_terminal_codes_and_one_line(data: pd.DataFrame, formula: str
                                                      ) -> None:
    with pytest.raises(ModelSpecificationError) as info:
        build_design(formula, data, cluster="team")
    message = str(info.value)
    assert "\x1b" not in message
    assert "\n" not in message
    assert not re.search("[\u29da\u29db]", message)


def test_clean_message_strips_colour_codes() -> None:
    raw = "Operator `|` is incorrectly used.\n\ny~(1\u29db\x1b[1;31m|\x1b[0m\u29datm)"
    assert clean_message(raw) == "Operator `|` is incorrectly used. y~(1|tm)"


# --- 4. a two-level text or categorical response in binomial fitters ----------------


@pytest.mark.parametrize("fitter", ["glmm", "gee"])
@pytest.mark.parametrize("kind", ["text", "categorical"])
def test_two_level_response_is_coded_as_glmer_does(data: pd.DataFrame, fitter: str,
                                                   kind: str) -> None:
    fit = _fitters()[fitter]
    ones = data.assign(admitted=(data["admitted"] == "yes").astype(int))
    if kind == "text":
        text, levels = data, ("no", "yes")  # sorted: 'yes' is the second
    else:  # category order, not sorted order, decides: 'yes' first, so 'no' is 1
        text = data.assign(admitted=pd.Categorical(data["admitted"], ["yes", "no"]))
        ones = data.assign(admitted=(data["admitted"] == "no").astype(int))
        levels = ("yes", "no")
    got = fit("admitted ~ arm + center", text)
    want = fit("admitted ~ arm + center", ones)
    # The same 0/1 response reaches the same fitter: identical estimates.
    np.testing.assert_array_equal(np.asarray(got.params), np.asarray(want.params))
    np.testing.assert_array_equal(np.asarray(got.std_errors), np.asarray(want.std_errors))
    note = got.info["response_coding"]
    assert f"{levels[1]!r} is coded 1" in note
    assert want.info["response_coding"] is None


def test_binary_response_levels_on_the_design(data: pd.DataFrame) -> None:
    design = build_design("admitted ~ arm", data, cluster="team", binary_response=True)
    assert design.response == "admitted"
    assert design.response_levels == ("no", "yes")
    np.testing.assert_array_equal(design.y, (data["admitted"] == "yes").to_numpy(float))
    plain = build_design("y ~ arm", data, cluster="team", binary_response=True)
    assert plain.response_levels is None and plain.response_note is None


@pytest.mark.parametrize("fitter", ["glmm", "gee"])
def test_more_than_two_levels_is_refused_naming_them(data: pd.DataFrame, fitter: str
                                                     ) -> None:
    with pytest.raises(ModelSpecificationError,
                       match=r"'grade' .* 4 level\(s\) \('high', 'low', 'mid', 'top'\)"):
        _fitters()[fitter]("grade ~ arm", data)


def test_one_level_is_refused(data: pd.DataFrame) -> None:
    d = data.assign(admitted="yes")
    with pytest.raises(ModelSpecificationError, match=r"1 level\(s\) \('yes'\)"):
        build_design("admitted ~ arm", d, cluster="team", binary_response=True)


def test_declared_categories_count_not_observed_values(data: pd.DataFrame) -> None:
    d = data.assign(admitted=pd.Categorical(data["admitted"], ["no", "yes", "maybe"]))
    with pytest.raises(ModelSpecificationError, match=r"categorical .* 3 level"):
        build_design("admitted ~ arm", d, cluster="team", binary_response=True)


def test_text_response_without_binary_coding_is_refused(data: pd.DataFrame) -> None:
    with pytest.raises(ModelSpecificationError, match="must be one numeric column"):
        crtstats.ols("admitted ~ arm", data, cluster="team")


# --- 5. ordered categoricals ---------------------------------------------------------


def _ordered(data: pd.DataFrame) -> pd.DataFrame:
    levels = ["low", "mid", "high", "top"]
    return data.assign(grade=pd.Categorical(data["grade"], levels, ordered=True))


def test_ordered_categorical_gets_treatment_contrasts(data: pd.DataFrame) -> None:
    res = crtstats.ols("y ~ grade", _ordered(data), cluster="team")
    assert res.param_names == ("Intercept", "grade[T.mid]", "grade[T.high]",
                               "grade[T.top]")
    np.testing.assert_allclose(np.asarray(res.params), REF["treatment"]["coef"],
                               rtol=EXACT)


def test_poly_gives_r_default_for_ordered_factors(data: pd.DataFrame) -> None:
    res = crtstats.ols("y ~ C(grade, Poly)", _ordered(data), cluster="team")
    assert res.param_names[1:] == ("C(grade, Poly)[.L]", "C(grade, Poly)[.Q]",
                                   "C(grade, Poly)[.C]")
    np.testing.assert_allclose(np.asarray(res.params), REF["ordered"]["coef"],
                               rtol=EXACT)
    design = build_design("y ~ C(grade, Poly)", _ordered(data), cluster="team")
    codes = _ordered(data)["grade"].cat.codes.to_numpy()
    contr = np.array(REF["ordered"]["contr_poly_4"]).T  # levels x contrasts
    # contr.poly is a closed form; both sides are rounded values of it.
    np.testing.assert_allclose(design.X[:, 1:], contr[codes], rtol=1e-13, atol=1e-15)


# --- 6. the ModelSpec is kept -------------------------------------------------------


def test_model_spec_rebuilds_the_columns(data: pd.DataFrame) -> None:
    design = build_design("y ~ arm + center(age) + grade", data, cluster="team")
    assert design.model_spec is not None
    assert design.columns == ("age", "arm", "grade")
    again = design.model_spec.get_model_matrix(data.iloc[:7][list(design.columns)])
    assert tuple(again.columns) == design.names
    # The transform state (the mean of age) is the fitted data's, not the new rows'.
    np.testing.assert_array_equal(np.asarray(again, dtype=float), design.X[:7])
    # The full frame holds a column `center`, which would hide center(): only the
    # model's columns are passed on.
    np.testing.assert_array_equal(new_model_matrix(design, data.iloc[:7]), design.X[:7])


def test_new_model_matrix_refuses_unknown_levels_and_missing_columns(data: pd.DataFrame
                                                                     ) -> None:
    design = build_design("y ~ arm + grade", data, cluster="team")
    with pytest.raises(ModelSpecificationError,
                       match=r"level\(s\) the fitted data did not have: \{'zzz'\}"):
        new_model_matrix(design, data.assign(grade="zzz"))
    with pytest.raises(MissingColumnError, match="grade"):
        new_model_matrix(design, data.drop(columns="grade"))
    with pytest.raises(ModelSpecificationError, match="missing values"):
        new_model_matrix(design, data.assign(arm=None))


# --- 6b. the fast path equals formulaic ----------------------------------------------


FAST_FORMULAS = [
    "y ~ arm",
    "y ~ arm * grade",
    "y ~ arm + center + age",
    "y ~ center * arm + grade:age",
    "y ~ 0 + grade + arm",
    "y ~ grade:arm - 1",
    "y ~ flag + arm:flag",
    "y ~ (a + b + c)^2 + grade",
    "y ~ center(age) + arm",  # transform state: never on the fast path
    "y ~ C(grade, Poly) + arm",  # not treatment contrasts: never on the fast path
    "y ~ log(age) + I(age^2)",
]


@pytest.mark.parametrize("formula", FAST_FORMULAS)
def test_fast_path_equals_formulaic(data: pd.DataFrame, formula: str) -> None:
    d = data.assign(flag=data["center"] > 0,
                    grade=pd.Categorical(data["grade"], ["low", "mid", "high", "top"]))
    first = build_design(formula, d, cluster="team")  # formulaic (or a cached plan)
    again = build_design(formula, d.iloc[::-1].iloc[::-1].copy(), cluster="team")
    plain = d.assign(arm=pd.Categorical(d["arm"]))
    if "center(" in formula:  # the column `center` would hide formulaic's center()
        plain = plain.drop(columns="center")
    lhs, rhs = Formula(scan_formula(formula).python).get_model_matrix(plain, output="pandas")
    for design in (first, again):
        assert design.names == tuple(rhs.columns)
        np.testing.assert_array_equal(design.X, np.asarray(rhs, dtype=float))
        np.testing.assert_array_equal(design.y, np.asarray(lhs, dtype=float)[:, 0])
        assert design.X.flags["F_CONTIGUOUS"]  # same memory layout either way


def test_fast_path_keeps_no_stale_state(data: pd.DataFrame) -> None:
    a = build_design("y ~ center(age)", data, cluster="team")
    shifted = data.assign(age=data["age"] + 100.0)
    b = build_design("y ~ center(age)", shifted, cluster="team")
    np.testing.assert_allclose(b.X[:, 1], a.X[:, 1], atol=1e-10)  # centred on its own mean


def test_fast_path_levels_are_part_of_the_key(data: pd.DataFrame) -> None:
    two = data[data["grade"].isin(["low", "mid"])]
    small = build_design("y ~ grade", two, cluster="team")
    full = build_design("y ~ grade", data, cluster="team")
    assert small.names == ("Intercept", "grade[T.mid]")
    assert full.names == ("Intercept", "grade[T.low]", "grade[T.mid]", "grade[T.top]")
    again = build_design("y ~ grade", two, cluster="team")
    assert again.names == small.names
    np.testing.assert_array_equal(again.X, small.X)


def test_backticks_name_a_column_with_a_space(data: pd.DataFrame) -> None:
    d = data.rename(columns={"center": "baseline score"})
    design = build_design("y ~ `baseline score` + arm", d, cluster="team")
    assert design.names[1] == "baseline score"
    np.testing.assert_array_equal(design.X[:, 1], d["baseline score"].to_numpy())


TERMS = ["arm", "grade", "center", "age", "flag", "arm:grade", "center:grade", "age:flag",
         "arm*center", "grade*flag", "0", "-1"]


@settings(max_examples=30)  # each example runs formulaic three times
@given(st.lists(st.sampled_from(TERMS), min_size=1, max_size=4, unique=True))
def test_fast_path_equals_formulaic_for_any_plain_formula(terms: list[str]) -> None:
    data = pd.read_csv(REFERENCE / "data" / "formulas.csv")
    d = data.assign(flag=data["center"] > 0, arm=pd.Categorical(data["arm"]),
                    grade=pd.Categorical(data["grade"], ["low", "mid", "high", "top"]))
    formula = "y ~ " + " + ".join(terms)
    try:
        lhs, rhs = Formula(formula).get_model_matrix(d, output="pandas")
    except Exception:  # e.g. nothing left after '- 1': the design builder refuses too
        with pytest.raises(ModelSpecificationError):
            build_design(formula, d, cluster="team")
        return
    for _ in range(2):  # the first build may make the plan, the second uses it
        design = build_design(formula, d, cluster="team")
        assert design.names == tuple(rhs.columns)
        np.testing.assert_array_equal(design.X, np.asarray(rhs, dtype=float))
