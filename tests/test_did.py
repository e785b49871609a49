"""crtstats.analysis.fidelity_did: team fixed-effects DiD (PanelOLS) against R.

Reference: ``tests/reference/did.R`` on ``tests/reference/data/lmm_fidelity.csv`` (the
shipped example's fidelity totals): ``lm(total ~ factor(team_id) + review + int_6m +
int_12m)`` with ``sandwich::vcovCL(cluster = ~team_id, type = "HC1")`` and t tests on
G - 1 df; clubSandwich's CR1 is recorded beside it to show which convention PanelOLS's
clustered covariance (``debiased=True``, ``group_debias=True``, effects counted) is.

Tolerances: least squares and the sandwich are closed forms, and PanelOLS absorbs the
team and review effects exactly; the observed differences are about 1e-13, so every
quantity is held to 1e-8 (absolute for estimates, limits and p; relative for the
covariance), far below any difference of convention.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crtstats import ModelSpecificationError
from crtstats.analysis import fidelity_did

HERE = Path(__file__).resolve().parent
REF = json.loads((HERE / "reference" / "did.json").read_text())
DATA = pd.read_csv(HERE / "reference" / "data" / "lmm_fidelity.csv")
TEAMS = DATA.drop_duplicates("team_id")[["team_id", "arm", "stratum"]]
SCORES = DATA[["team_id", "review", "total"]]
TERMS = ["arm[T.intervention]:review[T.6m]", "arm[T.intervention]:review[T.12m]"]


def test_matches_lm_with_vcovcl_hc1() -> None:
    res = fidelity_did(SCORES, TEAMS)
    assert list(res.param_names) == TERMS
    np.testing.assert_allclose(res.param_values, REF["estimate"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(res.cov_values, np.array(REF["hc1"]["cov"]), rtol=1e-8)
    np.testing.assert_allclose(res.std_errors, REF["hc1"]["se"], rtol=1e-8)
    np.testing.assert_allclose(res.pvalues, REF["hc1"]["pvalue"], rtol=0, atol=1e-8)
    ci = res.conf_int().to_numpy()
    np.testing.assert_allclose(ci[:, 0], REF["hc1"]["conf_low"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(ci[:, 1], REF["hc1"]["conf_high"], rtol=0, atol=1e-8)
    assert (res.nobs, res.n_clusters) == (REF["nobs"], REF["n_clusters"])
    assert list(res.df) == [REF["df"]] * 2  # G - 1
    assert res.info["df_model"] == REF["k"]  # every coefficient of the lm, effects too
    assert (res.model, res.df_method, res.cov_type) == ("panel_ols", "clusters - 1",
                                                         "cluster HC1")


def test_is_not_clubsandwich_cr1() -> None:
    # CR1 is G / (G - 1) alone; HC1 also has (n - 1) / (n - k) with the team effects in k
    res = fidelity_did(SCORES, TEAMS)
    n, k = REF["nobs"], REF["k"]
    ratio = np.asarray(res.std_errors) ** 2 / np.asarray(REF["cr1"]["se"]) ** 2
    np.testing.assert_allclose(ratio, (n - 1) / (n - k), rtol=1e-8)


def test_row_order_and_team_labels_do_not_matter() -> None:
    rng = np.random.default_rng(3)
    rename = {t: f"Z{i:02d}" for i, t in enumerate(rng.permutation(TEAMS["team_id"]))}
    scores = SCORES.iloc[rng.permutation(len(SCORES))].assign(
        team_id=lambda d: d["team_id"].map(rename))
    teams = TEAMS.assign(team_id=lambda d: d["team_id"].map(rename))
    res = fidelity_did(scores, teams)
    # 1e-10: the same closed form summed in another order
    np.testing.assert_allclose(res.param_values, REF["estimate"], rtol=1e-10)
    np.testing.assert_allclose(res.std_errors, REF["hc1"]["se"], rtol=1e-10)


def test_shifting_the_outcome_changes_nothing_but_the_level() -> None:
    res = fidelity_did(SCORES.assign(total=SCORES["total"] + 1e6), TEAMS)
    # 1e-6 absolute: the shift costs about six of the sixteen digits of double precision
    np.testing.assert_allclose(res.param_values, REF["estimate"], rtol=0, atol=1e-6)


def test_missing_reviews_are_counted() -> None:
    res = fidelity_did(SCORES, TEAMS)
    assert res.info["n_excluded"] == int(SCORES["total"].isna().sum())


def test_a_review_with_one_arm_only_is_refused() -> None:
    control = set(TEAMS.loc[TEAMS["arm"] == "control", "team_id"])
    drop = SCORES["team_id"].isin(control) & (SCORES["review"] == "6m")
    with pytest.raises(ModelSpecificationError, match="both arms at review '6m'"):
        fidelity_did(SCORES[~drop], TEAMS)


def test_baseline_only_is_refused() -> None:
    with pytest.raises(ModelSpecificationError, match="needs a follow-up review"):
        fidelity_did(SCORES[SCORES["review"] == "baseline"], TEAMS)


def test_an_arm_with_one_team_is_refused() -> None:
    keep = TEAMS[(TEAMS["arm"] == "intervention")
                 | (TEAMS["team_id"] == TEAMS.loc[TEAMS["arm"] == "control",
                                                   "team_id"].iloc[0])]
    scores = SCORES[SCORES["team_id"].isin(keep["team_id"])]
    with pytest.raises(ModelSpecificationError, match="at least two teams per arm"):
        fidelity_did(scores, keep)


def test_unknown_columns_and_teams_are_refused() -> None:
    with pytest.raises(ModelSpecificationError, match="no column"):
        fidelity_did(SCORES, TEAMS, outcome="nothing")
    with pytest.raises(ModelSpecificationError, match="does not list"):
        fidelity_did(SCORES, TEAMS.iloc[1:])
