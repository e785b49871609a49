"""crtstats.standardise against R (reference values in tests/reference/standardise.json).

``tests/reference/standardise.R`` fitted lme4's cbpp, a Poisson GLMM with exposure and
two geepack GEEs, and computed the standardised quantities in R: emmeans for the
conditional risks at b = 0, ``integrate()`` for the marginal risks, numDeriv for the
delta-method Jacobians and for the Hessian of glmer's deviance (the joint covariance
of beta and sigma). Tolerances, and why:

* Given R's parameters (``beta``, ``sigma`` and their covariance fed into our
  computation), risks, contrasts and SEs are the same functions of the same numbers:
  risks and contrasts to 1e-10 (our quadrature settles at 1e-12; R's integrate()
  is asked for 1e-13), SEs to 1e-6 relative (numDeriv's Richardson Jacobian of
  integrate() is accurate to ~1e-8 relative; emmeans' SEs are exact formulas, 1e-9).
* Our own fits against R's: the Laplace optima agree to ~5e-6 relative (see
  test_glmm_reference.py), so the risks agree to 1e-5 relative; the joint covariance
  (two finite-difference Hessians at slightly different optima) to 2e-4 relative.
* GEE: our fit equals geepack's to ~1e-9 (epsilon = 1e-12 in both), so risks to 1e-8
  and SEs to 1e-6 relative.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import crtstats
from crtstats.exceptions import (
    BoundaryFitWarning,
    FewClustersWarning,
    InvalidParameterError,
    MissingColumnError,
    ModelSpecificationError,
    SeparationWarning,
)
from crtstats.models._standardise import (
    StandardiseInputs,
    _constant_df,
    _inputs,
    standardise_arrays,
)
from crtstats.models._warn import WarningLog

REFERENCE = Path(__file__).resolve().parent / "reference"
REF: dict[str, Any] = json.loads((REFERENCE / "standardise.json").read_text())
DATA = REFERENCE / "data"


@cache
def cbpp() -> pd.DataFrame:
    return pd.read_csv(DATA / "glmm_cbpp.csv")


@cache
def cbpp_fit() -> crtstats.CRTResult:
    return crtstats.glmm("incidence ~ period", cbpp(), cluster="herd", trials="size")


@cache
def pois() -> pd.DataFrame:
    data = pd.read_csv(DATA / "glmm_counts_pois.csv")
    return data.assign(period=pd.Categorical(data["period"], ["follow_up", "pre"]))


@cache
def pois_fit() -> crtstats.CRTResult:
    return crtstats.glmm("admissions ~ arm + period", pois(), cluster="team_id",
                         family="poisson", offset="log_users")


@cache
def admissions() -> pd.DataFrame:
    return pd.read_csv(DATA / "gee_admissions.csv")


def frame_of(std: crtstats.models.StandardisedResult) -> pd.DataFrame:
    return std.to_frame().set_index(["quantity", "level"])


def at_r_parameters(result: crtstats.CRTResult, data: pd.DataFrame, by: str, type_: str,
                    theta: list[float], cov: np.ndarray) -> pd.DataFrame:
    """Our standardisation of the fit's rows evaluated at R's estimates and covariance."""
    inp, _, _ = _inputs(result, data, by, type_, WarningLog())
    inp = dataclasses.replace(inp, theta=np.asarray(theta, dtype=float),
                              cov=np.asarray(cov, dtype=float))
    _, _, frame, _ = standardise_arrays(inp, type_=type_, df_of=_constant_df(np.inf),
                                        level=0.95)
    return frame


def cbpp_theta() -> list[float]:
    ref = REF["cbpp"]
    return [*ref["beta"], ref["sigma"]]


# -- cbpp: conditional (emmeans type = "response") ----------------------------------
def test_cbpp_conditional_matches_emmeans_at_r_parameters() -> None:
    ref = REF["cbpp"]
    cov = np.zeros((5, 5))
    cov[:4, :4] = ref["vcov_beta"]  # emmeans uses vcov(fit); sigma does not enter at b = 0
    frame = at_r_parameters(cbpp_fit(), cbpp(), "period", "conditional", cbpp_theta(), cov)
    risk = frame[frame["quantity"] == "risk"]
    np.testing.assert_allclose(risk["estimate"], ref["conditional"]["risk"], rtol=1e-12)
    np.testing.assert_allclose(risk["std_error"], ref["conditional"]["se"], rtol=1e-9)
    for measure, key in [("risk difference", "rd"), ("risk ratio", "rr"), ("odds ratio", "or")]:
        rows = frame[frame["quantity"] == measure]
        np.testing.assert_allclose(rows["estimate"], ref["conditional"][key], rtol=1e-10)
        np.testing.assert_allclose(rows["std_error"], ref["conditional"][f"{key}_se"],
                                   rtol=1e-9)


# -- cbpp: marginal (exact integral), and why not bias.adjust -----------------------
def test_cbpp_marginal_matches_exact_integral_at_r_parameters() -> None:
    ref = REF["cbpp"]
    frame = at_r_parameters(cbpp_fit(), cbpp(), "period", "marginal", cbpp_theta(),
                            np.array(ref["joint_cov"]))
    risk = frame[frame["quantity"] == "risk"]
    np.testing.assert_allclose(risk["estimate"], ref["marginal"]["risk"], rtol=0, atol=1e-10)
    contrasts = frame[frame["quantity"] != "risk"]
    # R's order: RD for periods 2-4, then RR, then OR; ours: per period RD, RR, OR
    ours = contrasts.assign(order=np.tile([0, 1, 2], 3)).sort_values("order", kind="stable")
    np.testing.assert_allclose(ours["estimate"], ref["marginal"]["contrasts"], atol=1e-10)
    se_ref = np.array(ref["marginal"]["se"])
    np.testing.assert_allclose(risk["std_error"], se_ref[:4], rtol=1e-6)
    np.testing.assert_allclose(ours["std_error"], se_ref[4:], rtol=1e-6)


def test_cbpp_sigma_uncertainty_is_in_the_marginal_se() -> None:
    # holding sigma fixed moves the SEs of the marginal risks by 1-3% on cbpp (R shows
    # both); ours match the joint one (test above), so the difference is not ignored
    ref = REF["cbpp"]["marginal"]
    rel = np.abs(np.array(ref["se"]) / np.array(ref["se_sigma_fixed"]) - 1.0)
    assert np.max(rel[:4]) > 0.01


def test_bias_adjust_is_an_approximation() -> None:
    # emmeans' bias.adjust (second-order Taylor) differs from the exact integral by
    # ~2e-3 on cbpp: too much to report as the marginal risk
    ref = REF["cbpp"]["marginal"]
    diff = np.abs(np.array(ref["bias_adjusted"]) - np.array(ref["risk"]))
    assert np.max(diff) > 1e-3
    assert np.max(diff) < 1e-2


def test_cbpp_our_fit_matches_r() -> None:
    ref = REF["cbpp"]
    res = cbpp_fit()
    # our Laplace optimum and R's strict one agree to ~5e-6 relative
    np.testing.assert_allclose(res.param_values, ref["beta"], rtol=2e-5)
    assert abs(np.sqrt(res.details.cluster_variance) - ref["sigma"]) < 2e-5 * ref["sigma"]
    std = crtstats.standardise(res, cbpp(), by="period")
    np.testing.assert_allclose(std.estimates, ref["marginal"]["risk"], rtol=1e-5)
    risk = std.to_frame().query("quantity == 'risk'")
    np.testing.assert_allclose(risk["std_error"], ref["marginal"]["se"][:4], rtol=2e-4)
    cs = crtstats.standardise(res, cbpp(), by="period", type="cluster-specific")
    np.testing.assert_allclose(cs.estimates, ref["cluster_specific"]["risk"], rtol=1e-5)


def test_cbpp_joint_covariance_matches_r_hessian() -> None:
    from crtstats.models._standardise_design import counterfactual_designs
    from crtstats.models._standardise_glmm import glmm_pieces
    res, data = cbpp_fit(), cbpp()
    cf = counterfactual_designs("incidence ~ period", data, by="period",
                                names=res.param_names, cluster="herd", offset=None,
                                exposure=None, binary=True)
    pieces = glmm_pieces(res, data, cf)
    ref = np.array(REF["cbpp"]["joint_cov"])
    # two finite-difference Hessians at optima ~5e-6 apart
    np.testing.assert_allclose(pieces.cov, ref, rtol=2e-4, atol=1e-7)


# -- Poisson GLMM with exposure ------------------------------------------------------
def test_poisson_glmm_rates_at_r_parameters() -> None:
    ref = REF["poisson_glmm"]
    theta = [*ref["beta"], ref["sigma"]]
    frame = at_r_parameters(pois_fit(), pois(), "arm", "marginal", theta,
                            np.array(ref["joint_cov"]))
    # the closed form exp(eta + sigma^2 / 2) equals R's integral
    assert abs(ref["closed_form_check"][0] / ref["closed_form_check"][1] - 1) < 1e-10
    rate = frame[frame["quantity"] == "rate"]
    np.testing.assert_allclose(rate["estimate"], ref["rate"], rtol=1e-12)
    rest = frame[frame["quantity"] != "rate"]
    np.testing.assert_allclose(rest["estimate"], ref["contrasts"], rtol=1e-12)
    np.testing.assert_allclose([*rate["std_error"], *rest["std_error"]], ref["se"],
                               rtol=1e-6)


def test_poisson_glmm_our_fit() -> None:
    ref = REF["poisson_glmm"]
    std = crtstats.standardise(pois_fit(), pois(), by="arm")
    np.testing.assert_allclose(std.estimates, ref["rate"], rtol=1e-5)
    assert std.kind == "rate"
    assert list(std.to_frame()["quantity"]) == ["rate", "rate", "rate difference",
                                                "rate ratio"]


# -- GEE ----------------------------------------------------------------------------
@pytest.mark.parametrize(("key", "formula", "family", "kind"), [
    ("gee_binomial", "admitted ~ arm + stratum + pre_prop", "binomial", "risk"),
    ("gee_poisson", "bed_days ~ arm + pre_prop + sex", "poisson", "rate"),
])
def test_gee_matches_hand_computation(key: str, formula: str, family: str, kind: str) -> None:
    ref = REF[key]
    data = admissions()
    with warnings.catch_warnings():
        # geepack's uncorrected sandwich on 25 clusters, on purpose; the binomial
        # exchangeable correlation is near its lower bound (both warned by gee)
        warnings.simplefilter("ignore", FewClustersWarning)
        warnings.filterwarnings("ignore", "the exchangeable working correlation",
                                BoundaryFitWarning)
        res = crtstats.gee(formula, data, cluster="team_id", family=family,  # type: ignore[arg-type]
                           cov_struct="exchangeable", cov_type="robust")
    np.testing.assert_allclose(res.param_values, ref["beta"], rtol=1e-7)
    std = crtstats.standardise(res, data, by="arm")
    frame = std.to_frame()
    levels = frame[frame["quantity"] == kind]
    rest = frame[frame["quantity"] != kind]
    # geepack and our GEE agree to ~1e-9; the standardisation is the same formula
    np.testing.assert_allclose(levels["estimate"], ref["risk"], rtol=1e-8)
    np.testing.assert_allclose(levels["std_error"], ref["se"], rtol=1e-6)
    np.testing.assert_allclose(rest["estimate"], ref["contrasts"], rtol=1e-8)
    np.testing.assert_allclose(rest["std_error"], ref["contrast_se"], rtol=1e-6)
    assert set(frame["df"]) == {float(res.df_values[0])}
    assert ref["gradient_check"] < 1e-8  # R's analytic gradient equals numDeriv's


# -- invariants ---------------------------------------------------------------------
@cache
def example() -> pd.DataFrame:
    trial = crtstats.datasets.load_example()
    adm = trial.admissions.merge(trial.teams[["team_id", "arm", "stratum"]])
    return adm[adm["period"] == "follow_up"].reset_index(drop=True)


@cache
def example_fit() -> crtstats.CRTResult:
    return crtstats.glmm("admitted ~ arm + stratum + age", example(), cluster="team_id")


@pytest.mark.parametrize("type_", ["marginal", "conditional", "cluster-specific"])
def test_invariants(type_: str) -> None:
    std = crtstats.standardise(example_fit(), example(), by="arm", type=type_)  # type: ignore[arg-type]
    frame = frame_of(std)
    rd = frame.xs("risk difference", level="quantity")["estimate"]
    assert np.all((rd >= -1) & (rd <= 1))
    assert np.all(frame.xs("risk ratio", level="quantity")["estimate"] > 0)
    assert np.all(frame.xs("odds ratio", level="quantity")["estimate"] > 0)
    assert np.all((frame["conf_low"] <= frame["estimate"])
                  & (frame["estimate"] <= frame["conf_high"]))
    assert np.all((std.estimates > 0) & (std.estimates < 1))
    assert std.population == "participant-average"
    assert std.conditioning == ("marginal" if type_ == "marginal" else "conditional")
    assert set(frame["measure"]) == {"risk", "risk difference", "risk ratio", "odds ratio"}


def test_row_order_invariance() -> None:
    data = example()
    shuffled = data.sample(frac=1.0, random_state=3)
    fit = crtstats.glmm("admitted ~ arm + stratum + age", shuffled, cluster="team_id")
    a = crtstats.standardise(example_fit(), data).to_frame()
    b = crtstats.standardise(fit, shuffled).to_frame()
    # the two fits are the same optimum reached from rows in another order
    np.testing.assert_allclose(a["estimate"], b["estimate"], rtol=1e-6)
    np.testing.assert_allclose(a["std_error"], b["std_error"], rtol=1e-4)


def test_marginal_between_conditional_and_half() -> None:
    # averaging over the random effect pulls a risk below 1/2 towards 1/2
    marg = crtstats.standardise(example_fit(), example())
    cond = crtstats.standardise(example_fit(), example(), type="conditional")
    assert np.all(cond.estimates < 0.5)
    assert np.all(marg.estimates > cond.estimates)


def test_result_is_immutable() -> None:
    std = crtstats.standardise(example_fit(), example())
    with pytest.raises(ValueError):
        std.estimates[0] = 0.5
    with pytest.raises(dataclasses.FrozenInstanceError):
        std.type = "conditional"  # type: ignore[misc]
    frame = std.to_frame()
    frame.loc[0, "estimate"] = -1.0
    assert std.to_frame().loc[0, "estimate"] != -1.0


def test_bootstrap_is_seeded_and_close_to_delta() -> None:
    fit, data = example_fit(), example()
    a = crtstats.standardise(fit, data, bootstrap=400, seed=11).to_frame()
    b = crtstats.standardise(fit, data, bootstrap=400, seed=11).to_frame()
    pd.testing.assert_frame_equal(a, b)
    delta = crtstats.standardise(fit, data).to_frame()
    # 400 draws: the SD of an SD estimate is ~3.5%; 15% is a gross-error check
    np.testing.assert_allclose(a["std_error"], delta["std_error"], rtol=0.15)
    assert crtstats.standardise(fit, data, bootstrap=400, seed=11).method == "bootstrap"


def test_negative_binomial_marginal_rate() -> None:
    data = pd.read_csv(DATA / "glmm_counts_nb.csv")
    fit = crtstats.glmm("admissions ~ arm + period", data, cluster="team_id",
                        family="negative_binomial", offset="log_users")
    marg = crtstats.standardise(fit, data)
    cond = crtstats.standardise(fit, data, type="conditional")
    sigma2 = fit.details.cluster_variance
    # log link: the marginal mean is the conditional one times exp(sigma^2 / 2)
    np.testing.assert_allclose(marg.estimates, cond.estimates * np.exp(sigma2 / 2),
                               rtol=1e-12)
    rr = frame_of(marg).xs("rate ratio", level="quantity")["estimate"].iloc[0]
    np.testing.assert_allclose(rr, np.exp(fit.params["arm[T.intervention]"]), rtol=1e-12)


def test_cluster_level_weighted_matches_its_analysis() -> None:
    data = example()
    res = crtstats.cluster_level(data, outcome="admitted", arm="arm", cluster="team_id",
                                 outcome_type="binary", weights="weighted")
    std = crtstats.standardise(res, data)
    rd = frame_of(std).loc[("risk difference", "intervention vs control")]
    # the same weighted means and pooled variance as the analysis's own t-test
    assert rd["estimate"] == pytest.approx(res.params["difference"], rel=1e-12)
    assert rd["std_error"] == pytest.approx(res.std_errors["difference"], rel=1e-12)
    control = data[data["arm"] == "control"]["admitted"].mean()
    assert std.risks["control"] == pytest.approx(control, rel=1e-12)
    assert std.population == "participant-average"
    unweighted = crtstats.cluster_level(data, outcome="admitted", arm="arm",
                                        cluster="team_id", outcome_type="binary")
    assert crtstats.standardise(unweighted, data).population == "cluster-average"


# -- degenerate cases and errors -----------------------------------------------------
def test_separated_fit_gives_nan_and_a_warning() -> None:
    rng = np.random.default_rng(5)
    teams = np.repeat(np.arange(20), 15)
    arm = np.where(teams < 10, "control", "intervention")
    y = np.where(arm == "control", 0, rng.integers(0, 2, teams.size))
    data = pd.DataFrame({"y": y, "arm": arm, "team": teams})
    with warnings.catch_warnings():
        # no events in one arm: the cluster variance also goes to 0 (tested elsewhere)
        warnings.simplefilter("ignore", BoundaryFitWarning)
        with pytest.warns(SeparationWarning):
            fit = crtstats.glmm("y ~ arm", data, cluster="team")
        with pytest.warns(SeparationWarning, match="separation"):
            std = crtstats.standardise(fit, data)
    assert np.all(np.isnan(std.to_frame()["std_error"]))
    assert any("separation" in w for w in std.warnings)


def test_boundary_fit_warns() -> None:
    data = pd.read_csv(DATA / "glmm_flat01.csv")
    with pytest.warns(BoundaryFitWarning):
        fit = crtstats.glmm("y ~ x", data, cluster="team_id")
    data = data.assign(grp=np.where(data["x"] > data["x"].median(), "b", "a"))
    with pytest.warns(BoundaryFitWarning):
        fit = crtstats.glmm("y ~ grp", data, cluster="team_id")
    with pytest.warns(BoundaryFitWarning, match="boundary"):
        std = crtstats.standardise(fit, data, by="grp")
    with pytest.warns(BoundaryFitWarning, match="boundary"):
        cond = crtstats.standardise(fit, data, by="grp", type="conditional")
    np.testing.assert_allclose(std.estimates, cond.estimates, rtol=1e-6)


def test_errors() -> None:
    fit, data = example_fit(), example()
    with pytest.raises(MissingColumnError):
        crtstats.standardise(fit, data.drop(columns="arm"))
    with pytest.raises(ModelSpecificationError, match="not a variable of the model"):
        crtstats.standardise(fit, data.assign(other="a"), by="other")
    with pytest.raises(ModelSpecificationError):
        crtstats.standardise(fit, data[data["arm"] == "control"])
    with pytest.raises(ModelSpecificationError):
        crtstats.standardise(fit, data.iloc[:-5])
    with pytest.raises(InvalidParameterError, match="type must be one of"):
        crtstats.standardise(fit, data, type="average")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="bootstrap"):
        crtstats.standardise(fit, data, bootstrap=10)
    gee = crtstats.gee("admitted ~ arm", data, cluster="team_id", family="binomial")
    with pytest.raises(InvalidParameterError, match="population-averaged"):
        crtstats.standardise(gee, data, type="conditional")
    with pytest.raises(InvalidParameterError, match="glmm, gee and cluster_level"):
        crtstats.standardise(crtstats.ols("admitted ~ arm", data, cluster="team_id"), data)


def test_quadrature_is_exact() -> None:
    from scipy import integrate, special, stats

    from crtstats.models._standardise_quad import marginal_logit
    eta = np.array([-9.0, -2.5, 0.0, 1.3, 6.0])
    for sigma in (0.2, 1.0, 2.5):
        got = marginal_logit(eta, sigma)
        assert got.exact
        for k, e in enumerate(eta):
            want = integrate.quad(lambda z, e=e, s=sigma: special.expit(e + s * z)
                                  * stats.norm.pdf(z), -40, 40, epsabs=0, epsrel=1e-13,
                                  limit=400)[0]
            assert abs(got.value[k] - want) <= 1e-10 * want


def test_inputs_object_is_usable_directly() -> None:
    inp = StandardiseInputs(
        link="logit", kind="risk", labels=("a", "b"),
        matrices=(np.array([[1.0, 0.0]]), np.array([[1.0, 1.0]])), offset=np.zeros(1),
        weights=np.ones(1), groups=np.zeros(1, dtype=np.intp),
        theta=np.array([0.0, 0.5, 0.0]), cov=np.eye(3) * 0.01, n_beta=2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r, _, frame, _ = standardise_arrays(inp, type_="marginal",
                                            df_of=_constant_df(10.0), level=0.95)
    assert r[0] == pytest.approx(0.5, abs=1e-15)  # symmetric: expit(0 + sigma z) averages 1/2
    assert frame.shape[0] == 5
