"""BatchedLMM: every column equals lmm(...).contrast(...) on that column's data."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import crtstats
from crtstats.exceptions import (
    ExcludedRowsWarning,
    InvalidParameterError,
    ModelSpecificationError,
)
from crtstats.models import BatchedLMM

# The batched fit solves the same REML equations as lmm, by a different (vectorised)
# root search stopped at the same relative tolerance (1e-13 in the variance ratio), and
# the same KR / Satterthwaite formulas grouped by cluster size: agreement is limited
# only by rounding, so 1e-8 relative (as the interface promises) has a wide margin.
RTOL = 1e-8

CORE_CONTRAST = {"arm[T.intervention]": 1.0, "arm[T.intervention]:review[T.12m]": 1.0}


def core_design(seed: int = 0) -> pd.DataFrame:
    """25 teams (15 intervention, 10 control) in 8 strata, three reviews each."""
    rng = np.random.default_rng(seed)
    arm = np.array(["control"] * 10 + ["intervention"] * 15)
    rng.shuffle(arm)
    rows = [(f"t{t:02d}", arm[t], f"s{t % 8}", r)
            for t in range(25) for r in ("baseline", "6m", "12m")]
    data = pd.DataFrame(rows, columns=["team_id", "arm", "stratum", "review"])
    data["review"] = pd.Categorical(data["review"], ["baseline", "6m", "12m"])
    return data


def unbalanced_design(seed: int) -> pd.DataFrame:
    """14 clusters of 2 to 11 rows, a cluster-level arm and a within covariate."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 12, size=14)
    groups = np.repeat(np.arange(14), sizes)
    arm = np.where(np.arange(14) % 2 == 0, "a", "b")[groups]
    return pd.DataFrame({
        "cluster": [f"c{g}" for g in groups], "arm": arm,
        "x": rng.normal(size=groups.size) + 0.3 * groups,
        "site": np.where(np.arange(14) % 3 == 0, "north", "south")[groups],
    })


def simulate(data: pd.DataFrame, cluster: str, n_sims: int, seed: int,
             icc: np.ndarray | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    codes = pd.factorize(data[cluster])[0]
    if icc is None:
        icc = np.linspace(0.0, 0.5, n_sims)
    team = rng.normal(size=(codes.max() + 1, n_sims))[codes]
    noise = rng.normal(size=(len(data), n_sims))
    return 50.0 + 8.0 * (np.sqrt(icc) * team + np.sqrt(1.0 - icc) * noise)


def reference(formula: str, data: pd.DataFrame, cluster: str, contrast: dict[str, float],
              ddf: str, y: np.ndarray, keep: np.ndarray | None) -> tuple[float, ...] | None:
    frame = data.copy()
    values = y.astype(float).copy()
    if keep is not None:
        values[~keep] = np.nan
    frame[formula.split("~")[0].strip()] = values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # excluded rows, boundary fits: expected here
        try:
            res = crtstats.lmm(formula, frame, cluster=cluster, ddf=ddf)  # type: ignore[arg-type]
        except ModelSpecificationError:
            return None
    con = res.contrast(contrast)
    low, high = con.conf_int()
    return (con.estimate, con.std_error, con.df, con.pvalue, low, high,
            float(res.converged), float(res.details.boundary))  # type: ignore[union-attr]


def assert_columns_match(batch: BatchedLMM, data: pd.DataFrame, cluster: str,
                         contrast: dict[str, float], Y: np.ndarray,
                         mask: np.ndarray | None = None) -> crtstats.models.BatchedFit:
    fit = batch.fit(Y, mask)
    got = np.column_stack([fit.estimate, fit.std_error, fit.df, fit.pvalue, fit.conf_low,
                           fit.conf_high, fit.converged, fit.boundary])
    for j in range(Y.shape[1]):
        ref = reference(batch.formula, data, cluster, contrast, batch.ddf, Y[:, j],
                        None if mask is None else mask[:, j])
        if ref is None:
            assert np.all(np.isnan(got[j, :6])) and not fit.converged[j]
            continue
        np.testing.assert_allclose(got[j], np.array(ref), rtol=RTOL, atol=0.0,
                                   err_msg=f"column {j}")
    return fit


@pytest.mark.parametrize("ddf", ["kenward-roger", "satterthwaite"])
def test_core_design_columns_equal_lmm(ddf: str) -> None:
    data = core_design()
    batch = BatchedLMM("total ~ arm * review + stratum", data, cluster="team_id",
                       contrast=CORE_CONTRAST, ddf=ddf)  # type: ignore[arg-type]
    Y = simulate(data, "team_id", 24, seed=1)
    fit = assert_columns_match(batch, data, "team_id", CORE_CONTRAST, Y)
    assert fit.boundary.any() and not fit.boundary.all()  # both kinds of fit tested
    assert fit.estimate.flags.writeable is False


@pytest.mark.parametrize("seed", [3, 4])
@pytest.mark.parametrize("ddf", ["kenward-roger", "satterthwaite"])
def test_unbalanced_clusters_and_within_covariate(seed: int, ddf: str) -> None:
    data = unbalanced_design(seed)
    contrast = {"arm[T.b]": 1.0, "x": 0.5}
    batch = BatchedLMM("y ~ arm + x + site", data, cluster="cluster", contrast=contrast,
                       ddf=ddf)  # type: ignore[arg-type]
    Y = simulate(data, "cluster", 16, seed=seed) + 2.0 * data["x"].to_numpy()[:, None]
    fit = assert_columns_match(batch, data, "cluster", contrast, Y)
    assert fit.boundary.any()


@pytest.mark.parametrize("ddf", ["kenward-roger", "satterthwaite"])
def test_missing_rows_per_column(ddf: str) -> None:
    data = core_design(2)
    batch = BatchedLMM("total ~ arm * review + stratum", data, cluster="team_id",
                       contrast=CORE_CONTRAST, ddf=ddf)  # type: ignore[arg-type]
    Y = simulate(data, "team_id", 24, seed=5)
    rng = np.random.default_rng(6)
    mask = rng.random(Y.shape) > np.linspace(0.05, 0.4, 24)
    mask[np.flatnonzero(data["team_id"] == "t03"), 0] = False  # a team with no reviews
    fit = assert_columns_match(batch, data, "team_id", CORE_CONTRAST, Y, mask)
    assert fit.converged.all()


def test_masked_unbalanced_design() -> None:
    data = unbalanced_design(8)
    contrast = {"arm[T.b]": 1.0}
    batch = BatchedLMM("y ~ arm + x", data, cluster="cluster", contrast=contrast)
    Y = simulate(data, "cluster", 12, seed=9)
    mask = np.random.default_rng(10).random(Y.shape) > 0.25
    assert_columns_match(batch, data, "cluster", contrast, Y, mask)


def test_a_column_lmm_refuses_is_nan() -> None:
    """Masking every team of one stratum but one leaves a level with one cluster."""
    data = core_design(3)
    batch = BatchedLMM("total ~ arm * review + stratum", data, cluster="team_id",
                       contrast=CORE_CONTRAST)
    Y = simulate(data, "team_id", 3, seed=11)
    mask = np.ones(Y.shape, dtype=bool)
    teams = data.loc[data["stratum"] == "s1", "team_id"].unique()
    mask[data["team_id"].isin(teams[1:]).to_numpy(), 1] = False
    fit = assert_columns_match(batch, data, "team_id", CORE_CONTRAST, Y, mask)
    assert np.isnan(fit.estimate[1]) and not fit.converged[1]
    assert np.isfinite(fit.estimate[[0, 2]]).all()


def test_excluded_rows_warned_and_ignored() -> None:
    data = unbalanced_design(12)
    data.loc[[0, 5], "x"] = np.nan
    with pytest.warns(ExcludedRowsWarning, match="2 of"):
        batch = BatchedLMM("y ~ arm + x", data, cluster="cluster", contrast={"x": 1.0})
    assert len(batch.warnings) == 1
    Y = simulate(data, "cluster", 4, seed=13)
    Y[[0, 5]] = np.nan  # rows the design leaves out: their values are never read
    clean = Y.copy()
    clean[[0, 5]] = 0.0
    assert_columns_match(batch, data, "cluster", {"x": 1.0}, clean)
    np.testing.assert_array_equal(batch.fit(Y).estimate, batch.fit(clean).estimate)


def test_errors() -> None:
    data = core_design()
    with pytest.raises(InvalidParameterError, match="bare column"):
        BatchedLMM("np.log(total) ~ arm", data, cluster="team_id",
                   contrast={"arm[T.intervention]": 1})
    with pytest.raises(InvalidParameterError, match="ddf"):
        BatchedLMM("total ~ arm", data, cluster="team_id",
                   contrast={"arm[T.intervention]": 1}, ddf="residual")  # type: ignore[arg-type]
    with pytest.raises(ModelSpecificationError, match="unknown term"):
        BatchedLMM("total ~ arm", data, cluster="team_id", contrast={"armx": 1})
    batch = BatchedLMM("total ~ arm", data, cluster="team_id",
                       contrast={"arm[T.intervention]": 1})
    with pytest.raises(InvalidParameterError, match="one row per row"):
        batch.fit(np.zeros((10, 2)))
    Y = simulate(data, "team_id", 2, seed=1)
    Y[4, 1] = np.inf
    with pytest.raises(ModelSpecificationError, match="not finite"):
        batch.fit(Y)
    mask = np.ones(Y.shape, dtype=bool)
    mask[4, 1] = False
    assert np.isfinite(batch.fit(Y, mask).estimate).all()
    with pytest.raises(InvalidParameterError, match="level"):
        batch.fit(Y, mask, level=1.5)


def test_design_lmm_refuses_for_every_column() -> None:
    """One row per cluster: no within-cluster df, so lmm refuses each column."""
    data = pd.DataFrame({"cluster": [f"c{i}" for i in range(12)],
                         "arm": ["a", "b"] * 6})
    batch = BatchedLMM("y ~ arm", data, cluster="cluster", contrast={"arm[T.b]": 1.0})
    fit = batch.fit(np.random.default_rng(14).normal(size=(12, 3)))
    assert np.isnan(fit.estimate).all() and not fit.converged.any()
