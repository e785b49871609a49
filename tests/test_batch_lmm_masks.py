"""BatchedLMM with reviews missing: the low-rank search of masked trials equals lmm."""

from __future__ import annotations

import numpy as np
import pytest
from test_batch_lmm import CORE_CONTRAST, assert_columns_match, core_design, simulate

from crtstats.models import BatchedLMM

FORMULA = "total ~ arm * review + stratum"


def _patterns(data: object, n_sims: int, seed: int) -> np.ndarray:
    """Masks of many kinds: none, one review, both follow-ups of a team, every review of
    a team, several teams at once, and rates of 3% to 30% of the follow-up reviews."""
    frame = data  # type: ignore[assignment]
    rng = np.random.default_rng(seed)
    teams = frame["team_id"].to_numpy()
    review = frame["review"].astype(str).to_numpy()
    mask = np.ones((len(teams), n_sims), dtype=bool)
    ids = np.unique(teams)
    for j in range(n_sims):
        kind = j % 6
        if kind == 1:
            mask[rng.integers(len(teams)), j] = False
        elif kind == 2:
            mask[(teams == rng.choice(ids)) & (review != "baseline"), j] = False
        elif kind == 3:
            mask[teams == rng.choice(ids), j] = False  # a team with no review at all
        elif kind == 4:
            for team in rng.choice(ids, size=3, replace=False):
                mask[(teams == team) & (review == rng.choice(["6m", "12m"])), j] = False
            mask[teams == rng.choice(ids), j] = False
        elif kind == 5:
            rate = rng.uniform(0.03, 0.3)
            follow = review != "baseline"
            mask[follow, j] = rng.random(follow.sum()) >= rate
    return mask


@pytest.mark.parametrize("ddf", ["kenward-roger", "satterthwaite"])
def test_many_missingness_patterns_equal_lmm(ddf: str) -> None:
    data = core_design(4)
    batch = BatchedLMM(FORMULA, data, cluster="team_id", contrast=CORE_CONTRAST,
                       ddf=ddf)  # type: ignore[arg-type]
    Y = simulate(data, "team_id", 36, seed=21)
    mask = _patterns(data, 36, seed=22)
    # as tests/test_batch_lmm.py: every column equals lmm on its observed rows to 1e-8
    fit = assert_columns_match(batch, data, "team_id", CORE_CONTRAST, Y, mask)
    assert fit.converged.all() and (fit.reason == "").all()
    # the same columns fitted in another order and with others give the same numbers
    order = np.random.default_rng(23).permutation(36)
    again = batch.fit(Y[:, order], mask[:, order])
    np.testing.assert_allclose(again.estimate, fit.estimate[order], rtol=1e-10, atol=0)


def test_a_wide_change_and_complete_columns_in_one_masked_batch() -> None:
    """Columns that change the complete design by many rows (the widest part) and
    complete columns, fitted together with masked ones."""
    data = core_design(5)
    batch = BatchedLMM(FORMULA, data, cluster="team_id", contrast=CORE_CONTRAST)
    Y = simulate(data, "team_id", 8, seed=24)
    mask = np.ones(Y.shape, dtype=bool)
    follow = (data["review"] != "baseline").to_numpy()
    rng = np.random.default_rng(25)
    mask[follow, 0] = rng.random(follow.sum()) >= 0.35  # about 17 rows of 50
    mask[follow, 1] = rng.random(follow.sum()) >= 0.2
    mask[:6, 2] = False  # two whole teams
    # columns 3-7 complete
    assert_columns_match(batch, data, "team_id", CORE_CONTRAST, Y, mask)


def test_a_mask_removing_a_whole_arms_review_gives_nan_with_the_reason() -> None:
    data = core_design(6)
    batch = BatchedLMM(FORMULA, data, cluster="team_id", contrast=CORE_CONTRAST)
    Y = simulate(data, "team_id", 3, seed=26)
    mask = np.ones(Y.shape, dtype=bool)
    lost = ((data["arm"] == "intervention") & (data["review"] == "12m")).to_numpy()
    mask[lost, 1] = False  # no intervention team reviewed at 12 months
    fit = assert_columns_match(batch, data, "team_id", CORE_CONTRAST, Y, mask)
    assert np.isnan(fit.estimate[1]) and np.isnan(fit.std_error[1])
    assert not fit.converged[1]
    assert fit.reason[1].startswith("NotEstimableError") and "rank deficient" in fit.reason[1]
    assert fit.reason[0] == ""
    assert np.isfinite(fit.estimate[[0, 2]]).all()
    assert fit.to_frame()["reason"].iloc[1] == fit.reason[1]
