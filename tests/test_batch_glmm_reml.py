"""BatchedGLMM(method="laplace-reml"): every column agrees with glmm(method="laplace-reml").

Both maximise the same Laplace restricted likelihood with the same iterations
(:mod:`crtstats.models._glmm_reml`), vectorised over the columns here, and take the
final Newton steps, so they agree to rounding: estimates within 1e-7 SE, SEs and
p-values to 1e-7 (the pooled counts are summed in a different order), df exactly.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import crtstats
from crtstats.exceptions import InvalidParameterError, ModelSpecificationError
from crtstats.models import BatchedGLMM

TOL = 1e-7
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
    """0/1 outcomes: log-odds -1.1 + 0.4 arm (+ 0.5 older) + a team effect of SD sigma."""
    rng = np.random.default_rng(seed)
    codes = pd.factorize(data["team_id"])[0]
    u = rng.normal(size=(codes.max() + 1, n_sims)) * sigma
    eta = -1.1 + 0.4 * (data["arm"] == "intervention").to_numpy()[:, None] + u[codes]
    if "older" in data:
        eta = eta + 0.5 * data["older"].to_numpy()[:, None]
    out: np.ndarray = (rng.random((len(data), n_sims)) < 1.0 / (1.0 + np.exp(-eta)))
    return out.astype(float)


def reference(data: pd.DataFrame, formula: str, y: np.ndarray,
              keep: np.ndarray | None) -> tuple[float, ...] | None:
    frame = data.copy()
    frame["admitted"] = np.where(keep, y, np.nan) if keep is not None else y
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # boundary fits, excluded rows: expected here
        try:
            res = crtstats.glmm(formula, frame, cluster="team_id", method="laplace-reml")
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
        ref = reference(data, batch.formula, Y[:, j], None if mask is None else mask[:, j])
        if ref is None:
            assert np.isnan(fit.estimate[j]) and not fit.converged[j]
            continue
        est, se, df, p, converged, boundary = ref
        assert abs(fit.estimate[j] - est) <= TOL * se, j
        np.testing.assert_allclose(fit.std_error[j], se, rtol=TOL, err_msg=str(j))
        assert fit.df[j] == df
        assert abs(fit.pvalue[j] - p) <= TOL, j
        assert (fit.converged[j], fit.boundary[j]) == (bool(converged), bool(boundary)), j
    return fit


def batch_of(data: pd.DataFrame, formula: str) -> BatchedGLMM:
    return BatchedGLMM(formula, data, cluster="team_id", contrast=ARM, method="laplace-reml")


def test_team_level_design_columns_agree_with_glmm() -> None:
    data = teams_design(0)
    Y = simulate(data, 16, seed=1, sigma=np.linspace(0.0, 0.9, 16))
    fit = assert_columns_match(batch_of(data, "admitted ~ arm + stratum"), data, Y)
    assert fit.converged.all()
    assert set(fit.df) == {16.0}  # 25 teams - 9 team-level coefficients


def test_reml_standard_errors_exceed_ml() -> None:
    data = teams_design(0)
    Y = simulate(data, 16, seed=1, sigma=np.full(16, 0.4))
    reml = batch_of(data, "admitted ~ arm + stratum").fit(Y)
    ml = BatchedGLMM("admitted ~ arm + stratum", data, cluster="team_id",
                     contrast=ARM).fit(Y)
    assert np.all(reml.std_error >= ml.std_error - 1e-12)
    assert np.mean(reml.std_error > ml.std_error) > 0.5


def test_within_cluster_covariate() -> None:
    data = teams_design(2, within=True)
    Y = simulate(data, 8, seed=3, sigma=np.full(8, 0.5))
    assert_columns_match(batch_of(data, "admitted ~ arm + older"), data, Y)


def test_missing_rows_and_lost_team() -> None:
    data = teams_design(4)
    Y = simulate(data, 8, seed=5, sigma=np.full(8, 0.4))
    mask = np.random.default_rng(6).random(Y.shape) > 0.3
    mask[(data["team_id"] == "t03").to_numpy(), 0] = False  # a team with nobody left
    fit = assert_columns_match(batch_of(data, "admitted ~ arm + stratum"), data, Y, mask)
    assert fit.df[0] == 15.0  # one team fewer


def test_boundary_separation_and_refused_columns_follow_glmm() -> None:
    data = teams_design(7)
    Y = simulate(data, 5, seed=8, sigma=np.full(5, 0.3))
    Y[(data["arm"] == "intervention").to_numpy(), 1] = 0.0  # no admission in one arm
    Y[:, 2] = 0.0  # nobody admitted: glmm refuses
    Y[:, 3] = (np.arange(len(data)) % 4 == 0)  # the same risk in every team: boundary
    fit = assert_columns_match(batch_of(data, "admitted ~ arm + stratum"), data, Y)
    assert np.isnan(fit.estimate[2]) and not fit.converged[2]
    assert fit.boundary[3]


def test_method_is_checked() -> None:
    with pytest.raises(InvalidParameterError, match="method"):
        BatchedGLMM("admitted ~ arm", teams_design(9), cluster="team_id", contrast=ARM,
                    method="pql")  # type: ignore[arg-type]
