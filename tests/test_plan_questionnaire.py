"""Plans: the questionnaire analysis, its options, the plan's primary and new data keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crtstats.exceptions import PlanError
from crtstats.runner import load_plan, parse_plan

ROOT = Path(__file__).resolve().parents[1]
KEYS = ROOT / "data_schema" / "instruments"


def _entry(name: str = "satisfaction", **options: Any) -> dict[str, Any]:
    return {"name": name, "outcome": "questionnaire", "options": options}


def _plan(*entries: dict[str, Any], **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"seed": 1, "data": {"example": True},
                            "analysis": list(entries) or [_entry()]}
    spec.update(extra)
    return spec


def test_questionnaire_entry_is_parsed() -> None:
    staff = _entry("staff", table="staff_questionnaires", instrument="ghq12",
                   scoring="likert", linked=True, n_resamples=500, seed=3)
    plan = parse_plan(_plan(_entry(table="user_questionnaires", instrument="csq8"), staff,
                            primary="satisfaction"))
    first, second = plan.analyses
    assert first.outcome == "questionnaire" and first.role is None
    assert first.options == {"table": "user_questionnaires", "instrument": "csq8"}
    assert first.instrument_file is None
    assert second.options["scoring"] == "likert" and second.options["linked"] is True
    assert plan.primary == "satisfaction"
    assert parse_plan(_plan()).primary is None  # primary is optional


def test_proration_is_an_explicit_choice() -> None:
    plan = parse_plan(_plan(_entry(max_missing=2, prorate=True)))
    assert plan.analyses[0].options == {"max_missing": 2, "prorate": True}
    with pytest.raises(PlanError, match=r"max_missing = 1 allows missing items only with "
                                        r"proration; add prorate = true"):
        parse_plan(_plan(_entry(max_missing=1)))


@pytest.mark.parametrize("options, message", [
    ({"tabel": "user_questionnaires"},
     r"'satisfaction' options has an unknown key 'tabel'.*Did you mean 'table'\?"),
    ({"method": "lmm"}, r"options has an unknown key 'method'; allowed keys: table, "
                        r"instrument, scoring, linked, max_missing, prorate, n_resamples, seed"),
    ({"table": "questionnaires"},
     r"options.table must be one of 'user_questionnaires', 'staff_questionnaires'; "
     r"got 'questionnaires'"),
    ({"table": 3}, r"options: table must be a str; got 3"),
    ({"instrument": "csq-8"},
     r"options.instrument must name an instrument key shipped with crtstats \('csq8', "
     r"'ghq12'\) or a key file ending in .yaml beside the plan; got 'csq-8'"),
    ({"instrument": "mine.yaml"}, r"options.instrument = 'mine.yaml': no such key file"),
    ({"instrument": ["csq8"]}, r"options: instrument must be a str; got \['csq8'\]"),
    ({"scoring": "likert"},
     r"'satisfaction' \(csq8\): options.scoring must be one of 'total'; got 'likert'"),
    ({"instrument": "ghq12", "scoring": "ghq-12"},
     r"options.scoring must be one of 'ghq', 'likert'; got 'ghq-12'. Did you mean 'ghq'\?"),
    ({"linked": "yes"}, r"options: linked must be a bool; got 'yes'"),
    ({"linked": 1}, r"options: linked must be a bool; got 1"),
    ({"max_missing": -1}, r"options.max_missing must be a whole number from 0 to 7; got -1"),
    ({"max_missing": 8, "prorate": True},
     r"options.max_missing must be a whole number from 0 to 7; got 8"),
    ({"max_missing": 1.5}, r"options: max_missing must be a int; got 1.5"),
    ({"max_missing": True}, r"options: max_missing must be a int; got True"),
    ({"prorate": "true"}, r"options: prorate must be a bool; got 'true'"),
    ({"n_resamples": 0}, r"options.n_resamples must be a whole number of at least 1; got 0"),
    ({"n_resamples": 100.0}, r"options: n_resamples must be a int; got 100.0"),
    ({"seed": -2}, r"options.seed must be a whole number from 0 to 4294967295; got -2"),
    ({"trial": "x"}, r"options.trial is set by the runner from the plan"),
    ({"outcome": "csq8"}, r"options.outcome is set by the runner from the plan"),
])
def test_bad_options_name_the_key_and_value(options: dict[str, Any], message: str) -> None:
    with pytest.raises(PlanError, match=message):
        parse_plan(_plan(_entry(**options)))


def test_questionnaire_entry_takes_no_model_keys() -> None:
    with pytest.raises(PlanError, match="remove role"):
        parse_plan(_plan({**_entry(), "role": "primary"}))
    with pytest.raises(PlanError, match="unknown key 'formula'"):
        parse_plan(_plan({**_entry(), "formula": "total ~ arm"}))
    with pytest.raises(PlanError, match="outcome must be one of .*'questionnaire'"):
        parse_plan(_plan({**_entry(), "outcome": "questionaire"}))


def test_an_instrument_key_file_beside_the_plan(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    key = tmp_path / "keys" / "my_csq.yaml"
    key.write_text((KEYS / "csq8.yaml").read_text(encoding="utf-8").replace(
        "key: csq8", "key: my_csq"), encoding="utf-8")
    plan = parse_plan(_plan(_entry(instrument="keys/my_csq.yaml")), base=tmp_path)
    assert plan.analyses[0].instrument_file == key
    assert plan.analyses[0].options["instrument"] == "keys/my_csq.yaml"
    (tmp_path / "keys" / "broken.yaml").write_text("key: broken\n", encoding="utf-8")
    with pytest.raises(PlanError, match=r"options.instrument = 'keys/broken.yaml': "
                                        r"instrument key broken.yaml"):
        parse_plan(_plan(_entry(instrument="keys/broken.yaml")), base=tmp_path)


@pytest.mark.parametrize("primary, message", [
    ("satisfactoin", r"primary = 'satisfactoin' must name one of its \[\[analysis\]\] "
                     r"entries.*the plan's analyses: 'satisfaction'"),
    (1, r"the plan: primary must be a str; got 1"),
    (["satisfaction"], r"primary must be a str"),
])
def test_bad_primary(primary: Any, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        parse_plan(_plan(primary=primary))


def test_primary_without_analyses() -> None:
    with pytest.raises(PlanError, match=r"primary = 'x'.*the plan's analyses: none"):
        parse_plan({"seed": 1, "data": {"example": True}, "primary": "x"})


def test_primary_names_a_model_entry_too() -> None:
    model = {"name": "lmm", "role": "primary", "fitter": "lmm", "data": "scores",
             "formula": "total ~ arm * review + stratum",
             "contrast": {"arm[T.intervention]": 1}}
    assert parse_plan(_plan(_entry(), model, primary="lmm")).primary == "lmm"


def test_data_names_the_questionnaire_files(tmp_path: Path) -> None:
    data = {"teams": "teams.csv", "user_questionnaires": "users.csv",
            "staff_questionnaires": "staff.csv"}
    plan = parse_plan(_plan(data=data), base=tmp_path)
    assert plan.data.files == {name: tmp_path / file for name, file in data.items()}
    with pytest.raises(PlanError, match="example = true and also names files"):
        parse_plan(_plan(data={"example": True, "user_questionnaires": "users.csv"}))
    with pytest.raises(PlanError, match="unknown key 'user_questionnaire'.*Did you mean"):
        parse_plan(_plan(data={"teams": "t.csv", "user_questionnaire": "u.csv"}))
    with pytest.raises(PlanError, match="at least one of fidelity, admissions, service_use, "
                                        "user_questionnaires, staff_questionnaires"):
        parse_plan(_plan(data={"teams": "t.csv"}))


def test_shipped_plan_names_the_csq8_analysis_primary() -> None:
    plan = load_plan(ROOT / "analyses" / "core_trial.toml")
    assert plan.primary == "satisfaction"
    first = plan.analyses[0]
    assert first.name == "satisfaction" and first.outcome == "questionnaire"
    assert first.options == {"table": "user_questionnaires", "instrument": "csq8"}
    staff = [a for a in plan.analyses if a.options.get("table") == "staff_questionnaires"]
    assert {a.options["scoring"] for a in staff} == {"ghq", "likert"}
    assert all(a.options["linked"] is True for a in staff)
    assert "questionnaire_means" in plan.output.figures
