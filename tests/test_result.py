"""CRTResult and ContrastResult: the shared result vocabulary.

The t machinery (p-values, intervals, contrasts) is checked against statsmodels'
OLS results, an independent implementation of the same formulas; tolerance 1e-10
relative, since both evaluate the same closed forms in double precision.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from crtstats import CRTResult, InvalidParameterError, ModelSpecificationError


@pytest.fixture(scope="module")
def fitted() -> tuple[CRTResult, Any]:
    rng = np.random.default_rng(5)
    n = 60
    data = pd.DataFrame(
        {"x": rng.normal(size=n), "g": rng.choice(["a", "b", "c"], size=n)}
    )
    data["y"] = 1.0 + 0.5 * data["x"] + (data["g"] == "b") * 0.3 + rng.normal(size=n)
    sm = smf.ols("y ~ x + g", data).fit()
    names = list(sm.params.index)
    res = CRTResult(
        model="ols",
        formula="y ~ x + g",
        param_names=tuple(names),
        param_values=sm.params.to_numpy(),
        cov_values=sm.cov_params().to_numpy(),
        df_values=np.full(len(names), sm.df_resid),
        df_method="residual",
        cov_type="classical",
        nobs=n,
        n_clusters=None,
    )
    return res, sm


def test_vocabulary_matches_statsmodels(fitted: tuple[CRTResult, Any]) -> None:
    res, sm = fitted
    np.testing.assert_allclose(res.params, sm.params, rtol=1e-10)
    np.testing.assert_allclose(res.std_errors, sm.bse, rtol=1e-10)
    np.testing.assert_allclose(res.tstats, sm.tvalues, rtol=1e-10)
    np.testing.assert_allclose(res.pvalues, sm.pvalues, rtol=1e-10)
    ci = sm.conf_int(alpha=0.1)
    np.testing.assert_allclose(res.conf_int(0.9).to_numpy(), ci.to_numpy(), rtol=1e-10)


def test_contrast_matches_statsmodels_t_test(fitted: tuple[CRTResult, Any]) -> None:
    res, sm = fitted
    con = res.contrast({"g[T.b]": 1.0, "g[T.c]": -1.0}, name="b vs c")
    tt = sm.t_test("g[T.b] - g[T.c] = 0")
    assert con.name == "b vs c"
    assert con.estimate == pytest.approx(float(tt.effect[0]), rel=1e-10)
    assert con.std_error == pytest.approx(float(tt.sd[0, 0]), rel=1e-10)
    assert con.pvalue == pytest.approx(float(tt.pvalue), rel=1e-10)
    low, high = con.conf_int()
    np.testing.assert_allclose([low, high], tt.conf_int()[0], rtol=1e-10)
    frame = con.to_frame()
    assert list(frame.columns) == list(res.to_frame().columns)


def test_contrast_errors(fitted: tuple[CRTResult, Any]) -> None:
    res, _ = fitted
    with pytest.raises(ModelSpecificationError, match="unknown term"):
        res.contrast({"nope": 1.0})
    with pytest.raises(ModelSpecificationError, match="all zero"):
        res.contrast({"x": 0.0})
    with pytest.raises(ModelSpecificationError, match="one value per coefficient"):
        res.contrast([1.0, 2.0])


def test_z_inference_when_df_infinite() -> None:
    res = CRTResult(
        model="glmm", formula="y ~ x", param_names=("Intercept", "x"),
        param_values=[0.0, 1.96], cov_values=np.eye(2), df_values=np.inf,
        df_method="z", cov_type="model", nobs=10, n_clusters=5, link="logit",
    )
    assert res.pvalues["x"] == pytest.approx(0.04999579029644097, rel=1e-12)
    low, high = res.conf_int().loc["x"]
    assert low == pytest.approx(1.96 - 1.959963984540054, rel=1e-12)
    frame = res.to_frame(exponentiate=True)
    assert frame.loc[1, "estimate"] == pytest.approx(np.exp(1.96))
    assert frame.loc[1, "conf_high"] == pytest.approx(np.exp(high))


def test_result_is_immutable(fitted: tuple[CRTResult, Any]) -> None:
    res, _ = fitted
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.nobs = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        res.param_values[0] = 99.0
    params = res.params
    params.iloc[0] = 99.0
    assert res.params.iloc[0] != 99.0


def test_level_and_link_checks(fitted: tuple[CRTResult, Any]) -> None:
    res, _ = fitted
    with pytest.raises(InvalidParameterError, match="level"):
        res.conf_int(1.5)
    with pytest.raises(InvalidParameterError, match="link"):
        res.to_frame(exponentiate=True)
    text = res.summary()
    assert "y ~ x + g" in text and "residual" in text


def test_contrast_ignores_undefined_covariance_of_unused_terms() -> None:
    """A NaN covariance between two other terms does not make a contrast's SE NaN."""
    cov = np.array([[4.0, np.nan, 0.5], [np.nan, 1.0, 0.2], [0.5, 0.2, 9.0]])
    res = CRTResult(
        model="cluster_level", formula="y ~ arm", param_names=("a", "b", "c"),
        param_values=[1.0, 2.0, 3.0], cov_values=cov, df_values=10.0,
        df_method="cluster-level t", cov_type="unweighted", nobs=12, n_clusters=12,
    )
    con = res.contrast({"a": 1.0, "c": -1.0})
    assert con.estimate == pytest.approx(-2.0)
    assert con.std_error == pytest.approx(np.sqrt(4.0 + 9.0 - 2 * 0.5))
    assert np.isnan(res.contrast({"a": 1.0, "b": 1.0}).std_error)  # genuinely undefined
