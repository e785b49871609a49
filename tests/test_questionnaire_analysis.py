"""crtstats.analysis.questionnaire_effects against R (tests/reference/questionnaire.R).

The R script simulates a CORE-like trial (25 teams, 15/10 in 8 strata, about 15
respondents per team and wave, fresh samples with some linked people, one team without a
scored baseline respondent and one with a single follow-up respondent) into
``tests/reference/data/questionnaire_core.csv``; both sides analyse exactly those rows.

Tolerances, and why:

=============================  =============  ==============================================
quantity                       tolerance      reason
=============================  =============  ==============================================
LMM estimates, KR SEs          1e-6 relative  both REML fits at the optimum (lme4 with
                                              tight nloptwrap settings); KR is closed form
KR df                          1e-4 relative  the project's df tolerance; pbkrtest is exact
ANCOVA estimates, CR2 SEs, df  1e-6 relative  closed form on both sides (agree to ~1e-13)
randomisation statistic, ICC   1e-9 relative  closed form (uniroot at tol 1e-14 for the CI)
GLMM estimates, SEs, variance  1e-6 relative  glmmTMB REML = TRUE to rel.tol 1e-14: the
                                              same Laplace restricted likelihood at the
                                              same optimum (tests/test_glmm_reml.py);
                                              restricted log-likelihood to 1e-8
GEE (Mancl-DeRouen)            1e-6 relative  closed form on both sides
=============================  =============  ==============================================
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import crtstats
from crtstats.analysis import EFFECT_COLUMNS, AnalysisResult, questionnaire_effects

REFERENCE = Path(__file__).resolve().parent / "reference"
REF = json.loads((REFERENCE / "questionnaire.json").read_text())
DATA = pd.read_csv(REFERENCE / REF["data"], dtype={"team_id": str, "respondent_id": str})
TEAMS = DATA.drop_duplicates("team_id")[["team_id", "arm", "stratum"]].reset_index(drop=True)
SCORES = DATA[["team_id", "respondent_id", "wave", "responded", "total", "case"]].assign(
    case=lambda d: d["case"].astype("Int64"))
REL = 1e-6  # see the module docstring
REL_DF = 1e-4
LMM = "csq8: LMM follow-up, team baseline mean (KR)"
LINKED = "csq8: LMM linked respondents, own and team baseline (KR)"
ANCOVA = "csq8: ANCOVA of team means (CR2)"


@pytest.fixture(scope="module")
def continuous() -> AnalysisResult:
    return questionnaire_effects(SCORES, TEAMS, id_column="respondent_id", outcome="csq8",
                                 linked=True, n_resamples=500, seed=3)


@pytest.fixture(scope="module")
def caseness() -> AnalysisResult:
    # two teams have no follow-up case: 0.5 is added for the cluster-level log ratio
    with pytest.warns(crtstats.ContinuityCorrectionWarning):
        return questionnaire_effects(SCORES, TEAMS, id_column="respondent_id",
                                     outcome="csq8_case", case=True, n_resamples=500, seed=3)


def _close_lmm(res: crtstats.CRTResult, ref: dict[str, object]) -> None:
    np.testing.assert_allclose(res.param_values, ref["beta"], rtol=REL)
    np.testing.assert_allclose(res.std_errors.to_numpy(), ref["se_kr"], rtol=REL)
    np.testing.assert_allclose(res.df_values[1], ref["arm_df_kr"], rtol=REL_DF)
    vc = res.variance_components
    np.testing.assert_allclose([vc["cluster"], vc["residual"]],
                               [ref["var_cluster"], ref["var_residual"]], rtol=1e-5)
    assert res.nobs == ref["nobs"] and res.n_clusters == ref["n_clusters"]


def test_layout_roles_and_estimands(continuous: AnalysisResult) -> None:
    eff = continuous.effects
    assert tuple(eff.columns) == EFFECT_COLUMNS
    assert eff["role"].tolist() == ["primary", "secondary", "sensitivity", "sensitivity"]
    assert (eff["outcome"] == "csq8").all() and (eff["scale"] == "difference").all()
    assert eff["population"].tolist() == ["efficiency-weighted", "efficiency-weighted",
                                          "cluster-average", "cluster-average"]
    assert eff["conditioning"].tolist() == ["conditional", "conditional", "marginal",
                                            "marginal"]
    assert eff.loc[0, "df_method"] == "kenward-roger"
    assert eff.loc[2, "df_method"] == "bell-mccaffrey"
    assert eff.loc[0, "nobs"] == REF["nobs_follow_up"]
    assert eff["n_clusters"].tolist() == [REF["n_teams_analysed"], REF["linked"]["n_clusters"],
                                          REF["n_teams_analysed"], REF["n_teams_analysed"]]


def test_cross_sectional_lmm_matches_lme4_pbkrtest(continuous: AnalysisResult) -> None:
    _close_lmm(continuous.results[LMM], REF["cross_sectional"])
    row = continuous.effects.iloc[0]
    np.testing.assert_allclose(row["estimate"], REF["cross_sectional"]["beta"][1], rtol=REL)


def test_linked_lmm_matches_lme4_pbkrtest(continuous: AnalysisResult) -> None:
    _close_lmm(continuous.results[LINKED], REF["linked"])
    assert any(f"{REF['n_linked']} people scored at both waves" in n
               for n in continuous.notes)


def test_ancova_matches_clubsandwich(continuous: AnalysisResult) -> None:
    res = continuous.results[ANCOVA]
    ref = REF["ancova"]
    np.testing.assert_allclose(res.param_values, ref["beta"], rtol=REL)
    np.testing.assert_allclose(res.std_errors.to_numpy(), ref["se"], rtol=REL)
    np.testing.assert_allclose(res.df_values, ref["df"], rtol=REL)
    np.testing.assert_allclose(res.pvalues.to_numpy(), ref["p"], rtol=REL)


def test_randomisation_statistic_and_icc(continuous: AnalysisResult) -> None:
    eff = continuous.effects
    np.testing.assert_allclose(eff.loc[3, "estimate"], REF["randomisation"]["observed"],
                               rtol=1e-9)
    assert eff.loc[3, "df_method"] == "randomisation (Monte Carlo, 500 draws)"
    icc = REF["icc"]
    for k in (2, 3):  # the rows without a model ICC carry the ANOVA ICC and its CI
        np.testing.assert_allclose(eff.loc[k, ["icc", "icc_low", "icc_high"]].astype(float),
                                   [icc["estimate"], *icc["conf_int"]], rtol=1e-9)
        assert eff.loc[k, "icc_source"] == "separate"
    assert (eff.loc[:1, "icc_source"] == "model").all()


def test_notes_count_and_exclude_without_ids(continuous: AnalysisResult) -> None:
    notes = " ".join(continuous.notes)
    assert "1 team(s) with no scored baseline respondent" in notes and "['T05']" in notes
    assert "follow_up control:" in continuous.notes[0]
    n_control = int(((DATA["wave"] == "follow_up") & (DATA["arm"] == "control")
                     & DATA["total"].notna() & (DATA["team_id"] != "T05")).sum())
    assert f"csq8: analysed at follow-up: control {n_control} in 10 teams" in notes
    assert not DATA["respondent_id"].map(lambda i: i in notes).any()


def test_caseness_glmm_matches_glmmtmb_reml(caseness: AnalysisResult) -> None:
    # the primary GLMM is the Laplace REML fit: glmmTMB(REML = TRUE) to rel.tol 1e-14,
    # the same function at the same optimum (tests/test_glmm_reml.py): 1e-6 relative
    res = caseness.results["csq8_case: GLMM (between-within)"]
    ref = REF["glmm_reml"]
    np.testing.assert_allclose(res.param_values, ref["beta"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(res.std_errors.to_numpy(), ref["se"], rtol=1e-6)
    np.testing.assert_allclose(res.df_values, ref["df"], rtol=0)
    assert res.loglik == pytest.approx(ref["loglik"], abs=1e-8)
    np.testing.assert_allclose(res.variance_components["cluster"], ref["sigma2"], rtol=1e-6)
    assert caseness.effects.loc[0, "role"] == "primary"
    assert caseness.effects.loc[0, "scale"] == "odds ratio"


def test_caseness_gee_mancl_derouen(caseness: AnalysisResult) -> None:
    key = "csq8_case: participant-average: independence GEE (Mancl-DeRouen) (odds ratio)"
    res = caseness.results[key]
    ref = REF["gee_independence"]
    np.testing.assert_allclose(res.param_values, ref["beta"], rtol=REL)
    np.testing.assert_allclose(res.std_errors.to_numpy(), ref["se"], rtol=REL)
    np.testing.assert_allclose(res.df_values, ref["df"], rtol=0)


def test_caseness_rows_as_admissions(caseness: AnalysisResult) -> None:
    eff = caseness.effects
    assert len(eff) == 17 and (eff["outcome"] == "csq8_case").all()
    assert eff["role"].tolist() == ["primary"] + ["sensitivity"] * 16
    assert set(eff["population"]) == {"efficiency-weighted", "participant-average",
                                      "cluster-average"}


def test_row_order_and_ids_do_not_change_the_effects(continuous: AnalysisResult) -> None:
    shuffled = SCORES.sample(frac=1.0, random_state=7).reset_index(drop=True)
    codes = {p: f"P{k:04d}" for k, p in enumerate(shuffled["respondent_id"].unique())}
    shuffled["respondent_id"] = shuffled["respondent_id"].map(codes)
    out = questionnaire_effects(shuffled, TEAMS.iloc[::-1], id_column="respondent_id",
                                outcome="csq8", linked=True, n_resamples=500, seed=3)
    cols = ["estimate", "conf_low", "conf_high", "df", "icc"]
    # the same sums in another order: equal to rounding, far inside the R tolerance
    np.testing.assert_allclose(out.effects[cols].to_numpy(dtype=float)[:3],
                               continuous.effects[cols].to_numpy(dtype=float)[:3],
                               rtol=1e-9)
    np.testing.assert_allclose(out.effects.loc[3, "estimate"],
                               continuous.effects.loc[3, "estimate"], rtol=1e-9)
