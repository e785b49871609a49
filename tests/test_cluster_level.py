"""crtstats.cluster_level against R's t.test and lm (tests/reference/cluster_level.R).

Tolerances: the unadjusted analyses are closed forms (means, pooled variances, t
quantiles) computed in a different order here and in R; the two-stage analyses add a
logistic or Poisson GLM fitted by IRLS both here (statsmodels, tol 1e-13) and in R (glm,
epsilon 1e-14). Estimates, standard errors, p-values and limits: rtol 1e-11 (observed
at most 1.3e-13, rounding).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crtstats
from crtstats.exceptions import (
    ContinuityCorrectionWarning,
    ConvergenceWarning,
    ExcludedRowsWarning,
    ExposureWarning,
    InvalidParameterError,
    MissingColumnError,
    ModelSpecificationError,
    SeparationWarning,
)

REFERENCE = Path(__file__).resolve().parent / "reference"
REF = json.loads((REFERENCE / "cluster_level.json").read_text())
ADM = pd.read_csv(REFERENCE / "data" / "gee_admissions.csv")
SU = pd.read_csv(REFERENCE / "data" / "cluster_level_service_use.csv").assign(
    log_pre_admissions_rate=lambda d: np.log(d["pre_admissions_rate"]),
    log_n_users=lambda d: np.log(d["n_users"]),
)
BASE = {"arm": "arm", "cluster": "team_id"}
PROP = {"data": ADM, "outcome": "admitted", "outcome_type": "binary"}
RATE = {"data": SU, "exposure": "n_users", "outcome_type": "count"}
CASES: dict[str, dict[str, Any]] = {
    "prop_unweighted": PROP,
    "prop_weighted": {**PROP, "weights": "weighted"},
    "prop_adjusted": {**PROP, "covariates": ["stratum", "pre_prop"]},
    "mean_unweighted": {"data": ADM, "outcome": "age"},
    "mean_adjusted_sex": {"data": ADM, "outcome": "age", "covariates": ["sex"]},
    "rate_unweighted": {**RATE, "outcome": "admissions"},
    "rate_weighted": {**RATE, "outcome": "admissions", "weights": "weighted"},
    "rate_adjusted": {**RATE, "outcome": "admissions",
                      "covariates": ["stratum", "log_pre_admissions_rate"]},
    "readmission_rate": {**RATE, "outcome": "readmissions"},
}
PAIRS = [(case, term) for case in CASES for term in REF[case] if term != "zero_teams"]


def _fit(case: str, term: str, **extra: Any) -> crtstats.CRTResult:
    scale = "ratio" if term == "log_ratio" else "difference"
    return crtstats.cluster_level(**BASE, **CASES[case], scale=scale, **extra)


@pytest.mark.parametrize(("case", "term"), PAIRS)
def test_matches_r(case: str, term: str) -> None:
    rtol = 1e-11  # rounding only: see the module docstring
    if case == "readmission_rate" and term == "log_ratio":
        with pytest.warns(ContinuityCorrectionWarning):
            res = _fit(case, term)
    else:
        res = _fit(case, term)
    assert res.param_names == (term,)
    row, ref = res.to_frame().iloc[0], REF[case][term]
    assert row["estimate"] == pytest.approx(ref["estimate"], rel=rtol, abs=1e-14)
    assert row["std_error"] == pytest.approx(ref["std_error"], rel=rtol)
    assert row["df"] == ref["df"]
    assert row["pvalue"] == pytest.approx(ref["pvalue"], rel=rtol)
    np.testing.assert_allclose([row["conf_low"], row["conf_high"]], ref["conf_int"],
                               rtol=rtol, atol=1e-14)
    if "t_test_pvalue" in ref and ref["df"] == 23:  # unadjusted: R's own t.test output
        assert row["pvalue"] == pytest.approx(ref["t_test_pvalue"], rel=rtol)


def test_one_estimand_per_result_stated_in_words() -> None:
    ratio = _fit("prop_adjusted", "log_ratio")
    diff = _fit("prop_weighted", "difference")
    mean = _fit("mean_unweighted", "difference")
    rate = _fit("rate_unweighted", "log_ratio")
    assert ratio.info["estimand"] == (
        "risk ratio (ratio of geometric mean cluster risks), intervention vs control, "
        "cluster-average (each cluster counts once), adjusted for stratum, pre_prop by "
        "two-stage residuals; the estimate is its logarithm")
    assert diff.info["estimand"].startswith("risk difference, intervention vs control, "
                                            "size-weighted")
    assert mean.info["estimand"].startswith("mean difference")
    assert rate.info["estimand"].startswith("rate ratio")
    assert (ratio.info["outcome_type"], ratio.info["scale"], ratio.info["kind"]) == (
        "binary", "ratio", "proportion")
    assert (ratio.family, mean.family, rate.family) == ("binomial", "gaussian", "poisson")
    assert ratio.info["n_cluster_covariates"] == 8 and ratio.info["n_excluded"] == 0


def test_outcome_type_is_declared_not_guessed() -> None:
    # the default is a continuous mean, whatever the values: one changed value does not
    # change the estimand
    plain = crtstats.cluster_level(ADM, outcome="admitted", **BASE)
    changed = ADM.copy()
    changed.loc[7, "admitted"] = 2
    other = crtstats.cluster_level(changed, outcome="admitted", **BASE)
    assert plain.info["estimand"] == other.info["estimand"]
    assert plain.info["outcome_type"] == "continuous" and plain.param_names == ("difference",)
    # on 0/1 data the unadjusted mean difference is the risk difference
    binary = crtstats.cluster_level(ADM, outcome="admitted", outcome_type="binary", **BASE)
    assert binary.params["difference"] == pytest.approx(plain.params["difference"], rel=1e-14)
    with pytest.raises(ModelSpecificationError, match=r"0 or 1 .*row 7 has 2\b"):
        crtstats.cluster_level(changed, outcome="admitted", outcome_type="binary", **BASE)
    with pytest.raises(ModelSpecificationError, match=r"whole number >= 0.*row 0 has 1.5"):
        crtstats.cluster_level(SU.assign(admissions=SU.admissions.where(SU.index > 0, 1.5)),
                               outcome="admissions", outcome_type="count", **BASE)


def test_options_are_checked() -> None:
    with pytest.raises(InvalidParameterError, match="outcome_type must be one of"):
        crtstats.cluster_level(ADM, outcome="admitted", outcome_type="proportion", **BASE)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="scale must be one of"):
        crtstats.cluster_level(ADM, outcome="admitted", scale="log", **BASE)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="weights must be one of"):
        crtstats.cluster_level(ADM, outcome="admitted", weights="size", **BASE)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="scale='ratio' is for risks and rates"):
        crtstats.cluster_level(ADM, outcome="age", scale="ratio", **BASE)
    with pytest.raises(InvalidParameterError, match="need outcome_type='count'"):
        crtstats.cluster_level(SU, outcome="admissions", exposure="n_users", **BASE)
    with pytest.raises(InvalidParameterError, match="cluster_level: cluster must be a column"):
        crtstats.cluster_level(ADM, outcome="admitted", arm="arm", cluster=["team_id"])  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="covariates must be a list"):
        crtstats.cluster_level(ADM, outcome="age", covariates="sex", **BASE)
    with pytest.raises(InvalidParameterError, match="data must be a pandas DataFrame"):
        crtstats.cluster_level(ADM.to_dict(), outcome="age", **BASE)  # type: ignore[arg-type]
    with pytest.raises(MissingColumnError, match=r"\['nope'\]"):
        crtstats.cluster_level(ADM, outcome="nope", **BASE)
    with pytest.raises(ModelSpecificationError, match="must not include the arm"):
        crtstats.cluster_level(ADM, outcome="admitted", covariates=["arm"], **BASE)


def test_offset_is_the_log_of_the_exposure() -> None:
    for extra in ({}, {"covariates": ["stratum", "log_pre_admissions_rate"]}):
        raw = crtstats.cluster_level(SU, outcome="admissions", outcome_type="count",
                                     scale="ratio", exposure="n_users", **BASE, **extra)
        logged = crtstats.cluster_level(SU, outcome="admissions", outcome_type="count",
                                        scale="ratio", offset="log_n_users", **BASE, **extra)
        # exp(log(n)) returns n to within one rounding: rtol 1e-12
        np.testing.assert_allclose(logged.param_values, raw.param_values, rtol=1e-12)
        np.testing.assert_allclose(logged.cov_values, raw.cov_values, rtol=1e-12)
    with pytest.warns(ExposureWarning, match="looks like a\nraw exposure|raw exposure") as rec:
        res = crtstats.cluster_level(SU, outcome="admissions", outcome_type="count",
                                     offset="n_users", **BASE)
    assert [w.category for w in res.warnings] == [ExposureWarning] and len(rec) == 1


def test_all_zero_binary_outcome_is_refused() -> None:
    zero = ADM.assign(admitted=0)
    for scale in ("ratio", "difference"):
        with pytest.raises(ModelSpecificationError, match="outcome is constant"):
            crtstats.cluster_level(zero, outcome="admitted", outcome_type="binary",
                                   scale=scale, **BASE)  # type: ignore[arg-type]
    # with exposure, equal counts are unequal rates, but no events is still no ratio
    with pytest.raises(ModelSpecificationError, match="every value of 'admissions' is 0.0"):
        crtstats.cluster_level(SU.assign(admissions=0), outcome="admissions",
                               outcome_type="count", scale="ratio", exposure="n_users", **BASE)
    equal = crtstats.cluster_level(SU.assign(admissions=3), outcome="admissions",
                                   outcome_type="count", scale="ratio", exposure="n_users",
                                   **BASE)
    assert np.isfinite(equal.pvalues.iloc[0])
    none = SU.assign(admissions=SU.admissions.where(SU.arm == "control", 0))
    with pytest.raises(ModelSpecificationError, match="no events .* in the intervention arm"):
        crtstats.cluster_level(none, outcome="admissions", outcome_type="count",
                               scale="ratio", exposure="n_users", **BASE)


def test_ratio_with_no_events_in_one_arm_is_refused() -> None:
    none = ADM.assign(admitted=ADM.admitted.where(ADM.arm == "intervention", 0))
    with pytest.raises(ModelSpecificationError, match="not identified.*the control arm"):
        crtstats.cluster_level(none, outcome="admitted", outcome_type="binary",
                               scale="ratio", **BASE)
    diff = crtstats.cluster_level(none, outcome="admitted", outcome_type="binary", **BASE)
    assert diff.params["difference"] > 0


def test_zero_event_cluster_is_warned_and_recorded() -> None:
    with pytest.warns(ContinuityCorrectionWarning) as record:
        res = crtstats.cluster_level(SU, outcome="readmissions", outcome_type="count",
                                     scale="ratio", exposure="n_users", **BASE)
    zero = REF["readmission_rate"]["zero_teams"]
    assert len(record) == 1 and len(res.warnings) == 1
    assert f"'{zero}'" in res.warnings[0]
    assert res.warnings[0].category is ContinuityCorrectionWarning  # type: ignore[attr-defined]


def test_missing_rows_are_excluded_with_a_recorded_warning() -> None:
    data = ADM.copy()
    data.loc[:4, "admitted"] = np.nan
    data.loc[10, "team_id"] = None
    with pytest.warns(ExcludedRowsWarning, match=r"6 of 1388 row\(s\) excluded") as record:
        res = crtstats.cluster_level(data, outcome="admitted", outcome_type="binary", **BASE)
    assert len(record) == 1
    assert res.info["n_excluded"] == 6 and res.nobs == len(ADM) - 6
    assert "'team_id' (1), 'admitted' (5)" in res.warnings[0]
    assert res.warnings[0].category is ExcludedRowsWarning  # type: ignore[attr-defined]
    # a cluster whose rows are all incomplete is named
    gone = ADM.assign(age=ADM.age.where(ADM.team_id != "T03"))
    with pytest.warns(ExcludedRowsWarning, match=r"\['T03'\] have no complete row"):
        crtstats.cluster_level(gone, outcome="age", **BASE)


def test_missing_arm_is_an_error() -> None:
    data = ADM.assign(arm=ADM.arm.where(ADM.index != 3))
    with pytest.raises(ModelSpecificationError, match=r"'arm' is missing in 1 row.*\['T01'\]"):
        crtstats.cluster_level(data, outcome="admitted", **BASE)


@pytest.mark.parametrize(
    ("teams", "message"),
    [
        (["T01"], "exactly two arms"),  # a single cluster
        (["T01", "T03", "T05"], "exactly two arms"),  # an empty arm
        (["T01", "T02"], "at least two clusters"),  # one cluster per arm
    ],
)
def test_too_few_clusters(teams: list[str], message: str) -> None:
    some = ADM[ADM.team_id.isin(teams)]
    assert set(some.arm) == ({"intervention"} if message == "exactly two arms" else
                             {"intervention", "control"})
    with pytest.raises(ModelSpecificationError, match=message):
        crtstats.cluster_level(some, outcome="age", **BASE)


def test_degenerate_values() -> None:
    with pytest.raises(ModelSpecificationError, match="outcome is constant"):
        crtstats.cluster_level(ADM.assign(age=50), outcome="age", **BASE)
    # summaries that vary between arms but not within: zero standard error
    flat = ADM.assign(age=np.where(ADM.arm == "intervention", 60.0, 50.0))
    with pytest.raises(ModelSpecificationError, match="standard error is zero"):
        crtstats.cluster_level(flat, outcome="age", **BASE)
    with pytest.raises(ModelSpecificationError, match=r"finite; row 2 has inf"):
        crtstats.cluster_level(ADM.assign(age=ADM.age.where(ADM.index != 2, np.inf)),
                               outcome="age", **BASE)
    with pytest.raises(ModelSpecificationError, match=r"positive and finite.*row 0 has 0"):
        crtstats.cluster_level(SU.assign(n_users=SU.n_users.where(SU.index > 0, 0)),
                               outcome="admissions", outcome_type="count",
                               exposure="n_users", **BASE)
    with pytest.raises(ModelSpecificationError, match="constant within each cluster"):
        crtstats.cluster_level(ADM, outcome="admitted", arm="sex", cluster="team_id",
                               treated="female")
    with pytest.raises(ModelSpecificationError, match="which of the arms"):
        crtstats.cluster_level(ADM.assign(arm=ADM.arm.str.upper()), outcome="admitted", **BASE)
    with pytest.raises(ModelSpecificationError, match="rank deficient"):
        crtstats.cluster_level(ADM.assign(one=1.0), outcome="age", covariates=["one"], **BASE)
    with pytest.raises(ModelSpecificationError, match="leave no df"):
        crtstats.cluster_level(ADM[ADM.team_id.isin(["T01", "T02", "T03", "T04"])].assign(
            pp2=lambda d: d.pre_prop**2), outcome="age", covariates=["pre_prop", "pp2"], **BASE)


def test_stage1_warnings_are_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    from crtstats.models import _cluster_level

    real = _cluster_level.sm.GLM

    class NoisyGLM(real):  # type: ignore[misc, valid-type]
        def fit(self, *args: Any, **kwargs: Any) -> Any:
            warnings.warn("IRLS struggled", RuntimeWarning, stacklevel=2)
            return super().fit(*args, **kwargs)

    monkeypatch.setattr(_cluster_level.sm, "GLM", NoisyGLM)  # one message, issued once
    with pytest.warns(ConvergenceWarning, match="stage 1 .*IRLS struggled"):
        res = crtstats.cluster_level(ADM, outcome="admitted", outcome_type="binary",
                                     covariates=["pre_prop"], **BASE)
    assert [w.category for w in res.warnings] == [ConvergenceWarning]  # type: ignore[attr-defined]


def test_stage1_separation_is_refused() -> None:
    # a covariate that is the outcome: stage 1 predicts every row exactly
    with pytest.raises(ModelSpecificationError, match="perfect separation"):
        crtstats.cluster_level(ADM.assign(x=ADM.admitted.astype(float)), outcome="admitted",
                               outcome_type="binary", covariates=["x"], **BASE)
    # a linear stage 1 that absorbs the outcome leaves residuals that are all zero
    with pytest.raises(ModelSpecificationError, match="perfect separation or prediction"):
        crtstats.cluster_level(ADM.assign(x=ADM.age * 2.0), outcome="age",
                               covariates=["x"], **BASE)


def test_stage1_quasi_separation() -> None:
    # one stratum with no admissions: its coefficient diverges and its teams' expected
    # totals go to 0, so their ratio residuals are 0 / 0
    first = ADM.stratum.iloc[0]
    data = ADM.assign(admitted=ADM.admitted.where(ADM.stratum != first, 0))
    kwargs = dict(outcome="admitted", outcome_type="binary", covariates=["stratum"], **BASE)
    with pytest.raises(ModelSpecificationError, match="quasi-complete separation"):
        crtstats.cluster_level(data, scale="ratio", **kwargs)  # type: ignore[arg-type]
    with pytest.warns(SeparationWarning, match="quasi-complete separation"):
        res = crtstats.cluster_level(data, **kwargs)  # type: ignore[arg-type]
    assert [w.category for w in res.warnings] == [SeparationWarning]  # type: ignore[attr-defined]
    zero = res.info["clusters"]["team_id"].isin(
        ADM.loc[ADM.stratum == first, "team_id"])
    assert np.all(np.abs(res.info["clusters"].loc[zero, "value"]) < 1e-12)


def test_clusters_table() -> None:
    res = _fit("prop_adjusted", "log_ratio")
    clusters = res.info["clusters"]
    assert len(clusters) == 25 and clusters["observed"].sum() == ADM["admitted"].sum()
    # the expected totals of a logistic stage 1 with an intercept sum to the observed
    assert clusters["expected"].sum() == pytest.approx(ADM["admitted"].sum(), rel=1e-10)
    np.testing.assert_allclose(clusters["value"],
                               np.log(clusters["observed"] / clusters["expected"]))
    assert 0 < np.exp(res.params["log_ratio"]) < 1


WEIGHTED = crtstats.cluster_level(ADM, outcome="admitted", outcome_type="binary",
                                  weights="weighted", **BASE)


@given(seed=st.integers(0, 10_000))
def test_invariant_to_row_order_and_cluster_labels(seed: int) -> None:
    shuffled = ADM.sample(frac=1.0, random_state=seed).assign(
        team_id=lambda d: d["team_id"].map(lambda s: f"X{(int(s[1:]) * 7 + seed) % 101}"))
    res = crtstats.cluster_level(shuffled, outcome="admitted", outcome_type="binary",
                                 weights="weighted", **BASE)
    np.testing.assert_allclose(res.param_values, WEIGHTED.param_values, rtol=1e-10)
    np.testing.assert_allclose(np.diag(res.cov_values), np.diag(WEIGHTED.cov_values),
                               rtol=1e-10)
    ci = res.conf_int()
    assert np.all((ci["lower"] <= res.params) & (res.params <= ci["upper"]))


AGE = crtstats.cluster_level(ADM, outcome="age", **BASE)


@settings(max_examples=40, deadline=None)
@given(shift=st.floats(-1e8, 1e8), power=st.floats(-6, 6))
def test_invariant_to_shift_and_scale(shift: float, power: float) -> None:
    # age (20-90) plus up to 1e8 keeps ~8 significant digits of each value, so the
    # difference (about 1 year) and its SE hold to rtol 1e-6; rescaling is exact but for
    # rounding (rtol 1e-12)
    moved = crtstats.cluster_level(ADM.assign(age=ADM.age + shift), outcome="age", **BASE)
    assert moved.params.iloc[0] == pytest.approx(AGE.params.iloc[0], rel=1e-6)
    assert moved.std_errors.iloc[0] == pytest.approx(AGE.std_errors.iloc[0], rel=1e-6)
    scale = 10.0**power
    scaled = crtstats.cluster_level(ADM.assign(age=ADM.age * scale), outcome="age", **BASE)
    assert scaled.params.iloc[0] == pytest.approx(AGE.params.iloc[0] * scale, rel=1e-12)
    assert scaled.pvalues.iloc[0] == pytest.approx(AGE.pvalues.iloc[0], rel=1e-10)
