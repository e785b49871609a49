"""crtstats.models.estimands against hand computations in R (tests/reference/estimands.R)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import crtstats
from crtstats.exceptions import ModelSpecificationError
from crtstats.models import EstimandsResult, estimands

REF = Path(__file__).parent / "reference"
EXPECTED = json.loads((REF / "estimands.json").read_text())
CASES = {
    "awards": ("estimands_awards.csv", "school_id", ["sex", "lagscore"]),
    "sim": ("estimands_sim.csv", "cluster", ["x", "h"]),
}


def _data(case: str) -> tuple[pd.DataFrame, str, list[str]]:
    file, cluster, covs = CASES[case]
    return pd.read_csv(REF / "data" / file), cluster, covs


def _flat(res: EstimandsResult) -> tuple[np.ndarray, np.ndarray]:
    est = np.concatenate([res.risks["risk"].to_numpy(),
                          res.participant.param_values, res.cluster.param_values,
                          res.difference.param_values])
    se = np.concatenate([np.full(4, np.nan), res.participant.std_errors.to_numpy(),
                         res.cluster.std_errors.to_numpy(),
                         res.difference.std_errors.to_numpy()])
    return est, se


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("kind", ["unadjusted", "adjusted"])
def test_standardised_estimands_match_r(case: str, kind: str) -> None:
    data, cluster, covs = _data(case)
    res = estimands(data, outcome="y", arm="treated", cluster=cluster, treated=1,
                    covariates=covs if kind == "adjusted" else ())
    ref = EXPECTED[case][kind]
    est, se = _flat(res)
    # both sides solve the same logistic likelihood to 1e-13 and then apply closed
    # forms, so estimates and jackknife SEs agree far inside 1e-6
    np.testing.assert_allclose(est, ref["estimate"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(se[4:], ref["std_error"][4:], rtol=1e-7, atol=1e-9)
    assert res.participant.df_values[0] == ref["df"]
    assert res.cluster.estimand.population == "cluster-average"
    assert res.participant.estimand.population == "participant-average"


@pytest.mark.parametrize("case", list(CASES))
def test_independence_gee_gives_the_participant_average(case: str) -> None:
    data, cluster, _ = _data(case)
    ref = EXPECTED[case]
    res = estimands(data, outcome="y", arm="treated", cluster=cluster, treated=1)
    for k, family in enumerate(("gaussian", "poisson", "binomial")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", crtstats.FewClustersWarning)
            fit = crtstats.gee("y ~ treated", data, cluster=cluster, family=family,
                               cov_struct="independence", cov_type="mancl-derouen")
        gp = ref["gee_participant"][family]
        # geepack run to epsilon 1e-12; crtstats to 1e-12 relative: 1e-8 is ample
        assert fit.params["treated"] == pytest.approx(gp["estimate"], abs=1e-8)
        assert fit.std_errors["treated"] == pytest.approx(gp["mancl_derouen_se"], rel=1e-7)
        assert fit.estimand.population == "participant-average"
        # the standardised participant-average equals the independence GEE estimate,
        # and the cluster-average the GEE weighted by 1 / size
        assert res.participant.param_values[k] == pytest.approx(gp["estimate"], abs=1e-8)
        assert res.cluster.param_values[k] == pytest.approx(
            ref["gee_cluster"][family]["estimate"], abs=1e-8)


def test_row_order_and_labels_do_not_matter() -> None:
    data, cluster, covs = _data("sim")
    base = estimands(data, outcome="y", arm="treated", cluster=cluster, covariates=covs,
                     treated=1)
    shuffled = data.sample(frac=1.0, random_state=3).assign(
        cluster=lambda d: "team-" + d["cluster"])
    other = estimands(shuffled, outcome="y", arm="treated", cluster="cluster",
                      covariates=covs, treated=1)
    np.testing.assert_allclose(_flat(other)[0], _flat(base)[0], atol=1e-10)
    np.testing.assert_allclose(other.cluster.cov_values, base.cluster.cov_values, atol=1e-12)


def test_refuses_an_arm_without_events() -> None:
    data, cluster, _ = _data("sim")
    data.loc[data["treated"] == 1, "y"] = 0
    with pytest.raises(ModelSpecificationError, match="no events"):
        estimands(data, outcome="y", arm="treated", cluster=cluster, treated=1)


def test_refuses_one_cluster_per_arm() -> None:
    data = pd.DataFrame({"c": [1, 1, 2, 2], "a": [0, 0, 1, 1], "y": [0, 1, 1, 0]})
    with pytest.raises(ModelSpecificationError, match="at least two clusters"):
        estimands(data, outcome="y", arm="a", cluster="c", treated=1)


def test_missing_rows_are_left_out_with_a_warning() -> None:
    data, cluster, covs = _data("sim")
    data.loc[[0, 5], "x"] = np.nan
    with pytest.warns(crtstats.ExcludedRowsWarning, match="2 of"):
        res = estimands(data, outcome="y", arm="treated", cluster=cluster, covariates=covs,
                        treated=1)
    assert res.participant.nobs == len(data) - 2
    assert any("excluded" in w for w in res.participant.warnings)


@pytest.mark.parametrize("case", list(CASES))
def test_gee_weighted_by_inverse_size_gives_the_cluster_average(case: str) -> None:
    data, cluster, _ = _data(case)
    for family in ("gaussian", "poisson", "binomial"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", crtstats.FewClustersWarning)
            fit = crtstats.gee("y ~ treated", data, cluster=cluster, family=family,
                               cov_struct="independence", cov_type="mancl-derouen",
                               weights="inverse-size")
        gc = EXPECTED[case]["gee_cluster"][family]
        # geepack run to epsilon 1e-12; the sandwich is a closed form at the estimates
        assert fit.params["treated"] == pytest.approx(gc["estimate"], abs=1e-8)
        assert fit.std_errors["treated"] == pytest.approx(gc["mancl_derouen_se"], rel=1e-7)
        assert fit.estimand.population == "cluster-average"
        assert int(fit.df["treated"]) == EXPECTED[case]["n_clusters"] - 2


def test_gee_cluster_weights_need_independence() -> None:
    data, cluster, _ = _data("sim")
    with pytest.raises(crtstats.InvalidParameterError, match="independence"):
        crtstats.gee("y ~ treated", data, cluster=cluster, family="binomial",
                     weights="inverse-size")


def test_informative_size_test_statistic_and_null() -> None:
    data, cluster, _ = _data("sim")
    res = crtstats.models.informative_size_test(data, outcome="y", arm="treated",
                                                cluster=cluster, n_resamples=300, seed=2,
                                                treated=1)
    unadjusted = estimands(data, outcome="y", arm="treated", cluster=cluster, treated=1)
    # the statistic is the unadjusted gap of the risk differences (the same closed form)
    assert res.observed == pytest.approx(unadjusted.difference.param_values[0], abs=1e-12)
    assert 0.0 < res.pvalue <= 1.0 and res.n_resamples == 300
