"""crtstats.glmm(method="laplace-reml") against glmmTMB(REML = TRUE) (glmm_reml.json).

``tests/reference/glmm.R`` wrote the data (``tests/reference/data/glmm_*.csv``) and
``tests/reference/glmm_reml.R`` the glmmTMB fits, with nlminb run to a relative
tolerance of 1e-14 (its gradient in log SD at the optimum is at most 3e-7). Both
maximise the same function (the Laplace approximation of the restricted likelihood
over the joint fixed and random effects), so the tolerances are those of the two
optimisers. Tolerances, and why:

* restricted log-likelihood: 1e-8 absolute (the same function at the same optimum;
  its error is quadratic in the optimiser's).
* estimates, standard errors and the cluster variance: 1e-6 relative (plus 1e-9
  absolute for values near 0). The largest gap seen is 2e-8 relative (the variance on
  grouseticks, whose glmmTMB gradient is the largest, 3e-7).
* covariances: 1e-6 absolute on the correlation scale (divided by the reference SEs).
* random effects: modes 1e-6 absolute; conditional SDs 1e-6 relative (both include the
  uncertainty of the fixed effects and of the variance, as TMB's sdreport).
* flat01 is on the boundary (glmmTMB's variance 3e-13): our variance is 0, and the
  fit is the GLM's (glm to 1e-14): estimates and SEs to 1e-6 relative of glm and of
  glmmTMB, whose variance of 3e-13 moves them by less than 1e-10.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import crtstats
from crtstats.exceptions import (
    BoundaryFitWarning,
    ConvergenceWarning,
    InvalidParameterError,
    ModelSpecificationError,
    SeparationWarning,
)

REFERENCE = Path(__file__).resolve().parent / "reference"
REF: dict[str, Any] = json.loads((REFERENCE / "glmm_reml.json").read_text())

#: case -> (data file, formula, cluster, family, extra keyword arguments)
CASES: dict[str, tuple[str, str, str, str, dict[str, str]]] = {
    "cbpp": ("cbpp", "incidence ~ period", "herd", "binomial", {"trials": "size"}),
    "cbpp01": ("cbpp01", "y ~ period", "herd", "binomial", {}),
    "trial01": ("trial01", "admitted ~ arm + stratum + pre_prop + age_c", "team_id",
                "binomial", {}),
    "trial01_team": ("trial01", "admitted ~ arm + stratum + pre_prop", "team_id",
                     "binomial", {}),
    "counts_pois": ("counts_pois", "admissions ~ arm * period", "team_id", "poisson",
                    {"offset": "log_users"}),
    "grouseticks": ("grouseticks", "ticks ~ year + cheight", "brood", "poisson", {}),
}


@cache
def fit(case: str) -> crtstats.CRTResult:
    file, formula, cluster, family, extra = CASES[case]
    data = pd.read_csv(REFERENCE / "data" / f"glmm_{file}.csv")
    return crtstats.glmm(formula, data, cluster=cluster, family=family,  # type: ignore[arg-type]
                         method="laplace-reml", **extra)


def close(ours: Any, theirs: Any, rel: float, atol: float = 1e-9) -> None:
    np.testing.assert_allclose(np.asarray(ours, float), np.asarray(theirs, float),
                               rtol=rel, atol=atol)


@pytest.mark.parametrize("case", list(CASES))
def test_fixed_effects_and_variance_match_glmmtmb_reml(case: str) -> None:
    res, ref = fit(case), REF[case]
    assert res.converged and res.warnings == ()
    assert len(res.params) == len(ref["names"])
    close(res.params.to_numpy(), ref["estimate"], 1e-6)  # same optimum; see module notes
    close(res.std_errors.to_numpy(), ref["std_error"], 1e-6)
    # covariances on the correlation scale: entries near 0 have no relative precision
    scale = np.outer(ref["std_error"], ref["std_error"])
    close(res.cov.to_numpy() / scale, np.asarray(ref["vcov"]) / scale, 0.0, atol=1e-6)
    close(res.variance_components["cluster"], ref["sigma2"], 1e-6)


@pytest.mark.parametrize("case", list(CASES))
def test_restricted_loglik_matches_glmmtmb(case: str) -> None:
    # the same function at the same optimum: quadratic in the optimisers' error
    assert fit(case).loglik == pytest.approx(REF[case]["loglik"], abs=1e-8)


@pytest.mark.parametrize("case", ["cbpp", "trial01", "counts_pois"])
def test_random_effects_match_glmmtmb_reml(case: str) -> None:
    res, ref = fit(case), REF[case]
    ranef = res.random_effects.set_index("cluster").loc[ref["ranef_levels"]]
    close(ranef["estimate"], ref["ranef_mode"], 0.0, atol=1e-6)  # same joint mode
    close(ranef["std_error"], ref["ranef_se"], 1e-6)


def test_reml_variance_is_larger_than_ml() -> None:
    data = pd.read_csv(REFERENCE / "data" / "glmm_trial01.csv")
    ml = crtstats.glmm("admitted ~ arm + stratum + pre_prop", data, cluster="team_id")
    reml = fit("trial01_team")
    assert reml.variance_components["cluster"] > ml.variance_components["cluster"]
    assert reml.std_errors["arm[T.intervention]"] > ml.std_errors["arm[T.intervention]"]
    assert reml.spec.options["method"] == "laplace-reml"


def test_boundary_fit_is_the_glm() -> None:
    data = pd.read_csv(REFERENCE / "data" / "glmm_flat01.csv")
    with pytest.warns(BoundaryFitWarning, match="boundary"):
        res = crtstats.glmm("y ~ x", data, cluster="team_id", method="laplace-reml")
    assert res.variance_components["cluster"] < 1e-8
    assert [w.category for w in res.warnings] == [BoundaryFitWarning]
    glm, tmb = REF["flat01_glm"], REF["flat01"]
    close(res.params.to_numpy(), glm["estimate"], 1e-6)  # see the module notes
    close(res.std_errors.to_numpy(), glm["std_error"], 1e-6)
    close(res.params.to_numpy(), tmb["estimate"], 1e-6)
    close(res.std_errors.to_numpy(), tmb["std_error"], 1e-6)


# -- degenerate cases -------------------------------------------------------------------
@pytest.fixture(scope="module")
def trial() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "data" / "glmm_trial01.csv")


def test_method_is_checked(trial: pd.DataFrame) -> None:
    with pytest.raises(InvalidParameterError, match="method must be one of"):
        crtstats.glmm("admitted ~ arm", trial, cluster="team_id",
                      method="pql")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="Laplace approximation .nagq=1."):
        crtstats.glmm("admitted ~ arm", trial, cluster="team_id", method="laplace-reml",
                      nagq=5)
    counts = pd.read_csv(REFERENCE / "data" / "glmm_counts_nb.csv")
    with pytest.raises(InvalidParameterError, match="negative_binomial"):
        crtstats.glmm("admissions ~ arm", counts, cluster="team_id",
                      family="negative_binomial", method="laplace-reml")


def test_one_cluster_per_arm_is_refused(trial: pd.DataFrame) -> None:
    two = trial[trial["team_id"].isin(["T01", "T02"])]
    with pytest.raises(ModelSpecificationError, match="between-within df .* is 0: 2 clusters"):
        crtstats.glmm("admitted ~ arm", two, cluster="team_id", method="laplace-reml")


def test_quasi_separation_is_warned_and_recorded(trial: pd.DataFrame) -> None:
    none = trial.assign(admitted=np.where(trial["arm"] == "intervention", 0,
                                          trial["admitted"]))
    # the joint mode runs off along the arm coefficient: not converged, and said so
    with pytest.warns(SeparationWarning, match=r"arm\[T.intervention\]"), \
            pytest.warns(ConvergenceWarning, match="did not converge"):
        res = crtstats.glmm("admitted ~ arm + age_c", none, cluster="team_id",
                            method="laplace-reml")
    assert [w.category for w in res.warnings] == [SeparationWarning, ConvergenceWarning]
    assert res.params["arm[T.intervention]"] < -5 and not res.converged


def test_perfect_prediction_is_not_a_silent_fit() -> None:
    rng = np.random.default_rng(5)
    team = np.repeat(np.arange(20), 30)
    x = rng.normal(size=team.size)
    data = pd.DataFrame({"team": team, "arm": np.where(team % 2, "b", "a"), "x": x,
                         "y": (x > 0.3).astype(int)})
    with pytest.warns(SeparationWarning, match=r"estimates of \[.*'x'\]"), \
            pytest.warns(ConvergenceWarning, match="did not converge"):
        res = crtstats.glmm("y ~ arm + x", data, cluster="team", method="laplace-reml")
    assert [w.category for w in res.warnings] == [SeparationWarning, ConvergenceWarning]
    assert not res.converged
