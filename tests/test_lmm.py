"""Unit tests of crtstats.lmm: options, errors, warnings, the result's contents, and the
per-cluster Kenward-Roger / Satterthwaite algebra against a direct dense computation.

The dense computation below forms the n x n matrices of Kenward and Roger (1997) on a
small data set; it is an independent route to the same quantities (the R comparison is
in test_lmm_reference.py).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import crtstats
from crtstats.exceptions import (
    BoundaryFitWarning,
    ExcludedRowsWarning,
    InvalidParameterError,
    ModelSpecificationError,
)
from crtstats.models._design import build_design
from crtstats.models._lmm_ddf import geometry, kr_covariance
from crtstats.models._lmm_fit import cluster_stats, fit_profiled


def _trial(seed: int = 1, n_clusters: int = 10, sd_cluster: float = 1.5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(3, 9, n_clusters)
    rows = []
    for i, m in enumerate(sizes):
        arm = "treated" if i % 2 else "control"
        b = rng.normal(scale=sd_cluster)
        for _ in range(m):
            x = rng.normal()
            y = 5.0 + (1.0 if arm == "treated" else 0.0) + 0.8 * x + b + rng.normal()
            rows.append({"site": f"S{i:02d}", "arm": arm, "x": x, "y": y})
    return pd.DataFrame(rows)


def test_options_are_checked() -> None:
    data = _trial()
    with pytest.raises(InvalidParameterError, match="ddf must be one of"):
        crtstats.lmm("y ~ arm", data, cluster="site", ddf="KR")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="reml must be True or False"):
        crtstats.lmm("y ~ arm", data, cluster="site", reml="yes")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="defined for REML"):
        crtstats.lmm("y ~ arm", data, cluster="site", reml=False)
    with pytest.raises(TypeError):
        crtstats.lmm("y ~ arm", data, "site")  # type: ignore[misc]


def test_one_cluster_is_an_error() -> None:
    data = _trial().assign(site="S00")
    with pytest.raises(ModelSpecificationError, match="at least two clusters.*have 1"):
        crtstats.lmm("y ~ x", data, cluster="site")


def test_arm_level_with_one_cluster_is_an_error() -> None:
    data = _trial()
    data.loc[data["site"] != "S01", "arm"] = "control"
    with pytest.raises(ModelSpecificationError, match=r"'arm'.*\['treated'\].*'treated': 1"):
        crtstats.lmm("y ~ arm + x", data, cluster="site")


def test_rank_deficient_design_names_the_aliased_column() -> None:
    data = _trial().assign(x2=lambda d: 2.0 * d["x"])
    with pytest.raises(ModelSpecificationError, match=r"rank deficient.*\['x2'\]"):
        crtstats.lmm("y ~ arm + x + x2", data, cluster="site")


def test_unknown_column_is_an_error() -> None:
    with pytest.raises(ModelSpecificationError, match="no column"):
        crtstats.lmm("y ~ dose", _trial(), cluster="site")


def test_boundary_fit_warns_in_plain_words_and_returns_a_result() -> None:
    rng = np.random.default_rng(3)
    data = pd.DataFrame({"site": np.repeat([f"K{i}" for i in range(8)], 6),
                         "arm": np.tile(np.repeat([0, 1], 6), 4)})
    data["y"] = rng.normal(size=len(data))
    data["y"] -= data.groupby("site")["y"].transform("mean")  # no between-cluster spread
    with pytest.warns(BoundaryFitWarning, match="estimated as zero.*cluster-level analysis"):
        res = crtstats.lmm("y ~ arm", data, cluster="site")
    assert res.variance_components["cluster"] == 0.0
    assert res.info["boundary"] is True
    assert any("estimated as zero" in w for w in res.warnings)
    # at the boundary Satterthwaite keeps only the residual variance: df = n - p
    with pytest.warns(BoundaryFitWarning):
        sat = crtstats.lmm("y ~ arm", data, cluster="site", ddf="satterthwaite")
    np.testing.assert_allclose(sat.df.to_numpy(), len(data) - 2, rtol=1e-10)
    assert np.all(np.isfinite(res.df.to_numpy())) and np.all(res.std_errors > 0)


def test_excluded_rows_are_counted_and_noted() -> None:
    data = _trial()
    data.loc[[0, 5], "y"] = np.nan
    data.loc[7, "site"] = None
    with pytest.warns(ExcludedRowsWarning, match=r"3 of \d+ row\(s\) excluded"):
        res = crtstats.lmm("y ~ arm + x", data, cluster="site")
    assert res.info["n_excluded"] == 3
    assert res.nobs == len(data) - 3
    assert "3 row(s) excluded" in res.info["note"]
    assert [w.category for w in res.warnings] == [ExcludedRowsWarning]


def test_result_vocabulary() -> None:
    res = crtstats.lmm("y ~ arm + x", _trial(), cluster="site")
    assert res.model == "lmm"
    assert res.cov_type == "kenward-roger"
    assert list(res.params.index) == ["Intercept", "arm[T.treated]", "x"]
    ci = res.conf_int(0.9)
    assert np.all(ci["lower"] < res.params) and np.all(res.params < ci["upper"])
    assert set(res.variance_components.index) == {"cluster", "residual"}
    assert res.icc is not None and 0.0 < res.icc < 1.0
    one = res.contrast({"arm[T.treated]": 1.0})
    np.testing.assert_allclose(one.estimate, res.params["arm[T.treated]"], rtol=1e-12)
    np.testing.assert_allclose(one.df, res.df["arm[T.treated]"], rtol=1e-12)
    np.testing.assert_allclose(one.std_error, res.std_errors["arm[T.treated]"], rtol=1e-12)
    frame = res.to_frame()
    assert list(frame["term"]) == list(res.params.index)
    assert "kenward-roger" in res.summary()
    assert res.random_effects is not None and len(res.random_effects) == res.n_clusters


def test_kr_covariance_is_larger_than_model_based() -> None:
    data = _trial(seed=4)
    kr = crtstats.lmm("y ~ arm + x", data, cluster="site")
    mb = crtstats.lmm("y ~ arm + x", data, cluster="site", ddf="satterthwaite")
    assert mb.cov_type == "model-based"
    assert np.all(kr.std_errors.to_numpy() >= mb.std_errors.to_numpy())
    np.testing.assert_allclose(kr.params.to_numpy(), mb.params.to_numpy(), rtol=1e-12)


def test_between_within_and_residual_df() -> None:
    data = _trial(seed=5)
    bw = crtstats.lmm("y ~ arm + x", data, cluster="site", ddf="between-within")
    n, g = bw.nobs, bw.n_clusters
    # intercept and arm are cluster-level (2 columns), x varies within clusters
    np.testing.assert_array_equal(bw.df.to_numpy(), [g - 2, g - 2, n - g - 1])
    mixed = bw.contrast({"arm[T.treated]": 1.0, "x": 1.0})
    assert mixed.df == g - 2
    res = crtstats.lmm("y ~ arm + x", data, cluster="site", ddf="residual")
    np.testing.assert_array_equal(res.df.to_numpy(), [n - 3] * 3)
    assert res.contrast([0, 1, 1]).df == n - 3


def test_ml_fit_has_larger_loglik_and_smaller_variances() -> None:
    data = _trial(seed=6)
    reml = crtstats.lmm("y ~ arm + x", data, cluster="site", ddf="satterthwaite")
    ml = crtstats.lmm("y ~ arm + x", data, cluster="site", ddf="satterthwaite", reml=False)
    assert ml.info["reml"] is False
    assert ml.variance_components["residual"] < reml.variance_components["residual"]
    assert ml.loglik is not None and reml.loglik is not None


def _dense_kr(y: np.ndarray, X: np.ndarray, groups: np.ndarray, tau: float,
              s2: float) -> tuple[np.ndarray, np.ndarray]:
    """Kenward-Roger covariance and REML information computed with n x n matrices."""
    z = (groups[:, None] == np.arange(groups.max() + 1)[None, :]).astype(float)
    g_mats = [z @ z.T, np.eye(len(y))]
    v = tau * g_mats[0] + s2 * g_mats[1]
    vinv = np.linalg.inv(v)
    phi = np.linalg.inv(X.T @ vinv @ X)
    proj = vinv - vinv @ X @ phi @ X.T @ vinv
    p_mats = [X.T @ vinv @ g @ vinv @ X for g in g_mats]
    q_mats = [[X.T @ vinv @ gr @ vinv @ gs @ vinv @ X for gs in g_mats] for gr in g_mats]
    info = np.array([[np.trace(proj @ gr @ proj @ gs) for gs in g_mats] for gr in g_mats])
    w = 2.0 * np.linalg.inv(info)
    u = sum(w[r, s] * (q_mats[r][s] - p_mats[r] @ phi @ p_mats[s])
            for r in range(2) for s in range(2))
    return phi + 2.0 * phi @ u @ phi, info


def test_per_cluster_algebra_equals_dense_kenward_roger() -> None:
    data = _trial(seed=7)
    design = build_design("y ~ arm + x", data, cluster="site")
    stats = cluster_stats(design.y, design.X, design.groups, design.n_clusters)
    fit = fit_profiled(stats, reml=True)
    geo = geometry(stats, fit, reml=True)
    dense_cov, dense_info = _dense_kr(design.y, design.X, design.groups, fit.tau, fit.sigma2)
    np.testing.assert_allclose(geo.trace_p, dense_info, rtol=1e-9)
    np.testing.assert_allclose(kr_covariance(geo), dense_cov, rtol=1e-9)


def test_fit_is_the_reml_optimum() -> None:
    """The REML score vanishes at the estimate: nearby ratios give a worse criterion."""
    data = _trial(seed=8)
    design = build_design("y ~ arm + x", data, cluster="site")
    stats = cluster_stats(design.y, design.X, design.groups, design.n_clusters)
    fit = fit_profiled(stats, reml=True)
    assert fit.converged and not fit.boundary
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = crtstats.lmm("y ~ arm + x", data, cluster="site")
    t_hat = fit.tau / fit.sigma2
    from crtstats.models._lmm_fit import _profile

    for factor in (0.99, 1.01):
        assert _profile(stats, t_hat * factor, True).deviance > fit.deviance
    np.testing.assert_allclose(res.loglik, -0.5 * fit.deviance, rtol=1e-14)


def test_exact_fit_is_an_error() -> None:
    data = _trial(seed=9)
    data["y"] = 1.0 + 2.0 * data["x"]
    with pytest.raises(ModelSpecificationError,
                       match="reproduced exactly within clusters.*residual variance is zero"):
        crtstats.lmm("y ~ arm + x", data, cluster="site")


def test_no_within_cluster_residual_variation_is_an_error() -> None:
    """y = x + a cluster effect: sigma2 -> 0 raises the likelihood without bound."""
    data = _trial(seed=10)
    effects = {s: float(i) for i, s in enumerate(data["site"].unique())}
    data["y"] = 1.0 + data["x"] + data["site"].map(effects) * 0.37
    with pytest.raises(ModelSpecificationError, match="intra-cluster correlation is 1"):
        crtstats.lmm("y ~ arm + x", data, cluster="site")


def test_outcome_constant_within_every_cluster_is_an_error() -> None:
    data = _trial(seed=10)
    data["y"] = data.groupby("site")["y"].transform("mean")
    with pytest.raises(ModelSpecificationError,
                       match=r"constant within every cluster.*ICC|constant within every cluster"):
        crtstats.lmm("y ~ arm", data, cluster="site")


def test_nearly_no_within_cluster_variation_warns_or_fits() -> None:
    """ICC near (not at) 1: a proper interior optimum, found and reported."""
    data = _trial(seed=10)
    rng = np.random.default_rng(5)
    data["y"] = data.groupby("site")["y"].transform("mean") + 1e-4 * rng.normal(size=len(data))
    res = crtstats.lmm("y ~ arm", data, cluster="site")
    assert res.converged and res.icc is not None and res.icc > 0.999
    assert np.all(np.isfinite(res.std_errors)) and np.all(res.std_errors > 0)


def test_nearly_collinear_but_full_rank_design_is_accepted() -> None:
    data = _trial(seed=11)
    rng = np.random.default_rng(0)
    data["x2"] = data["x"] + 1e-3 * rng.normal(size=len(data))
    res = crtstats.lmm("y ~ x + x2", data, cluster="site", ddf="residual")
    assert np.all(np.isfinite(res.std_errors))


def test_unobserved_factor_level_is_named_as_aliased() -> None:
    data = _trial(seed=12)
    data["arm"] = pd.Categorical(data["arm"], ["control", "treated", "placebo"])
    with pytest.raises(ModelSpecificationError, match=r"placebo"):
        crtstats.lmm("y ~ arm + x", data, cluster="site")


def test_between_within_without_between_df_is_an_error() -> None:
    data = _trial(seed=13, n_clusters=4)
    rng = np.random.default_rng(1)
    level = {s: rng.normal(size=2) for s in data["site"].unique()}
    data["z1"] = data["site"].map(lambda s: level[s][0])
    data["z2"] = data["site"].map(lambda s: level[s][1])
    with pytest.raises(ModelSpecificationError, match="no between-cluster df"):
        crtstats.lmm("y ~ arm + z1 + z2", data, cluster="site", ddf="between-within")


def test_warnings_point_at_the_caller() -> None:
    data = _trial(seed=14)
    data["y"] -= data.groupby("site")["y"].transform("mean")
    with pytest.warns(BoundaryFitWarning) as record:
        crtstats.lmm("y ~ arm", data, cluster="site")
    assert record[0].filename == __file__


def test_df_are_infinite_when_the_variances_do_not_touch_the_contrast() -> None:
    from crtstats.models._lmm_ddf import VarianceGeometry, kr_df, satterthwaite_df

    zero = np.zeros((2, 2))
    geo = VarianceGeometry(
        phi=np.eye(2), p_mats=(zero, zero), q_mats=((zero, zero), (zero, zero)),
        trace_p=np.eye(2), observed_info=np.eye(2),
    )
    assert kr_df(geo, np.array([1.0, 0.0])) == np.inf
    assert satterthwaite_df(geo, np.array([1.0, 0.0]), boundary=False) == np.inf


# -- degenerate data: each case is refused with what, the value seen and what to do ----
def test_one_row_per_cluster_is_an_error() -> None:
    """Only tau + sigma2 is identified; lme4 refuses the same data."""
    data = _trial(seed=20).groupby("site", as_index=False).first()
    with pytest.raises(ModelSpecificationError,
                       match=r"no within-cluster residual degrees of freedom.*10 with a "
                             r"single row.*not separately identified.*cluster=None"):
        crtstats.lmm("y ~ arm", data, cluster="site")


def test_constant_outcome_is_an_error() -> None:
    data = _trial(seed=21).assign(y=3.5)
    with pytest.raises(ModelSpecificationError, match=r"'y' is constant .*equal 3\.5"):
        crtstats.lmm("y ~ arm + x", data, cluster="site")


def test_empty_arm_is_an_error_not_a_dropped_term() -> None:
    data = _trial(seed=22).assign(arm="control")
    with pytest.raises(ModelSpecificationError, match=r"'arm'.*single value 'control'"):
        crtstats.lmm("y ~ arm + x", data, cluster="site")


def test_one_cluster_per_arm_is_an_error() -> None:
    data = _trial(seed=23, n_clusters=2)
    with pytest.raises(ModelSpecificationError, match=r"'arm'.*fewer than two clusters"):
        crtstats.lmm("y ~ arm", data, cluster="site")


def test_zero_variance_covariate_is_named() -> None:
    data = _trial(seed=24).assign(z=7.0)
    with pytest.raises(ModelSpecificationError, match=r"rank deficient.*\['z'\].*constant"):
        crtstats.lmm("y ~ arm + z", data, cluster="site")


@pytest.mark.parametrize(("column", "label"), [("y", "outcome 'y'"), ("x", "column 'x'")])
def test_infinite_value_is_an_error_naming_the_column(column: str, label: str) -> None:
    data = _trial(seed=25)
    data.loc[4, column] = -np.inf
    with pytest.raises(ModelSpecificationError,
                       match=rf"{label}.*not finite in 1 row.*row 4 with value -inf.*NaN"):
        crtstats.lmm("y ~ arm + x", data, cluster="site")


def test_a_cluster_with_one_row_among_others_is_fine() -> None:
    data = _trial(seed=26)
    data = data[(data["site"] != "S03") | ~data["site"].duplicated()]
    assert (data["site"] == "S03").sum() == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = crtstats.lmm("y ~ arm + x", data, cluster="site")
    assert res.converged and np.all(np.isfinite(res.std_errors)) and np.all(res.df > 0)
    assert res.random_effects is not None
    single = res.random_effects.set_index("cluster").loc["S03"]
    assert np.isfinite(single["estimate"]) and single["std_error"] > 0


def test_cluster_must_be_a_column_name() -> None:
    with pytest.raises(InvalidParameterError, match=r"lmm: cluster must be a column name"):
        crtstats.lmm("y ~ arm", _trial(), cluster=3)  # type: ignore[arg-type]


def test_fit_at_a_large_offset_matches_the_plain_fit() -> None:
    """The 1e8 case that once raised a false 'residual variance is zero'."""
    data = _trial(seed=27)
    base = crtstats.lmm("y ~ arm + x", data, cluster="site")
    moved = crtstats.lmm("y ~ arm + x", data.assign(y=data["y"] + 1e8), cluster="site")
    # y + 1e8 is stored to 1.5e-8: the estimates move by about 1e-8 of their SE
    np.testing.assert_allclose(moved.std_errors, base.std_errors, rtol=1e-6)
    np.testing.assert_allclose(moved.variance_components, base.variance_components, rtol=1e-6)
