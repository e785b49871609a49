"""crtstats.analyse_questionnaire: scoring by key, outcome names, and the same rows as
questionnaire_effects on the scored frame (whose numbers tests/
test_questionnaire_analysis.py checks against R)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import crtstats
from crtstats.analysis import questionnaire_effects
from crtstats.analysis.questionnaire import outcome_names
from crtstats.exceptions import InvalidParameterError, ModelSpecificationError
from crtstats.scales import load_instrument, score_questionnaire

TEAMS = pd.DataFrame({"team_id": [f"T{i:02d}" for i in range(16)],
                      "arm": ["intervention", "control"] * 8,
                      "stratum": [f"S{i // 4}" for i in range(16)]})


def _items(key: str, id_column: str, centre: float, spread: float, seed: int) -> pd.DataFrame:
    """A questionnaire table: 12 people per team and wave, team levels per wave."""
    inst = load_instrument(key)
    rng = np.random.default_rng(seed)
    level = rng.normal(0.0, spread, (len(TEAMS), 2))
    rows = []
    for i, team in enumerate(TEAMS["team_id"]):
        for v, wave in enumerate(("baseline", "follow_up")):
            for j in range(12):
                person = centre + level[i, v] + rng.normal(0.0, 0.5)
                values = np.clip(np.round(person + rng.normal(0.0, 0.6, inst.n_items)),
                                 inst.item_min, inst.item_max)
                rows.append({"team_id": team, id_column: f"{team}-{wave}-{j}", "wave": wave,
                             **dict(zip(inst.columns, values.astype(int), strict=True))})
    return pd.DataFrame(rows)


USERS = _items("csq8", "respondent_id", 3.2, 0.4, 1)
STAFF = _items("ghq12", "staff_id", 1.4, 0.5, 2)
TRIAL = SimpleNamespace(teams=TEAMS, user_questionnaires=USERS, staff_questionnaires=STAFF)


def test_outcome_names() -> None:
    assert outcome_names("csq8") == ("csq8", None)
    assert outcome_names("ghq12") == ("ghq12_ghq", "ghq12_case")
    assert outcome_names("ghq12", "likert") == ("ghq12_likert", None)


def test_csq8_equals_questionnaire_effects_of_the_scored_table() -> None:
    out = crtstats.analyse_questionnaire(TRIAL, n_resamples=300, seed=4)
    direct = questionnaire_effects(score_questionnaire(USERS, "csq8"), TEAMS,
                                   id_column="respondent_id", outcome="csq8",
                                   n_resamples=300, seed=4)
    pd.testing.assert_frame_equal(out.effects, direct.effects)
    assert out.notes == direct.notes
    assert out.effects.loc[0, "outcome"] == "csq8"
    assert out.effects.loc[0, "role"] == "primary"


def test_ghq12_score_then_caseness() -> None:
    out = crtstats.analyse_questionnaire(TRIAL, table="staff_questionnaires",
                                         instrument="ghq12", n_resamples=300, seed=4)
    eff = out.effects
    assert eff["outcome"].unique().tolist() == ["ghq12_ghq", "ghq12_case"]
    primary = eff[eff["role"] == "primary"]
    assert primary["analysis"].tolist() == ["LMM follow-up, team baseline mean (KR)",
                                            "GLMM (between-within)"]
    assert "ghq12_case: GLMM (between-within)" in out.results


def test_ghq12_likert_has_no_caseness() -> None:
    out = crtstats.analyse_questionnaire(TRIAL, table="staff_questionnaires",
                                         instrument="ghq12", scoring="likert",
                                         n_resamples=300)
    assert out.effects["outcome"].unique().tolist() == ["ghq12_likert"]


def test_prorated_totals_are_flagged() -> None:
    users = USERS.copy()
    users.loc[[0, 200], "csq8_03"] = np.nan
    trial = SimpleNamespace(teams=TEAMS, user_questionnaires=users)
    with pytest.warns(crtstats.ProrationWarning):
        out = crtstats.analyse_questionnaire(trial, max_missing=1, prorate=True,
                                             n_resamples=300)
    assert "csq8: 2 total(s) prorated from incompletely answered questionnaires." in out.notes


def test_missing_table_and_bad_option() -> None:
    with pytest.raises(ModelSpecificationError, match="needs the staff_questionnaires"):
        crtstats.analyse_questionnaire(SimpleNamespace(teams=TEAMS, staff_questionnaires=None),
                                       table="staff_questionnaires", instrument="ghq12")
    with pytest.raises(InvalidParameterError, match="table must be one of"):
        crtstats.analyse_questionnaire(TRIAL, table="questionnaires")  # type: ignore[arg-type]
