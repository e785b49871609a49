"""crtstats.glmm: options, input errors, warnings, df and the result contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

import crtstats
from crtstats.exceptions import (
    BoundaryFitWarning,
    ConvergenceWarning,
    ExcludedRowsWarning,
    FewClustersWarning,
    InvalidParameterError,
    MissingColumnError,
    ModelSpecificationError,
    SeparationWarning,
)
from crtstats.models import _glmm

DATA = Path(__file__).resolve().parent / "reference" / "data"


@pytest.fixture(scope="module")
def trial() -> pd.DataFrame:
    return pd.read_csv(DATA / "glmm_trial01.csv")


@pytest.fixture(scope="module")
def counts() -> pd.DataFrame:
    return pd.read_csv(DATA / "glmm_counts_nb.csv")


@pytest.fixture(scope="module")
def cbpp() -> pd.DataFrame:
    return pd.read_csv(DATA / "glmm_cbpp.csv")


FORMULA = "admitted ~ arm + stratum + pre_prop + age_c"


@pytest.fixture(scope="module")
def trial_fit(trial: pd.DataFrame) -> crtstats.CRTResult:
    return crtstats.glmm(FORMULA, trial, cluster="team_id")


# -- options -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"family": "gaussian"}, "family must be one of 'binomial'.*got 'gaussian'"),
        ({"ddf": "kenward-roger"}, "ddf must be one of 'between-within', 'z'"),
        ({"nagq": 0}, "nagq must be a whole number from 1.*got 0"),
        ({"nagq": 101}, "got 101"),
        ({"nagq": 2.0}, "got 2.0"),
        ({"nagq": True}, "got True"),
        ({"family": "poisson", "trials": "size"}, "trials is for the binomial family only"),
    ],
)
def test_bad_options_are_named(cbpp: pd.DataFrame, kwargs: dict[str, object],
                               match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        crtstats.glmm("incidence ~ period", cbpp, cluster="herd", **kwargs)  # type: ignore[arg-type]


def test_cluster_must_be_a_column_name(cbpp: pd.DataFrame) -> None:
    with pytest.raises(InvalidParameterError, match="glmm: cluster must be a column name"):
        crtstats.glmm("incidence ~ period", cbpp, cluster=None,  # type: ignore[arg-type]
                      trials="size")


def test_options_are_keyword_only(cbpp: pd.DataFrame) -> None:
    with pytest.raises(TypeError):
        crtstats.glmm("incidence ~ period", cbpp, "herd")  # type: ignore[misc]


# -- bad input -----------------------------------------------------------------------
def test_binomial_response_must_be_zero_one(cbpp: pd.DataFrame) -> None:
    with pytest.raises(ModelSpecificationError, match=r"must be 0 or 1.*row 0 has 2"):
        crtstats.glmm("incidence ~ period", cbpp, cluster="herd")


def test_successes_cannot_exceed_trials(cbpp: pd.DataFrame) -> None:
    bad = cbpp.assign(incidence=np.where(cbpp.index == 3, 9, cbpp["incidence"]))
    with pytest.raises(ModelSpecificationError,
                       match=r"from 0 to trials in every row; row 3 has 9 \(trials 5\)"):
        crtstats.glmm("incidence ~ period", bad, cluster="herd", trials="size")


def test_missing_trials_are_an_error_not_a_silent_drop(cbpp: pd.DataFrame) -> None:
    bad = cbpp.assign(size=cbpp["size"].where(cbpp.index != 5))
    with pytest.raises(ModelSpecificationError, match=r"trials column 'size'.*row 5"):
        crtstats.glmm("incidence ~ period", bad, cluster="herd", trials="size")
    with pytest.raises(MissingColumnError, match=r"no column\(s\) \['n'\] used by trials="):
        crtstats.glmm("incidence ~ period", cbpp, cluster="herd", trials="n")


def test_counts_must_be_non_negative_whole_numbers(counts: pd.DataFrame) -> None:
    bad = counts.assign(admissions=counts["admissions"].astype(float))
    bad.loc[7, "admissions"] = 2.5
    with pytest.raises(ModelSpecificationError, match=r"non-negative whole number.*row 7"):
        crtstats.glmm("admissions ~ arm", bad, cluster="team_id", family="poisson")


def test_offset_must_be_finite(counts: pd.DataFrame) -> None:
    bad = counts.assign(log_users=np.where(counts.index == 4, -np.inf, counts["log_users"]))
    with pytest.raises(ModelSpecificationError, match="offset column 'log_users' must be"):
        crtstats.glmm("admissions ~ arm", bad, cluster="team_id", family="poisson",
                      offset="log_users")


def test_needs_two_clusters_and_full_rank(trial: pd.DataFrame) -> None:
    one = trial[trial["team_id"] == "T01"]
    with pytest.raises(ModelSpecificationError, match="at least 2 clusters; got 1"):
        crtstats.glmm("admitted ~ age_c", one, cluster="team_id")
    aliased = trial.assign(age2=2 * trial["age_c"])
    with pytest.raises(ModelSpecificationError, match=r"rank deficient.*\['age2'\]"):
        crtstats.glmm("admitted ~ age_c + age2", aliased, cluster="team_id")


def test_unknown_column_is_named(trial: pd.DataFrame) -> None:
    with pytest.raises(ModelSpecificationError, match="no column"):
        crtstats.glmm("admitted ~ arm", trial, cluster="team")


def test_between_within_needs_positive_df(trial: pd.DataFrame) -> None:
    few = trial[trial["team_id"].isin(["T01", "T02", "T03", "T04", "T05", "T06"])]
    with pytest.raises(ModelSpecificationError, match="between-within df .* is 0"):
        crtstats.glmm("admitted ~ arm + stratum + pre_prop + age_c", few.assign(
            stratum=few["team_id"].map({"T01": "a", "T02": "a", "T03": "b", "T04": "b",
                                        "T05": "c", "T06": "d"})), cluster="team_id")


# -- degrees of freedom --------------------------------------------------------------
def test_between_within_df(trial: pd.DataFrame, trial_fit: crtstats.CRTResult) -> None:
    g, n = trial["team_id"].nunique(), len(trial)
    # intercept, arm, 4 stratum contrasts and pre_prop are constant within teams
    df = trial_fit.df
    assert set(df.drop("age_c")) == {g - 7}
    assert df["age_c"] == n - g - 1
    assert trial_fit.df_method == "between-within"
    assert trial_fit.info["term_level"]["age_c"] == "within"
    arm_age = trial_fit.contrast({"arm[T.intervention]": 1, "age_c": 1})
    assert arm_age.df == g - 7  # the smallest df of the terms involved
    t = trial_fit.tstats["arm[T.intervention]"]
    assert trial_fit.pvalues["arm[T.intervention]"] == pytest.approx(
        2 * stats.t.sf(abs(t), g - 7), rel=1e-12)


def test_wald_z_by_name(trial: pd.DataFrame, trial_fit: crtstats.CRTResult) -> None:
    with pytest.warns(FewClustersWarning, match="only 30 clusters"):
        res = crtstats.glmm(FORMULA, trial, cluster="team_id", ddf="z")
    assert res.df_method == "z"
    assert np.all(np.isinf(res.df))
    np.testing.assert_allclose(res.params, trial_fit.params)
    z = res.tstats.to_numpy()
    np.testing.assert_allclose(res.pvalues, 2 * stats.norm.sf(np.abs(z)))


# -- result contract -----------------------------------------------------------------
def test_result_contents(trial: pd.DataFrame, trial_fit: crtstats.CRTResult) -> None:
    res = trial_fit
    assert res.model == "glmm" and res.family == "binomial" and res.link == "logit"
    assert res.nobs == len(trial)
    assert res.n_clusters == 30
    assert res.converged
    sigma2 = res.variance_components["cluster"]
    assert res.icc == pytest.approx(sigma2 / (sigma2 + np.pi**2 / 3))
    odds = res.to_frame(exponentiate=True).set_index("term")
    plain = res.to_frame().set_index("term")
    np.testing.assert_allclose(odds["estimate"], np.exp(plain["estimate"]))
    np.testing.assert_allclose(odds["conf_low"], np.exp(plain["conf_low"]))
    assert res.warnings == ()


def test_negative_binomial_result(counts: pd.DataFrame) -> None:
    res = crtstats.glmm("admissions ~ arm * period", counts, cluster="team_id",
                        family="negative_binomial", offset="log_users")
    assert res.link == "log" and res.icc is None
    assert set(res.variance_components.index) == {"cluster", "dispersion"}
    rates = res.to_frame(exponentiate=True)
    assert np.all(rates["estimate"] > 0)
    # arm is cluster-level; period and the interaction vary within teams
    assert res.df["arm[T.intervention]"] == 25 - 2
    assert res.df["period[T.pre]"] == 50 - 25 - 2


def test_rows_with_missing_values_are_counted(trial: pd.DataFrame,
                                              trial_fit: crtstats.CRTResult) -> None:
    holes = trial.copy()
    holes.loc[[3, 10, 11], "age_c"] = np.nan
    with pytest.warns(ExcludedRowsWarning, match="3 of 1417 row"):
        res = crtstats.glmm(FORMULA, holes, cluster="team_id")
    assert [w.category for w in res.warnings] == [ExcludedRowsWarning]
    assert res.nobs == trial_fit.nobs - 3
    assert res.info["n_excluded"] == 3


# -- warnings ------------------------------------------------------------------------
def test_separation_is_warned(trial: pd.DataFrame) -> None:
    separated = trial.assign(admitted=np.where(trial["arm"] == "intervention", 0,
                                               trial["admitted"]))
    with pytest.warns(SeparationWarning, match=r"arm\[T.intervention\]"):
        res = crtstats.glmm("admitted ~ arm + age_c", separated, cluster="team_id")
    assert res.params["arm[T.intervention]"] < -5
    assert [w.category for w in res.warnings] == [SeparationWarning]


def test_separation_in_counts_is_warned(counts: pd.DataFrame) -> None:
    """No admissions at all in control teams: the control rate is zero, arm -> +inf."""
    zero = counts.assign(admissions=np.where(counts["arm"] == "control", 0,
                                             counts["admissions"]))
    with pytest.warns(SeparationWarning, match=r"arm\[T.intervention\]"):
        res = crtstats.glmm("admissions ~ arm + period", zero, cluster="team_id",
                            family="poisson", offset="log_users")
    assert res.params["arm[T.intervention]"] > 5


def test_boundary_is_warned() -> None:
    data = pd.read_csv(DATA / "glmm_flat01.csv")
    with pytest.warns(BoundaryFitWarning, match="sigma = "):
        res = crtstats.glmm("y ~ x", data, cluster="team_id", nagq=5)
    assert res.variance_components["cluster"] < 1e-8


def test_negative_binomial_without_overdispersion_is_a_boundary_fit() -> None:
    """Counts with no overdispersion: theta runs off to infinity.

    The example's teams, periods and caseloads, with each count set to its expected
    value under a Poisson model with a team effect (rounded): less dispersed than
    Poisson by construction, so the NB2 dispersion MLE is on its boundary.
    """
    trial = crtstats.datasets.load_example()
    use = trial.service_use.merge(trial.teams[["team_id", "arm"]], on="team_id")
    team = use["team_id"].str[1:].astype(int).to_numpy()
    treated = ((use["arm"] == "intervention") & (use["period"] == "follow_up")).to_numpy(bool)
    rate = np.exp(-1.4 + 0.4 * np.sin(team) + np.log(0.7) * treated)
    use["admissions"] = np.rint(use["n_users"].to_numpy() * rate).astype(int)
    use["log_users"] = np.log(use["n_users"])
    kwargs = {"cluster": "team_id", "offset": "log_users"}
    with pytest.warns(BoundaryFitWarning, match="dispersion is on its boundary"):
        nb = crtstats.glmm("admissions ~ arm * period", use, family="negative_binomial",
                           **kwargs)  # type: ignore[arg-type]
    pois = crtstats.glmm("admissions ~ arm * period", use, family="poisson",
                         **kwargs)  # type: ignore[arg-type]
    assert nb.converged
    assert nb.variance_components["dispersion"] > 1e6
    # the NB2 likelihood tends to the Poisson one; tolerances allow for theta < infinity
    np.testing.assert_allclose(nb.params, pois.params, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(nb.std_errors, pois.std_errors, rtol=1e-3)
    assert nb.loglik == pytest.approx(pois.loglik, abs=1e-4)


def test_all_or_nothing_clusters_are_not_a_silent_fit() -> None:
    """Every team all 0 or all 1: the team SD runs off to infinity."""
    rng = np.random.default_rng(1)
    data = pd.DataFrame({"team": np.repeat([f"t{i}" for i in range(10)], 20),
                         "x": rng.normal(size=200), "y": np.repeat([0, 1] * 5, 20)})
    with pytest.warns(ConvergenceWarning, match="cluster SD is diverging"):
        res = crtstats.glmm("y ~ x", data, cluster="team")
    assert not res.converged


def test_formula_without_fixed_effects_is_an_error(trial: pd.DataFrame) -> None:
    with pytest.raises(ModelSpecificationError, match="no fixed effects"):
        crtstats.glmm("admitted ~ 0", trial, cluster="team_id")


def test_non_convergence_is_warned(monkeypatch: pytest.MonkeyPatch,
                                   trial: pd.DataFrame) -> None:
    real = _glmm.maximise

    def stalled(problem, phi0, hess_inv0):  # type: ignore[no-untyped-def]
        out = real(problem, phi0, hess_inv0)
        return type(out)(**{**out.__dict__, "converged": False, "decrement": 0.5})

    monkeypatch.setattr(_glmm, "maximise", stalled)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        res = crtstats.glmm("admitted ~ arm", trial, cluster="team_id")
    assert not res.converged


# -- invariances ---------------------------------------------------------------------
@given(seed=st.integers(0, 2**32 - 1))
def test_row_order_and_cluster_labels_do_not_matter(seed: int) -> None:
    data = pd.read_csv(DATA / "glmm_cbpp.csv")
    base = crtstats.glmm("incidence ~ period", data, cluster="herd", trials="size")
    rng = np.random.default_rng(seed)
    shuffled = data.iloc[rng.permutation(len(data))]
    relabel = {h: f"x{v}" for h, v in zip(data["herd"].unique(),
                                          rng.permutation(data["herd"].nunique()),
                                          strict=True)}
    shuffled = shuffled.assign(herd=shuffled["herd"].map(relabel))
    res = crtstats.glmm("incidence ~ period", shuffled, cluster="herd", trials="size")
    np.testing.assert_allclose(res.params, base.params, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(res.std_errors, base.std_errors, rtol=1e-5)
    assert res.loglik == pytest.approx(base.loglik, abs=1e-8)
    ci = res.conf_int()
    assert np.all((ci["lower"] < res.params) & (res.params < ci["upper"]))
