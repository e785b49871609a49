"""The simulated trial and the shipped example."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crtstats.datasets import EXAMPLE_SEED, TRUE_EFFECTS, load_example, simulate_trial
from crtstats.exceptions import InvalidParameterError

ITEMS = [f"item_{k:02d}" for k in range(1, 40)]


def test_shipped_example_equals_its_generator() -> None:
    shipped = load_example().tables()
    fresh = simulate_trial(seed=EXAMPLE_SEED).tables()
    for name, frame in fresh.items():
        got = shipped[name]
        assert list(got.columns) == list(frame.columns), name
        assert len(got) == len(frame), name
        for col in frame.columns:
            np.testing.assert_array_equal(
                got[col].astype("string").fillna("<NA>").to_numpy(),
                frame[col].astype("string").fillna("<NA>").to_numpy(),
                err_msg=f"{name}.{col}",
            )


def test_example_design_matches_core() -> None:
    trial = load_example()
    assert len(trial.teams) == 25
    assert trial.teams["arm"].value_counts().to_dict() == {"intervention": 15, "control": 10}
    assert trial.teams["stratum"].nunique() == 8
    assert trial.teams["team_id"].is_unique
    # three reviews for every team except one control team without a 6-month review
    per_team = trial.fidelity.groupby("team_id")["review"].nunique()
    assert sorted(per_team.value_counts().to_dict().items()) == [(2, 1), (3, 24)]
    missing_6m = per_team[per_team == 2].index[0]
    arm = trial.teams.set_index("team_id").loc[missing_6m, "arm"]
    assert arm == "control"
    # a few missing item scores, all others integers 1-5
    items = trial.fidelity[ITEMS]
    assert 1 <= int(items.isna().sum().sum()) <= 4
    values = items.stack().dropna().to_numpy(dtype=float)
    assert values.min() >= 1 and values.max() <= 5


def test_team_sizes_vary_and_service_use_aggregates_admissions() -> None:
    trial = load_example()
    sizes = trial.admissions.groupby(["team_id", "period"]).size()
    assert sizes.std() / sizes.mean() > 0.2
    derived = (
        trial.admissions.groupby(["team_id", "period"], sort=False)
        .agg(n_users=("person_id", "size"), admissions=("admitted", "sum"),
             bed_days=("bed_days", "sum"), readmissions=("readmitted", "sum"))
        .reset_index()
    )
    pd.testing.assert_frame_equal(
        derived.astype("int64", errors="ignore").reset_index(drop=True),
        trial.service_use.astype(derived.dtypes.to_dict()).reset_index(drop=True),
        check_dtype=False,
    )
    assert (trial.admissions.loc[trial.admissions["admitted"] == 0, "bed_days"] == 0).all()


def test_simulated_effects_point_the_documented_way() -> None:
    """Large simulated trials recover the direction and rough size of the true effects."""
    sim = simulate_trial(n_teams=200, n_intervention=100, n_strata=8, seed=3)
    totals = sim.fidelity.assign(total=sim.fidelity[ITEMS].sum(axis=1, min_count=39))
    wide = totals.pivot(index="team_id", columns="review", values="total").astype(float)
    arm = sim.teams.set_index("team_id")["arm"]
    change = (wide["12m"] - wide["baseline"]).groupby(arm).mean()
    gain = change["intervention"] - change["control"]
    assert 0.5 * TRUE_EFFECTS["fidelity_total_gain_12m"] < gain < 1.5 * TRUE_EFFECTS[
        "fidelity_total_gain_12m"
    ]
    adm = sim.admissions.merge(sim.teams, on="team_id")
    p = adm.groupby(["arm", "period"])["admitted"].mean()
    odds = p / (1 - p)
    ratio = (odds["intervention", "follow_up"] / odds["intervention", "pre"]) / (
        odds["control", "follow_up"] / odds["control", "pre"]
    )
    assert 0.5 < ratio < 0.95  # marginal OR, attenuated from the cluster-specific 0.70


def test_same_seed_same_trial_and_bad_arguments() -> None:
    a = simulate_trial(n_teams=10, n_intervention=5, n_strata=2, seed=11)
    b = simulate_trial(n_teams=10, n_intervention=5, n_strata=2, seed=11)
    for name in a.tables():
        pd.testing.assert_frame_equal(a.tables()[name], b.tables()[name])
    with pytest.raises(InvalidParameterError, match="n_intervention"):
        simulate_trial(n_teams=10, n_intervention=9)
    with pytest.raises(InvalidParameterError, match="n_strata"):
        simulate_trial(n_teams=10, n_intervention=5, n_strata=11)
