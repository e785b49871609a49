"""questionnaire_effects on degenerate trials: each raises a clear error or says in its
notes what it left out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import crtstats
from crtstats.analysis import questionnaire_effects
from crtstats.exceptions import (
    InvalidParameterError,
    MissingColumnError,
    ModelSpecificationError,
    NotEstimableError,
)


def _trial(n_teams: int = 12, n: int = 8, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    teams = pd.DataFrame({"team_id": [f"T{i:02d}" for i in range(n_teams)],
                          "arm": ["intervention", "control"] * (n_teams // 2),
                          "stratum": [f"S{i // 4}" for i in range(n_teams)]})
    level = dict(zip(teams["team_id"], rng.normal(24.0, 3.0, n_teams), strict=True))
    rows = [{"team_id": t, "respondent_id": f"{t}-{w}-{j}", "wave": w, "responded": True,
             "total": float(np.clip(np.round(level[t] + rng.normal(0.0, 3.0)), 8, 32))}
            for t in teams["team_id"] for w in ("baseline", "follow_up") for j in range(n)]
    scores = pd.DataFrame(rows)
    scores["case"] = (scores["total"] <= 22).astype("Int64")
    return scores, teams


def _run(scores: pd.DataFrame, teams: pd.DataFrame, **kwargs: object
         ) -> crtstats.analysis.AnalysisResult:
    return questionnaire_effects(scores, teams, id_column="respondent_id",
                                 outcome=str(kwargs.pop("outcome", "csq8")),
                                 n_resamples=200, seed=1, **kwargs)  # type: ignore[arg-type]


def test_one_team_per_arm_raises() -> None:
    scores, teams = _trial(n_teams=2)
    with pytest.raises(ModelSpecificationError, match="at least two teams per arm"):
        _run(scores, teams)


def test_constant_outcome_raises() -> None:
    scores, teams = _trial()
    scores["total"] = 32.0
    with pytest.raises(NotEstimableError, match="same value"):
        _run(scores, teams)


def test_team_with_one_respondent_is_analysed() -> None:
    scores, teams = _trial()
    one = (scores["team_id"] == "T03") & (scores["wave"] == "follow_up")
    scores = scores[~one | (scores["respondent_id"] == "T03-follow_up-0")]
    out = _run(scores, teams)
    assert out.effects.loc[0, "n_clusters"] == 12
    assert out.effects.loc[0, "nobs"] == 11 * 8 + 1


@pytest.mark.parametrize("wave", ["baseline", "follow_up"])
def test_a_wave_missing_entirely_is_not_estimable(wave: str) -> None:
    scores, teams = _trial()
    with pytest.raises(NotEstimableError, match=f"no {wave} respondent has a score"):
        _run(scores[scores["wave"] != wave], teams)


def test_team_without_baseline_respondent_is_left_out_with_a_note() -> None:
    scores, teams = _trial()
    gone = (scores["team_id"] == "T00") & (scores["wave"] == "baseline")
    scores.loc[gone, ["responded", "total"]] = [False, np.nan]
    out = _run(scores, teams)
    assert out.effects.loc[0, "n_clusters"] == 11
    assert any("1 team(s) with no scored baseline respondent" in n and "T00" in n
               for n in out.notes)


def test_too_few_teams_with_a_baseline_raises() -> None:
    scores, teams = _trial(n_teams=4)
    gone = (scores["team_id"] == "T00") & (scores["wave"] == "baseline")
    with pytest.raises(ModelSpecificationError, match="at least two teams per arm"):
        _run(scores[~gone], teams)


def test_team_of_non_responders_is_left_out_with_a_note() -> None:
    scores, teams = _trial()
    silent = (scores["team_id"] == "T05") & (scores["wave"] == "follow_up")
    scores.loc[silent, "responded"] = False
    scores.loc[silent, "total"] = np.nan
    out = _run(scores, teams)
    assert out.effects.loc[0, "n_clusters"] == 11
    assert any("no scored follow-up respondent" in n and "T05" in n for n in out.notes)
    assert "follow_up control: 48 sampled, 40 responded, 40 scored" in out.notes[0]


def test_caseness_with_no_cases_in_an_arm_is_not_estimable() -> None:
    scores, teams = _trial()
    arm = scores["team_id"].map(teams.set_index("team_id")["arm"])
    scores.loc[(arm == "control") & (scores["wave"] == "follow_up"), "case"] = 0
    with pytest.raises(NotEstimableError, match="control arm has no cases"):
        _run(scores, teams, outcome="csq8_case", case=True)


def test_linked_without_people_at_both_waves_is_noted() -> None:
    scores, teams = _trial()
    out = _run(scores, teams, linked=True)
    assert out.effects["role"].tolist() == ["primary", "sensitivity", "sensitivity"]
    assert any("the linked analysis needs people scored at both waves" in n
               for n in out.notes)


@pytest.mark.parametrize(("change", "error", "match"), [
    ({"linked": "yes"}, InvalidParameterError, "linked must be one of"),
    ({"outcome": "csq 8"}, ModelSpecificationError, "usable in a formula"),
    ({"outcome": "total"}, ModelSpecificationError, "usable in a formula"),
])
def test_bad_arguments(change: dict[str, object], error: type[Exception], match: str) -> None:
    scores, teams = _trial(n_teams=4)
    with pytest.raises(error, match=match):
        _run(scores, teams, **change)


def test_bad_data() -> None:
    scores, teams = _trial(n_teams=4)
    with pytest.raises(MissingColumnError, match="responded"):
        _run(scores.drop(columns="responded"), teams)
    with pytest.raises(ModelSpecificationError, match="wave"):
        _run(scores.assign(wave="6m"), teams)
    with pytest.raises(ModelSpecificationError, match="repeated"):
        _run(pd.concat([scores, scores.head(1)]), teams)
    with pytest.raises(ModelSpecificationError, match="does not list"):
        _run(scores, teams.iloc[1:])
