"""The result contract: immutability, typed details, spec, resid / fitted / predict.

Reference values for fitted values, residuals and predictions come from
tests/reference/wald.R (lme4 ``fitted()`` / ``residuals()`` / ``predict()``, and
``lm``). Tolerances: lmm 1e-6 absolute on a fidelity total of about 120 (the fit's
optimum is reached to about 1e-8 relative in the variance ratio; observed below
3e-7); ols 1e-9 (closed form).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import crtstats
from crtstats import CRTResult, InvalidParameterError, ModelSpecificationError
from crtstats.models import (
    ClusterLevelDetails,
    GeeDetails,
    GlmmDetails,
    LmmDetails,
    OlsDetails,
)

REF_DIR = Path(__file__).parent / "reference"
REF: dict[str, Any] = json.loads((REF_DIR / "wald.json").read_text())
LMM_ATOL = 1e-6  # see module docstring
OLS_ATOL = 1e-9  # closed form


def _fidelity() -> pd.DataFrame:
    """The fidelity reference data without the rows whose total is missing (R's fit
    drops them); the index keeps the original row numbers."""
    data = pd.read_csv(REF_DIR / "data" / "lmm_fidelity.csv")
    data["review"] = pd.Categorical(data["review"], ["baseline", "6m", "12m"])
    return data.dropna(subset=["total"])


@pytest.fixture(scope="module")
def lmm_fit() -> CRTResult:
    return crtstats.lmm("total ~ arm * review + stratum", _fidelity(), cluster="team_id")


@pytest.fixture(scope="module")
def follow_up() -> pd.DataFrame:
    trial = crtstats.datasets.load_example()
    adm = trial.admissions
    return adm[adm["period"] == "follow_up"].merge(trial.teams, on="team_id")


@pytest.fixture(scope="module")
def gee_fit(follow_up: pd.DataFrame) -> CRTResult:
    return crtstats.gee("admitted ~ arm + stratum", follow_up, cluster="team_id",
                        family="binomial")


@pytest.fixture(scope="module")
def glmm_fit(follow_up: pd.DataFrame) -> CRTResult:
    return crtstats.glmm("admitted ~ arm + stratum", follow_up, cluster="team_id")


# -- immutable in fact -------------------------------------------------------------------
def test_arrays_are_read_only(lmm_fit: CRTResult) -> None:
    for arr in (lmm_fit.param_values, lmm_fit.cov_values, lmm_fit.df_values):
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = 1.0
    assert lmm_fit.predictor is not None
    with pytest.raises(ValueError, match="read-only"):
        lmm_fit.predictor.linear_predictor[0] = 1.0


def test_mappings_are_read_only(lmm_fit: CRTResult, glmm_fit: CRTResult) -> None:
    with pytest.raises(TypeError):
        lmm_fit.variance_components_values["cluster"] = 0.0  # type: ignore[index]
    with pytest.raises(TypeError):
        lmm_fit.info["theta"] = 0.0  # type: ignore[index]
    assert isinstance(glmm_fit.details, GlmmDetails)
    with pytest.raises(TypeError):
        glmm_fit.details.term_level["Intercept"] = "within"  # type: ignore[index]
    assert lmm_fit.spec is not None
    with pytest.raises(TypeError):
        lmm_fit.spec.options["ddf"] = "residual"  # type: ignore[index]


def test_records_are_frozen(lmm_fit: CRTResult) -> None:
    with pytest.raises(AttributeError):
        lmm_fit.nobs = 3  # type: ignore[misc]
    with pytest.raises(AttributeError):
        lmm_fit.details.reml = False  # type: ignore[misc, union-attr]
    with pytest.raises(AttributeError):
        lmm_fit.spec.formula = "y ~ 1"  # type: ignore[misc, union-attr]


def test_gee_covariances_are_read_only(gee_fit: CRTResult) -> None:
    details = gee_fit.details
    assert isinstance(details, GeeDetails)
    with pytest.raises(ValueError, match="read-only"):
        details.covariances["robust"][0, 0] = 1.0
    with pytest.raises(TypeError):
        details.covariances["robust"] = np.eye(2)  # type: ignore[index]
    with pytest.raises(ValueError, match="read-only"):
        gee_fit.info["covariances"]["robust"][0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        details.naive_covariance[0, 0] = 1.0


def test_frames_are_copies(lmm_fit: CRTResult, follow_up: pd.DataFrame) -> None:
    effects = lmm_fit.random_effects
    assert effects is not None
    effects.loc[0, "estimate"] = 1e6
    assert lmm_fit.random_effects.loc[0, "estimate"] != 1e6  # type: ignore[union-attr]
    fitted = lmm_fit.fitted_values
    fitted.iloc[0] = 1e6
    assert lmm_fit.fitted_values.iloc[0] != 1e6
    cl = crtstats.cluster_level(follow_up, outcome="admitted", arm="arm", cluster="team_id")
    assert isinstance(cl.details, ClusterLevelDetails)
    frame = cl.details.clusters
    frame.loc[0, "observed"] = -1
    assert cl.details.clusters.loc[0, "observed"] != -1
    assert cl.info["clusters"].loc[0, "observed"] != -1


# -- one meaning per name -------------------------------------------------------------
def test_lmm_details_glossary(lmm_fit: CRTResult) -> None:
    d = lmm_fit.details
    assert isinstance(d, LmmDetails)
    vc = lmm_fit.variance_components
    assert d.cluster_variance == vc["cluster"] and d.residual_variance == vc["residual"]
    assert d.cluster_sd == pytest.approx(np.sqrt(vc["cluster"]), rel=1e-15)
    assert d.residual_sd == pytest.approx(np.sqrt(vc["residual"]), rel=1e-15)
    assert d.relative_sd == pytest.approx(d.cluster_sd / d.residual_sd, rel=1e-14)
    assert lmm_fit.info["theta"] == d.relative_sd  # the deprecated view, derived
    assert d.deviance == pytest.approx(-2.0 * lmm_fit.loglik, rel=1e-15)  # type: ignore[operator]


def test_glmm_gee_ols_glossary(glmm_fit: CRTResult, gee_fit: CRTResult) -> None:
    g = glmm_fit.details
    assert isinstance(g, GlmmDetails) and g.nb_shape is None
    assert g.cluster_variance == pytest.approx(glmm_fit.variance_components["cluster"],
                                               rel=1e-15)
    assert glmm_fit.info["sigma"] == pytest.approx(g.cluster_sd, rel=1e-15)
    e = gee_fit.details
    assert isinstance(e, GeeDetails) and -1.0 < e.working_correlation < 1.0
    assert gee_fit.info["alpha"] == e.working_correlation
    teams = pd.read_csv(REF_DIR / "data" / "ols_fidelity_ancova.csv")
    res = crtstats.ols("total_12m ~ arm + total_baseline + stratum", teams.dropna(
        subset=["total_baseline", "total_12m"]), cluster="team_id")
    o = res.details
    assert isinstance(o, OlsDetails)
    assert o.residual_sd == pytest.approx(
        float(np.sqrt(res.resid @ res.resid / o.df_resid)), rel=1e-12
    )


def test_spec_records_the_model(glmm_fit: CRTResult, gee_fit: CRTResult) -> None:
    spec = glmm_fit.spec
    assert spec is not None
    assert (spec.fitter, spec.formula, spec.cluster, spec.family, spec.link) == (
        "glmm", "admitted ~ arm + stratum", "team_id", "binomial", "logit")
    assert dict(spec.options) == {"nagq": 1, "ddf": "between-within", "method": "laplace"}
    assert gee_fit.spec is not None
    assert gee_fit.spec.options["cov_type"] == "kauermann-carroll"


def test_warnings_keep_their_category(gee_fit: CRTResult) -> None:
    boundary = pd.read_csv(REF_DIR / "data" / "lmm_boundary.csv")
    formula = json.loads((REF_DIR / "lmm.json").read_text())["boundary"]["formula"]
    formula = formula.split("+ (1")[0].strip()
    cluster = json.loads((REF_DIR / "lmm.json").read_text())["boundary"]["cluster"]
    with pytest.warns(crtstats.BoundaryFitWarning):
        res = crtstats.lmm(formula, boundary, cluster=cluster)
    assert any("boundary" in w for w in res.warnings)


# -- resid, fitted values and predict --------------------------------------------------
def test_lmm_fitted_resid_and_predict_match_lme4(lmm_fit: CRTResult) -> None:
    ref = REF["lmm"]["fidelity"]["predict"]
    fitted = lmm_fit.fitted_values
    assert list(fitted.index) == ref["used_rows"]  # the input rows used
    np.testing.assert_allclose(fitted, ref["fitted"], rtol=0, atol=LMM_ATOL)
    np.testing.assert_allclose(lmm_fit.resid, ref["resid"], rtol=0, atol=LMM_ATOL)
    new = pd.DataFrame(ref["newdata"])
    np.testing.assert_allclose(lmm_fit.predict(new), ref["fixed"], rtol=0, atol=LMM_ATOL)
    cond = lmm_fit.predict(new, include_cluster_effects=True)
    np.testing.assert_allclose(cond, ref["conditional"], rtol=0, atol=LMM_ATOL)
    # T99 is not in the fit: its cluster effect is 0, the fixed part alone
    assert cond.iloc[2] == lmm_fit.predict(new).iloc[2]


def test_ols_fitted_resid_and_predict_match_lm() -> None:
    ref = REF["ols"]["ancova"]
    data = pd.read_csv(REF_DIR / "data" / ref["csv"])
    res = crtstats.ols(ref["formula"], data.dropna(subset=["total_baseline", "total_12m"]),
                       cluster="team_id")
    pr = ref["predict"]
    np.testing.assert_allclose(res.fitted_values, pr["fitted"], rtol=0, atol=OLS_ATOL)
    np.testing.assert_allclose(res.resid, pr["resid"], rtol=0, atol=OLS_ATOL)
    new = pd.DataFrame(pr["newdata"])
    np.testing.assert_allclose(res.predict(new), pr["fixed"], rtol=0, atol=OLS_ATOL)
    with pytest.raises(InvalidParameterError, match="mixed model"):
        res.predict(new, include_cluster_effects=True)


def test_predict_codes_new_data_as_the_fit(lmm_fit: CRTResult) -> None:
    new = pd.DataFrame(REF["lmm"]["fidelity"]["predict"]["newdata"])
    shuffled = new.iloc[::-1]
    np.testing.assert_allclose(lmm_fit.predict(shuffled), lmm_fit.predict(new)[::-1],
                               rtol=1e-15)
    unknown = new.assign(stratum=["Trust A", "Trust Z", "Trust A", "Trust A"])
    with pytest.raises(ModelSpecificationError, match="Trust Z"):
        lmm_fit.predict(unknown)
    missing = new.assign(arm=[np.nan, "control", "control", "control"])
    out = lmm_fit.predict(missing)
    assert np.isnan(out.iloc[0]) and np.isfinite(out.iloc[1:]).all()
    with pytest.raises(ModelSpecificationError, match="review"):
        lmm_fit.predict(new.drop(columns="review"))
    with pytest.raises(InvalidParameterError, match="scale"):
        lmm_fit.predict(new, scale="mean")  # type: ignore[arg-type]


def test_glmm_predict_scales(glmm_fit: CRTResult, follow_up: pd.DataFrame) -> None:
    rows = follow_up.head(5)
    link = glmm_fit.predict(rows, include_cluster_effects=True, scale="link")
    mean = glmm_fit.predict(rows, include_cluster_effects=True)
    np.testing.assert_allclose(mean, 1.0 / (1.0 + np.exp(-link)), rtol=1e-14)
    np.testing.assert_allclose(mean, glmm_fit.fitted_values.iloc[:5], rtol=1e-12)
    np.testing.assert_allclose(glmm_fit.resid, follow_up["admitted"] - glmm_fit.fitted_values,
                               rtol=0, atol=1e-15)


def test_cluster_level_has_no_row_level_model(follow_up: pd.DataFrame) -> None:
    cl = crtstats.cluster_level(follow_up, outcome="admitted", arm="arm", cluster="team_id")
    with pytest.raises(ModelSpecificationError, match="no row-level model"):
        _ = cl.fitted_values
    with pytest.raises(ModelSpecificationError, match="no row-level model"):
        cl.predict(follow_up)


def test_joint_test_needs_the_covariance_between_its_terms() -> None:
    res = CRTResult(model="cluster_level", formula="y ~ arm",
                    param_names=("difference", "log_ratio"), param_values=np.array([1.0, 0.2]),
                    cov_values=np.array([[0.25, np.nan], [np.nan, 0.01]]),
                    df_values=np.array([23.0, 23.0]), df_method="cluster-level t",
                    cov_type="unweighted", nobs=100, n_clusters=25)
    assert res.wald_test(["log_ratio"]).statistic == pytest.approx(4.0, rel=1e-12)
    with pytest.raises(ModelSpecificationError, match="not estimated"):
        res.wald_test(["difference", "log_ratio"])


def test_info_view_is_empty_without_details() -> None:
    res = CRTResult(model="ols", formula="y ~ 1", param_names=("Intercept",),
                    param_values=np.array([1.0]), cov_values=np.eye(1),
                    df_values=np.array([3.0]), df_method="residual", cov_type="classical",
                    nobs=4, n_clusters=None)
    assert dict(res.info) == {} and res.details is None


def test_offsets_enter_fitted_values_and_predictions() -> None:
    data = pd.read_csv(REF_DIR / "data" / "glmm_counts_pois.csv")
    res = crtstats.glmm("admissions ~ arm * period", data, cluster="team_id",
                        family="poisson", offset="log_users")
    assert res.spec is not None and res.spec.offset == "log_users"
    link = res.predict(data, include_cluster_effects=True, scale="link")
    np.testing.assert_allclose(np.exp(link), res.fitted_values, rtol=1e-12)
    doubled = data.assign(log_users=data["log_users"] + np.log(2.0))
    np.testing.assert_allclose(res.predict(doubled), 2.0 * res.predict(data), rtol=1e-12)
    with pytest.raises(crtstats.MissingColumnError, match="log_users"):
        res.predict(data.drop(columns="log_users"))


def test_team_level_negative_binomial_contract() -> None:
    from crtstats.analysis.admissions import negative_binomial_rate
    from crtstats.models import NegativeBinomialDetails

    trial = crtstats.datasets.load_example()
    su = trial.service_use.merge(trial.teams, on="team_id")
    fu = su[su["period"] == "follow_up"].astype({"admissions": float})
    res = negative_binomial_rate("admissions ~ arm", fu, exposure="n_users",
                                 cluster="team_id")
    assert isinstance(res.details, NegativeBinomialDetails) and res.details.nb_shape > 0
    assert res.info["theta"] == res.details.nb_shape
    assert res.spec is not None and res.spec.exposure == "n_users"
    np.testing.assert_allclose(res.predict(fu), res.fitted_values, rtol=1e-12)
    np.testing.assert_allclose(res.resid, fu["admissions"] - res.fitted_values, rtol=1e-12)


def test_binomial_with_trials_uses_proportions() -> None:
    data = pd.read_csv(REF_DIR / "data" / "glmm_cbpp.csv")
    res = crtstats.glmm("incidence ~ period", data, cluster="herd", trials="size")
    assert res.spec is not None and res.spec.trials == "size"
    fitted = res.fitted_values
    assert ((fitted > 0) & (fitted < 1)).all()  # probabilities, as lme4's fitted()
    np.testing.assert_allclose(res.resid, data["incidence"] / data["size"] - fitted,
                               rtol=0, atol=1e-15)
