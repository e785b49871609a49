"""The simulated questionnaires of the example trial: shapes, design and determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crtstats.datasets import (
    EXAMPLE_SEED,
    TRUE_EFFECTS,
    SimulatedTrial,
    load_example,
    simulate_trial,
)
from crtstats.exceptions import InvalidParameterError

CSQ8 = [f"csq8_{k:02d}" for k in range(1, 9)]
GHQ12 = [f"ghq12_{k:02d}" for k in range(1, 13)]
KEYS = {"user_questionnaires": ["team_id", "respondent_id", "wave"],
        "staff_questionnaires": ["team_id", "staff_id", "wave"]}


@pytest.fixture(scope="module")
def example() -> SimulatedTrial:
    return simulate_trial(seed=EXAMPLE_SEED)


def test_columns_keys_and_values(example: SimulatedTrial) -> None:
    users, staff = example.user_questionnaires, example.staff_questionnaires
    assert list(users.columns) == ["team_id", "respondent_id", "wave", "collected_on",
                                   "responded", *CSQ8]
    assert list(staff.columns) == ["team_id", "staff_id", "wave", "collected_on",
                                   "responded", *GHQ12]
    for name, frame in (("user_questionnaires", users), ("staff_questionnaires", staff)):
        assert not frame.duplicated(KEYS[name]).any(), name
        assert set(frame["wave"]) == {"baseline", "follow_up"}
        assert set(frame["team_id"]) == set(example.teams["team_id"])
        # a sampled non-responder has no items and no date; responders have a date
        silent = ~frame["responded"]
        items = frame.filter(regex=r"_\d\d$")
        assert items[silent].isna().all().all()
        assert frame.loc[silent, "collected_on"].isna().all()
        assert frame.loc[~silent, "collected_on"].notna().all()
    assert users[CSQ8].stack().between(1, 4).all()
    assert staff[GHQ12].stack().between(0, 3).all()


def test_the_design_of_the_core_trial(example: SimulatedTrial) -> None:
    users, staff = example.user_questionnaires, example.staff_questionnaires
    answered = users[users["responded"]]
    per_team = answered.groupby(["team_id", "wave"]).size()
    assert per_team.between(10, 18).all() and abs(per_team.mean() - 15) < 1
    assert 0 < int((~users["responded"]).sum()) <= 0.1 * len(users)
    missing = answered[CSQ8].isna().sum(axis=1)
    assert sorted(missing[missing > 0].tolist()) == [1, 1, 1, 1, 1, 1, 2]
    totals = answered[CSQ8].sum(axis=1, min_count=8)
    assert 27 <= totals.median() <= 29  # the CORE trial: median 28 in both arms
    # fresh samples of service users: no respondent id appears in both waves
    waves = users.groupby("respondent_id")["wave"].nunique()
    assert (waves == 1).all()
    sizes = staff.groupby(["team_id", "wave"]).size()
    assert sizes.between(8, 12).all()
    ids = staff.groupby("staff_id")["wave"].nunique()
    linked = int((ids == 2).sum())
    follow_up = int((staff["wave"] == "follow_up").sum())
    assert 0.3 < linked / follow_up < 0.7  # about half the follow-up staff are linked


def test_effects_point_the_documented_way() -> None:
    """A large simulated trial recovers the true follow-up differences in totals."""
    sim = simulate_trial(n_teams=300, n_intervention=150, n_strata=4, seed=5)
    arm = sim.teams.set_index("team_id")["arm"]

    def gain(frame: pd.DataFrame, total: pd.Series) -> float:
        keep = (frame["wave"] == "follow_up").to_numpy()
        means = total[keep].groupby(frame.loc[keep, "team_id"].map(arm)).mean()
        return float(means["intervention"] - means["control"])

    users = sim.user_questionnaires
    csq = users[CSQ8].sum(axis=1, min_count=8).astype(float)
    # sampling SE of the difference about 0.1 points with 300 teams
    assert abs(gain(users, csq) - TRUE_EFFECTS["csq8_total_gain"]) < 0.4
    assert 0.9 < TRUE_EFFECTS["csq8_total_gain"] < 1.1
    staff = sim.staff_questionnaires
    likert = staff[GHQ12].sum(axis=1, min_count=12).astype(float)
    assert abs(gain(staff, likert) - TRUE_EFFECTS["ghq12_likert_gain"]) < 0.6
    ghq = (staff[GHQ12] >= 2).sum(axis=1).where(likert.notna()).astype(float)
    assert abs(gain(staff, ghq) - TRUE_EFFECTS["ghq12_ghq_gain"]) < 0.3


def test_icc_of_the_csq8_total_is_about_five_percent() -> None:
    sim = simulate_trial(n_teams=400, n_intervention=200, n_strata=4, seed=9)
    users = sim.user_questionnaires
    keep = (users["wave"] == "baseline") & users["responded"]
    total = users.loc[keep, CSQ8].sum(axis=1, min_count=8).astype(float)
    team = users.loc[keep, "team_id"][total.notna()]
    total = total.dropna()
    means, sizes = total.groupby(team).mean(), total.groupby(team).size()
    within = float(((total - team.map(means)) ** 2).sum() / (len(total) - len(means)))
    m0 = (len(total) - (sizes**2).sum() / len(total)) / (len(means) - 1)
    between = (float((sizes * (means - total.mean()) ** 2).sum()) / (len(means) - 1)
               - within) / m0
    icc = between / (between + within)
    assert 0.02 < icc < 0.09  # one-way ANOVA estimate; its SE is about 0.015 here


def test_questionnaires_leave_the_other_tables_unchanged() -> None:
    """They come from a stream of their own: the other tables are as before."""
    trial = simulate_trial(seed=EXAMPLE_SEED)
    for name in ("teams", "fidelity", "admissions", "service_use"):
        pd.testing.assert_frame_equal(getattr(trial, name), getattr(load_example(), name),
                                      check_dtype=False)


def test_determinism_and_bad_respondents() -> None:
    a = simulate_trial(n_teams=8, n_intervention=4, n_strata=2, respondents=5, seed=4)
    b = simulate_trial(n_teams=8, n_intervention=4, n_strata=2, respondents=5, seed=4)
    c = simulate_trial(n_teams=8, n_intervention=4, n_strata=2, respondents=5, seed=3)
    for name in ("user_questionnaires", "staff_questionnaires"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
        assert not getattr(a, name).equals(getattr(c, name))
    assert a.user_questionnaires.groupby(["team_id", "wave"]).size().between(5, 7).all()
    for bad in (1, 0, 2.5, True):
        with pytest.raises(InvalidParameterError, match="respondents"):
            simulate_trial(respondents=bad)  # type: ignore[arg-type]


def test_ids_are_synthetic() -> None:
    trial = load_example()
    users, staff = trial.user_questionnaires, trial.staff_questionnaires
    assert users["respondent_id"].str.fullmatch(r"T\d\d-[BF]U\d{3}").all()
    assert staff["staff_id"].str.fullmatch(r"T\d\d-S\d{3}").all()
    assert np.array_equal(users["responded"].to_numpy(dtype=bool),
                          simulate_trial(seed=EXAMPLE_SEED).user_questionnaires[
                              "responded"].to_numpy())
