"""crtstats.lmm against lme4 + pbkrtest + lmerTest (values in tests/reference/lmm.json).

The reference is written by ``tests/reference/lmm.R`` with tight optimiser settings
for lme4 (so the R optimum is accurate well beyond the tolerances below).

Tolerances, and why:

============================  ===============  ==========================================
quantity                      tolerance        reason
============================  ===============  ==========================================
fixed effects, SEs, cov       1e-6 relative    both fits sit at the optimum to ~1e-9 in
                                               theta; beta and SE move with theta
                                               (covariances relative to se_i * se_j)
variance components, theta    1e-5 relative    the flat direction of the likelihood; R's
                                               derivative-free optimiser stops earlier
                                               than our root finder
REML criterion, loglik        1e-8 relative    the criterion is flat at the optimum
KR and Satterthwaite df       1e-4 relative    lmerTest differentiates numerically
                                               (numDeriv); KR is exact in both
p-values                      1e-6 absolute    follow from t and df
random effects, cond. SD      1e-5 relative    scale with the variance components
                              (+1e-8 abs)      (absolute part for BLUPs near zero)
============================  ===============  ==========================================
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

import crtstats
from crtstats.exceptions import BoundaryFitWarning, ExcludedRowsWarning
from tests.conftest import REFERENCE

REF: dict[str, Any] = json.loads((REFERENCE / "lmm.json").read_text())
DATA = REFERENCE / "data"

REL_BETA = 1e-6
REL_VC = 1e-5
REL_CRIT = 1e-8
REL_DF = 1e-4
ABS_P = 1e-6
REL_RE = 1e-5


def _load(case: str) -> pd.DataFrame:
    if case == "fidelity":
        data = pd.read_csv(DATA / "lmm_fidelity.csv")
        data["review"] = pd.Categorical(data["review"], ["baseline", "6m", "12m"])
        return data
    if case in ("unequal", "unequal_ml"):
        return pd.read_csv(DATA / "lmm_unequal.csv")
    if case == "boundary":
        return pd.read_csv(DATA / "lmm_boundary.csv")
    if case == "sleepstudy":
        return pd.read_csv(DATA / "lmm_sleepstudy.csv", dtype={"Subject": str})
    raise KeyError(case)


def _fixed_formula(ref: dict[str, Any]) -> str:
    return str(ref["formula"]).split(" + (1 |")[0]


def _fit(case: str, ddf: str) -> crtstats.CRTResult:
    ref = REF[case]
    data = _load(case)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = crtstats.lmm(
            _fixed_formula(ref), data, cluster=ref["cluster"], reml=ref["reml"], ddf=ddf
        )
    kinds = {w.category for w in caught}
    # the fidelity data have rows with a missing total (lmer drops them too)
    assert kinds <= {BoundaryFitWarning, ExcludedRowsWarning}, [str(w.message) for w in caught]
    assert (ExcludedRowsWarning in kinds) == (res.info["n_excluded"] > 0)
    assert (BoundaryFitWarning in kinds) == bool(ref["singular"])
    return res


def _assert_cov_close(actual: np.ndarray, desired: np.ndarray, rtol: float) -> None:
    """Covariances agree to ``rtol`` relative to ``se_i * se_j`` (the scale of each entry).

    Structural zeros (e.g. between a within-cluster and a balanced cluster-level term)
    are ~1e-14 on both sides with opposite signs, so a plain relative test is
    meaningless for them.
    """
    scale = np.sqrt(np.outer(np.diag(desired), np.diag(desired)))
    np.testing.assert_array_less(np.abs(actual - desired), rtol * scale + 1e-300)


def _r_name(name: str) -> str:
    return "(Intercept)" if name == "Intercept" else name.replace("[T.", "").replace("]", "")


CASES = ["fidelity", "unequal", "boundary", "sleepstudy"]
ALL_CASES = [*CASES, "unequal_ml"]


@pytest.mark.parametrize("case", ALL_CASES)
def test_fixed_effects_and_model_based_covariance(case: str) -> None:
    ref = REF[case]
    res = _fit(case, "satterthwaite")
    assert [_r_name(n) for n in res.param_names] == ref["names"]
    assert res.nobs == ref["nobs"]
    assert res.n_clusters == ref["n_clusters"]
    np.testing.assert_allclose(res.params.to_numpy(), ref["beta"], rtol=REL_BETA)
    _assert_cov_close(res.cov_values, np.array(ref["vcov"]), REL_BETA)
    np.testing.assert_allclose(
        res.std_errors.to_numpy(), ref["satterthwaite"]["se"], rtol=REL_BETA
    )


@pytest.mark.parametrize("case", ALL_CASES)
def test_variance_components_and_likelihood(case: str) -> None:
    ref = REF[case]
    res = _fit(case, "satterthwaite")
    vc = res.variance_components
    np.testing.assert_allclose(vc["residual"], ref["var_residual"], rtol=REL_VC)
    if ref["singular"]:
        assert vc["cluster"] == 0.0
        assert ref["var_cluster"] == 0.0
        assert res.icc == 0.0
    else:
        np.testing.assert_allclose(vc["cluster"], ref["var_cluster"], rtol=REL_VC)
        np.testing.assert_allclose(res.info["theta"], ref["theta"], rtol=REL_VC)
        icc = ref["var_cluster"] / (ref["var_cluster"] + ref["var_residual"])
        np.testing.assert_allclose(res.icc, icc, rtol=REL_VC)
    assert res.loglik is not None
    np.testing.assert_allclose(res.loglik, ref["loglik"], rtol=REL_CRIT)
    np.testing.assert_allclose(res.info["deviance"], ref["deviance_criterion"], rtol=REL_CRIT)


@pytest.mark.parametrize("case", ALL_CASES)
def test_satterthwaite_per_coefficient(case: str) -> None:
    ref = REF[case]["satterthwaite"]
    res = _fit(case, "satterthwaite")
    assert res.df_method == "satterthwaite"
    np.testing.assert_allclose(res.df.to_numpy(), ref["df"], rtol=REL_DF)
    np.testing.assert_allclose(res.tstats.to_numpy(), ref["t"], rtol=REL_BETA)
    np.testing.assert_allclose(res.pvalues.to_numpy(), ref["p"], rtol=0, atol=ABS_P)


@pytest.mark.parametrize("case", CASES)
def test_kenward_roger_per_coefficient(case: str) -> None:
    ref = REF[case]
    res = _fit(case, "kenward-roger")
    assert res.df_method == "kenward-roger"
    assert res.cov_type == "kenward-roger"
    _assert_cov_close(res.cov_values, np.array(ref["vcov_kr"]), REL_BETA)
    np.testing.assert_allclose(res.std_errors.to_numpy(), ref["kenward_roger"]["se"],
                               rtol=REL_BETA)
    np.testing.assert_allclose(res.df.to_numpy(), ref["kr_df_pbkrtest"], rtol=REL_DF)
    np.testing.assert_allclose(res.df.to_numpy(), ref["kenward_roger"]["df"], rtol=REL_DF)
    np.testing.assert_allclose(res.pvalues.to_numpy(), ref["kenward_roger"]["p"], rtol=0,
                               atol=ABS_P)


@pytest.mark.parametrize("case", CASES)
def test_contrasts_kenward_roger(case: str) -> None:
    ref = REF[case]
    res = _fit(case, "kenward-roger")
    assert len(ref["contrasts"]) >= 2
    for name, con in ref["contrasts"].items():
        out = res.contrast(con["L"], name=name)
        assert out.name == name
        assert sum(1 for w in con["L"] if w != 0) >= 1
        np.testing.assert_allclose(out.estimate, con["estimate"], rtol=REL_BETA)
        np.testing.assert_allclose(out.std_error, con["kr_se"], rtol=REL_BETA)
        np.testing.assert_allclose(out.df, con["kr_df_pbkrtest"], rtol=REL_DF)
        np.testing.assert_allclose(out.df, con["kr_df"], rtol=REL_DF)
        np.testing.assert_allclose(out.pvalue, con["kr_p"], rtol=0, atol=ABS_P)


@pytest.mark.parametrize("case", ALL_CASES)
def test_contrasts_satterthwaite(case: str) -> None:
    ref = REF[case]
    res = _fit(case, "satterthwaite")
    for name, con in ref["contrasts"].items():
        out = res.contrast(con["L"], name=name)
        np.testing.assert_allclose(out.estimate, con["estimate"], rtol=REL_BETA)
        np.testing.assert_allclose(out.std_error, con["sat_se"], rtol=REL_BETA)
        np.testing.assert_allclose(out.df, con["sat_df"], rtol=REL_DF)
        np.testing.assert_allclose(out.pvalue, con["sat_p"], rtol=0, atol=ABS_P)


def test_fidelity_contrast_by_term_names() -> None:
    """The arm effect at 12 months named by terms, as analyses will call it."""
    con = REF["fidelity"]["contrasts"]["arm_12m"]
    res = _fit("fidelity", "kenward-roger")
    out = res.contrast(
        {"arm[T.intervention]": 1, "arm[T.intervention]:review[T.12m]": 1}, name="arm at 12m"
    )
    np.testing.assert_allclose(out.estimate, con["estimate"], rtol=REL_BETA)
    np.testing.assert_allclose(out.df, con["kr_df"], rtol=REL_DF)
    assert res.info["n_excluded"] == 74 - REF["fidelity"]["nobs"]
    assert res.info["n_excluded"] > 0


@pytest.mark.parametrize("case", ALL_CASES)
def test_random_effects_match_ranef_condvar(case: str) -> None:
    ref = REF[case]
    res = _fit(case, "residual")
    frame = res.random_effects
    assert frame is not None
    assert list(frame.columns) == ["cluster", "estimate", "std_error"]
    got = frame.set_index("cluster").loc[[str(c) for c in ref["ranef_cluster"]]]
    np.testing.assert_allclose(got["estimate"], ref["ranef"], rtol=REL_RE, atol=1e-8)
    np.testing.assert_allclose(got["std_error"], ref["ranef_sd"], rtol=REL_RE, atol=1e-8)


@pytest.mark.parametrize("case", CASES)
def test_kenward_roger_joint_hypothesis_df(case: str) -> None:
    """KR df of a two-row hypothesis (the F-test df), against pbkrtest's Lb_ddf."""
    from crtstats.models._lmm_ddf import kr_df

    ref = REF[case]["kr_joint"]
    res = _fit(case, "kenward-roger")
    from crtstats.models._design import build_design
    from crtstats.models._lmm_ddf import geometry
    from crtstats.models._lmm_fit import cluster_stats, fit_profiled

    design = build_design(_fixed_formula(REF[case]), _load(case), cluster=REF[case]["cluster"])
    stats = cluster_stats(design.y, design.X, design.groups, design.n_clusters)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryFitWarning)
        fit = fit_profiled(stats, reml=True)
    lmat = np.array(ref["L"], dtype=float)
    assert lmat.shape == (2, len(res.param_names))
    np.testing.assert_allclose(kr_df(geometry(stats, fit, reml=True), lmat), ref["df"],
                               rtol=REL_DF)
