"""Every result and effects row states its estimand: population, measure, conditioning."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

import crtstats
from crtstats.analysis._effects import effect_row
from crtstats.exceptions import InvalidParameterError
from crtstats.models import Estimand


@pytest.fixture(scope="module")
def follow_up() -> pd.DataFrame:
    trial = crtstats.datasets.load_example()
    fu = trial.admissions[trial.admissions["period"] == "follow_up"]
    return fu.merge(trial.teams, on="team_id")


def test_estimand_checks_its_values() -> None:
    with pytest.raises(InvalidParameterError, match="population"):
        Estimand(population="everyone", measure="risk ratio",  # type: ignore[arg-type]
                 conditioning="marginal")
    e = Estimand(population="cluster-average", measure="risk ratio", conditioning="marginal")
    assert e.with_measure("risk difference").measure == "risk difference"
    assert e.as_dict() == {"population": "cluster-average", "measure": "risk ratio",
                           "conditioning": "marginal"}


def test_each_fitter_states_its_estimand(follow_up: pd.DataFrame) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", crtstats.CRTStatsWarning)
        exch = crtstats.gee("admitted ~ arm", follow_up, cluster="team_id",
                            family="binomial")
        ind = crtstats.gee("admitted ~ arm", follow_up, cluster="team_id",
                           family="binomial", cov_struct="independence")
        mixed = crtstats.glmm("admitted ~ arm", follow_up, cluster="team_id",
                              family="binomial")
    assert (exch.estimand.population, exch.estimand.conditioning) == ("efficiency-weighted",
                                                                     "marginal")
    assert "neither" in exch.estimand.note
    assert ind.estimand.label == "participant-average marginal odds ratio"
    assert mixed.estimand.label == "efficiency-weighted conditional odds ratio"
    for weights, population in (("unweighted", "cluster-average"),
                                ("weighted", "participant-average")):
        cl = crtstats.cluster_level(follow_up, outcome="admitted", arm="arm",
                                    cluster="team_id", outcome_type="binary",
                                    weights=weights)
        assert cl.estimand.label == f"{population} marginal risk difference"


def test_effects_rows_carry_the_estimand(follow_up: pd.DataFrame) -> None:
    cl = crtstats.cluster_level(follow_up, outcome="admitted", arm="arm", cluster="team_id",
                                outcome_type="binary", scale="ratio")
    row = effect_row(cl, {"log_ratio": 1.0}, outcome="admitted", analysis="cl",
                     role="sensitivity", estimand="arm")
    assert (row["population"], row["measure"], row["conditioning"]) == (
        "cluster-average", "risk ratio", "marginal")
