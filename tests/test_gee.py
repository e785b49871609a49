"""crtstats.gee against geepack and the papers' formulas (tests/reference/gee.R).

Reference: ``geepack::geeglm`` run to convergence (``geese.control(epsilon = 1e-12,
maxit = 100)``) on the example trial's admissions and on public data the fitter was never
tuned on (geepack's ``ohio``, ``dietox`` and ``seizure``, MASS's ``epil``); the
bias-corrected sandwiches from the papers' n_i x n_i matrix formulas computed in R at
geepack's estimates; the SAS PROC GENMOD moment convention from an independent
Fisher-scoring loop in R (``gee_sas``).

Tolerances, per quantity:

- coefficients, alpha, dispersion, all four sandwiches, full fit (both conventions):
  rtol 1e-8. Both sides solve the same estimating equations with the same moment
  estimators to a change below 1e-12, so what is left is rounding (observed <= 1e-12);
  1e-8 leaves room for a BLAS that sums in another order.
- the sandwich formulas at R's own estimates (no fit involved): rtol 1e-9, the same
  algebra in another order (observed <= 1e-12).
- geepack's ``std.err = "jack"`` is ``(G - p - q - r) / G`` times Mancl-DeRouen (the
  one-step jackknife equals ``(B - B_i)^-1 U_i``, a Woodbury identity): rtol 1e-8.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import crtstats
from crtstats.exceptions import (
    BoundaryFitWarning,
    ExcludedRowsWarning,
    ExposureWarning,
    FewClustersWarning,
    InvalidParameterError,
    MissingColumnError,
    ModelSpecificationError,
)
from crtstats.models._design import build_design
from crtstats.models._gee_sandwich import gee_sandwiches

REFERENCE = Path(__file__).resolve().parent / "reference"
REF = json.loads((REFERENCE / "gee.json").read_text())
CASES = [k for k, v in REF.items() if isinstance(v, dict)]
DATASETS = {name: pd.read_csv(REFERENCE / "data" / f"gee_{name}.csv")
            for name in {REF[c]["data"] for c in CASES}}
DATA = DATASETS["admissions"]
KEYS = {
    "robust": "cov_robust",
    "mancl-derouen": "cov_mancl_derouen",
    "kauermann-carroll": "cov_kauermann_carroll",
    "fay-graubard": "cov_fay_graubard",
}
#: rows, cluster counts and the warnings each reference case must record
EXPECTED_WARNINGS = {
    # alpha = -0.0095 with teams of up to 97: 1 + 96 alpha = 0.08 < 0.25
    "binomial_exchangeable": BoundaryFitWarning,
    # Feed is missing at every pig's first weighing: 72 rows left out
    "dietox_feed_exchangeable": ExcludedRowsWarning,
}


def _fit(case: str, moments: str = "geepack") -> crtstats.CRTResult:
    ref = REF[case]
    return crtstats.gee(
        ref["formula"], DATASETS[ref["data"]], cluster=ref["cluster"],
        family=ref["family"], cov_struct=ref["cov_struct"],
        exposure=ref.get("exposure"), moments=moments,  # type: ignore[arg-type]
    )


def _fit_expecting(case: str, moments: str) -> crtstats.CRTResult:
    category = EXPECTED_WARNINGS.get(case)
    if category is None:
        return _fit(case, moments)
    with pytest.warns(category):
        res = _fit(case, moments)
    assert [w.category for w in res.warnings] == [category]
    return res


@pytest.fixture(scope="module")
def fits() -> dict[tuple[str, str], crtstats.CRTResult]:
    return {(case, m): _fit_expecting(case, m) for case in CASES for m in ("geepack", "sas")}


@pytest.mark.parametrize("moments", ["geepack", "sas"])
@pytest.mark.parametrize("case", CASES)
def test_fit_matches_r(case: str, moments: str,
                       fits: dict[tuple[str, str], crtstats.CRTResult]) -> None:
    ref, res = REF[case], fits[(case, moments)]
    want: dict[str, Any] = ref if moments == "geepack" else ref["sas"]
    assert res.nobs == ref["nobs"] and res.n_clusters == ref["n_clusters"]
    assert res.info["n_excluded"] == ref["n_excluded"] and res.converged
    np.testing.assert_allclose(res.param_values, want["coef"], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(res.info["alpha"], want["alpha"], rtol=1e-8, atol=1e-14)
    np.testing.assert_allclose(res.info["scale"], want["scale"], rtol=1e-8)
    for name, key in KEYS.items():
        np.testing.assert_allclose(res.info["covariances"][name], want[key], rtol=1e-8,
                                   atol=1e-12 * np.abs(want[key]).max())
    np.testing.assert_allclose(res.std_errors, np.sqrt(np.diag(want["cov_kauermann_carroll"])),
                               rtol=1e-8)


@pytest.mark.parametrize("case", CASES)
def test_sandwich_formulas_match_r_at_geepack_estimates(case: str) -> None:
    ref = REF[case]
    design = build_design(ref["formula"], DATASETS[ref["data"]], cluster=ref["cluster"],
                          exposure=ref.get("exposure"))
    covs = gee_sandwiches(
        design.X, design.y, design.groups, np.array(ref["coef"]),
        family=ref["family"], alpha=ref["alpha"], offset=design.offset,
    )
    for name, key in KEYS.items():
        np.testing.assert_allclose(covs[name], np.array(ref[key]), rtol=1e-9,
                                   atol=1e-13 * np.abs(ref[key]).max())
    # the formula-based robust sandwich is geepack's own
    np.testing.assert_allclose(np.sqrt(np.diag(covs["robust"])), ref["geepack_robust_se"],
                               rtol=1e-9)
    # geepack's approximate jackknife is Mancl-DeRouen times (G - p - q - r) / G
    g, p = ref["n_clusters"], len(ref["coef"])
    q = 1 if ref["cov_struct"] == "exchangeable" else 0
    np.testing.assert_allclose((g - p - q - 1) / g * covs["mancl-derouen"],
                               ref["geepack_jack_cov"], rtol=1e-8,
                               atol=1e-13 * np.abs(ref["geepack_jack_cov"]).max())


def test_conventions_differ_as_documented(fits: dict[tuple[str, str], crtstats.CRTResult]
                                          ) -> None:
    # independence: the same beta; the dispersions differ by N / (N - p) exactly
    gp, sas = fits[("ohio_independence", "geepack")], fits[("ohio_independence", "sas")]
    np.testing.assert_allclose(gp.param_values, sas.param_values, rtol=1e-10)
    n, p = gp.nobs, len(gp.param_values)
    assert sas.info["scale"] == pytest.approx(gp.info["scale"] * n / (n - p), rel=1e-12)
    assert gp.info["moments"] == "geepack" and sas.info["moments"] == "sas"


def test_corrections_inflate_the_robust_variance(
        fits: dict[tuple[str, str], crtstats.CRTResult]) -> None:
    # MD >= KC >= robust on the diagonal: true in expectation, and checked to hold on
    # these data (not a theorem for every sample)
    for res in fits.values():
        covs = res.info["covariances"]
        rob, kc, md = (np.diag(covs[k]) for k in ("robust", "kauermann-carroll",
                                                   "mancl-derouen"))
        assert np.all(kc >= rob) and np.all(md >= kc)
        assert np.all(np.diag(covs["fay-graubard"]) >= rob)


def test_between_df_and_t_inference(fits: dict[tuple[str, str], crtstats.CRTResult]) -> None:
    res = fits[("binomial_independence", "geepack")]
    # intercept, arm, 7 strata and pre_prop are all constant within teams: 25 - 10
    assert res.df_method == "between" and np.all(res.df == 15)
    assert list(res.to_frame().term[:2]) == ["Intercept", "arm[T.intervention]"]
    # sex and age vary within teams: 25 - 2 (intercept, arm) for the gaussian model
    assert np.all(fits[("gaussian_exchangeable", "geepack")].df == 23)
    assert res.cov_type == "kauermann-carroll"


def test_z_and_robust_warn_with_few_clusters_and_record_it() -> None:
    with pytest.warns(FewClustersWarning, match="25 clusters"):
        res = crtstats.gee("admitted ~ arm", DATA, cluster="team_id", family="binomial",
                           cov_struct="independence", cov_type="robust", ddf="z")
    assert np.all(np.isinf(res.df)) and res.cov_type == "robust"
    assert [w.category for w in res.warnings] == [FewClustersWarning]


def test_options_are_checked() -> None:
    kwargs: dict[str, Any] = dict(cluster="team_id", family="binomial")
    with pytest.raises(InvalidParameterError, match="cov_type must be one of"):
        crtstats.gee("admitted ~ arm", DATA, cov_type="KC", **kwargs)
    with pytest.raises(InvalidParameterError, match="family must be one of"):
        crtstats.gee("admitted ~ arm", DATA, cluster="team_id", family="logit")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="cov_struct"):
        crtstats.gee("admitted ~ arm", DATA, cov_struct="ar1", **kwargs)
    with pytest.raises(InvalidParameterError, match="ddf"):
        crtstats.gee("admitted ~ arm", DATA, ddf="kr", **kwargs)
    with pytest.raises(InvalidParameterError, match="moments must be one of 'geepack', 'sas'"):
        crtstats.gee("admitted ~ arm", DATA, moments="stata", **kwargs)
    with pytest.raises(InvalidParameterError, match="gee: cluster must be a column name"):
        crtstats.gee("admitted ~ arm", DATA, cluster=3, family="binomial")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="gee: data must be a pandas DataFrame"):
        crtstats.gee("admitted ~ arm", DATA.to_dict(), **kwargs)  # type: ignore[arg-type]


def test_bad_response_and_design() -> None:
    with pytest.raises(ModelSpecificationError, match="0/1 response"):
        crtstats.gee("bed_days ~ arm", DATA, cluster="team_id", family="binomial")
    with pytest.raises(ModelSpecificationError, match="non-negative whole counts"):
        crtstats.gee("age ~ arm", DATA.assign(age=-1.5 + DATA.age), cluster="team_id",
                     family="poisson")
    with pytest.raises(MissingColumnError, match="no column"):
        crtstats.gee("admitted ~ nope", DATA, cluster="team_id", family="binomial")
    few = DATA[DATA.team_id.isin(["T01", "T02", "T03"])]
    with pytest.raises(ModelSpecificationError, match="leave 0 df"):
        crtstats.gee("admitted ~ arm + pre_prop", few, cluster="team_id", family="binomial")


def test_poisson_offset_equals_rate_model() -> None:
    data = DATA.assign(log_two=np.log(2.0), two=2.0)
    kwargs: dict[str, Any] = dict(cluster="team_id", family="poisson")
    plain = crtstats.gee("bed_days ~ arm", data, **kwargs)
    shifted = crtstats.gee("bed_days ~ arm", data, offset="log_two", **kwargs)
    exposed = crtstats.gee("bed_days ~ arm", data, exposure="two", **kwargs)
    # an offset of log 2 halves the rate: only the intercept moves, by -log 2; the
    # Pearson residuals, hence alpha and every sandwich, are unchanged (rtol 1e-10:
    # the same fit up to rounding)
    np.testing.assert_allclose(shifted.param_values, plain.param_values - [np.log(2.0), 0],
                               rtol=1e-10)
    np.testing.assert_allclose(shifted.cov_values, plain.cov_values, rtol=1e-10)
    np.testing.assert_allclose(exposed.param_values, shifted.param_values, rtol=1e-13)


def test_raw_looking_offset_warns() -> None:
    with pytest.warns(ExposureWarning, match="raw exposure"):
        res = crtstats.gee("bed_days ~ arm", DATA.assign(n=5), cluster="team_id",
                           family="poisson", offset="n")
    assert [w.category for w in res.warnings] == [ExposureWarning]


def test_row_order_and_labels_do_not_change_the_fit(
        fits: dict[tuple[str, str], crtstats.CRTResult]) -> None:
    ref = fits[("ohio_exchangeable", "geepack")]
    shuffled = DATASETS["ohio"].sample(frac=1.0, random_state=3)
    shuffled["id"] = "child-" + (1000 - shuffled["id"]).astype(str)
    res = crtstats.gee(REF["ohio_exchangeable"]["formula"], shuffled, cluster="id",
                       family="binomial")
    # the same sums in another order: rounding only
    np.testing.assert_allclose(res.param_values, ref.param_values, rtol=1e-10)
    np.testing.assert_allclose(res.cov_values, ref.cov_values, rtol=1e-9)
    assert res.info["alpha"] == pytest.approx(ref.info["alpha"], rel=1e-10)


def test_sas_convention_is_statsmodels_alpha(
        fits: dict[tuple[str, str], crtstats.CRTResult]) -> None:
    # an independent implementation of the same (N - p, M - p) moment estimators;
    # statsmodels iterates to ctol 1e-12, so rtol 1e-9 (observed ~1e-15)
    import statsmodels.api as sm

    ohio = DATASETS["ohio"]
    model = sm.GEE.from_formula(REF["ohio_exchangeable"]["formula"], groups="id", data=ohio,
                                family=sm.families.Binomial(),
                                cov_struct=sm.cov_struct.Exchangeable())
    sm_fit = model.fit(maxiter=200, ctol=1e-12)
    res = fits[("ohio_exchangeable", "sas")]
    assert res.info["alpha"] == pytest.approx(float(sm_fit.cov_struct.dep_params), rel=1e-9)
    np.testing.assert_allclose(res.param_values, np.asarray(sm_fit.params), rtol=1e-9)
