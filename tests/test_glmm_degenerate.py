"""crtstats.glmm on degenerate data: an error that says what and why, or a recorded warning.

Every case here gives either a ``CRTStatsError`` subclass or a documented
``CRTStatsWarning`` that is also on ``res.warnings``; none returns a confident number
silently.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import crtstats
from crtstats.exceptions import (
    BoundaryFitWarning,
    ConvergenceWarning,
    ExcludedRowsWarning,
    ExposureWarning,
    FewClustersWarning,
    InvalidParameterError,
    ModelSpecificationError,
    SeparationWarning,
)

DATA = Path(__file__).resolve().parent / "reference" / "data"


@pytest.fixture(scope="module")
def trial() -> pd.DataFrame:
    return pd.read_csv(DATA / "glmm_trial01.csv")


@pytest.fixture(scope="module")
def counts() -> pd.DataFrame:
    return pd.read_csv(DATA / "glmm_counts_nb.csv")


def _binary(n_clusters: int = 20, size: int = 30, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    team = np.repeat(np.arange(n_clusters), size)
    arm = team % 2
    x = rng.normal(size=team.size)
    eta = -0.5 + 0.4 * arm + 0.5 * x + rng.normal(0, 0.5, n_clusters)[team]
    return pd.DataFrame({"team": [f"t{t}" for t in team],
                         "arm": np.where(arm == 1, "intervention", "control"),
                         "x": x, "y": rng.binomial(1, 1 / (1 + np.exp(-eta)))})


# -- arguments -----------------------------------------------------------------------
@pytest.mark.parametrize("option", ["cluster", "offset", "exposure", "trials"])
def test_column_options_must_be_names(trial: pd.DataFrame, option: str) -> None:
    kwargs: dict[str, object] = {"cluster": "team_id", option: ["team_id"]}
    with pytest.raises(InvalidParameterError, match=f"glmm: {option} must be a column name"):
        crtstats.glmm("admitted ~ arm", trial, **kwargs)  # type: ignore[arg-type]


def test_formula_and_data_are_checked(trial: pd.DataFrame) -> None:
    with pytest.raises(InvalidParameterError, match="glmm: formula must be a string"):
        crtstats.glmm(None, trial, cluster="team_id")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="glmm: data must be a pandas DataFrame"):
        crtstats.glmm("admitted ~ arm", trial.to_dict(), cluster="team_id")  # type: ignore[arg-type]


# -- clusters and arms ---------------------------------------------------------------
def test_one_cluster_per_arm_is_refused(trial: pd.DataFrame) -> None:
    two = trial[trial["team_id"].isin(["T01", "T02"])]
    assert set(two["arm"]) == {"control", "intervention"}
    with pytest.raises(ModelSpecificationError, match="between-within df .* is 0: 2 clusters"):
        crtstats.glmm("admitted ~ arm", two, cluster="team_id")


def test_one_cluster_per_arm_with_z_tests_is_warned(trial: pd.DataFrame) -> None:
    two = trial[trial["team_id"].isin(["T01", "T02"])]
    with pytest.warns(FewClustersWarning, match="only 2 clusters"), \
            pytest.warns(BoundaryFitWarning, match="boundary"):
        res = crtstats.glmm("admitted ~ arm", two, cluster="team_id", ddf="z")
    assert [w.category for w in res.warnings] == [FewClustersWarning, BoundaryFitWarning]


def test_a_single_cluster_is_refused(trial: pd.DataFrame) -> None:
    one = trial[trial["team_id"] == "T01"]
    with pytest.raises(ModelSpecificationError, match=r"at least 2 clusters; got 1 \('T01'\)"):
        crtstats.glmm("admitted ~ age_c", one, cluster="team_id")


def test_an_empty_arm_is_refused(trial: pd.DataFrame) -> None:
    control = trial[trial["arm"] == "control"]
    with pytest.raises(ModelSpecificationError, match="'arm' .*single value 'control'"):
        crtstats.glmm("admitted ~ arm + age_c", control, cluster="team_id")


def test_an_empty_categorical_level_is_refused(trial: pd.DataFrame) -> None:
    control = trial[trial["arm"] == "control"].assign(
        arm=lambda d: pd.Categorical(d["arm"], categories=["control", "intervention"]))
    with pytest.raises(ModelSpecificationError, match="term 'arm' .*takes the single value"):
        crtstats.glmm("admitted ~ arm", control, cluster="team_id")


def test_a_cluster_with_one_row_is_fitted() -> None:
    """A cluster of one row is identified: it informs beta and, beside the others, sigma
    (glmer fits it too); no warning is due."""
    data = _binary()
    single = data[data["team"] != "t3"]
    single = pd.concat([single, data[data["team"] == "t3"].iloc[:1]])
    res = crtstats.glmm("y ~ arm + x", single, cluster="team")
    assert res.converged and res.warnings == ()
    assert res.n_clusters == 20


def test_one_binary_row_per_cluster_is_refused() -> None:
    """glmer fits it and reports a singular fit; the random intercept is not identified
    for 0/1 data with one row per cluster, so crtstats refuses it."""
    data = _binary().assign(team=lambda d: [f"r{i}" for i in range(len(d))])
    with pytest.raises(ModelSpecificationError, match="single 0/1 row: a random intercept"):
        crtstats.glmm("y ~ arm + x", data, cluster="team")


def test_one_count_row_per_cluster_is_an_observation_level_effect(
    counts: pd.DataFrame,
) -> None:
    """For counts, one row per cluster is an observation-level random effect
    (over-dispersion), identified and fitted as glmer does."""
    olre = counts.assign(row=[f"r{i}" for i in range(len(counts))])
    res = crtstats.glmm("admissions ~ arm", olre, cluster="row", family="poisson",
                        offset="log_users", ddf="z")
    assert res.converged and res.variance_components["cluster"] > 0.01


# -- the outcome ---------------------------------------------------------------------
@pytest.mark.parametrize(("value", "shown"), [(0, "0"), (1, "1")])
def test_a_constant_binary_outcome_is_refused(trial: pd.DataFrame, value: int,
                                              shown: str) -> None:
    with pytest.raises(ModelSpecificationError, match=f"response is {shown} in all 1417 rows"):
        crtstats.glmm("admitted ~ arm", trial.assign(admitted=value), cluster="team_id")


def test_all_successes_with_trials_is_refused() -> None:
    cbpp = pd.read_csv(DATA / "glmm_cbpp.csv")
    with pytest.raises(ModelSpecificationError, match="equal to trials in all"):
        crtstats.glmm("incidence ~ period", cbpp.assign(incidence=cbpp["size"]),
                      cluster="herd", trials="size")


@pytest.mark.parametrize("family", ["poisson", "negative_binomial"])
def test_all_zero_counts_are_refused(counts: pd.DataFrame, family: str) -> None:
    with pytest.raises(ModelSpecificationError, match="response is 0 in all 50 rows"):
        crtstats.glmm("admissions ~ arm", counts.assign(admissions=0), cluster="team_id",
                      family=family, offset="log_users")  # type: ignore[arg-type]


def test_perfect_prediction_by_a_covariate_is_warned() -> None:
    data = _binary()
    data["y"] = (data["x"] > 0.3).astype(int)
    with pytest.warns(SeparationWarning, match=r"estimates of \[.*'x'\]"), \
            pytest.warns(ConvergenceWarning, match="did not converge"):
        res = crtstats.glmm("y ~ arm + x", data, cluster="team")
    assert [w.category for w in res.warnings][0] is SeparationWarning
    assert not res.converged


def test_quasi_separation_in_one_arm_is_warned_and_recorded(trial: pd.DataFrame) -> None:
    none = trial.assign(admitted=np.where(trial["arm"] == "intervention", 0,
                                          trial["admitted"]))
    with pytest.warns(SeparationWarning, match=r"arm\[T.intervention\]"):
        res = crtstats.glmm("admitted ~ arm + age_c", none, cluster="team_id")
    assert [w.category for w in res.warnings] == [SeparationWarning]
    assert "separation" in res.warnings[0]


def test_a_zero_variance_covariate_is_refused(trial: pd.DataFrame) -> None:
    with pytest.raises(ModelSpecificationError, match=r"rank deficient.*\['const'\]"):
        crtstats.glmm("admitted ~ arm + const", trial.assign(const=2.5), cluster="team_id")


def test_constant_within_clusters_outcome_is_not_a_silent_fit() -> None:
    rng = np.random.default_rng(1)
    data = pd.DataFrame({"team": np.repeat([f"t{i}" for i in range(10)], 20),
                         "x": rng.normal(size=200), "y": np.repeat([0, 1] * 5, 20)})
    with pytest.warns(ConvergenceWarning, match="cluster SD is diverging"):
        res = crtstats.glmm("y ~ x", data, cluster="team")
    assert ConvergenceWarning in [w.category for w in res.warnings]


# -- missing and infinite values -----------------------------------------------------
def test_missing_covariates_are_excluded_with_a_warning(trial: pd.DataFrame) -> None:
    holes = trial.assign(age_c=trial["age_c"].where(trial.index % 100 != 0))
    with pytest.warns(ExcludedRowsWarning, match="15 of 1417 row"):
        res = crtstats.glmm("admitted ~ arm + age_c", holes, cluster="team_id")
    assert res.nobs == 1402 and res.info["n_excluded"] == 15
    assert [w.category for w in res.warnings] == [ExcludedRowsWarning]


def test_an_infinite_covariate_is_refused(trial: pd.DataFrame) -> None:
    bad = trial.assign(age_c=np.where(trial.index == 9, np.inf, trial["age_c"]))
    with pytest.raises(ModelSpecificationError,
                       match=r"model column 'age_c' of .* is not finite"):
        crtstats.glmm("admitted ~ arm + age_c", bad, cluster="team_id")


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_a_non_finite_offset_is_refused_or_excluded(counts: pd.DataFrame,
                                                    value: float) -> None:
    bad = counts.assign(log_users=np.where(counts.index == 4, value, counts["log_users"]))
    if np.isnan(value):
        with pytest.warns(ExcludedRowsWarning, match="1 of 50 row"):
            res = crtstats.glmm("admissions ~ arm", bad, cluster="team_id",
                                family="poisson", offset="log_users")
        assert res.nobs == 49
    else:
        with pytest.raises(ModelSpecificationError, match="offset column 'log_users' must"):
            crtstats.glmm("admissions ~ arm", bad, cluster="team_id", family="poisson",
                          offset="log_users")


@pytest.mark.parametrize("value", [0.0, -3.0, np.inf])
def test_a_bad_exposure_is_refused(counts: pd.DataFrame, value: float) -> None:
    bad = counts.assign(n_users=np.where(counts.index == 4, value, counts["n_users"]))
    with pytest.raises(ModelSpecificationError, match="exposure column 'n_users' must be"):
        crtstats.glmm("admissions ~ arm", bad, cluster="team_id", family="poisson",
                      exposure="n_users")


# -- offsets and exposures -----------------------------------------------------------
def test_exposure_is_the_logged_offset(counts: pd.DataFrame) -> None:
    by_offset = crtstats.glmm("admissions ~ arm * period", counts, cluster="team_id",
                              family="negative_binomial", offset="log_users")
    by_exposure = crtstats.glmm("admissions ~ arm * period", counts, cluster="team_id",
                                family="negative_binomial", exposure="n_users")
    # the data agree to the 15 digits of the stored log(n_users); the fits to the
    # optimiser's tolerance (Newton decrement 1e-10: about 1e-5 standard errors)
    np.testing.assert_allclose(by_exposure.params, by_offset.params, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(by_exposure.std_errors, by_offset.std_errors, rtol=1e-5)


def test_a_raw_offset_is_warned(counts: pd.DataFrame) -> None:
    with pytest.warns(ExposureWarning, match="offset column 'n_users' holds only whole"):
        res = crtstats.glmm("admissions ~ arm", counts, cluster="team_id",
                            family="poisson", offset="n_users")
    assert ExposureWarning in [w.category for w in res.warnings]


@pytest.mark.parametrize("shift", [1e6, -1e4, 13.8])
def test_shifting_the_offset_moves_only_the_intercept(counts: pd.DataFrame,
                                                      shift: float) -> None:
    base = crtstats.glmm("admissions ~ arm * period", counts, cluster="team_id",
                         family="poisson", offset="log_users")
    moved = crtstats.glmm("admissions ~ arm * period",
                          counts.assign(log_users=counts["log_users"] + shift),
                          cluster="team_id", family="poisson", offset="log_users")
    # the optimiser's tolerance, relative to the intercept's size after the shift
    assert moved.params.iloc[0] == pytest.approx(base.params.iloc[0] - shift,
                                                 rel=1e-9, abs=1e-6)
    np.testing.assert_allclose(moved.params.iloc[1:], base.params.iloc[1:], rtol=1e-6,
                               atol=1e-7)
    np.testing.assert_allclose(moved.std_errors, base.std_errors, rtol=1e-5)
    assert moved.variance_components["cluster"] == pytest.approx(
        base.variance_components["cluster"], rel=1e-5)


def test_a_huge_exposure_does_not_break_the_fit(counts: pd.DataFrame) -> None:
    """Exposure 1e6 per person-row (rates per million): only the intercept moves."""
    base = crtstats.glmm("admissions ~ arm * period", counts, cluster="team_id",
                         family="negative_binomial", exposure="n_users")
    big = crtstats.glmm("admissions ~ arm * period",
                        counts.assign(n_users=counts["n_users"] * 1e6),
                        cluster="team_id", family="negative_binomial", exposure="n_users")
    assert big.converged
    assert big.params.iloc[0] == pytest.approx(base.params.iloc[0] - np.log(1e6), abs=1e-6)
    np.testing.assert_allclose(big.params.iloc[1:], base.params.iloc[1:], rtol=1e-6,
                               atol=1e-7)
    np.testing.assert_allclose(big.std_errors, base.std_errors, rtol=1e-5)


def test_binary_offset_shift_moves_only_the_intercept() -> None:
    data = _binary().assign(off=0.0)
    base = crtstats.glmm("y ~ arm + x", data, cluster="team")
    moved = crtstats.glmm("y ~ arm + x", data.assign(off=50.5), cluster="team", offset="off")
    # the optimiser's tolerance (as above)
    assert moved.params.iloc[0] == pytest.approx(base.params.iloc[0] - 50.5, abs=1e-5)
    np.testing.assert_allclose(moved.params.iloc[1:], base.params.iloc[1:], rtol=1e-5)


def test_a_boundary_fit_is_recorded() -> None:
    data = pd.read_csv(DATA / "glmm_flat01.csv")
    with pytest.warns(BoundaryFitWarning, match="sigma = "):
        res = crtstats.glmm("y ~ x", data, cluster="team_id")
    assert [w.category for w in res.warnings] == [BoundaryFitWarning]
