"""crtstats.glmm against lme4::glmer and glmmTMB (reference values in glmm.json).

``tests/reference/glmm.R`` wrote the data (``tests/reference/data/glmm_*.csv``) and the
fits. Tolerances, and why:

* log-likelihood: ours >= R's - 1e-6 for every R fit (default and strict controls);
  we maximise the same function, so ours may only be higher.
* estimates: 1e-4 relative (plus 1e-7 absolute for estimates near 0) against the
  ``*_strict`` glmer fits and glmmTMB. glmer's default controls stop its inner PIRLS
  at tolPwrss = 1e-7, which moves its Laplace optimum by up to ~4e-4 relative on
  cbpp; with tolPwrss = 1e-12 it agrees with us to ~5e-6.
* standard errors: 1e-4 relative against glmer AGQ (strict) and glmmTMB; 3e-4 against
  glmer Laplace (strict). lme4's vcov() is the inverse of a finite-difference Hessian
  (step 1e-4) of its deviance function, which carries PIRLS noise: on trial01 its SEs
  change by 1e-4 relative between steps of 1e-3 and 1e-4, while the same data under
  nAGQ = 10 (same code path in crtstats) agree to 5e-6.
* cluster variance: 1e-4 relative (strict fits); at the boundary both are ~0.
* random effects: conditional modes within 1e-5 absolute and conditional SDs within
  1e-4 relative of glmer (strict). glmmTMB's ranef SDs include the uncertainty of the
  fixed parameters (sdreport), so only its modes are compared.
* R's logLik for nAGQ > 1 omits the saturated log-likelihood; we add it back
  (``info["loglik_saturated"]``) before comparing.
"""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import crtstats
from crtstats.exceptions import BoundaryFitWarning

REFERENCE = Path(__file__).resolve().parent / "reference"

REF: dict[str, Any] = json.loads((REFERENCE / "glmm.json").read_text())

#: case -> (data file, formula, cluster, family, extra keyword arguments)
CASES: dict[str, tuple[str, str, str, str, dict[str, str]]] = {
    "cbpp": ("cbpp", "incidence ~ period", "herd", "binomial", {"trials": "size"}),
    "cbpp01": ("cbpp01", "y ~ period", "herd", "binomial", {}),
    "trial01": ("trial01", "admitted ~ arm + stratum + pre_prop + age_c", "team_id",
                "binomial", {}),
    "grouseticks": ("grouseticks", "ticks ~ year + cheight", "brood", "poisson", {}),
    "counts_pois": ("counts_pois", "admissions ~ arm * period", "team_id", "poisson",
                    {"offset": "log_users"}),
    "flat01": ("flat01", "y ~ x", "team_id", "binomial", {}),
    "counts_nb": ("counts_nb", "admissions ~ arm * period", "team_id", "negative_binomial",
                  {"offset": "log_users"}),
    "grouseticks_nb": ("grouseticks", "ticks ~ year + cheight", "brood",
                       "negative_binomial", {}),
}
GLMER_CASES = [c for c in CASES if CASES[c][3] != "negative_binomial"]
TMB_CASES = ["counts_nb", "grouseticks_nb"]
METHODS = {"laplace": 1, "agq10": 10}


@cache
def fit(case: str, nagq: int) -> crtstats.CRTResult:
    file, formula, cluster, family, extra = CASES[case]
    data = pd.read_csv(REFERENCE / "data" / f"glmm_{file}.csv")
    with warnings.catch_warnings():
        # flat01 is a boundary fit by construction; test_boundary checks the warning
        warnings.simplefilter("ignore", BoundaryFitWarning)
        return crtstats.glmm(formula, data, cluster=cluster, family=family,  # type: ignore[arg-type]
                             nagq=nagq, **extra)


def r_loglik(res: crtstats.CRTResult, ref: dict[str, Any], nagq: int) -> float:
    """R's logLik on our scale: lme4 drops the saturated term when nAGQ > 1."""
    return float(ref["loglik"]) + (res.info["loglik_saturated"] if nagq > 1 else 0.0)


@pytest.mark.parametrize("method", ["laplace", "agq10", "laplace_strict", "agq10_strict"])
@pytest.mark.parametrize("case", GLMER_CASES)
def test_loglik_at_least_glmer(case: str, method: str) -> None:
    nagq = METHODS[method.removesuffix("_strict")]
    res = fit(case, nagq)
    ref = REF[case][method]
    assert res.loglik is not None
    assert res.loglik >= r_loglik(res, ref, nagq) - 1e-6
    # and not absurdly higher: the same likelihood, so within the PIRLS slack of lme4
    assert res.loglik - r_loglik(res, ref, nagq) < 1e-3


@pytest.mark.parametrize("method", ["laplace_strict", "agq10_strict"])
@pytest.mark.parametrize("case", GLMER_CASES)
def test_estimates_and_se_match_glmer(case: str, method: str) -> None:
    nagq = METHODS[method.removesuffix("_strict")]
    res = fit(case, nagq)
    ref = REF[case][method]
    assert len(res.param_names) == len(ref["names"])
    np.testing.assert_allclose(res.params.to_numpy(), ref["estimate"], rtol=1e-4, atol=1e-7)
    se_rtol = 3e-4 if nagq == 1 else 1e-4  # lme4's finite-difference Hessian, see above
    np.testing.assert_allclose(res.std_errors.to_numpy(), ref["std_error"], rtol=se_rtol)
    # covariances on the scale of the SEs: |dC_ij| / (se_i se_j), as a variance's 2 x se
    se = np.array(ref["std_error"])
    scaled = (res.cov.to_numpy() - np.array(ref["vcov"])) / np.outer(se, se)
    assert np.max(np.abs(scaled)) <= 2 * se_rtol


@pytest.mark.parametrize("method", ["laplace_strict", "agq10_strict"])
@pytest.mark.parametrize("case", [c for c in GLMER_CASES if c != "flat01"])
def test_variance_and_random_effects_match_glmer(case: str, method: str) -> None:
    res = fit(case, METHODS[method.removesuffix("_strict")])
    ref = REF[case][method]
    np.testing.assert_allclose(res.variance_components["cluster"], ref["sigma2"], rtol=1e-4)
    assert res.icc is None if CASES[case][3] != "binomial" else res.icc is not None
    re = res.random_effects
    assert re is not None
    assert list(re.columns) == ["cluster", "estimate", "std_error"]
    by_label = re.set_index("cluster").loc[[f"{lab}" for lab in ref["ranef_levels"]]]
    np.testing.assert_allclose(by_label["estimate"], ref["ranef_mode"], atol=1e-5)
    np.testing.assert_allclose(by_label["std_error"], ref["ranef_se"], rtol=1e-4)


@pytest.mark.parametrize("case", TMB_CASES)
def test_negative_binomial_matches_glmmtmb(case: str) -> None:
    res = fit(case, 1)
    ref = REF[case]["laplace"]
    assert res.loglik is not None and res.loglik >= ref["loglik"] - 1e-6
    np.testing.assert_allclose(res.params.to_numpy(), ref["estimate"], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(res.std_errors.to_numpy(), ref["std_error"], rtol=1e-4)
    np.testing.assert_allclose(res.variance_components["cluster"], ref["sigma2"], rtol=1e-4)
    np.testing.assert_allclose(res.variance_components["dispersion"], ref["dispersion"],
                               rtol=1e-4)
    re = res.random_effects
    assert re is not None
    by_label = re.set_index("cluster").loc[ref["ranef_levels"]]
    np.testing.assert_allclose(by_label["estimate"], ref["ranef_mode"], atol=1e-5)
    assert res.icc is None


def test_boundary_fit_matches_glmer_and_warns() -> None:
    file, formula, cluster, _, _ = CASES["flat01"]
    data = pd.read_csv(REFERENCE / "data" / f"glmm_{file}.csv")
    with pytest.warns(BoundaryFitWarning, match="boundary"):
        res = crtstats.glmm(formula, data, cluster=cluster)
    ref = REF["flat01"]["laplace_strict"]
    assert ref["singular"] is True
    assert res.variance_components["cluster"] < 1e-8
    assert any("boundary" in w for w in res.warnings)
    np.testing.assert_allclose(res.params.to_numpy(), ref["estimate"], rtol=1e-4)
    np.testing.assert_allclose(res.std_errors.to_numpy(), ref["std_error"], rtol=1e-4)


def test_aggregated_and_expanded_binomial_agree() -> None:
    """cbind(incidence, size - incidence) and one 0/1 row per animal: same estimates;
    the log-likelihoods differ by exactly the binomial coefficients."""
    agg, rows = fit("cbpp", 10), fit("cbpp01", 10)
    np.testing.assert_allclose(agg.params, rows.params, rtol=1e-6)
    np.testing.assert_allclose(agg.std_errors, rows.std_errors, rtol=1e-5)
    cbpp = pd.read_csv(REFERENCE / "data" / "glmm_cbpp.csv")
    from scipy.special import gammaln

    lchoose = np.sum(gammaln(cbpp["size"] + 1) - gammaln(cbpp["incidence"] + 1)
                     - gammaln(cbpp["size"] - cbpp["incidence"] + 1))
    assert agg.loglik is not None and rows.loglik is not None
    assert agg.loglik - rows.loglik == pytest.approx(lchoose, abs=1e-6)
