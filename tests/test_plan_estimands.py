"""Plans declare estimands; an analysis that estimates something else is flagged."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pandas as pd
import pytest

import crtstats
from crtstats.exceptions import EstimandWarning, PlanError
from crtstats.runner._estimand_plan import check_declared_estimand, parse_estimand
from crtstats.runner._plan import parse_plan


def _row(population: str, measure: str, conditioning: str) -> pd.DataFrame:
    return pd.DataFrame({"outcome": ["admitted"], "analysis": ["GEE exchangeable"],
                         "role": ["primary"], "population": [population],
                         "measure": [measure], "conditioning": [conditioning]})


def test_parse_estimand_keeps_the_label_form() -> None:
    assert parse_estimand("arm effect at 12m", "x") == ("arm effect at 12m", {})
    label, declared = parse_estimand({"label": "arm", "population": "cluster-average"}, "x")
    assert (label, declared) == ("arm", {"population": "cluster-average"})
    with pytest.raises(PlanError, match="estimand.population"):
        parse_estimand({"population": "everyone"}, "x")
    with pytest.raises(PlanError, match="unknown key"):
        parse_estimand({"populaton": "cluster-average"}, "x")
    with pytest.raises(PlanError, match="at least one"):
        parse_estimand({"label": "arm"}, "x")


def test_participant_average_from_an_efficiency_weighted_fit_warns() -> None:
    declared = {"population": "participant-average"}
    with pytest.warns(EstimandWarning, match="participant-average.*efficiency-weighted"):
        check_declared_estimand(declared, None, _row("efficiency-weighted", "odds ratio",
                                                     "marginal"), {}, "[[analysis]] 'g'")
    with pytest.warns(EstimandWarning, match="conditional odds ratio"):
        check_declared_estimand({"conditioning": "conditional"}, None,
                                _row("participant-average", "odds ratio", "marginal"), {},
                                "[[analysis]] 'g'")
    # a matching declaration, and a cluster-average one from an efficiency-weighted fit
    # (equal on team-level outcomes), stay quiet
    check_declared_estimand({"population": "participant-average", "measure": "odds ratio"},
                            None, _row("participant-average", "odds ratio", "marginal"), {},
                            "x")
    check_declared_estimand({"population": "cluster-average"}, None,
                            _row("efficiency-weighted", "mean difference", "conditional"),
                            {}, "x")


PLAN = """
title = "t"
seed = 1
[data]
example = true
[[analysis]]
name = "gee-exch"
fitter = "gee"
role = "sensitivity"
data = "admissions"
formula = "admitted ~ arm + stratum"
estimand = {{ population = "{population}" }}
options = {{ family = "binomial", cov_struct = "{cov_struct}" }}
[output]
tables = ["effects"]
figures = []
"""


@pytest.mark.parametrize("cov_struct", ["exchangeable", "independence"])
def test_a_plan_run_warns_for_a_participant_average_exchangeable_gee(
        tmp_path: Path, cov_struct: str) -> None:
    plan = parse_plan(tomllib.loads(PLAN.format(population="participant-average",
                                                cov_struct=cov_struct)))
    assert plan.analyses[0].declared_estimand == {"population": "participant-average"}
    run = crtstats.run(plan, out=tmp_path / "out")
    flagged = [w for w in run.warnings if w.category == "EstimandWarning"]
    assert bool(flagged) == (cov_struct == "exchangeable")
    if flagged:
        assert "weights each cluster by the precision" in flagged[0].message


def test_report_states_estimands_and_the_limits_of_the_size_check() -> None:
    from crtstats.runner._report import _estimand_text

    plain = _estimand_text([{"fits": [{"model": "lmm", "n_clusters": 25}]}])
    assert "participant-average" in plain and "informative-cluster-size" not in plain
    text = _estimand_text([{"fits": [{"model": "estimands", "n_clusters": 25}]}])
    assert "With 25 teams this check has little power" in text
    assert "does not show that they agree" in text
