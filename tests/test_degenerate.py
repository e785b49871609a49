"""Degenerate data through every fitter: an error or a recorded warning, never a
confident number.

Each case is run through every fitter it applies to. The fit must either raise a
:class:`crtstats.CRTStatsError` subclass, or return a result whose ``warnings`` record
every :class:`crtstats.CRTStatsWarning` the call issued (at least one). The cases are
those of the issue "Numbers a statistician can trust" and the ones like them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

import crtstats

N_TEAMS, PER_TEAM = 12, 20


def _trial(seed: int = 5, n_teams: int = N_TEAMS, per_team: int = PER_TEAM) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    team = np.repeat([f"T{k:02d}" for k in range(n_teams)], per_team)
    arm_of = {f"T{k:02d}": ("intervention" if k % 2 else "control") for k in range(n_teams)}
    arm = np.array([arm_of[t] for t in team])
    u = np.repeat(rng.normal(0.0, 0.8, n_teams), per_team)
    x = rng.normal(size=team.size)
    eta = -0.5 + 0.4 * (arm == "intervention") + 0.3 * x + u
    users = rng.integers(20, 60, size=team.size).astype(float)
    return pd.DataFrame({
        "team_id": team,
        "arm": arm,
        "x": x,
        "y": 10.0 + 2.0 * (arm == "intervention") + x + u + rng.normal(size=team.size),
        "event": (rng.uniform(size=team.size) < 1.0 / (1.0 + np.exp(-eta))).astype(float),
        "count": rng.poisson(users * np.exp(eta - 3.0)).astype(float),  # a rate per user
        "users": users,
    })


def _one_cluster_per_arm(d: pd.DataFrame) -> pd.DataFrame:
    return d[d["team_id"].isin(["T00", "T01"])].reset_index(drop=True)


def _single_cluster(d: pd.DataFrame) -> pd.DataFrame:
    return d[d["team_id"] == "T00"].reset_index(drop=True)


def _constant_outcome(d: pd.DataFrame) -> pd.DataFrame:
    return d.assign(y=5.0, event=0.0, count=0.0)


def _separation(d: pd.DataFrame) -> pd.DataFrame:
    out = d.copy()
    out.loc[out["arm"] == "control", ["event", "count"]] = 0.0
    return out


def _one_row_per_cluster(d: pd.DataFrame) -> pd.DataFrame:
    return d.groupby("team_id", as_index=False).head(1).reset_index(drop=True)


def _missing_values(d: pd.DataFrame) -> pd.DataFrame:
    out = d.copy()
    out.loc[[3, 17], ["y", "event", "count"]] = np.nan
    return out


def _infinite_covariate(d: pd.DataFrame) -> pd.DataFrame:
    out = d.copy()
    out.loc[4, "x"] = np.inf
    return out


def _constant_covariate(d: pd.DataFrame) -> pd.DataFrame:
    return d.assign(x=1.0)


def _empty_arm(d: pd.DataFrame) -> pd.DataFrame:
    return d.assign(arm="control")


CASES: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "one cluster per arm": _one_cluster_per_arm,
    "single cluster": _single_cluster,
    "constant outcome": _constant_outcome,
    "separation": _separation,
    "one row per cluster": _one_row_per_cluster,
    "missing values": _missing_values,
    "infinite covariate": _infinite_covariate,
    "constant covariate": _constant_covariate,
    "empty arm": _empty_arm,
}


def _lmm(d: pd.DataFrame) -> Any:
    return crtstats.lmm("y ~ arm + x", d, cluster="team_id")


def _ols(d: pd.DataFrame) -> Any:
    return crtstats.ols("y ~ arm + x", d, cluster="team_id", cov_type="CR2")


def _glmm(d: pd.DataFrame) -> Any:
    return crtstats.glmm("event ~ arm + x", d, cluster="team_id", family="binomial")


def _glmm_poisson(d: pd.DataFrame) -> Any:
    return crtstats.glmm("count ~ arm + x", d, cluster="team_id", family="poisson",
                         exposure="users")


def _gee(d: pd.DataFrame) -> Any:
    return crtstats.gee("event ~ arm + x", d, cluster="team_id", family="binomial")


def _gee_poisson(d: pd.DataFrame) -> Any:
    return crtstats.gee("count ~ arm + x", d, cluster="team_id", family="poisson",
                        exposure="users")


FITTERS: dict[str, Callable[[pd.DataFrame], Any]] = {
    "lmm": _lmm,
    "ols": _ols,
    "glmm": _glmm,
    "glmm-poisson": _glmm_poisson,
    "gee": _gee,
    "gee-poisson": _gee_poisson,
}

# (case, fitter) pairs whose data carry no hazard for that fitter, where a clean result is
# as right as a warned one: a continuous outcome is not "separated" (a count with all-zero
# control teams is: its log rate is -inf); one row per cluster is ordinary data for OLS
# with CR2 (it is then HC2) and for GEE (the sandwich of a GLM), and a Poisson GLMM with
# one row per cluster is an observation-level random effect (over-dispersion), which is
# identified.
NOT_DEGENERATE = {
    ("separation", "lmm"),
    ("separation", "ols"),
    ("one row per cluster", "ols"),
    ("one row per cluster", "gee"),
    ("one row per cluster", "gee-poisson"),
    ("one row per cluster", "glmm-poisson"),
}


def _outcome(fit: Callable[[pd.DataFrame], Any], data: pd.DataFrame) -> tuple[str, Any]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = fit(data)
        except crtstats.CRTStatsError as err:
            return "error", err
    issued = [w for w in caught if issubclass(w.category, crtstats.CRTStatsWarning)]
    others = [w for w in caught if not issubclass(w.category, crtstats.CRTStatsWarning)]
    assert not others, f"warnings from outside crtstats leaked: {[str(w.message) for w in others]}"
    return "warned" if issued else "clean", (res, issued)


@pytest.mark.parametrize("fitter", sorted(FITTERS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_degenerate_data_gives_an_error_or_a_recorded_warning(case: str, fitter: str) -> None:
    data = CASES[case](_trial())
    kind, detail = _outcome(FITTERS[fitter], data)
    if kind == "error":
        message = str(detail)
        assert len(message) > 40, f"the message says too little: {message!r}"
        assert "\x1b" not in message  # no terminal escape codes
        return
    res, issued = detail
    recorded = {(w.category, str(w)) for w in res.warnings}
    for w in issued:
        assert (w.category, str(w.message)) in recorded, (
            f"{fitter} issued a {w.category.__name__} it did not record: {w.message}"
        )
    if (case, fitter) in NOT_DEGENERATE:
        return
    assert kind == "warned", (
        f"{fitter} on '{case}' gave a confident result with no warning: "
        f"{res.params.to_dict()}, SE {res.std_errors.to_dict()}"
    )


@pytest.mark.parametrize("fitter", sorted(FITTERS))
def test_clean_data_gives_no_warning(fitter: str) -> None:
    kind, detail = _outcome(FITTERS[fitter], _trial())
    assert kind == "clean", detail


@pytest.mark.parametrize("fitter", sorted(FITTERS))
def test_a_cluster_with_one_row_among_others_is_fitted(fitter: str) -> None:
    data = _trial()
    data = data.drop(index=data.index[(data["team_id"] == "T03")][1:]).reset_index(drop=True)
    kind, detail = _outcome(FITTERS[fitter], data)
    assert kind == "clean", detail


ARGUMENT_CALLS: dict[str, Callable[..., Any]] = {
    "lmm": lambda d, c: crtstats.lmm("y ~ arm + x", d, cluster=c),
    "ols": lambda d, c: crtstats.ols("y ~ arm + x", d, cluster=c),
    "glmm": lambda d, c: crtstats.glmm("event ~ arm + x", d, cluster=c),
    "gee": lambda d, c: crtstats.gee("event ~ arm + x", d, cluster=c, family="binomial"),
    "cluster_level": lambda d, c: crtstats.cluster_level(d, outcome="y", arm="arm", cluster=c),
    "permutation_test": lambda d, c: crtstats.permutation_test(
        d, outcome="y", arm="arm", cluster=c, statistic="mean_difference",
        n_resamples=10, seed=1),
    "negative_binomial_rate": lambda d, c: crtstats.models.negative_binomial_rate(
        "count ~ arm", d, cluster=c, exposure="users"),
}


@pytest.mark.parametrize("fitter", sorted(ARGUMENT_CALLS))
def test_every_fitter_checks_its_arguments_the_same_way(fitter: str) -> None:
    data = _trial()
    for bad in (["team_id"], 3):
        with pytest.raises(crtstats.InvalidParameterError, match="cluster must be a column name"):
            ARGUMENT_CALLS[fitter](data, bad)
    with pytest.raises(crtstats.MissingColumnError, match=r"no column\(s\) \['nope'\]"):
        ARGUMENT_CALLS[fitter](data, "nope")
