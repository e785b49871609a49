"""crtstats.permutation_test: exact enumeration, blocked re-randomisation, Monte Carlo.

The exact stratified p-values are checked against an independent enumeration in R
(tests/reference/cluster_level.R, ``permutation_stratified*``): both count the same
13,122 allocations, so the count of allocations at least as extreme agrees exactly
and the observed statistic to rtol 1e-12 (rounding).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crtstats
from crtstats.exceptions import (
    ExcludedRowsWarning,
    ExposureWarning,
    FewClustersWarning,
    InvalidParameterError,
    MissingColumnError,
    ModelSpecificationError,
)

REFERENCE = Path(__file__).resolve().parent / "reference"
ALL_REF = json.loads((REFERENCE / "cluster_level.json").read_text())
REF = ALL_REF["permutation_stratified"]
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


def _tiny_test(data: pd.DataFrame, **kwargs: object) -> crtstats.PermutationResult:
    # four clusters allow only six allocations: the test warns that it cannot reach 5%
    with pytest.warns(FewClustersWarning, match="only 6 allocation"):
        return crtstats.permutation_test(data, **kwargs)  # type: ignore[arg-type]


def test_exact_by_hand() -> None:
    res = _tiny_test(_tiny(), statistic="mean_difference", outcome="y", arm="arm",
                     cluster="c")
    assert [w.category for w in res.warnings] == [FewClustersWarning]  # type: ignore[attr-defined]
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
    # the same count of allocations; the JSON holds 15 significant digits
    assert res.pvalue * res.n_allocations == round(REF["pvalue"] * REF["n_allocations"])


@pytest.mark.parametrize("statistic", ["t", "log_ratio"])
def test_exact_stratified_t_and_log_ratio_match_r(statistic: str) -> None:
    ref = ALL_REF[f"permutation_stratified_{statistic}"]
    res = crtstats.permutation_test(ADM, statistic=statistic, outcome="admitted",  # type: ignore[arg-type]
                                    arm="arm", cluster="team_id", strata="stratum",
                                    n_resamples=20_000)
    assert res.exact and res.observed == pytest.approx(ref["observed"], rel=1e-12)
    assert res.pvalue * res.n_allocations == round(ref["pvalue"] * res.n_allocations)
    assert res.warnings == () and res.n_clusters == 25 and res.n_excluded == 0


def test_monte_carlo_is_seeded_and_close_to_exact() -> None:
    kwargs = dict(statistic="mean_difference", outcome="admitted", arm="arm",
                  cluster="team_id", strata="stratum", n_resamples=4000)
    a = crtstats.permutation_test(ADM, seed=7, **kwargs)  # type: ignore[arg-type]
    b = crtstats.permutation_test(ADM, seed=7, **kwargs)  # type: ignore[arg-type]
    assert not a.exact and a.n_resamples == 4000
    np.testing.assert_array_equal(a.null_distribution, b.null_distribution)
    hits = int(np.sum(np.abs(a.null_distribution) >= abs(a.observed) - a.tie_tolerance))
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
    res = crtstats.cluster_level(ADM, outcome="admitted", arm="arm", cluster="team_id",
                                 outcome_type="binary")
    ratio = crtstats.cluster_level(ADM, outcome="admitted", arm="arm", cluster="team_id",
                                   outcome_type="binary", scale="ratio")
    assert t.observed == pytest.approx(res.tstats["difference"], rel=1e-10)
    lr = crtstats.permutation_test(TEAMS, statistic="log_ratio", outcome="admitted",
                                   arm="arm", cluster="team_id", n_resamples=500, seed=1)
    assert lr.observed == pytest.approx(ratio.params["log_ratio"], rel=1e-10)
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
    with pytest.raises(ModelSpecificationError, match="'stratum' is missing in 6 row"):
        crtstats.permutation_test(ADM.assign(stratum=lambda d: d.stratum.where(d.index > 5)),
                                  statistic="t", strata="stratum", **base)  # type: ignore[arg-type]
    with pytest.raises(ModelSpecificationError, match="not finite"), pytest.warns(
            FewClustersWarning):
        crtstats.permutation_test(_tiny(), statistic=lambda d: float("nan"), arm="arm",
                                  cluster="c")
    with pytest.raises(InvalidParameterError, match="callable statistic reads its own"):
        crtstats.permutation_test(_tiny(), statistic=lambda d: 1.0, outcome="y", arm="arm",
                                  cluster="c")
    with pytest.raises(InvalidParameterError, match="permutation_test: strata must be"):
        crtstats.permutation_test(ADM, statistic="t", strata=["stratum"], **base)  # type: ignore[arg-type]
    with pytest.raises(MissingColumnError, match=r"\['trust'\]"):
        crtstats.permutation_test(ADM, statistic="t", strata="trust", **base)  # type: ignore[arg-type]


@given(seed=st.integers(0, 1000))
def test_exact_p_invariant_to_relabelling(seed: int) -> None:
    data = _tiny().sample(frac=1.0, random_state=seed)
    data["c"] = data["c"].map({"a": "q", "b": "p", "c": "s", "d": "r"})
    res = _tiny_test(data, statistic="mean_difference", outcome="y", arm="arm", cluster="c")
    assert res.pvalue == pytest.approx(2 / 6) and res.observed == pytest.approx(2.0)


# -- numerical stability: shifts and units do not change an exact p-value ----------------

SU = pd.read_csv(REFERENCE / "data" / "cluster_level_service_use.csv").assign(
    log_n_users=lambda d: np.log(d["n_users"]))


def _grid_teams(counts: list[int], sizes: list[int], n_treated: int) -> pd.DataFrame:
    # team proportions on a grid of fractions: many allocations tie exactly
    return pd.DataFrame({
        "team": [f"t{i}" for i in range(len(counts))],
        "arm": ["intervention"] * n_treated + ["control"] * (len(counts) - n_treated),
        "y": np.array(counts, dtype=float) / np.array(sizes, dtype=float),
    })


teams_strategy = st.integers(6, 10).flatmap(lambda k: st.tuples(
    st.lists(st.integers(0, 12), min_size=k, max_size=k),
    st.lists(st.sampled_from([4, 5, 8, 10, 20]), min_size=k, max_size=k),
    st.integers(3, k - 3)))


@settings(max_examples=60, deadline=None)
@given(teams=teams_strategy, shift=st.floats(-1e8, 1e8), power=st.floats(-6, 6),
       statistic=st.sampled_from(["mean_difference", "t"]))
def test_exact_p_unchanged_by_shift_and_rescaling(
    teams: tuple[list[int], list[int], int], shift: float, power: float, statistic: str,
) -> None:
    counts, sizes, n_treated = teams
    data = _grid_teams(counts, sizes, n_treated)
    if data["y"].nunique() == 1:
        return  # constant summaries are refused (tested below)
    kwargs = dict(statistic=statistic, outcome="y", arm="arm", cluster="team")
    base = crtstats.permutation_test(data, **kwargs)  # type: ignore[arg-type]
    moved = crtstats.permutation_test(data.assign(y=data.y + shift), **kwargs)  # type: ignore[arg-type]
    scaled = crtstats.permutation_test(data.assign(y=data.y * 10.0**power), **kwargs)  # type: ignore[arg-type]
    assert base.exact and moved.pvalue == base.pvalue and scaled.pvalue == base.pvalue


@settings(max_examples=40, deadline=None)
@given(teams=teams_strategy, power=st.floats(-6, 6))
def test_exact_log_ratio_p_unchanged_by_rescaling(
    teams: tuple[list[int], list[int], int], power: float,
) -> None:
    counts, sizes, n_treated = teams
    data = _grid_teams([c + 1 for c in counts], sizes, n_treated)  # positive summaries
    if data["y"].nunique() == 1:
        return
    kwargs = dict(statistic="log_ratio", outcome="y", arm="arm", cluster="team")
    base = crtstats.permutation_test(data, **kwargs)  # type: ignore[arg-type]
    scaled = crtstats.permutation_test(data.assign(y=data.y * 10.0**power), **kwargs)  # type: ignore[arg-type]
    assert scaled.pvalue == base.pvalue


def test_exact_ties_are_counted_as_ties() -> None:
    # allocations (c, d) and (a, b) give T = +-0.2 in exact arithmetic; 0.1 ... 0.4 plus
    # 1e6 hold rounding errors of their own, which must not break the tie
    data = pd.DataFrame({"c": list("abcd"), "arm": ["control"] * 2 + ["intervention"] * 2,
                         "y": [0.1, 0.2, 0.3, 0.4]})
    for shift in (0.0, 1e3, 1e6, 1e8):
        res = _tiny_test(data.assign(y=data.y + shift), statistic="mean_difference",
                         outcome="y", arm="arm", cluster="c")
        assert res.pvalue == 2 / 6


# -- the rule for missing values -------------------------------------------------------


def test_missing_outcome_or_cluster_rows_are_excluded_and_recorded() -> None:
    data = ADM.copy()
    data.loc[:2, "admitted"] = np.nan
    data.loc[5, "team_id"] = None
    with pytest.warns(ExcludedRowsWarning, match=r"4 of 1388 row\(s\) excluded"):
        res = crtstats.permutation_test(data, statistic="mean_difference",
                                        outcome="admitted", arm="arm", cluster="team_id",
                                        n_resamples=50, seed=1)
    assert res.n_excluded == 4 and res.info["n_excluded"] == 4
    assert [w.category for w in res.warnings] == [ExcludedRowsWarning]  # type: ignore[attr-defined]
    complete = ADM.drop(index=[0, 1, 2, 5])
    again = crtstats.permutation_test(complete, statistic="mean_difference",
                                      outcome="admitted", arm="arm", cluster="team_id",
                                      n_resamples=50, seed=1)
    assert again.pvalue == res.pvalue and again.observed == res.observed


def test_missing_arm_is_an_error() -> None:
    data = ADM.assign(arm=ADM.arm.where(ADM.index != 0))
    with pytest.raises(ModelSpecificationError, match=r"'arm' is missing .*\['T01'\]"):
        crtstats.permutation_test(data, statistic="t", outcome="admitted", arm="arm",
                                  cluster="team_id")


# -- degenerate designs and data ---------------------------------------------------------


def test_degenerate_cases() -> None:
    base = dict(statistic="mean_difference", outcome="admitted", arm="arm",
                cluster="team_id")
    with pytest.raises(ModelSpecificationError, match="exactly two arms"):  # one cluster
        crtstats.permutation_test(TEAMS.iloc[:1], **base)  # type: ignore[arg-type]
    with pytest.raises(ModelSpecificationError, match="exactly two arms"):  # an empty arm
        crtstats.permutation_test(TEAMS[TEAMS.arm == "control"], **base)  # type: ignore[arg-type]
    pair = TEAMS[TEAMS.team_id.isin(["T01", "T02"])]  # one cluster per arm
    with pytest.warns(FewClustersWarning, match="only 2 allocation"):
        res = crtstats.permutation_test(pair, **base)  # type: ignore[arg-type]
    assert res.pvalue == 1.0
    with pytest.warns(FewClustersWarning), pytest.raises(ModelSpecificationError,
                                                         match="at least three clusters"):
        crtstats.permutation_test(pair, **{**base, "statistic": "t"})  # type: ignore[arg-type]
    with pytest.raises(ModelSpecificationError, match="constant outcome"):
        crtstats.permutation_test(TEAMS.assign(admitted=0.25), **base)  # type: ignore[arg-type]
    with pytest.raises(ModelSpecificationError, match="finite; row 3 has inf"):
        crtstats.permutation_test(TEAMS.assign(admitted=TEAMS.admitted.where(
            TEAMS.index != 3, np.inf)), **base)  # type: ignore[arg-type]
    with pytest.raises(ModelSpecificationError, match=r"positive and finite.*row 0 has 0"):
        crtstats.permutation_test(SU.assign(n_users=SU.n_users.where(SU.index > 0, 0)),
                                  **{**base, "outcome": "admissions"}, exposure="n_users")  # type: ignore[arg-type]
    with pytest.raises(ModelSpecificationError, match=r"positive cluster summaries.*\['T"):
        crtstats.permutation_test(SU, **{**base, "statistic": "log_ratio",  # type: ignore[arg-type]
                                         "outcome": "readmissions"}, exposure="n_users")


def test_t_may_be_infinite_under_some_allocations() -> None:
    # two values only: the allocation that splits them has no variation within the arms
    data = pd.DataFrame({"c": [f"c{i}" for i in range(8)],
                         "arm": ["intervention", "control"] * 4,
                         "y": [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0]})
    res = crtstats.permutation_test(data, statistic="t", outcome="y", arm="arm", cluster="c")
    diff = crtstats.permutation_test(data, statistic="mean_difference", outcome="y",
                                     arm="arm", cluster="c")
    assert np.isinf(res.null_distribution).sum() == 2 and res.pvalue == diff.pvalue


def test_offset_is_the_log_of_the_exposure() -> None:
    base = dict(statistic="log_ratio", outcome="admissions", arm="arm", cluster="team_id",
                n_resamples=200, seed=3)
    raw = crtstats.permutation_test(SU, exposure="n_users", **base)  # type: ignore[arg-type]
    logged = crtstats.permutation_test(SU, offset="log_n_users", **base)  # type: ignore[arg-type]
    # exp(log(n)) returns n to within rounding: rtol 1e-12
    assert logged.observed == pytest.approx(raw.observed, rel=1e-12)
    assert logged.pvalue == raw.pvalue
    with pytest.warns(ExposureWarning):
        looks_raw = crtstats.permutation_test(SU, offset="n_users", **base)  # type: ignore[arg-type]
    assert [w.category for w in looks_raw.warnings] == [ExposureWarning]  # type: ignore[attr-defined]
