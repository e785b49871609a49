"""CRTResult.wald_test against pbkrtest, lmerTest and clubSandwich (tests/reference/wald.R).

Tolerances:

* lmm: 1e-6 relative on F, df and p. The methods are closed forms at the REML optimum;
  lme4 (run to tight tolerances) and crtstats reach that optimum to about 1e-8 in the
  variance ratio, which F, df and p inherit amplified at most tenfold (observed
  below 3e-7).
* ols CR2 HTZ: 1e-9 relative. Least squares and the HTZ df are closed forms with no
  optimisation; the observed differences are at rounding level (below 1e-11).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import crtstats
from crtstats import CRTResult, ModelSpecificationError

REF_DIR = Path(__file__).parent / "reference"
REF: dict[str, Any] = json.loads((REF_DIR / "wald.json").read_text())
LMM_RTOL = 1e-6  # optimum reached to ~1e-8 in the variance ratio (see module docstring)
OLS_RTOL = 1e-9  # closed forms, no optimisation
SAME = 1e-12  # the same computation reached two ways


def _data(csv: str) -> pd.DataFrame:
    """A reference data set without the rows R's fit drops for a missing value (so no
    ExcludedRowsWarning); the index keeps the original row numbers."""
    data = pd.read_csv(REF_DIR / "data" / csv)
    if "review" in data:
        data["review"] = pd.Categorical(data["review"], ["baseline", "6m", "12m"])
    used = [c for c in ("total", "total_baseline", "total_12m") if c in data]
    return data.dropna(subset=used)


def _lmm(case: str, ddf: str, *, reml: bool = True) -> CRTResult:
    ref = REF["lmm"][case]
    data = _data(ref["csv"])
    if case == "boundary":  # the cluster variance is estimated as zero, as in lme4
        assert ref["singular"]
        with pytest.warns(crtstats.BoundaryFitWarning):
            return crtstats.lmm(ref["formula"], data, cluster=ref["cluster"], ddf=ddf)
    return crtstats.lmm(ref["formula"], data, cluster=ref["cluster"], ddf=ddf, reml=reml)


def _ols(case: str) -> CRTResult:
    ref = REF["ols"][case]
    return crtstats.ols(ref["formula"], _data(ref["csv"]), cluster=ref["cluster"])


def _check(w: Any, ref: dict[str, Any], rtol: float) -> None:
    assert w.num_df == ref["num_df"]
    np.testing.assert_allclose(w.statistic, ref["F"], rtol=rtol)
    np.testing.assert_allclose(w.den_df, ref["den_df"], rtol=rtol)
    np.testing.assert_allclose(w.pvalue, ref["p"], rtol=rtol)


LMM_CASES = [(c, h) for c in REF["lmm"] for h in REF["lmm"][c]["hypotheses"]]
OLS_CASES = [(c, h) for c in REF["ols"] for h in REF["ols"][c]["hypotheses"]]


@pytest.fixture(scope="module")
def lmm_fits() -> dict[tuple[str, str], CRTResult]:
    return {(c, d): _lmm(c, d) for c in REF["lmm"] for d in ("kenward-roger", "satterthwaite")}


@pytest.mark.parametrize(("case", "name"), LMM_CASES)
def test_kenward_roger_matches_krmodcomp(
    lmm_fits: dict[tuple[str, str], CRTResult], case: str, name: str
) -> None:
    h = REF["lmm"][case]["hypotheses"][name]
    w = lmm_fits[(case, "kenward-roger")].wald_test(np.array(h["L"], float), h["rhs"])
    _check(w, h["kr"], LMM_RTOL)
    np.testing.assert_allclose(w.scaling, h["kr"]["scaling"], rtol=LMM_RTOL)
    assert w.df_method == "kenward-roger"


@pytest.mark.parametrize(("case", "name"), LMM_CASES)
def test_satterthwaite_matches_contestmd(
    lmm_fits: dict[tuple[str, str], CRTResult], case: str, name: str
) -> None:
    h = REF["lmm"][case]["hypotheses"][name]
    w = lmm_fits[(case, "satterthwaite")].wald_test(np.array(h["L"], float), h["rhs"])
    _check(w, h["satterthwaite"], LMM_RTOL)
    assert w.df_method == "satterthwaite"


def test_interaction_matches_anova_type_iii(lmm_fits: dict[tuple[str, str], CRTResult]) -> None:
    terms = ["arm[T.intervention]:review[T.6m]", "arm[T.intervention]:review[T.12m]"]
    anova = REF["lmm"]["fidelity"]["anova"]
    _check(lmm_fits[("fidelity", "kenward-roger")].wald_test(terms), anova["kr"], LMM_RTOL)
    _check(lmm_fits[("fidelity", "satterthwaite")].wald_test(terms), anova["satterthwaite"],
           LMM_RTOL)


@pytest.mark.parametrize("name", sorted(REF["lmm_ml"]["unequal"]["hypotheses"]))
def test_satterthwaite_of_an_ml_fit_matches_contestmd(name: str) -> None:
    h = REF["lmm_ml"]["unequal"]["hypotheses"][name]
    res = _lmm("unequal", "satterthwaite", reml=False)
    _check(res.wald_test(np.array(h["L"], float), h["rhs"]), h["satterthwaite"], LMM_RTOL)


@pytest.mark.parametrize(("case", "name"), OLS_CASES)
def test_cr2_htz_matches_clubsandwich(case: str, name: str) -> None:
    h = REF["ols"][case]["hypotheses"][name]
    w = _ols(case).wald_test(np.array(h["L"], float), h["rhs"])
    _check(w, h["htz"], OLS_RTOL)
    assert w.df_method == "cr2-htz"


def test_one_row_reduces_to_the_contrast(lmm_fits: dict[tuple[str, str], CRTResult]) -> None:
    weights = {"arm[T.intervention]": 1.0, "arm[T.intervention]:review[T.12m]": 1.0}
    for res in (*lmm_fits.values(), _ols("ancova")):
        if "arm[T.intervention]:review[T.12m]" not in res.param_names:
            weights = {res.param_names[1]: 1.0}
        con = res.contrast(weights)
        w = res.wald_test({"c": weights})
        np.testing.assert_allclose(w.statistic, con.tstat**2, rtol=SAME)
        np.testing.assert_allclose(w.den_df, con.df, rtol=SAME)
        np.testing.assert_allclose(w.pvalue, con.pvalue, rtol=1e-10)


def test_hypothesis_forms_agree(lmm_fits: dict[tuple[str, str], CRTResult]) -> None:
    res = lmm_fits[("fidelity", "kenward-roger")]
    names = ["review[T.6m]", "review[T.12m]"]
    lmat = np.zeros((2, len(res.param_names)))
    for k, name in enumerate(names):
        lmat[k, res.param_names.index(name)] = 1.0
    by_names = res.wald_test(names)
    by_matrix = res.wald_test(lmat)
    by_mapping = res.wald_test({"6m": {names[0]: 1.0}, "12m": {names[1]: 1.0}})
    for other in (by_matrix, by_mapping):
        assert other.statistic == pytest.approx(by_names.statistic, rel=SAME)
        assert other.den_df == pytest.approx(by_names.den_df, rel=SAME)
    assert by_mapping.row_names == ("6m", "12m")
    frame = by_mapping.to_frame()
    assert list(frame.columns) == ["hypothesis", "statistic", "num_df", "den_df", "pvalue",
                                   "df_method"]
    assert frame.loc[0, "hypothesis"] == "6m, 12m"


def test_other_fitters_use_w_over_q_with_their_df() -> None:
    trial = crtstats.datasets.load_example()
    fu = trial.admissions[trial.admissions["period"] == "follow_up"].merge(trial.teams,
                                                                          on="team_id")
    strata = [f"stratum[T.Trust {c}]" for c in "BCDEFGH"]
    glmm_fit = crtstats.glmm("admitted ~ arm + stratum", fu, cluster="team_id")
    with pytest.warns(crtstats.FewClustersWarning):
        gee_fit = crtstats.gee("admitted ~ arm + stratum", fu, cluster="team_id",
                               family="binomial", cov_type="robust")
    for res, df in ((glmm_fit, 16.0), (gee_fit, 16.0)):
        w = res.wald_test(strata)
        sub = np.ix_(range(2, 9), range(2, 9))
        b = res.param_values[2:9]
        wald = float(b @ np.linalg.solve(res.cov_values[sub], b))
        assert w.statistic == pytest.approx(wald / 7, rel=SAME)
        assert (w.num_df, w.den_df) == (7, df)


def test_z_reference_gives_chi_squared() -> None:
    trial = crtstats.datasets.load_example()
    fu = trial.admissions[trial.admissions["period"] == "follow_up"].merge(trial.teams,
                                                                          on="team_id")
    with pytest.warns(crtstats.FewClustersWarning):
        res = crtstats.glmm("admitted ~ arm + stratum", fu, cluster="team_id", ddf="z")
    w = res.wald_test([f"stratum[T.Trust {c}]" for c in "BC"])
    from scipy import stats

    assert np.isinf(w.den_df)
    assert w.pvalue == pytest.approx(float(stats.chi2.sf(2 * w.statistic, 2)), rel=1e-12)


def test_bad_hypotheses_raise(lmm_fits: dict[tuple[str, str], CRTResult]) -> None:
    res = lmm_fits[("fidelity", "kenward-roger")]
    p = len(res.param_names)
    with pytest.raises(ModelSpecificationError, match="unknown term"):
        res.wald_test(["nope"])
    with pytest.raises(ModelSpecificationError, match="one column per coefficient"):
        res.wald_test(np.ones((2, p + 1)))
    with pytest.raises(ModelSpecificationError, match="linearly dependent"):
        res.wald_test(np.vstack([np.eye(p)[1], 2 * np.eye(p)[1]]))
    with pytest.raises(ModelSpecificationError, match="all weights zero"):
        res.wald_test(np.vstack([np.eye(p)[1], np.zeros(p)]))
    with pytest.raises(ModelSpecificationError, match="rhs must be"):
        res.wald_test(["review[T.6m]", "review[T.12m]"], rhs=[1.0, 2.0, 3.0])
    with pytest.raises(ModelSpecificationError, match="must map term names"):
        res.wald_test({"a": 1.0})  # type: ignore[dict-item]


def test_wald_result_is_frozen(lmm_fits: dict[tuple[str, str], CRTResult]) -> None:
    w = lmm_fits[("fidelity", "kenward-roger")].wald_test(["review[T.6m]", "review[T.12m]"])
    with pytest.raises(ValueError, match="read-only"):
        w.hypothesis[0, 0] = 5.0
    with pytest.raises(ValueError, match="read-only"):
        w.rhs[0] = 5.0
    with pytest.raises(AttributeError):
        w.statistic = 1.0  # type: ignore[misc]
    assert w.F == w.statistic


def test_classical_ols_matches_statsmodels_f_test() -> None:
    import statsmodels.formula.api as smf

    data = _data("ols_fidelity_ancova.csv")
    formula = "total_12m ~ arm + total_baseline + stratum"
    res = crtstats.ols(formula, data, cov_type="classical")
    sm = smf.ols(formula, data).fit()
    terms = ["arm[T.intervention]", "total_baseline"]
    ours = res.wald_test(terms, rhs=[10.0, 1.0])
    lmat = np.zeros((2, len(sm.params)))  # statsmodels orders the columns differently
    for k, term in enumerate(terms):
        lmat[k, list(sm.params.index).index(term)] = 1.0
    theirs = sm.f_test((lmat, np.array([10.0, 1.0])))
    # the same closed form in double precision
    assert ours.statistic == pytest.approx(float(theirs.fvalue), rel=1e-9)
    assert (ours.num_df, ours.den_df) == (theirs.df_num, theirs.df_denom)
    assert ours.pvalue == pytest.approx(float(theirs.pvalue), rel=1e-9)
