"""BatchedGLMM: every column agrees with glmm(...).contrast(...) on that column's data."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import crtstats
from crtstats.exceptions import InvalidParameterError, ModelSpecificationError
from crtstats.models import BatchedGLMM

# glmm agrees with lme4 to 1e-4 in the estimates and 3e-4 in the standard errors (its
# reference tests). The batched fit maximises the same Laplace likelihood; glmm stops
# once its Newton decrement is below 1e-10 without the last step, which leaves it up to
# sqrt(2e-10) ~ 1.4e-5 standard errors from the optimum, whereas the batched fit takes
# that step. Hence: estimates within 3e-5 SE, SEs to 1e-5 relative (the Hessian at
# points that far apart), p-values within 1e-5, df exactly (the same integers).
EST_SE = 3e-5
SE_RTOL = 1e-5
P_ATOL = 1e-5

ARM = {"arm[T.intervention]": 1.0}


def teams_design(seed: int, *, within: bool = False) -> pd.DataFrame:
    """25 teams (15 intervention, 10 control) in 8 strata, 40 to 80 users each."""
    rng = np.random.default_rng(seed)
    arm = np.array(["control"] * 10 + ["intervention"] * 15)
    rng.shuffle(arm)
    sizes = rng.integers(40, 81, size=25)
    g = np.repeat(np.arange(25), sizes)
    data = pd.DataFrame({"team_id": [f"t{i:02d}" for i in g], "arm": arm[g],
                         "stratum": np.array([f"s{k % 8}" for k in range(25)])[g]})
    if within:
        data["older"] = (rng.random(g.size) < 0.4).astype(float)
    return data


def simulate(data: pd.DataFrame, n_sims: int, seed: int, sigma: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(seed)
    codes = pd.factorize(data["team_id"])[0]
    u = rng.normal(size=(codes.max() + 1, n_sims)) * sigma
    eta = -1.1 + 0.4 * (data["arm"] == "intervention").to_numpy()[:, None] + u[codes]
    if "older" in data:
        eta = eta + 0.5 * data["older"].to_numpy()[:, None]
    return (rng.random((len(data), n_sims)) < 1.0 / (1.0 + np.exp(-eta))).astype(float)


def reference(batch: BatchedGLMM, data: pd.DataFrame, y: np.ndarray,
              keep: np.ndarray | None) -> tuple[float, ...] | None:
    frame = data.copy()
    frame["admitted"] = np.where(keep, y, np.nan) if keep is not None else y
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # boundary fits, excluded rows: expected here
        try:
            res = crtstats.glmm(batch.formula, frame, cluster="team_id")
        except ModelSpecificationError:
            return None
    con = res.contrast(ARM)
    sd = float(np.sqrt(res.variance_components["cluster"]))
    return (con.estimate, con.std_error, con.df, con.pvalue, float(res.converged),
            float(sd < 1e-4))


def assert_columns_match(batch: BatchedGLMM, data: pd.DataFrame, Y: np.ndarray,
                         mask: np.ndarray | None = None) -> crtstats.models.BatchedFit:
    fit = batch.fit(Y, mask)
    for j in range(Y.shape[1]):
        ref = reference(batch, data, Y[:, j], None if mask is None else mask[:, j])
        if ref is None:
            assert np.isnan(fit.estimate[j]) and not fit.converged[j]
            continue
        est, se, df, p, converged, boundary = ref
        assert abs(fit.estimate[j] - est) <= EST_SE * se, j
        np.testing.assert_allclose(fit.std_error[j], se, rtol=SE_RTOL, err_msg=str(j))
        assert fit.df[j] == df
        assert abs(fit.pvalue[j] - p) <= P_ATOL, j
        assert (fit.converged[j], fit.boundary[j]) == (bool(converged), bool(boundary)), j
        low, high = fit.conf_low[j], fit.conf_high[j]
        assert low < fit.estimate[j] < high
    return fit


def test_team_level_design_columns_agree_with_glmm() -> None:
    data = teams_design(0)
    batch = BatchedGLMM("admitted ~ arm + stratum", data, cluster="team_id", contrast=ARM)
    Y = simulate(data, 16, seed=1, sigma=np.linspace(0.0, 0.9, 16))
    fit = assert_columns_match(batch, data, Y)
    assert fit.boundary.any() and not fit.boundary.all()
    assert set(fit.df) == {16.0}  # 25 teams - 9 team-level coefficients


def test_within_cluster_covariate() -> None:
    data = teams_design(2, within=True)
    batch = BatchedGLMM("admitted ~ arm + older", data, cluster="team_id", contrast=ARM)
    Y = simulate(data, 8, seed=3, sigma=np.full(8, 0.5))
    assert_columns_match(batch, data, Y)


def test_missing_rows_and_lost_team() -> None:
    data = teams_design(4)
    batch = BatchedGLMM("admitted ~ arm + stratum", data, cluster="team_id", contrast=ARM)
    Y = simulate(data, 8, seed=5, sigma=np.full(8, 0.4))
    mask = np.random.default_rng(6).random(Y.shape) > 0.3
    mask[(data["team_id"] == "t03").to_numpy(), 0] = False  # a team with nobody left
    fit = assert_columns_match(batch, data, Y, mask)
    assert fit.df[0] == 15.0  # one team fewer


def test_separation_and_refused_columns_follow_glmm() -> None:
    data = teams_design(7)
    batch = BatchedGLMM("admitted ~ arm + stratum", data, cluster="team_id", contrast=ARM)
    Y = simulate(data, 4, seed=8, sigma=np.full(4, 0.3))
    Y[(data["arm"] == "intervention").to_numpy(), 1] = 0.0  # no admission in one arm
    Y[:, 2] = 0.0  # nobody admitted: glmm refuses
    fit = assert_columns_match(batch, data, Y)
    assert np.isnan(fit.estimate[2]) and not fit.converged[2]


def test_errors() -> None:
    data = teams_design(9)
    with pytest.raises(InvalidParameterError, match="family"):
        BatchedGLMM("admitted ~ arm", data, cluster="team_id", contrast=ARM,
                    family="poisson")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="df"):
        BatchedGLMM("admitted ~ arm", data, cluster="team_id", contrast=ARM,
                    df="kenward-roger")  # type: ignore[arg-type]
    batch = BatchedGLMM("admitted ~ arm", data, cluster="team_id", contrast=ARM)
    Y = simulate(data, 2, seed=10, sigma=np.full(2, 0.3))
    Y[0, 1] = 2.0
    with pytest.raises(ModelSpecificationError, match="0 or 1"):
        batch.fit(Y)
    with pytest.raises(InvalidParameterError, match="one row per row"):
        batch.fit(Y[:10])
