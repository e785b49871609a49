"""Analysis plans: the TOML schema, the loader's errors and the formula grammar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crtstats.exceptions import DataFileError, PlanError
from crtstats.runner import Plan, check_formula, load_plan, parse_plan
from crtstats.runner._formula import formula_columns

ROOT = Path(__file__).resolve().parents[1]


def _plan(**extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"seed": 1, "data": {"example": True}}
    spec.update(extra)
    return spec


def _gee(**extra: Any) -> dict[str, Any]:
    entry = {"name": "gee", "role": "sensitivity", "fitter": "gee", "data": "admissions",
             "formula": "admitted ~ arm + stratum", "where": {"period": "follow_up"}}
    entry.update(extra)
    return entry


def test_shipped_plan_loads() -> None:
    plan = load_plan(ROOT / "analyses" / "core_trial.toml")
    assert plan.data.example and plan.seed == 20140301
    assert plan.name == "core_trial.toml" and len(plan.sha256) == 64
    assert len({a.name for a in plan.analyses}) == len(plan.analyses)


def test_defaults() -> None:
    plan = parse_plan(_plan())
    assert plan.scale == "core_crt_v2" and plan.max_missing == 0
    # without analyses there are no effects to show
    assert plan.output.tables == ("data_summary", "consort_flow", "baseline",
                                  "fidelity_by_arm", "item_change")
    assert plan.output.figures == ("trajectories", "domain_profile", "questionnaire_means")
    with_analysis = parse_plan(_plan(analysis=[_gee()]))
    assert "effects" in with_analysis.output.tables
    assert "forest" in with_analysis.output.figures
    assert plan.output.table_formats == ("md", "html", "tex", "csv", "docx")
    assert plan.output.figure_formats == ("png", "svg")
    assert plan.output.suppress_below == 0 and plan.analyses == ()


def test_model_entry_is_parsed() -> None:
    entry = _gee(options={"cov_type": "mancl-derouen"}, estimand="arm, follow-up",
                 contrast={"arm[T.intervention]": 1})
    plan = parse_plan(_plan(analysis=[entry]))
    (spec,) = plan.analyses
    assert (spec.fitter, spec.source, spec.cluster) == ("gee", "admissions", "team_id")
    assert spec.where == {"period": "follow_up"}
    assert spec.contrast == {"arm[T.intervention]": 1.0}
    assert spec.options == {"cov_type": "mancl-derouen"} and spec.label == "gee"


def test_files_resolve_against_plan_folder(tmp_path: Path) -> None:
    (tmp_path / "plan.toml").write_text(
        'seed = 3\n[data]\nteams = "data/teams.csv"\nadmissions = "data/adm.csv"\n'
        '[data.columns.teams]\nallocation = "arm"\n'
    )
    plan = load_plan(tmp_path / "plan.toml")
    assert plan.data.files["teams"] == tmp_path / "data" / "teams.csv"
    assert plan.data.columns == {"teams": {"allocation": "arm"}}


def test_plan_with_byte_order_mark(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_bytes("\ufeffseed = 3\n[data]\nexample = true\n".encode())
    assert load_plan(tmp_path / "p.toml").seed == 3


def test_plan_hash_is_of_the_file_bytes(tmp_path: Path) -> None:
    import hashlib

    text = "seed = 3\n[data]\nexample = true\n"
    (tmp_path / "p.toml").write_text(text)
    assert load_plan(tmp_path / "p.toml").sha256 == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"data": {"example": True}}, "needs the key 'seed'"),
        (_plan(seed=True), "seed must be a int; got True"),
        (_plan(seed=-1), "seed must be a whole number"),
        (_plan(sede=1), "Did you mean 'seed'"),
        ({"seed": 1}, "no [data] table"),
        ({"seed": 1, "data": {"example": True, "teams": "t.csv"}}, "use one or the other"),
        ({"seed": 1, "data": {"fidelity": "f.csv"}}, "must name a teams file"),
        ({"seed": 1, "data": {"teams": "t.csv"}}, "at least one of"),
        ({"seed": 1, "data": {"teams": 3, "fidelity": "f.csv"}}, "teams must be a str"),
        ({"seed": 1, "data": {"teams": "t", "fidelity": "f", "columns": {"team": {}}}},
         "'team'"),
        ({"seed": 1, "data": {"example": True, "columns": {"teams": {"a": "arm"}}}},
         "names files or columns (columns)"),
        (_plan(analysis=[{"name": "x", "role": "primary"}]), "exactly one of outcome"),
        (_plan(analysis=[{"name": "x", "outcome": "fidelity", "fitter": "lmm"}]),
         "exactly one of outcome"),
        (_plan(analysis=[{"name": "X y", "outcome": "fidelity"}]), "lower-case"),
        (_plan(analysis=[_gee(role="main")]),
         "role must be one of 'primary', 'sensitivity'; got 'main'"),
        (_plan(analysis=[_gee(role=None) | {"role": "primary"}, _gee(name="g2") | {
            "role": "x"}]), "got 'x'"),
        (_plan(analysis=[{"name": "x", "fitter": "gee", "data": "admissions",
                          "formula": "admitted ~ arm"}]), "needs the key 'role'"),
        (_plan(analysis=[{"name": "x", "role": "primary", "outcome": "fidelity"}]),
         "labels its own rows"),
        (_plan(analysis=[{"name": "x", "outcome": "admited"}]), "Did you mean 'admitted'"),
        (_plan(analysis=[{"name": "x", "outcome": "fidelity", "formula": "y ~ x"}]),
         "unknown key 'formula'"),
        (_plan(analysis=[_gee(fitter="lme4")]), "fitter must be one of"),
        (_plan(analysis=[_gee(data="people")]), "data must be one of"),
        (_plan(analysis=[_gee(formula="admitted ~ eval(x)")]), "not an allowed transform"),
        (_plan(analysis=[_gee(options={"formula": "y ~ 1"})]), "set by the runner"),
        (_plan(analysis=[_gee(options={"f": {"a": 1}})]), "options.f must be a string"),
        (_plan(analysis=[_gee(term="arm", contrast={"arm": 1})]), "both term and contrast"),
        (_plan(analysis=[_gee(contrast={"arm": "1"})]), "contrast.arm must be a number"),
        (_plan(analysis=[_gee(contrast={"arm": float("nan")})]), "contrast.arm must be"),
        (_plan(analysis=[_gee(options={"x": float("inf")})]), "options.x must be a finite"),
        (_plan(analysis=[_gee(where={"period": [1.0, float("nan")]})]), "must be a finite"),
        (_plan(analysis=[_gee(), _gee()]), "repeated: gee"),
        (_plan(output={"tables": ["effect"]}), "Did you mean 'effects'"),
        (_plan(output={"tables": ["effects", "effects"]}), "lists a value twice"),
        (_plan(output={"table_formats": []}), "at least one format"),
        (_plan(output={"suppress_below": -1}), "suppress_below must be 0"),
        (_plan(scoring={"max_missing": -2}), "max_missing must be 0 or more"),
        (_plan(output={"figures": ["forest"]}), "no [[analysis]] entry"),
        (_plan(scoring={"scale": 3}), "scale must be a str"),
    ],
)
def test_bad_plans_are_refused_with_a_clear_error(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(PlanError) as err:
        parse_plan(spec)
    assert message in str(err.value)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="plan file not found"):
        load_plan(tmp_path / "nope.toml")
    (tmp_path / "bad.toml").write_text("seed = \n")
    with pytest.raises(PlanError, match="bad.toml is not a valid TOML file"):
        load_plan(tmp_path / "bad.toml")


# -- the formula grammar -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "columns"),
    [
        ("total ~ arm * review + stratum", ("total", "arm", "review", "stratum")),
        ("y ~ x - 1", ("y", "x")),
        ("y ~ 0 + x", ("y", "x")),
        ("y ~ (a + b)**2", ("y", "a", "b")),
        ("y ~ a:b + a/b", ("y", "a", "b")),
        ("np.log(y) ~ C(arm) + center(age) + scale(age)", ("y", "arm", "age")),
        ("bed_days ~ arm + np.log1p(bed_days_pre)", ("bed_days", "arm", "bed_days_pre")),
    ],
)
def test_grammar_accepts_model_formulas(formula: str, columns: tuple[str, ...]) -> None:
    assert check_formula(formula) == formula
    assert formula_columns(formula) == columns


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("total ~ __import__('os').system('ls')", "has '_' at position 9"),
        ("y ~ x[0]", "has '['"),
        ("y ~ {x + 1}", "has '{'"),
        ("y ~ `x`", "has '`'"),
        ("y ~ x; import os", "has ';'"),
        ('y ~ C(x, "a")', "has '\"'"),
        ("y ~ eval(x)", "'eval', which is not an allowed transform"),
        ("y ~ I(x)", "'I', which is not an allowed transform"),
        ("y ~ os.system(x)", "'os.system', which is not an allowed transform"),
        ("y ~ np.log(x.y)", "a column name inside np.log()"),
        ("y ~ C(x, Sum)", "transforms take one column"),
        ("y ~ a.b", "'a.b' is not a column name"),
        ("y ~ x**a", "a whole number after '**'"),
        ("y ~", "found the end"),
        ("~ x", "found '~' at position 1"),
        ("y x", "'~' after the response"),
        ("y ~ (x", "expected ')'"),
        ("y ~ x ~ z", "an operator or the end"),
        ("y ~ " + " + ".join(["x"] * 200), "the limit is 500"),
    ],
)
def test_grammar_rejects_everything_else(formula: str, message: str) -> None:
    with pytest.raises(PlanError) as err:
        check_formula(formula, where="[[analysis]] 'a'")
    assert message in str(err.value) and "[[analysis]] 'a'" in str(err.value)


def test_non_string_formula() -> None:
    with pytest.raises(PlanError, match="formula must be a string; got 3"):
        check_formula(3)


@given(st.text(max_size=60))
def test_any_text_is_accepted_or_refused_with_plan_error(text: str) -> None:
    """No input makes the checker fail with anything but PlanError."""
    try:
        check_formula(text)
    except PlanError:
        return
    # what passes uses only the grammar's characters
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.~+-*/:^(), ")
    assert set(text) <= allowed | set("\t\n\r")
    assert "~" in text and "__" not in text.replace(" ", "")


_name = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)


@given(_name, st.lists(_name, min_size=1, max_size=5), st.sampled_from(["+", "*", ":"]))
def test_generated_formulas_pass_and_list_their_columns(
    response: str, terms: list[str], op: str,
) -> None:
    formula = f"{response} ~ {f' {op} '.join(terms)}"
    assert check_formula(formula) == formula
    assert formula_columns(formula) == tuple(dict.fromkeys([response, *terms]))


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2**33) | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=3),
    max_leaves=12,
)
_keys = st.sampled_from(["title", "seed", "data", "scoring", "analysis", "output"])


@given(st.dictionaries(_keys, _json, max_size=6),
       st.dictionaries(st.sampled_from(["example", "teams", "fidelity", "columns"]), _json,
                       max_size=3))
def test_any_plan_is_accepted_or_refused_with_plan_error(
    spec: dict[str, Any], data: dict[str, Any],
) -> None:
    """Whatever a TOML file holds, the loader answers with a Plan or a PlanError."""
    for candidate in (spec, {**spec, "seed": 1, "data": data}):
        try:
            plan = parse_plan(candidate)
        except PlanError:
            continue
        assert isinstance(plan, Plan) and plan.seed == candidate["seed"]


@given(st.lists(st.dictionaries(
    st.sampled_from(["name", "role", "fitter", "outcome", "formula", "data", "where",
                     "options", "term", "contrast", "estimand", "label", "cluster"]),
    _json, max_size=8), max_size=3))
def test_any_analysis_entry_is_accepted_or_refused_with_plan_error(
    entries: list[dict[str, Any]],
) -> None:
    try:
        plan = parse_plan(_plan(analysis=entries))
    except PlanError:
        return
    assert [a.name for a in plan.analyses] == [e["name"] for e in entries]


def test_the_documented_plan_is_a_valid_plan(tmp_path: Path) -> None:
    """The complete plan shown in docs/plans.md passes the loader as written."""
    doc = (ROOT / "docs" / "plans.md").read_text(encoding="utf-8")
    block = doc.split("## A complete plan\n\n```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "plan.toml").write_text(block, encoding="utf-8")
    plan = load_plan(tmp_path / "plan.toml")
    assert [a.name for a in plan.analyses] == ["satisfaction", "fidelity", "admitted-gee"]
    assert plan.primary == "satisfaction"
    assert plan.data.files["fidelity"] == tmp_path / "data" / "fidelity.xlsx"
    assert plan.data.columns == {"teams": {"Team": "team_id", "Allocation": "arm"}}


_factor = st.one_of(
    st.sampled_from(["a", "b", "g", "1", "0"]),
    st.builds(lambda f, c: f"{f}({c})", st.sampled_from(
        ["C", "center", "scale", "log", "exp", "np.log", "np.log1p", "np.exp", "np.sqrt"]),
        st.sampled_from(["a", "b"])),
)
_rhs = st.recursive(
    _factor,
    lambda inner: st.one_of(
        st.builds(lambda x, op, y: f"{x} {op} {y}", inner,
                  st.sampled_from(["+", "-", "*", ":", "/"]), inner),
        st.builds(lambda x: f"({x})", inner),
        st.builds(lambda x, n: f"({x})**{n}", inner, st.integers(1, 3)),
    ),
    max_leaves=6,
)


@given(_rhs)
def test_grammar_formulas_build_or_fail_with_model_specification_error(rhs: str) -> None:
    """What the grammar accepts only ever reaches the data's columns (and numpy).

    formulaic refuses some grammar-valid formulas (``y ~ a * 1``); the design builder
    then raises ModelSpecificationError, which a run reports with the plan entry.
    """
    import numpy as np
    import pandas as pd

    from crtstats.exceptions import ModelSpecificationError
    from crtstats.models._design import build_design

    formula = f"y ~ {rhs}"
    assert check_formula(formula) == formula
    assert set(formula_columns(formula)) <= {"y", "a", "b", "g"}
    frame = pd.DataFrame({"y": [1.0, 2.0, 4.0, 3.0, 5.0, 6.0],
                          "a": [1.0, 2.0, 3.0, 4.0, 5.0, 7.0],
                          "b": [2.0, 1.0, 4.0, 3.0, 6.0, 5.0], "g": list("xyxyxy")})
    try:
        design = build_design(formula, frame, cluster=None)
    except ModelSpecificationError:
        return
    assert design.X.shape[0] == len(frame) and np.isfinite(design.X).all()
