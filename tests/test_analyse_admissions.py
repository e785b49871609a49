"""crtstats.analyse_admissions on the example trial.

The person-level rows are checked against the fitters they come from (whose own
reference tests compare them with R) and the primary GLMM against glmmTMB (REML) and
its maximum-likelihood fit against lme4 and glmmTMB;
the team-level negative binomial rate ratios are checked against MASS::glm.nb and the
two-stage rows against the residual method in base R (tests/reference/
example_admissions.R, run on the shipped example files). Tolerance for the negative
binomial fits: coefficients within 1e-5 standard errors and standard errors to rtol
1e-5 (both maximise the same likelihood; glm.nb stops at epsilon 1e-12).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import crtstats
from crtstats.analysis import EFFECT_COLUMNS, AnalysisResult
from crtstats.analysis.admissions import negative_binomial_rate
from crtstats.exceptions import BoundaryFitWarning, ModelSpecificationError

REFERENCE = Path(__file__).resolve().parent / "reference"
REF = json.loads((REFERENCE / "example_admissions.json").read_text())
SU = pd.read_csv(REFERENCE / "data" / "cluster_level_service_use.csv")
TRIAL = crtstats.datasets.load_example()


def _run(trial: object, **kwargs: object) -> AnalysisResult:
    # no fit of the example is on a boundary; one team has no follow-up readmission
    # (0.5 added for the cluster-level log ratio)
    expected = crtstats.ContinuityCorrectionWarning
    with pytest.warns(expected) as record:
        out = crtstats.analyse_admissions(trial, n_resamples=400, seed=5, **kwargs)  # type: ignore[arg-type]
    assert [w.category for w in record] == [expected]
    return out


@pytest.fixture(scope="module")
def result() -> AnalysisResult:
    return _run(TRIAL)


def test_effects_frame_layout(result: AnalysisResult) -> None:
    eff = result.effects
    assert tuple(eff.columns) == EFFECT_COLUMNS
    assert eff["outcome"].tolist() == ["admitted"] * 17 + [
        o for o in ("admissions per user", "bed days per user", "readmissions per user")
        for _ in range(3)]
    assert eff["role"].tolist()[:17] == ["primary"] + ["sensitivity"] * 16
    assert eff.loc[0, "analysis"] == "GLMM (between-within)"
    assert eff.loc[0, "scale"] == "odds ratio"
    assert set(eff["scale"]) == {"odds ratio", "risk ratio", "risk difference", "rate ratio"}
    assert (eff["n_clusters"] == 25).all()
    finite = eff["conf_low"].notna()
    assert (eff.loc[finite, "conf_low"] <= eff.loc[finite, "estimate"]).all()
    assert (eff.loc[finite, "estimate"] <= eff.loc[finite, "conf_high"]).all()
    ratio = eff["scale"].str.endswith("ratio")
    assert (eff.loc[ratio, "estimate"] > 0).all()


def test_glmm_and_gee_rows_are_the_fitters_results(result: AnalysisResult) -> None:
    adm = TRIAL.admissions
    pre = adm[adm.period == "pre"].groupby("team_id")["admitted"].mean().rename("pre_prop")
    fu = adm[adm.period == "follow_up"].merge(TRIAL.teams, on="team_id").merge(
        pre, on="team_id")
    fit = crtstats.glmm("admitted ~ arm + stratum + pre_prop", fu, cluster="team_id",
                        method="laplace-reml")
    row = result.effects.iloc[0]
    assert row["estimate"] == pytest.approx(np.exp(fit.params["arm[T.intervention]"]),
                                            rel=1e-10)
    assert row["df"] == 15 and row["df_method"] == "between-within"
    gee_row = result.effects.iloc[1]
    # the example's exchangeable working correlation is positive, so it is kept
    assert gee_row["analysis"] == "GEE exchangeable (Kauermann-Carroll)"
    assert not any("taken as zero" in n for n in result.notes)
    direct = crtstats.gee("admitted ~ arm + stratum + pre_prop", fu, cluster="team_id",
                          family="binomial", cov_struct="exchangeable")
    low, high = direct.conf_int().loc["arm[T.intervention]"]
    assert (gee_row["conf_low"], gee_row["conf_high"]) == pytest.approx(
        (np.exp(low), np.exp(high)), rel=1e-10)
    # the GLMM row shows the GLMM's own (latent-scale) ICC, not a separate estimate
    glmm_fit = result.results["admitted: GLMM (between-within)"]
    assert row["icc"] == glmm_fit.icc and row["icc_source"] == "model"
    assert np.isnan(row["icc_low"]) and np.isnan(row["icc_high"])
    # rows whose model has no ICC show the separate ANOVA (Smith) estimate, marked so
    ref_icc = crtstats.icc(fu, outcome="admitted", cluster="team_id", method="smith")
    assert (gee_row["icc"], gee_row["icc_low"], gee_row["icc_high"]) == pytest.approx(
        (ref_icc.estimate, ref_icc.conf_low, ref_icc.conf_high), rel=1e-12)
    assert gee_row["icc_source"] == "separate"
    assert np.isnan(result.effects.iloc[17]["icc"])


def test_glmm_row_matches_glmmtmb_reml(result: AnalysisResult) -> None:
    # The primary GLMM is glmmTMB(..., REML = TRUE): the same Laplace restricted
    # likelihood, nlminb to rel.tol 1e-14 (gradient 2e-13 at its optimum). Estimates,
    # SEs and team SD to 1e-6 relative and the restricted log-likelihood to 1e-8: the
    # two optimisers' agreement (see tests/test_glmm_reml.py).
    ref = REF["glmm_admitted_reml"]
    fit = result.results["admitted: GLMM (between-within)"]
    assert fit.spec.options["method"] == "laplace-reml"
    np.testing.assert_allclose(fit.param_values, ref["coef"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(fit.std_errors, ref["se"], rtol=1e-6)
    np.testing.assert_allclose(np.sqrt(fit.variance_components["cluster"]), ref["team_sd"],
                               rtol=1e-6)
    assert fit.loglik == pytest.approx(ref["loglik"], abs=1e-8)
    assert result.effects.iloc[0]["estimate"] == pytest.approx(np.exp(ref["coef"][1]),
                                                               rel=1e-6)


def test_glmm_ml_matches_glmer() -> None:
    # The maximum-likelihood fit of the same model (method="laplace"), against lme4.
    # The team SD is away from zero (lme4 0.3976; the example's team effects drift
    # between periods). Log-likelihood: ours at least lme4's and glmmTMB's, less 1e-8
    # (observed +5e-10 and +2e-10). Coefficients: within 1e-4 standard errors of the
    # strict glmer fit (observed 2e-5; the likelihood is flat to 1e-9 there). Team SD:
    # rtol 1e-4 (observed 2e-6). Standard errors: rtol 1e-5 against glmmTMB, whose
    # Hessian is exact (observed 1.4e-6); lme4's finite-difference Hessian differs from
    # its own RX-based vcov by 2.6e-3 on these data, so only its estimates are compared.
    ref, tmb = REF["glmm_admitted"], REF["glmm_admitted_tmb"]
    assert not ref["singular"] and ref["team_sd"] > 0.3
    adm = TRIAL.admissions
    pre = adm[adm.period == "pre"].groupby("team_id")["admitted"].mean().rename("pre_prop")
    fu = adm[adm.period == "follow_up"].merge(TRIAL.teams, on="team_id").merge(
        pre, on="team_id")
    fit = crtstats.glmm("admitted ~ arm + stratum + pre_prop", fu, cluster="team_id")
    assert fit.loglik >= max(ref["loglik"], tmb["loglik"]) - 1e-8
    se = np.array(tmb["se"])
    assert np.all(np.abs(fit.param_values - ref["coef"]) < 1e-4 * se)
    np.testing.assert_allclose(fit.std_errors, se, rtol=1e-5)
    np.testing.assert_allclose(np.sqrt(fit.variance_components["cluster"]), ref["team_sd"],
                               rtol=1e-4)


def test_cluster_level_and_randomisation_rows(result: AnalysisResult) -> None:
    eff = result.effects
    cl = eff[(eff.outcome == "admitted") & (eff.analysis == "cluster-level two-stage")]
    perm = eff[(eff.outcome == "admitted") & eff.analysis.str.startswith("randomisation")]
    ref = REF["prop_adjusted"]["log_ratio"]
    assert cl.iloc[0]["estimate"] == pytest.approx(np.exp(ref["estimate"]), rel=1e-8)
    assert cl.iloc[0]["pvalue"] == pytest.approx(ref["pvalue"], rel=1e-6)
    assert perm.iloc[0]["estimate"] == pytest.approx(cl.iloc[0]["estimate"], rel=1e-12)
    assert perm.iloc[0]["df_method"] == "randomisation (Monte Carlo, 400 draws)"
    assert 0 < perm.iloc[0]["pvalue"] <= 1
    rate = eff[(eff.outcome == "admissions per user") &
               (eff.analysis == "cluster-level two-stage")].iloc[0]
    assert rate["estimate"] == pytest.approx(np.exp(REF["rate_adjusted"]["log_ratio"]
                                                    ["estimate"]), rel=1e-8)


@pytest.mark.parametrize("count", ["admissions", "bed_days", "readmissions"])
def test_negative_binomial_matches_glm_nb(count: str, result: AnalysisResult) -> None:
    ref = REF[f"nb_{count}"]
    se = np.array(ref["se"])
    label = {"admissions": "admissions per user", "bed_days": "bed days per user",
             "readmissions": "readmissions per user"}[count]
    row = result.effects[(result.effects.outcome == label) &
                         (result.effects.role == "primary")].iloc[0]
    fit = result.results[f"{label}: negative binomial (team level)"]
    assert np.all(np.abs(fit.param_values - ref["coef"]) < 1e-5 * se)
    np.testing.assert_allclose(fit.std_errors, se, rtol=1e-5)
    q = stats.t.ppf(0.975, 15)
    assert row["estimate"] == pytest.approx(np.exp(ref["coef"][1]), rel=1e-5)
    assert row["conf_low"] == pytest.approx(np.exp(ref["coef"][1] - q * se[1]), rel=1e-5)
    assert row["df"] == 25 - 10


def test_negative_binomial_rejects_repeated_clusters() -> None:
    data = pd.concat([SU, SU])
    with pytest.raises(ModelSpecificationError, match="one row per team_id"):
        negative_binomial_rate("admissions ~ arm", data, exposure="n_users", cluster="team_id")


def test_exclusions_are_counted_in_notes() -> None:
    adm = TRIAL.admissions.copy()
    fu_rows = adm.index[adm.period == "follow_up"]
    adm.loc[fu_rows[:3], "admitted"] = pd.NA
    adm = adm[~((adm.team_id == "T25") & (adm.period == "follow_up"))]
    su = TRIAL.service_use
    su = su[~((su.team_id == "T03") & (su.period == "pre"))]
    trial = crtstats.datasets.SimulatedTrial(
        teams=TRIAL.teams, fidelity=TRIAL.fidelity, admissions=adm, service_use=su)
    with warnings.catch_warnings():
        # whether the fits of the reduced data sit on a boundary is beside the point here
        warnings.simplefilter("ignore", BoundaryFitWarning)
        warnings.simplefilter("ignore", crtstats.ContinuityCorrectionWarning)
        out = crtstats.analyse_admissions(trial, n_resamples=100, seed=1)
    notes = " ".join(out.notes)
    assert "3 follow-up service user(s) with a missing outcome" in notes
    assert "1 team(s) with no follow-up service users are left out: ['T25']" in notes
    assert "1 team(s) with no pre-period row" in notes and "['T03']" in notes
    assert out.effects.iloc[0]["n_clusters"] == 24
    rates = out.effects[out.effects.outcome == "admissions per user"]
    assert (rates["n_clusters"] == 24).all()  # T03 has no pre-period rate
    n_fu = int((adm.period == "follow_up").sum()) - 3
    assert out.effects.iloc[0]["nobs"] == n_fu


def test_trial_data_and_missing_tables() -> None:
    trial = crtstats.load_trial(teams=TRIAL.teams, admissions=TRIAL.admissions)
    out = _run(trial)
    assert len(out.effects) == 26  # service_use derived from admissions
    bare = crtstats.datasets.SimulatedTrial(
        teams=TRIAL.teams, fidelity=TRIAL.fidelity, admissions=TRIAL.admissions,
        service_use=None)  # type: ignore[arg-type]
    out = crtstats.analyse_admissions(bare, n_resamples=100)  # no warning: no boundary
    assert len(out.effects) == 17
    assert any("team-level rate analyses are not run" in n for n in out.notes)
    with pytest.raises(ModelSpecificationError, match="0/1"):
        crtstats.analyse_admissions(TRIAL, outcome="bed_days")
    with pytest.raises(ModelSpecificationError, match="no column"):
        crtstats.analyse_admissions(TRIAL, outcome="died")
    no_strata = crtstats.datasets.SimulatedTrial(
        teams=TRIAL.teams.drop(columns="stratum"), fidelity=TRIAL.fidelity,
        admissions=TRIAL.admissions, service_use=TRIAL.service_use)
    with pytest.raises(ModelSpecificationError, match=r"no column\(s\) \['stratum'\]"):
        crtstats.analyse_admissions(no_strata)


def test_both_estimands_and_the_informative_size_check(result: AnalysisResult) -> None:
    eff = result.effects
    rows = eff[eff["analysis"].str.contains("-average")]
    assert len(rows) == 12
    assert set(rows["measure"]) == {"risk difference", "risk ratio", "odds ratio"}
    assert (rows["conditioning"] == "marginal").all()
    assert (rows["population"] == rows["analysis"].str.split(":").str[0]).all()
    assert (rows["df"] == 23).all()  # t on G - 2
    glmm_row = eff.iloc[0]
    assert (glmm_row["population"], glmm_row["conditioning"]) == ("efficiency-weighted",
                                                                  "conditional")
    note = next(n for n in result.notes if "informative cluster size" in n)
    assert "randomisation p" in note and "little power" in note
    assert any("informative cluster size" in k for k in result.results)


def test_a_service_use_table_without_the_optional_readmissions_count() -> None:
    """readmissions is optional in the schema: its rate rows are left out, with a note."""
    no_readmissions = crtstats.datasets.SimulatedTrial(
        teams=TRIAL.teams, fidelity=TRIAL.fidelity, admissions=TRIAL.admissions,
        service_use=TRIAL.service_use.drop(columns="readmissions"))
    out = crtstats.analyse_admissions(no_readmissions, n_resamples=100)
    shown = set(out.effects["outcome"])
    assert "readmissions per user" not in shown
    assert {"admissions per user", "bed days per user"} <= shown
    assert any("no readmissions column (it is optional)" in n for n in out.notes)
