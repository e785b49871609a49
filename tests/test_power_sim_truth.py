"""True values of the simulated estimands, checked against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special

from crtstats.power import BinaryDesign, TrialDesign, power_table
from crtstats.power._summary import NO_INTERVAL, UNKNOWN, marginal_risks, summarise, truth
from crtstats.power._trials import draw_trial
from crtstats.runner import parse_plan


def _by_quad(risk: float, odds_ratio: float, variance: float) -> tuple[float, float]:
    """The marginal risks by adaptive quadrature on the real line (scipy's QUADPACK)."""
    tau = math.sqrt(variance)

    def risk_of(eta: float) -> float:
        value, _ = integrate.quad(
            lambda z: special.expit(eta + tau * z) * math.exp(-0.5 * z * z)
            / math.sqrt(2.0 * math.pi), -math.inf, math.inf, epsabs=1e-14, epsrel=1e-13)
        return float(value)

    base = math.log(risk / (1.0 - risk))
    return risk_of(base), risk_of(base + math.log(odds_ratio))


@pytest.mark.parametrize(("risk", "odds_ratio", "icc"), [
    (0.25, 0.7, 0.05), (0.3, 0.5, 0.2), (0.05, 2.0, 0.4), (0.9, 0.8, 0.01)])
def test_marginal_risks_equal_independent_quadrature(risk: float, odds_ratio: float,
                                                     icc: float) -> None:
    design = BinaryDesign(risk=risk, odds_ratio=odds_ratio, icc=icc)
    got = marginal_risks(design)
    # both integrals are exact to rounding (adaptive Gauss-Hermite to 1e-12 relative,
    # QUADPACK to 1e-13): 1e-10 absolute leaves a wide margin
    np.testing.assert_allclose(got, _by_quad(risk, odds_ratio, design.team_variance),
                               rtol=0, atol=1e-10)
    # averaging over the team effects pulls the risks towards 1/2 and the odds ratio
    # towards 1 (attenuation of the marginal effect)
    p0, p1 = got
    marginal_or = p1 * (1 - p0) / (p0 * (1 - p1))
    assert abs(math.log(marginal_or)) < abs(math.log(odds_ratio))


def test_cluster_average_risk_difference_matches_a_monte_carlo_of_the_draws() -> None:
    # the mean over simulated trials of the difference in mean team proportions at
    # follow-up (what the cluster-level analysis and the randomisation test estimate)
    design = TrialDesign(intervention=15, control=10, strata=8, mean_cluster_size=60,
                         cluster_size_cv=0.45, attrition=0.05, fidelity=None,
                         admitted=BinaryDesign(risk=0.25, odds_ratio=0.6, icc=0.1))
    diffs = []
    rng = np.random.default_rng(20)
    for _ in range(1500):
        draws = draw_trial(design, rng, stop="admitted")
        adm = draws.admissions
        assert adm is not None
        counts = adm.counts.ravel()
        team = np.repeat(np.repeat(np.arange(25), 2), counts)
        follow = np.repeat(np.tile([False, True], 25), counts)
        props = (np.bincount(team[follow], weights=adm.admitted[follow], minlength=25)
                 / np.bincount(team[follow], minlength=25))
        diffs.append(props[draws.treated].mean() - props[~draws.treated].mean())
    p0, p1 = marginal_risks(design.admitted)  # type: ignore[arg-type]
    mcse = np.std(diffs, ddof=1) / math.sqrt(len(diffs))
    # Monte Carlo error only: 4 SEs (about 0.0014 here) beside a difference of -0.05
    assert abs(np.mean(diffs) - (p1 - p0)) < 4 * mcse


def _row(**kw: str) -> pd.Series:
    base = {"entry": "x", "outcome": "admitted", "analysis": "a", "role": "sensitivity",
            "estimand": "e", "scale": "odds ratio"}
    return pd.Series({**base, **kw})


def test_truth_of_each_kind_of_row() -> None:
    plan = parse_plan({"seed": 1, "data": {"example": True}, "analysis": [
        {"name": "g", "fitter": "glmm", "role": "primary", "data": "admissions",
         "formula": "admitted ~ arm",
         "term": "arm[T.intervention]", "options": {"family": "binomial"}}],
        "output": {"tables": [], "figures": []}})
    binary = BinaryDesign(risk=0.3, odds_ratio=0.6, icc=0.1)
    design = TrialDesign(admitted=binary, fidelity=None)
    value = truth(plan, design, 1.0)
    p0, p1 = _by_quad(0.3, 0.6, binary.team_variance)
    # quadrature to 1e-10 as above; ratios of risks near 0.3 keep that order
    assert value(_row(entry="g"))[0] == pytest.approx(0.6, abs=1e-15)
    assert value(_row(analysis="GEE exchangeable"))[0] == pytest.approx(
        p1 * (1 - p0) / (p0 * (1 - p1)), abs=1e-9)
    assert value(_row(scale="risk difference"))[0] == pytest.approx(p1 - p0, abs=1e-10)
    assert value(_row(scale="risk ratio"))[0] == pytest.approx(p1 / p0, abs=1e-9)
    # a standardised (marginal) estimate of a GLMM is marginal
    assert value(_row(entry="g", analysis="GLMM: standardised (jackknife)",
                      scale="risk difference"))[0] == pytest.approx(p1 - p0, abs=1e-10)
    # an effect the design does not determine here: NaN with the reason
    unknown = value(_row(outcome="bed_days", scale="rate ratio"))
    assert math.isnan(unknown[0]) and unknown[1] == UNKNOWN
    # a scaled design scales the log odds ratio: truths follow it
    half = truth(plan, design, 0.5)(_row(scale="risk difference"))[0]
    q0, q1 = _by_quad(0.3, math.sqrt(0.6), binary.team_variance)
    assert half == pytest.approx(q1 - q0, abs=1e-10)
    # readmission without its own design is the no-effect default
    assert truth(plan, design, 1.0)(_row(outcome="readmitted", scale="risk ratio"))[0] == (
        pytest.approx(1.0, abs=1e-12))


def test_summary_and_table_say_not_applicable_with_the_reason() -> None:
    plan = parse_plan({"seed": 1, "data": {"example": True}, "analysis": [
        {"name": "g", "fitter": "glmm", "role": "primary", "data": "admissions",
         "formula": "admitted ~ arm",
         "term": "arm[T.intervention]", "options": {"family": "binomial"}}],
        "output": {"tables": [], "figures": []}})
    design = TrialDesign(admitted=BinaryDesign(risk=0.3, odds_ratio=0.6), fidelity=None)
    rows = []
    for factor in (0.0, 1.0):
        for trial in range(4):
            for analysis, scale, low in (("randomisation test", "risk difference", np.nan),
                                         ("cluster-level rate", "rate ratio", 0.5)):
                rows.append({"factor": factor, "trial": trial, "entry": "x",
                             "outcome": "admitted" if scale != "rate ratio" else "bed_days",
                             "analysis": analysis, "role": "sensitivity", "estimand": "e",
                             "scale": scale, "estimate": 0.9, "conf_low": low,
                             "conf_high": 2.0, "pvalue": 0.2, "df": 20.0,
                             "n_warnings": 0, "error": ""})
    summary = summarise(pd.DataFrame(rows), plan, design, alpha=0.05)
    alt = summary[summary["factor"] == 1.0].set_index("analysis")
    assert alt.loc["randomisation test", "coverage_note"] == NO_INTERVAL
    assert math.isfinite(alt.loc["randomisation test", "true_effect"])
    assert alt.loc["cluster-level rate", "truth"] == UNKNOWN
    assert math.isnan(alt.loc["cluster-level rate", "coverage"])

    class Result:
        sims, seed, alpha = 4, 1, 0.05

    Result.summary = summary  # type: ignore[attr-defined]
    table = power_table(Result)  # type: ignore[arg-type]
    assert set(table.data["coverage_text"]) == {"not applicable"}
    assert any("Coverage not applicable for randomisation test, e: the analysis gives a "
               "p-value" in n
               for n in table.footnotes)
    assert any("True effect and coverage not applicable for cluster-level rate, e: the "
               "true value" in n
               for n in table.footnotes)
