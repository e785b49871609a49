"""crtstats.permutation_test: exact enumeration, blocked re-randomisation, Monte Carlo.

The exact stratified p-value is checked against an independent enumeration in R
(tests/reference/cluster_level.R, ``permutation_stratified``): both count the same
13,122 allocations, so the p-value agrees to rtol 1e-12 (it is a ratio of counts).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import crtstats
from crtstats.exceptions import InvalidParameterError, ModelSpecificationError

REFERENCE = Path(__file__).resolve().parent / "reference"
REF = json.loads((REFERENCE / "cluster_level.json").read_text())["permutation_stratified"]
ADM = pd.read_csv(REFERENCE / "data" / "gee_admissions.csv")
TEAMS = ADM.groupby("team_id").agg(arm=("arm", "first"), stratum=("stratum", "first"),
                                   admitted=("admitted", "mean")).reset_index()


def _tiny() -> pd.DataFrame:
    # four clusters with means 1..4, clusters 3 and 4 treated: T = 3.5 - 1.5 = 2
    return pd.DataFrame({
        "c": ["a", "a", "b", "c", "c", "d"],
        "arm": ["control", "control", "control", "intervention", "intervention",
                "intervention"],
        "y": [0.5, 1.5, 2.0, 3.0, 3.0, 4.0],
    })


def test_exact_by_hand() -> None:
    res = crtstats.permutation_test(_tiny(), statistic="mean_difference", outcome="y",
                                    arm="arm", cluster="c")
    # the six allocations give -2, -1, 0, 0, 1, 2: two reach |T| = 2
    assert res.exact and res.n_allocations == 6 and res.n_resamples == 6
    assert res.observed == pytest.approx(2.0)
    assert res.pvalue == pytest.approx(2 / 6) and res.mcse == 0.0
    assert sorted(np.round(res.null_distribution, 12)) == [-2, -1, 0, 0, 1, 2]


def test_exact_stratified_matches_r_enumeration() -> None:
    res = crtstats.permutation_test(ADM, statistic="mean_difference", outcome="admitted",
                                    arm="arm", cluster="team_id", strata="stratum",
                                    n_resamples=20_000)
    assert res.exact and res.n_allocations == REF["n_allocations"]
    assert res.observed == pytest.approx(REF["observed"], rel=1e-12)
    assert res.pvalue == pytest.approx(REF["pvalue"], rel=1e-12)


def test_monte_carlo_is_seeded_and_close_to_exact() -> None:
    kwargs = dict(statistic="mean_difference", outcome="admitted", arm="arm",
                  cluster="team_id", strata="stratum", n_resamples=4000)
    a = crtstats.permutation_test(ADM, seed=7, **kwargs)  # type: ignore[arg-type]
    b = crtstats.permutation_test(ADM, seed=7, **kwargs)  # type: ignore[arg-type]
    assert not a.exact and a.n_resamples == 4000
    np.testing.assert_array_equal(a.null_distribution, b.null_distribution)
    hits = int(np.sum(np.abs(a.null_distribution) >= abs(a.observed) * (1 - 1e-12)))
    assert a.pvalue == (hits + 1) / 4001
    assert a.mcse == pytest.approx(math.sqrt(a.pvalue * (1 - a.pvalue) / 4000))
    # within 4.5 Monte Carlo standard errors of the exact value (fails by chance < 1e-5)
    assert abs(a.pvalue - REF["pvalue"]) < 4.5 * a.mcse


def test_draws_respect_strata_and_callable_agrees_with_builtin() -> None:
    strata = TEAMS.set_index("team_id")["stratum"]
    n_treated = TEAMS.groupby("stratum")["arm"].apply(lambda a: (a == "intervention").sum())
    seen: list[bool] = []

    def diff_of_means(d: pd.DataFrame) -> float:
        per_team = d.groupby("team_id").agg(arm=("arm", "first"), y=("admitted", "mean"))
        counts = (per_team["arm"] == "intervention").groupby(strata).sum()
        seen.append(bool((counts == n_treated).all()))
        means = per_team.groupby("arm")["y"].mean()
        return float(means["intervention"] - means["control"])

    kwargs = dict(arm="arm", cluster="team_id", strata="stratum", n_resamples=60, seed=11)
    via_callable = crtstats.permutation_test(ADM, statistic=diff_of_means, **kwargs)  # type: ignore[arg-type]
    builtin = crtstats.permutation_test(ADM, statistic="mean_difference", outcome="admitted",
                                        **kwargs)  # type: ignore[arg-type]
    assert all(seen) and len(seen) == 61
    assert via_callable.statistic == "diff_of_means"
    np.testing.assert_allclose(via_callable.null_distribution, builtin.null_distribution,
                               rtol=1e-10, atol=1e-14)
    assert via_callable.pvalue == builtin.pvalue


def test_pairs() -> None:
    teams = pd.DataFrame({
        "team": [f"t{i}" for i in range(10)],
        "pair": np.repeat(np.arange(5), 2),
        "arm": ["intervention", "control"] * 5,
        "y": [5.0, 1.0, 4.0, 2.0, 3.0, 2.5, 6.0, 1.0, 2.0, 2.2],
    })
    res = crtstats.permutation_test(teams, statistic="mean_difference", outcome="y",
                                    arm="arm", cluster="team", pairs="pair")
    assert res.exact and res.n_allocations == 32
    # within-pair differences 4, 2, 0.5, 5, -0.2 (sum 11.3): of the 32 sign patterns,
    # only the observed one, the one flipping the last pair (sum 11.7) and their mirrors
    # reach |sum| >= 11.3, so p = 4/32
    assert res.observed == pytest.approx(11.3 / 5)
    assert res.pvalue == pytest.approx(4 / 32)
    with pytest.raises(ModelSpecificationError, match="one per arm"):
        crtstats.permutation_test(teams.assign(arm="intervention").assign(
            arm=lambda d: np.where(d.index < 6, "intervention", "control")),
            statistic="mean_difference", outcome="y", arm="arm", cluster="team", pairs="pair")


def test_t_and_log_ratio_builtins() -> None:
    t = crtstats.permutation_test(TEAMS, statistic="t", outcome="admitted", arm="arm",
                                  cluster="team_id", n_resamples=500, seed=1)
    res = crtstats.cluster_level(ADM, outcome="admitted", arm="arm", cluster="team_id")
    assert t.observed == pytest.approx(res.tstats["difference"], rel=1e-10)
    lr = crtstats.permutation_test(TEAMS, statistic="log_ratio", outcome="admitted",
                                   arm="arm", cluster="team_id", n_resamples=500, seed=1)
    assert lr.observed == pytest.approx(res.params["log_ratio"], rel=1e-10)
    assert lr.to_frame().loc[0, "statistic"] == "log_ratio"


def test_bad_input() -> None:
    base = dict(arm="arm", cluster="team_id", outcome="admitted")
    with pytest.raises(InvalidParameterError, match="statistic must be one of"):
        crtstats.permutation_test(ADM, statistic="median", **base)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="n_resamples"):
        crtstats.permutation_test(ADM, statistic="t", n_resamples=0, **base)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="not both"):
        crtstats.permutation_test(ADM, statistic="t", strata="stratum", pairs="stratum",
                                  **base)  # type: ignore[arg-type]
    with pytest.raises(ModelSpecificationError, match="needs outcome"):
        crtstats.permutation_test(ADM, statistic="t", arm="arm", cluster="team_id")
    with pytest.raises(ModelSpecificationError, match="missing values"):
        crtstats.permutation_test(ADM.assign(stratum=lambda d: d.stratum.where(d.index > 5)),
                                  statistic="t", strata="stratum", **base)  # type: ignore[arg-type]
    with pytest.raises(ModelSpecificationError, match="not finite"):
        crtstats.permutation_test(_tiny(), statistic=lambda d: float("nan"), arm="arm",
                                  cluster="c")
    with pytest.raises(ModelSpecificationError, match="no column 'trust'"):
        crtstats.permutation_test(ADM, statistic="t", strata="trust", **base)  # type: ignore[arg-type]


@given(seed=st.integers(0, 1000))
def test_exact_p_invariant_to_relabelling(seed: int) -> None:
    data = _tiny().sample(frac=1.0, random_state=seed)
    data["c"] = data["c"].map({"a": "q", "b": "p", "c": "s", "d": "r"})
    res = crtstats.permutation_test(data, statistic="mean_difference", outcome="y",
                                    arm="arm", cluster="c")
    assert res.pvalue == pytest.approx(2 / 6) and res.observed == pytest.approx(2.0)
