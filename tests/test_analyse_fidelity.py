"""crtstats.analyse_fidelity: effects against R, roles, exclusions and input checks.

Reference values: ``tests/reference/ols.R`` (``ancova`` and ``fidelity_lmm`` in
``ols.json``), lm + clubSandwich for the ANCOVA and lmer + lmerTest/pbkrtest for the
LMM, on the shipped example trial with totals and domain means computed in R by the
same rule (no score when an item is missing).

Tolerances:

- ANCOVA (closed form): estimates and SEs 1e-6 relative, df 1e-4, p 1e-6 absolute, as
  for ``crtstats.ols`` itself.
- LMM: the same tolerances (estimates and SEs 1e-6 relative, KR df 1e-4, p 1e-6
  absolute), and ICC 1e-6 absolute. Both sides maximise the REML likelihood
  numerically (lme4 with bobyqa at rhoend 1e-12, crtstats with its own root finder);
  observed differences are about 1e-9 in estimates and ICC and 2e-7 in df, so the
  tolerances leave a margin while still catching any real error in the model or the
  contrast.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import crtstats
from crtstats import (
    BoundaryFitWarning,
    InvalidParameterError,
    ModelSpecificationError,
    NotEstimableError,
    ProrationWarning,
)
from crtstats.analysis import EFFECT_COLUMNS, AnalysisResult

REF = json.loads((Path(__file__).resolve().parent / "reference" / "ols.json").read_text())
DID_REF = json.loads((Path(__file__).resolve().parent / "reference" / "did.json").read_text())
DID = "team FE DiD (cluster HC1)"
TRIAL = crtstats.datasets.load_example()
OUTCOMES = ["total", "referrals_access_mean", "content_delivery_mean",
            "staffing_procedures_mean", "location_timing_mean"]


@pytest.fixture(scope="module")
def scores() -> pd.DataFrame:
    return crtstats.score_fidelity(TRIAL.fidelity)


@pytest.fixture(scope="module")
def result(scores: pd.DataFrame) -> AnalysisResult:
    return crtstats.analyse_fidelity(scores, TRIAL.teams)


def rows(res: AnalysisResult, outcome: str, analysis: str) -> pd.DataFrame:
    eff = res.effects
    return eff[(eff["outcome"] == outcome) & (eff["analysis"] == analysis)].set_index(
        "estimand"
    )


# -- against R -------------------------------------------------------------------------
@pytest.mark.parametrize("outcome", OUTCOMES)
def test_ancova_arm_effect_matches_lm_clubsandwich(result: AnalysisResult, outcome: str) -> None:
    ref = REF["ancova"][outcome]
    k = ref["coef_names"].index("armintervention")
    row = rows(result, outcome, "ANCOVA 12m (CR2)").loc["arm effect at 12m"]
    assert row["estimate"] == pytest.approx(ref["coef"][k], rel=1e-6)
    half_width = (row["conf_high"] - row["conf_low"]) / 2
    fit = result.results[f"{outcome}: ANCOVA 12m (CR2)"]
    assert float(fit.std_errors.iloc[k]) == pytest.approx(ref["CR2"]["se"][k], rel=1e-6)
    assert row["df"] == pytest.approx(ref["CR2"]["df"][k], abs=1e-4)
    assert row["pvalue"] == pytest.approx(ref["CR2"]["pvalue"][k], abs=1e-6)
    assert half_width > 0
    assert row["nobs"] == ref["nobs"] == row["n_clusters"]
    assert (row["df_method"], row["cov_type"]) == ("bell-mccaffrey", "CR2")
    assert np.isnan(row["icc"])


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_lmm_arm_effects_match_lmertest_kenward_roger(
    result: AnalysisResult, outcome: str
) -> None:
    ref = REF["fidelity_lmm"][outcome]
    got = rows(result, outcome, "LMM arm x review (KR)")
    assert list(got.index) == ["arm effect at 6m", "arm effect at 12m"]
    fit = result.results[f"{outcome}: LMM arm x review (KR)"]
    for estimand, want in ref["effects"].items():
        row = got.loc[estimand]
        review = estimand.rsplit(" ", 1)[1]
        con = fit.contrast({"arm[T.intervention]": 1.0,
                            f"arm[T.intervention]:review[T.{review}]": 1.0})
        assert row["estimate"] == pytest.approx(want["estimate"], rel=1e-6)
        assert con.estimate == row["estimate"]
        assert con.std_error == pytest.approx(want["se"], rel=1e-6)
        assert row["df"] == pytest.approx(want["df"], abs=1e-4)
        assert row["pvalue"] == pytest.approx(want["pvalue"], abs=1e-6)
        assert row["icc"] == pytest.approx(ref["icc"], abs=1e-6)
        assert (row["nobs"], row["n_clusters"]) == (ref["nobs"], ref["n_clusters"])
        assert row["df_method"] == "kenward-roger"


def test_classical_ancova_matches_lm(scores: pd.DataFrame) -> None:
    res = crtstats.analyse_fidelity(scores, TRIAL.teams, ancova_cov_type="classical",
                                    outcomes=["total"])
    ref = REF["ancova"]["total"]
    k = ref["coef_names"].index("armintervention")
    row = rows(res, "total", "ANCOVA 12m (classical)").loc["arm effect at 12m"]
    assert row["df"] == ref["classical"]["df"][k]
    assert row["pvalue"] == pytest.approx(ref["classical"]["pvalue"][k], abs=1e-6)
    assert row["df_method"] == "residual"


def test_did_rows_match_lm_with_sandwich_vcovcl_hc1(result: AnalysisResult) -> None:
    # tests/reference/did.R: lm(total ~ factor(team_id) + review + int_6m + int_12m) with
    # sandwich::vcovCL(type = "HC1"), t on G - 1 df. Least squares is closed form and
    # PanelOLS absorbs the effects exactly: observed differences are about 1e-13, so 1e-8
    # catches any difference of convention (CR1 differs by 30% here).
    did = rows(result, "total", DID)
    for k, review in enumerate(("6m", "12m")):
        row = did.loc[f"arm effect on change to {review}"]
        assert row["estimate"] == pytest.approx(DID_REF["estimate"][k], abs=1e-8)
        assert row["conf_low"] == pytest.approx(DID_REF["hc1"]["conf_low"][k], abs=1e-8)
        assert row["conf_high"] == pytest.approx(DID_REF["hc1"]["conf_high"][k], abs=1e-8)
        assert row["pvalue"] == pytest.approx(DID_REF["hc1"]["pvalue"][k], abs=1e-8)
        assert row["df"] == DID_REF["df"]
        assert (row["nobs"], row["n_clusters"]) == (DID_REF["nobs"], DID_REF["n_clusters"])
        assert (row["df_method"], row["cov_type"]) == ("clusters - 1", "cluster HC1")


def test_did_can_be_left_out(scores: pd.DataFrame) -> None:
    res = crtstats.analyse_fidelity(scores, TRIAL.teams, outcomes=["total"], did=False)
    assert DID not in set(res.effects["analysis"])
    with pytest.raises(InvalidParameterError, match="did"):
        crtstats.analyse_fidelity(scores, TRIAL.teams, did="yes")  # type: ignore[arg-type]


# -- the frame and its labels ----------------------------------------------------------
def test_effects_frame_has_the_contract_columns_and_roles(result: AnalysisResult) -> None:
    eff = result.effects
    assert tuple(eff.columns) == EFFECT_COLUMNS
    assert list(eff["outcome"].unique()) == OUTCOMES
    assert len(eff) == 5 * len(OUTCOMES)  # LMM 6m, 12m; ANCOVA 12m; DiD 6m, 12m
    # one primary row per outcome: the LMM at 12m; at 6m it is a secondary estimand
    lmm_rows = eff[eff["analysis"].str.startswith("LMM")]
    assert (lmm_rows.groupby("outcome")["role"].apply(list) == [["secondary", "primary"]] *
            len(OUTCOMES)).all()
    assert (eff.loc[eff["role"] == "primary", "estimand"] == "arm effect at 12m").all()
    assert set(eff.loc[eff["analysis"].str.startswith("ANCOVA"), "role"]) == {"sensitivity"}
    assert set(eff.loc[eff["analysis"] == DID, "role"]) == {"sensitivity"}
    assert set(eff["scale"]) == {"difference"}
    assert (eff["conf_low"] < eff["estimate"]).all() and (eff["estimate"] < eff["conf_high"]).all()
    assert set(result.results) == {
        f"{o}: {a}" for o in OUTCOMES
        for a in ("LMM arm x review (KR)", "ANCOVA 12m (CR2)", DID)
    }


def test_method_ancova_makes_the_ancova_primary_and_lists_it_first(
    scores: pd.DataFrame, result: AnalysisResult
) -> None:
    res = crtstats.analyse_fidelity(scores, TRIAL.teams, method="ancova", outcomes=["total"])
    assert list(res.effects["role"]) == ["primary"] + ["sensitivity"] * 4
    assert res.effects["analysis"].iloc[0] == "ANCOVA 12m (CR2)"
    same = result.effects[result.effects["outcome"] == "total"]
    np.testing.assert_allclose(
        np.sort(res.effects["estimate"].to_numpy()), np.sort(same["estimate"].to_numpy())
    )


def test_row_order_and_team_labels_do_not_matter(
    scores: pd.DataFrame, result: AnalysisResult
) -> None:
    # one fixed permutation and relabelling (a whole analysis is too slow for hypothesis)
    rng = np.random.default_rng(5)
    ids = sorted(TRIAL.teams["team_id"])
    rename = dict(zip(ids, [f"X{n:03d}" for n in rng.permutation(len(ids))], strict=True))
    shuffled = scores.iloc[rng.permutation(len(scores))].assign(
        team_id=lambda d: d["team_id"].map(rename)
    )
    teams = TRIAL.teams.iloc[::-1].assign(team_id=lambda d: d["team_id"].map(rename))
    res = crtstats.analyse_fidelity(shuffled, teams)
    numbers = ["estimate", "conf_low", "conf_high", "pvalue", "df", "icc"]
    pd.testing.assert_frame_equal(
        res.effects.drop(columns=numbers), result.effects.drop(columns=numbers)
    )
    # 1e-7: the REML optimum is found numerically, and summing in another order can move
    # it in the last digits the root finder resolves
    np.testing.assert_allclose(res.effects[numbers].to_numpy(dtype=float),
                               result.effects[numbers].to_numpy(dtype=float), rtol=1e-7)


# -- exclusions are counted ------------------------------------------------------------
def test_example_exclusions_are_reported(result: AnalysisResult, scores: pd.DataFrame) -> None:
    notes = "\n".join(result.notes)
    assert result.notes[0] == "reviews scored: baseline 25, 6m 24, 12m 25."
    n_missing = int(scores["total"].isna().sum())
    assert f"total, LMM arm x review (KR): {n_missing} review(s) without a value" in notes
    lacking = REF["ancova"]["total"]["n_excluded"]
    assert f"total, ANCOVA: {lacking} team(s) without both a baseline and a 12m" in notes
    assert result.notes[-1].startswith("icc is the team-level intra-cluster correlation")


def test_missing_12m_and_6m_reviews_are_handled(scores: pd.DataFrame) -> None:
    drop = (scores["team_id"].isin(["T03", "T10"]) & (scores["review"] == "12m")) | (
        scores["review"].eq("6m") & scores["team_id"].isin(["T01", "T02", "T05"])
    )
    # one team of stratum Trust C is left in the ANCOVA: its stratum SE is undefined
    with pytest.warns(crtstats.FewClustersWarning, match=r"stratum\[T.Trust C\]"):
        res = crtstats.analyse_fidelity(scores[~drop], TRIAL.teams, outcomes=["total"])
    notes = "\n".join(res.notes)
    assert "['T03', 'T08', 'T10']" in notes  # T08 lacks a baseline total in the example
    ancova = rows(res, "total", "ANCOVA 12m (CR2)").loc["arm effect at 12m"]
    assert ancova["nobs"] == 22
    lmm_rows = rows(res, "total", "LMM arm x review (KR)")
    assert lmm_rows["nobs"].iloc[0] == int(scores.loc[~drop, "total"].notna().sum())


def test_no_6m_reviews_at_all_gives_only_the_12m_effect(scores: pd.DataFrame) -> None:
    res = crtstats.analyse_fidelity(scores[scores["review"] != "6m"], TRIAL.teams,
                                    outcomes=["total"])
    assert list(rows(res, "total", "LMM arm x review (KR)").index) == ["arm effect at 12m"]
    assert any("no 6m reviews; no effect at 6m" in n for n in res.notes)


def test_teams_without_scores_and_prorated_totals_are_noted() -> None:
    with pytest.warns(ProrationWarning):
        prorated = crtstats.score_fidelity(TRIAL.fidelity, max_missing=1)
    some = prorated[prorated["team_id"] != "T25"]
    res = crtstats.analyse_fidelity(some, TRIAL.teams, outcomes=["total"])
    notes = "\n".join(res.notes)
    assert "1 team(s) in the teams table have no scores: ['T25']" in notes
    assert f"{int(some['prorated'].sum())} review total(s) were prorated" in notes


def test_boundary_fit_warns_and_is_noted() -> None:
    # within each team the three reviews deviate by (-1, 0, 1): team means carry no
    # variation beyond arm and stratum, so the REML team variance is zero
    teams = TRIAL.teams
    frame = teams[["team_id"]].merge(pd.DataFrame({"review": ["baseline", "6m", "12m"]}),
                                     how="cross")
    effect = frame["team_id"].map(teams.set_index("team_id")["arm"].eq("intervention"))
    wiggle = frame["review"].map({"baseline": -1.0, "6m": 0.0, "12m": 1.0})
    step = frame["team_id"].str[1:].astype(int) % 2 * 2.0 - 1.0
    # plus d_i at 6m and -d_i at baseline (team means unchanged), so that the 12m total
    # is not an exact function of arm and baseline (the ANCOVA would have no residual)
    shift = frame["team_id"].map(dict(zip(teams["team_id"], np.random.default_rng(0).normal(
        scale=0.3, size=len(teams)), strict=True)))
    spread = frame["review"].map({"baseline": -1.0, "6m": 1.0, "12m": 0.0}) * shift
    frame["total"] = 120.0 + 5.0 * effect.astype(float) + wiggle * step + spread
    with pytest.warns(BoundaryFitWarning):
        res = crtstats.analyse_fidelity(frame, teams, outcomes=["total"])
    assert any("variance was estimated as zero" in n for n in res.notes)


# -- input checks ----------------------------------------------------------------------
def test_bad_options_are_named(scores: pd.DataFrame) -> None:
    with pytest.raises(InvalidParameterError, match="method must be one of 'lmm', 'ancova'"):
        crtstats.analyse_fidelity(scores, TRIAL.teams, method="gee")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="ancova_cov_type must be one of"):
        crtstats.analyse_fidelity(
            scores, TRIAL.teams, ancova_cov_type="CR1"  # type: ignore[arg-type]
        )


def test_unknown_review_team_and_duplicates_are_errors(scores: pd.DataFrame) -> None:
    bad = scores.copy()
    bad["review"] = bad["review"].replace({"6m": "month 6"})
    with pytest.raises(ModelSpecificationError, match=r"review.*\['month 6'\]"):
        crtstats.analyse_fidelity(bad, TRIAL.teams)
    with pytest.raises(ModelSpecificationError, match=r"team_id \['T25'\].*does not list"):
        crtstats.analyse_fidelity(scores, TRIAL.teams[TRIAL.teams["team_id"] != "T25"])
    with pytest.raises(ModelSpecificationError, match="more than one row"):
        crtstats.analyse_fidelity(pd.concat([scores, scores.iloc[:1]]), TRIAL.teams)
    with pytest.raises(ModelSpecificationError, match=r"no column\(s\) \['stratum'\]"):
        crtstats.analyse_fidelity(scores, TRIAL.teams.drop(columns="stratum"))
    arms = TRIAL.teams.assign(arm=TRIAL.teams["arm"].replace({"control": "usual care"}))
    with pytest.raises(ModelSpecificationError, match=r"arm.*\['usual care'\]"):
        crtstats.analyse_fidelity(scores, arms)


def test_interim_analysis_before_12m_gives_the_6m_effect_and_says_why_not_12m(
    scores: pd.DataFrame,
) -> None:
    interim = scores[scores["review"] != "12m"]
    out = crtstats.analyse_fidelity(interim, TRIAL.teams, outcomes=["total"])
    assert set(out.effects["estimand"]) == {"arm effect at 6m", "arm effect on change to 6m"}
    assert any("ANCOVA of the 12-month score is not possible: no team has a 12m value"
               in n for n in out.notes)
    # the LMM's 6m effect is that of the same model fitted to the interim data by hand
    frame = interim.merge(TRIAL.teams[["team_id", "arm", "stratum"]], on="team_id")
    frame["review"] = pd.Categorical(frame["review"], categories=["baseline", "6m"])
    frame["arm"] = pd.Categorical(frame["arm"], categories=["control", "intervention"])
    direct = crtstats.lmm("total ~ arm * review + stratum", frame.dropna(subset=["total"]),
                          cluster="team_id").contrast(
        {"arm[T.intervention]": 1, "arm[T.intervention]:review[T.6m]": 1})
    row = out.effects[out.effects["analysis"] == "LMM arm x review (KR)"].iloc[0]
    assert row["estimate"] == pytest.approx(direct.estimate, rel=1e-12)  # same fit


def test_ancova_primary_without_12m_reviews_is_a_clear_error(scores: pd.DataFrame) -> None:
    with pytest.raises(NotEstimableError, match=r"no team has a 12m value.*primary"):
        crtstats.analyse_fidelity(scores[scores["review"] != "12m"], TRIAL.teams,
                                  outcomes=["total"], method="ancova")


def test_a_review_only_one_arm_has_is_left_out_with_a_note(scores: pd.DataFrame) -> None:
    control = set(TRIAL.teams.loc[TRIAL.teams["arm"] == "control", "team_id"])
    partial = scores[~((scores["review"] == "6m") & scores["team_id"].isin(control))]
    out = crtstats.analyse_fidelity(partial, TRIAL.teams, outcomes=["total"])
    assert "arm effect at 6m" not in set(out.effects["estimand"])
    assert "arm effect at 12m" in set(out.effects["estimand"])
    assert any("no control team was reviewed at 6m" in n for n in out.notes)
    # equal to the analysis of the data without those 6m reviews
    without = crtstats.analyse_fidelity(partial[partial["review"] != "6m"], TRIAL.teams,
                                        outcomes=["total"])
    pd.testing.assert_series_equal(out.effects["estimate"], without.effects["estimate"])


@pytest.mark.parametrize("outcomes", [[], ["total", "total"]])
def test_outcomes_must_be_a_nonempty_list_without_repeats(
    scores: pd.DataFrame, outcomes: list[str]
) -> None:
    with pytest.raises(ModelSpecificationError, match="outcomes must name at least one"):
        crtstats.analyse_fidelity(scores, TRIAL.teams, outcomes=outcomes)


def test_inputs_are_not_modified(scores: pd.DataFrame) -> None:
    before_s, before_t = scores.copy(), TRIAL.teams.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        crtstats.analyse_fidelity(scores, TRIAL.teams, outcomes=["location_timing_mean"])
    pd.testing.assert_frame_equal(scores, before_s)
    pd.testing.assert_frame_equal(TRIAL.teams, before_t)
