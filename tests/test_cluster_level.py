"""crtstats.cluster_level against R's t.test and lm (tests/reference/cluster_level.R).

Tolerances: every quantity is a closed form (means, pooled variances, t quantiles); the
two-stage analyses add a logistic or Poisson GLM fitted by IRLS both here (statsmodels)
and in R (glm, convergence 1e-8 on the deviance), so estimates, standard errors,
p-values and limits agree to rtol 1e-9 for plain t-tests and 1e-6 for two-stage ones
(observed ~1e-13).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import crtstats
from crtstats.exceptions import InvalidParameterError, ModelSpecificationError

REFERENCE = Path(__file__).resolve().parent / "reference"
REF = json.loads((REFERENCE / "cluster_level.json").read_text())
ADM = pd.read_csv(REFERENCE / "data" / "gee_admissions.csv")
SU = pd.read_csv(REFERENCE / "data" / "cluster_level_service_use.csv").assign(
    log_pre_admissions_rate=lambda d: np.log(d["pre_admissions_rate"])
)
RATE = {"data": SU, "exposure": "n_users"}
CASES = {
    "prop_unweighted": {"data": ADM, "outcome": "admitted"},
    "prop_weighted": {"data": ADM, "outcome": "admitted", "weights": "weighted"},
    "prop_adjusted": {"data": ADM, "outcome": "admitted", "covariates": ["stratum", "pre_prop"]},
    "mean_unweighted": {"data": ADM, "outcome": "age"},
    "mean_adjusted_sex": {"data": ADM, "outcome": "age", "covariates": ["sex"]},
    "rate_unweighted": {**RATE, "outcome": "admissions"},
    "rate_weighted": {**RATE, "outcome": "admissions", "weights": "weighted"},
    "rate_adjusted": {**RATE, "outcome": "admissions",
                      "covariates": ["stratum", "log_pre_admissions_rate"]},
    "readmission_rate": {**RATE, "outcome": "readmissions"},
}


@pytest.mark.parametrize("case", list(CASES))
def test_matches_r(case: str) -> None:
    kwargs = CASES[case]
    rtol = 1e-6 if "adjusted" in case else 1e-9
    res = crtstats.cluster_level(arm="arm", cluster="team_id", **kwargs)  # type: ignore[arg-type]
    frame = res.to_frame().set_index("term")
    terms = [t for t in REF[case] if t != "zero_teams"]
    assert list(frame.index) == terms
    for term in terms:
        ref, row = REF[case][term], frame.loc[term]
        assert row["estimate"] == pytest.approx(ref["estimate"], rel=rtol, abs=1e-14)
        assert row["std_error"] == pytest.approx(ref["std_error"], rel=rtol)
        assert row["df"] == ref["df"]
        assert row["pvalue"] == pytest.approx(ref["pvalue"], rel=rtol)
        np.testing.assert_allclose([row["conf_low"], row["conf_high"]], ref["conf_int"],
                                   rtol=rtol, atol=1e-14)
        if "t_test_pvalue" in ref and ref["df"] == 23:  # unadjusted: R's own t.test output
            assert row["pvalue"] == pytest.approx(ref["t_test_pvalue"], rel=rtol)


def test_zero_event_cluster_is_reported() -> None:
    res = crtstats.cluster_level(SU, outcome="readmissions", exposure="n_users", arm="arm",
                                 cluster="team_id")
    zero = REF["readmission_rate"]["zero_teams"]
    assert isinstance(zero, str)
    assert len(res.warnings) == 1 and f"'{zero}'" in res.warnings[0]


def test_result_shape_and_info() -> None:
    res = crtstats.cluster_level(ADM, outcome="admitted", arm="arm", cluster="team_id",
                                 covariates=["stratum", "pre_prop"])
    assert res.model == "cluster_level" and res.cov_type == "unweighted"
    assert res.info["kind"] == "proportion" and res.info["n_cluster_covariates"] == 8
    clusters = res.info["clusters"]
    assert len(clusters) == 25 and clusters["observed"].sum() == ADM["admitted"].sum()
    # the expected totals of a logistic stage 1 with an intercept sum to the observed
    assert clusters["expected"].sum() == pytest.approx(ADM["admitted"].sum(), rel=1e-8)
    ratio = np.exp(res.to_frame().set_index("term").loc["log_ratio", "estimate"])
    assert 0 < ratio < 1
    assert np.isnan(res.cov_values[0, 1])
    mean = crtstats.cluster_level(ADM, outcome="age", arm="arm", cluster="team_id")
    assert mean.param_names == ("difference",)


def test_bad_input() -> None:
    base = {"arm": "arm", "cluster": "team_id"}
    with pytest.raises(InvalidParameterError, match="weights must be one of"):
        crtstats.cluster_level(ADM, outcome="admitted", weights="size", **base)  # type: ignore[arg-type]
    with pytest.raises(ModelSpecificationError, match="no column"):
        crtstats.cluster_level(ADM, outcome="nope", **base)
    with pytest.raises(ModelSpecificationError, match="must not include the arm"):
        crtstats.cluster_level(ADM, outcome="admitted", covariates=["arm"], **base)
    with pytest.raises(ModelSpecificationError, match="constant within each cluster"):
        crtstats.cluster_level(ADM, outcome="admitted", arm="sex", cluster="team_id",
                               treated="female")
    with pytest.raises(ModelSpecificationError, match="at least two clusters"):
        crtstats.cluster_level(ADM[ADM.team_id.isin(["T01", "T02", "T03"])],
                               outcome="admitted", **base)
    with pytest.raises(ModelSpecificationError, match="which of the arms"):
        crtstats.cluster_level(ADM.assign(arm=ADM.arm.str.upper()), outcome="admitted", **base)
    with pytest.raises(ModelSpecificationError, match="positive exposure"):
        crtstats.cluster_level(SU.assign(n_users=0), outcome="admissions", exposure="n_users",
                               **base)


def test_missing_rows_counted() -> None:
    data = ADM.copy()
    data.loc[:4, "admitted"] = np.nan
    res = crtstats.cluster_level(data, outcome="admitted", arm="arm", cluster="team_id")
    assert res.info["n_excluded"] == 5 and res.nobs == len(ADM) - 5


WEIGHTED = crtstats.cluster_level(ADM, outcome="admitted", arm="arm", cluster="team_id",
                                  weights="weighted")


@given(seed=st.integers(0, 10_000))
def test_invariant_to_row_order_and_cluster_labels(seed: int) -> None:
    base = WEIGHTED
    shuffled = ADM.sample(frac=1.0, random_state=seed).assign(
        team_id=lambda d: d["team_id"].map(lambda s: f"X{(int(s[1:]) * 7 + seed) % 101}"))
    res = crtstats.cluster_level(shuffled, outcome="admitted", arm="arm", cluster="team_id",
                                 weights="weighted")
    np.testing.assert_allclose(res.param_values, base.param_values, rtol=1e-10)
    np.testing.assert_allclose(np.diag(res.cov_values), np.diag(base.cov_values), rtol=1e-10)
    ci = res.conf_int()
    assert np.all((ci["lower"] <= res.params) & (res.params <= ci["upper"]))
