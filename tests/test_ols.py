"""crtstats.ols: input checks, warnings, invariants (hypothesis) and independent checks.

The numbers themselves are checked against R in ``test_ols_reference.py``; here the CR2
pieces are also checked against a direct, unoptimised transcription of the formulas and
against statsmodels' HC2 where the two coincide.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import given
from hypothesis import strategies as st

import crtstats
from crtstats import FewClustersWarning, InvalidParameterError, ModelSpecificationError
from crtstats.exceptions import ExcludedRowsWarning
from crtstats.models._cr2 import sym_power
from crtstats.models._design import build_design


def clustered_frame(seed: int, n_clusters: int = 6, max_size: int = 6) -> pd.DataFrame:
    """Unequal clusters, a cluster-level arm (both arms present), a row covariate."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, max_size + 1, size=n_clusters)
    sizes[:2] = np.maximum(sizes[:2], 2)  # enough rows for three coefficients
    cluster = np.repeat([f"c{j:02d}" for j in range(n_clusters)], sizes)
    arm = np.repeat(np.where(np.arange(n_clusters) % 2 == 0, "control", "treated"), sizes)
    x = rng.normal(size=cluster.size)
    u = np.repeat(rng.normal(size=n_clusters), sizes)
    y = 2.0 + 0.5 * (arm == "treated") + 0.8 * x + u + rng.normal(size=cluster.size)
    return pd.DataFrame({"cluster": cluster, "arm": arm, "x": x, "y": y})


FORMULA = "y ~ arm + x"


def cr2_cov_direct(X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """CR2 covariance from the n x n matrix I - H (no shortcuts)."""
    bread = np.linalg.inv(X.T @ X)
    ih = np.eye(X.shape[0]) - X @ bread @ X.T
    resid = ih @ y
    meat = np.zeros((X.shape[1], X.shape[1]))
    for j in np.unique(groups):
        rows = np.flatnonzero(groups == j)
        aj = sym_power(ih[np.ix_(rows, rows)], -0.5)
        score = X[rows].T @ aj @ resid[rows]
        meat += np.outer(score, score)
    out: np.ndarray = bread @ meat @ bread
    return out


def cr2_df_direct(X: np.ndarray, groups: np.ndarray, c: np.ndarray) -> float:
    """Satterthwaite df of c'V_CR2 c from the n x J matrix P (no shortcuts)."""
    n = X.shape[0]
    bread = np.linalg.inv(X.T @ X)
    ih = np.eye(n) - X @ bread @ X.T
    columns = []
    for j in np.unique(groups):
        rows = np.flatnonzero(groups == j)
        aj = sym_power(ih[np.ix_(rows, rows)], -0.5)
        uj = aj @ X[rows] @ bread @ c
        columns.append(ih[:, rows] @ uj)  # c'V c = sum_j (p_j' y)^2
    pmat = np.column_stack(columns)
    gmat = pmat.T @ pmat
    return float(np.trace(gmat) ** 2 / np.sum(gmat**2))


# -- input checks ------------------------------------------------------------------------
def test_unknown_cov_type_names_the_option_and_allowed_values() -> None:
    data = clustered_frame(1)
    with pytest.raises(InvalidParameterError, match=r"cov_type must be one of .*'CR2'.*'HC2'"):
        crtstats.ols(FORMULA, data, cluster="cluster", cov_type="HC2")  # type: ignore[arg-type]


def test_options_are_keyword_only() -> None:
    data = clustered_frame(1)
    with pytest.raises(TypeError):
        crtstats.ols(FORMULA, data, "cluster")  # type: ignore[misc]


def test_rank_deficient_design_names_the_aliased_column() -> None:
    data = clustered_frame(2)
    data["x2"] = 2.0 * data["x"]
    with pytest.raises(ModelSpecificationError, match=r"rank deficient.*\['x2'\]"):
        crtstats.ols("y ~ arm + x + x2", data, cluster="cluster")


def test_too_few_rows_is_an_error() -> None:
    data = clustered_frame(3).iloc[:3]
    with pytest.raises(ModelSpecificationError, match="more rows than coefficients"):
        crtstats.ols("y ~ x + I(x**2) + I(x**3)", data, cov_type="classical")


def test_robust_covariance_needs_two_clusters() -> None:
    data = clustered_frame(4)
    data["one"] = "all"
    with pytest.raises(ModelSpecificationError, match="at least two clusters.*got 1"):
        crtstats.ols(FORMULA, data, cluster="one", cov_type="CR2")


def test_unknown_column_is_reported() -> None:
    with pytest.raises(ModelSpecificationError, match="no column"):
        crtstats.ols("y ~ arm + dose", clustered_frame(5), cluster="cluster")


# -- warnings and bookkeeping ------------------------------------------------------------
def test_cr1_with_few_clusters_warns_and_records_it() -> None:
    data = clustered_frame(6, n_clusters=8)
    with pytest.warns(FewClustersWarning, match=r"CR1 with t\(7\).*8 < 40.*CR2"):
        res = crtstats.ols(FORMULA, data, cluster="cluster", cov_type="CR1")
    assert len(res.warnings) == 1 and "CR2" in res.warnings[0]
    np.testing.assert_array_equal(res.df_values, 7.0)


def test_cr1_with_many_clusters_does_not_warn() -> None:
    data = clustered_frame(7, n_clusters=40, max_size=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = crtstats.ols(FORMULA, data, cluster="cluster", cov_type="CR1")
    assert res.warnings == ()


def test_excluded_rows_are_counted_not_silent() -> None:
    data = clustered_frame(8)
    data.loc[[0, 3], "x"] = np.nan
    with pytest.warns(ExcludedRowsWarning, match=r"2 of \d+ row\(s\) excluded"):
        res = crtstats.ols(FORMULA, data, cluster="cluster")
    assert [w.category for w in res.warnings] == [ExcludedRowsWarning]
    assert res.info["n_excluded"] == 2
    assert res.info["note"].startswith("2 row(s) excluded")
    assert res.nobs == len(data) - 2


def test_classical_without_cluster_has_residual_df_and_no_cluster_count() -> None:
    data = clustered_frame(9)
    res = crtstats.ols(FORMULA, data, cov_type="classical")
    assert res.n_clusters is None
    assert res.df_method == "residual"
    np.testing.assert_array_equal(res.df_values, len(data) - 3)
    ref = sm.OLS.from_formula(FORMULA, data).fit()
    np.testing.assert_allclose(res.cov_values, ref.cov_params().to_numpy(), rtol=1e-10)


# -- independent checks of the CR2 pieces ------------------------------------------------
def test_cr2_without_cluster_is_statsmodels_hc2() -> None:
    data = clustered_frame(10, n_clusters=10)
    res = crtstats.ols(FORMULA, data, cov_type="CR2")
    hc2 = sm.OLS.from_formula(FORMULA, data).fit(cov_type="HC2")
    np.testing.assert_allclose(res.cov_values, hc2.cov_params().to_numpy(), rtol=1e-10)
    assert res.n_clusters == len(data)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_cr2_df_match_a_direct_transcription(seed: int) -> None:
    data = clustered_frame(seed, n_clusters=7)
    res = crtstats.ols(FORMULA, data, cluster="cluster", cov_type="CR2")
    X = sm.OLS.from_formula(FORMULA, data).exog
    groups = pd.factorize(data["cluster"])[0]
    for k in range(3):
        c = np.eye(3)[k]
        assert res.df_values[k] == pytest.approx(cr2_df_direct(X, groups, c), rel=1e-10)
    c = np.array([0.0, 1.0, -0.5])
    assert res.contrast(c).df == pytest.approx(cr2_df_direct(X, groups, c), rel=1e-10)


@pytest.mark.parametrize(
    ("formula", "zero_cluster"),
    [
        ("y ~ arm + x", False),  # clusters of 1 to 6 rows
        ("y ~ x + cluster", False),  # cluster fixed effects: every I - H_jj is singular
        ("y ~ 0 + x", True),  # a cluster whose rows of X are all zero
    ],
)
def test_cr2_matches_the_n_by_n_formulas(formula: str, zero_cluster: bool) -> None:
    data = clustered_frame(16, n_clusters=7)
    if zero_cluster:
        data.loc[data["cluster"] == "c03", "x"] = 0.0
    res = crtstats.ols(formula, data, cluster="cluster", cov_type="CR2")
    design = build_design(formula, data, cluster="cluster")
    y, X, groups = design.y, design.X, design.groups
    np.testing.assert_allclose(res.cov_values, cr2_cov_direct(X, y, groups),
                               rtol=1e-9, atol=1e-14)
    for k in range(X.shape[1]):
        want = cr2_df_direct(X, groups, np.eye(X.shape[1])[k])
        assert res.df_values[k] == pytest.approx(want, rel=1e-9)


def test_cr2_single_coefficient_contrast_equals_its_df() -> None:
    res = crtstats.ols(FORMULA, clustered_frame(14), cluster="cluster")
    con = res.contrast({"x": 1.0}, name="slope")
    assert con.df == pytest.approx(float(res.df["x"]), rel=1e-12)
    assert con.std_error == pytest.approx(float(res.std_errors["x"]), rel=1e-12)
    assert con.df_method == "bell-mccaffrey"


def test_cr2_df_are_invariant_to_rescaling_a_contrast() -> None:
    res = crtstats.ols(FORMULA, clustered_frame(15), cluster="cluster")
    one = res.contrast({"arm[T.treated]": 1.0, "x": 1.0})
    ten = res.contrast({"arm[T.treated]": 10.0, "x": 10.0})
    assert ten.df == pytest.approx(one.df, rel=1e-10)
    assert ten.pvalue == pytest.approx(one.pvalue, rel=1e-8)


# -- invariants (hypothesis) -------------------------------------------------------------
def _fit_all(data: pd.DataFrame) -> dict[str, crtstats.CRTResult]:
    """CR1 and CR2 fits (classical shares the estimates and is a plain function of them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewClustersWarning)
        return {
            ct: crtstats.ols(FORMULA, data, cluster="cluster", cov_type=ct)
            for ct in ("CR1", "CR2")
        }


def _assert_same(a: crtstats.CRTResult, b: crtstats.CRTResult) -> None:
    assert a.param_names == b.param_names
    np.testing.assert_allclose(a.param_values, b.param_values, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(a.cov_values, b.cov_values, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(a.df_values, b.df_values, rtol=1e-8)


@given(seed=st.integers(0, 2**32 - 1), n_clusters=st.integers(4, 9), data=st.data())
def test_relabelling_clusters_and_shuffling_rows_change_nothing(
    seed: int, n_clusters: int, data: st.DataObject
) -> None:
    frame = clustered_frame(seed, n_clusters=n_clusters)
    labels = sorted(frame["cluster"].unique())
    new = data.draw(st.permutations([f"k{i}" for i in range(len(labels))]))
    relabelled = frame.assign(cluster=frame["cluster"].map(dict(zip(labels, new, strict=True))))
    order = data.draw(st.permutations(range(len(frame))))
    shuffled = relabelled.iloc[list(order)].reset_index(drop=True)
    before, after = _fit_all(frame), _fit_all(shuffled)
    for ct in before:
        _assert_same(before[ct], after[ct])


@given(seed=st.integers(0, 2**32 - 1), shift=st.floats(-1e3, 1e3, allow_nan=False))
def test_adding_a_constant_to_the_outcome_shifts_only_the_intercept(
    seed: int, shift: float
) -> None:
    frame = clustered_frame(seed)
    before = _fit_all(frame)
    after = _fit_all(frame.assign(y=frame["y"] + shift))
    for ct in before:
        b, a = before[ct], after[ct]
        assert a.param_values[0] == pytest.approx(b.param_values[0] + shift, rel=1e-9, abs=1e-8)
        np.testing.assert_allclose(a.param_values[1:], b.param_values[1:], rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(a.cov_values, b.cov_values, rtol=1e-6, atol=1e-10)
        np.testing.assert_allclose(a.df_values, b.df_values, rtol=1e-8)


# -- degenerate data -----------------------------------------------------------------------
@pytest.mark.parametrize("cov_type", ["CR1", "CR2"])
def test_one_cluster_per_arm_is_refused_for_robust_covariances(cov_type: str) -> None:
    data = clustered_frame(30, n_clusters=2, max_size=8)
    with pytest.raises(ModelSpecificationError,
                       match=r"undefined.*all 2 cluster\(s\) of 'cluster' are fitted exactly"):
        crtstats.ols(FORMULA, data, cluster="cluster", cov_type=cov_type)  # type: ignore[arg-type]
    # ignoring the clustering is still defined
    res = crtstats.ols(FORMULA, data, cluster="cluster", cov_type="classical")
    assert np.all(res.std_errors > 1e-3)


def test_no_more_clusters_than_cluster_level_coefficients_is_refused() -> None:
    """Three clusters, intercept + two cluster-level slopes: each cluster is fitted
    exactly, so the CR2 variance of those coefficients is zero whatever the data."""
    data = clustered_frame(31, n_clusters=3, max_size=6).drop(columns="arm")
    rng = np.random.default_rng(2)
    level = {c: rng.normal(size=2) for c in data["cluster"].unique()}
    data["z1"] = data["cluster"].map(lambda c: level[c][0])
    data["z2"] = data["cluster"].map(lambda c: level[c][1])
    with pytest.raises(ModelSpecificationError,
                       match=r"cov_type='CR2' is undefined.*all 3 cluster\(s\) of "
                             r"'cluster' are fitted exactly"):
        crtstats.ols("y ~ z1 + z2 + x", data, cluster="cluster")


def test_constant_outcome_is_an_error() -> None:
    data = clustered_frame(32).assign(y=1.0)
    for cov_type in ("classical", "CR2"):
        with pytest.raises(ModelSpecificationError, match=r"'y' is constant.*equal 1\.0"):
            crtstats.ols(FORMULA, data, cluster="cluster", cov_type=cov_type)  # type: ignore[arg-type]


def test_exact_fit_is_an_error() -> None:
    data = clustered_frame(33)
    data["y"] = 3.0 - 2.0 * data["x"]
    with pytest.raises(ModelSpecificationError, match=r"residual variance .* is zero"):
        crtstats.ols(FORMULA, data, cluster="cluster", cov_type="classical")


@pytest.mark.parametrize(("column", "label"), [("y", "outcome 'y'"), ("x", "column 'x'")])
def test_infinite_value_is_an_error_naming_the_column(column: str, label: str) -> None:
    data = clustered_frame(34)
    data.loc[2, column] = np.inf
    with pytest.raises(ModelSpecificationError, match=rf"{label}.*row 2 with value inf"):
        crtstats.ols(FORMULA, data, cluster="cluster")


def test_empty_arm_is_an_error() -> None:
    data = clustered_frame(35).assign(arm="treated")
    with pytest.raises(ModelSpecificationError, match=r"'arm'.*single value 'treated'"):
        crtstats.ols(FORMULA, data, cluster="cluster")


def test_zero_variance_covariate_is_named() -> None:
    data = clustered_frame(36).assign(z=0.5)
    with pytest.raises(ModelSpecificationError, match=r"rank deficient.*\['z'\]"):
        crtstats.ols("y ~ arm + z", data, cluster="cluster")


def test_single_row_clusters_and_a_single_row_cluster_are_fine() -> None:
    data = clustered_frame(37, n_clusters=10)
    res = crtstats.ols(FORMULA, data, cluster="cluster")
    assert np.all(np.isfinite(res.std_errors)) and np.all(res.df > 0)


def test_cluster_must_be_a_column_name_or_none() -> None:
    with pytest.raises(InvalidParameterError, match=r"ols: cluster must be a column name"):
        crtstats.ols(FORMULA, clustered_frame(38), cluster=1)  # type: ignore[arg-type]


def test_a_row_fitted_exactly_gets_nan_and_a_warning_without_clusters() -> None:
    """Team-level data, a stratum with one team: HC2 would leave that team out of the
    stratum's SE; the arm effect does not use that team and is unaffected."""
    data = clustered_frame(39, n_clusters=8).groupby("cluster", as_index=False).first()
    data["stratum"] = ["a", "a", "a", "b", "b", "b", "b", "c"]
    with pytest.warns(FewClustersWarning,
                      match=r"\['stratum\[T.c\]'\] is undefined.*row\(s\) \['7'\]"):
        res = crtstats.ols("y ~ arm + stratum", data)
    assert np.isnan(res.std_errors["stratum[T.c]"]) and np.isnan(res.df["stratum[T.c]"])
    others = res.std_errors.drop("stratum[T.c]")
    assert np.all(np.isfinite(others)) and np.all(others > 0)
    assert [w.category for w in res.warnings] == [FewClustersWarning]
    # the arm effect equals the fit without the lone team (it enters nothing else)
    rest = crtstats.ols("y ~ arm + stratum", data.iloc[:7])
    np.testing.assert_allclose(res.params["arm[T.treated]"], rest.params["arm[T.treated]"],
                               rtol=1e-12)
    np.testing.assert_allclose(res.std_errors["arm[T.treated]"],
                               rest.std_errors["arm[T.treated]"], rtol=1e-10)


def test_the_only_treated_cluster_leaves_the_arm_effect_undefined() -> None:
    data = clustered_frame(41, n_clusters=9)
    data["arm"] = np.where(data["cluster"] == "c03", "treated", "control")
    with pytest.warns(FewClustersWarning, match=r"\['arm\[T.treated\]'\] is undefined.*'c03'"):
        res = crtstats.ols(FORMULA, data, cluster="cluster")
    assert np.isnan(res.std_errors["arm[T.treated]"]) and np.isnan(res.pvalues["arm[T.treated]"])
    assert np.isfinite(res.std_errors["x"])


def test_fixed_effects_for_the_clusters_are_allowed() -> None:
    """clubSandwich's panel case: cluster dummies are nuisance, the slope is robust."""
    data = clustered_frame(40, n_clusters=8)
    res = crtstats.ols("y ~ x + cluster", data, cluster="cluster")
    assert np.isfinite(res.std_errors["x"]) and res.std_errors["x"] > 0
