"""crtstats.gee and its sandwiches against geepack and the papers' formulas (tests/reference/gee.R).

Tolerances, per quantity:

- independence working correlation: statsmodels and geepack solve the same estimating
  equations, so coefficients agree to rtol 1e-7 (both iterate to convergence; the
  observed difference is ~1e-15) and every sandwich to rtol 1e-7.
- the sandwich formulas at geepack's own estimates (``gee_sandwiches`` given R's beta
  and alpha): the same algebra, so rtol 1e-9 (observed ~1e-13).
- exchangeable working correlation, the full fit: the moment estimators differ.
  statsmodels (as Liang and Zeger) divides the dispersion by N - p; geepack divides it
  by N. So alpha differs by about p/N relative (observed 0.3-0.7%): we allow 2% on
  alpha, coefficients within 0.05 standard errors, and standard errors within 5%
  (observed up to 2.6%, for the binomial model whose alpha is near the lower bound
  -1/(n_max - 1) where the working covariance is nearly singular and the sandwich
  is sensitive to alpha; the other models agree to 0.1%).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import crtstats
from crtstats.exceptions import (
    BoundaryFitWarning,
    FewClustersWarning,
    InvalidParameterError,
    ModelSpecificationError,
)
from crtstats.models._design import build_design
from crtstats.models._gee_sandwich import gee_sandwiches

REFERENCE = Path(__file__).resolve().parent / "reference"
REF = json.loads((REFERENCE / "gee.json").read_text())
DATA = pd.read_csv(REFERENCE / "data" / "gee_admissions.csv")
CASES = [k for k, v in REF.items() if isinstance(v, dict)]
KEYS = {
    "robust": "cov_robust",
    "mancl-derouen": "cov_mancl_derouen",
    "kauermann-carroll": "cov_kauermann_carroll",
    "fay-graubard": "cov_fay_graubard",
}


def _family(case: str) -> str:
    return case.split("_")[0]


def _fit(case: str) -> crtstats.CRTResult:
    return crtstats.gee(
        REF[case]["formula"], DATA, cluster="team_id", family=_family(case),  # type: ignore[arg-type]
        cov_struct=REF[case]["cov_struct"],
    )


@pytest.fixture(scope="module")
def fits() -> dict[str, crtstats.CRTResult]:
    out = {}
    for case in CASES:
        if case == "binomial_exchangeable":
            # alpha = -0.0095 with teams of up to 97: 1 + 96 alpha = 0.09 < 0.25
            with pytest.warns(BoundaryFitWarning, match="near its lower bound"):
                out[case] = _fit(case)
            assert "near its lower bound" in out[case].warnings[-1]
        else:
            out[case] = _fit(case)
    return out


@pytest.mark.parametrize("case", CASES)
def test_sandwich_formulas_match_r_at_geepack_estimates(case: str) -> None:
    ref = REF[case]
    design = build_design(ref["formula"], DATA, cluster="team_id")
    covs = gee_sandwiches(
        design.X, design.y, design.groups, np.array(ref["coef"]),
        family=_family(case), alpha=ref["alpha"],  # type: ignore[arg-type]
    )
    for name, key in KEYS.items():
        np.testing.assert_allclose(covs[name], np.array(ref[key]), rtol=1e-9, atol=1e-15)
    # and the formula-based robust sandwich is geepack's own
    np.testing.assert_allclose(
        np.sqrt(np.diag(covs["robust"])), ref["geepack_robust_se"], rtol=1e-9
    )


@pytest.mark.parametrize("case", [c for c in CASES if "independence" in c])
def test_independence_fit_matches_geepack(case: str, fits: dict[str, crtstats.CRTResult]
                                          ) -> None:
    ref, res = REF[case], fits[case]
    np.testing.assert_allclose(res.param_values, ref["coef"], rtol=1e-7)
    for name, key in KEYS.items():
        np.testing.assert_allclose(res.info["covariances"][name], ref[key], rtol=1e-7,
                                   atol=1e-14)
    np.testing.assert_allclose(res.std_errors, np.sqrt(np.diag(ref["cov_kauermann_carroll"])),
                               rtol=1e-7)


@pytest.mark.parametrize("case", [c for c in CASES if "exchangeable" in c])
def test_exchangeable_fit_close_to_geepack(case: str, fits: dict[str, crtstats.CRTResult]
                                           ) -> None:
    ref, res = REF[case], fits[case]
    assert res.info["alpha"] == pytest.approx(ref["alpha"], rel=0.02)
    se = np.sqrt(np.diag(ref["cov_robust"]))
    assert np.all(np.abs(res.param_values - ref["coef"]) < 0.05 * se)
    for name, key in KEYS.items():
        np.testing.assert_allclose(
            np.sqrt(np.diag(res.info["covariances"][name])), np.sqrt(np.diag(ref[key])),
            rtol=0.05,
        )


def test_corrections_inflate_the_robust_variance(fits: dict[str, crtstats.CRTResult]) -> None:
    # MD >= KC >= robust on the diagonal: true in expectation, and checked to hold on
    # these data (not a theorem for every sample)
    for res in fits.values():
        covs = res.info["covariances"]
        rob, kc, md = (np.diag(covs[k]) for k in ("robust", "kauermann-carroll",
                                                   "mancl-derouen"))
        assert np.all(kc >= rob) and np.all(md >= kc)
        assert np.all(np.diag(covs["fay-graubard"]) >= rob)


def test_between_df_and_t_inference(fits: dict[str, crtstats.CRTResult]) -> None:
    res = fits["binomial_independence"]
    # intercept, arm, 7 strata and pre_prop are all constant within teams: 25 - 10
    assert res.df_method == "between"
    assert np.all(res.df == 15)
    frame = res.to_frame()
    assert list(frame.term[:2]) == ["Intercept", "arm[T.intervention]"]
    # sex and age vary within teams: 25 - 2 (intercept, arm) for the gaussian model
    assert np.all(fits["gaussian_exchangeable"].df == 23)
    assert res.cov_type == "kauermann-carroll"
    assert res.nobs == REF["nobs"] and res.n_clusters == REF["n_clusters"]


def test_z_and_robust_warn_with_few_clusters() -> None:
    with pytest.warns(FewClustersWarning, match="25 clusters"):
        res = crtstats.gee("admitted ~ arm", DATA, cluster="team_id", family="binomial",
                           cov_struct="independence", cov_type="robust", ddf="z")
    assert np.all(np.isinf(res.df)) and res.cov_type == "robust"


def test_options_are_checked() -> None:
    kwargs = dict(cluster="team_id", family="binomial")
    with pytest.raises(InvalidParameterError, match="cov_type must be one of"):
        crtstats.gee("admitted ~ arm", DATA, cov_type="KC", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="family must be one of"):
        crtstats.gee("admitted ~ arm", DATA, cluster="team_id", family="logit")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="cov_struct"):
        crtstats.gee("admitted ~ arm", DATA, cov_struct="ar1", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="ddf"):
        crtstats.gee("admitted ~ arm", DATA, ddf="kr", **kwargs)  # type: ignore[arg-type]


def test_bad_response_and_design() -> None:
    with pytest.raises(ModelSpecificationError, match="0/1 response"):
        crtstats.gee("bed_days ~ arm", DATA, cluster="team_id", family="binomial")
    with pytest.raises(ModelSpecificationError, match="no column"):
        crtstats.gee("admitted ~ nope", DATA, cluster="team_id", family="binomial")
    few = DATA[DATA.team_id.isin(["T01", "T02", "T03"])]
    with pytest.raises(ModelSpecificationError, match="leave 0 df"):
        crtstats.gee("admitted ~ arm + pre_prop", few, cluster="team_id", family="binomial")


def test_missing_rows_are_counted_not_hidden() -> None:
    data = DATA.copy()
    data.loc[:9, "admitted"] = np.nan
    res = crtstats.gee("admitted ~ arm", data, cluster="team_id", family="binomial",
                       cov_struct="independence")
    assert res.nobs == len(DATA) - 10 and res.info["n_excluded"] == 10


def test_poisson_offset_equals_rate_model() -> None:
    data = DATA.assign(log_two=np.log(2.0))
    plain = crtstats.gee("bed_days ~ arm", data, cluster="team_id", family="poisson",
                         cov_struct="independence")
    shifted = crtstats.gee("bed_days ~ arm", data, cluster="team_id", family="poisson",
                           cov_struct="independence", offset="log_two")
    # an offset of log 2 halves the rate: only the intercept moves, by -log 2
    np.testing.assert_allclose(shifted.param_values[0], plain.param_values[0] - np.log(2.0),
                               rtol=1e-8)
    np.testing.assert_allclose(shifted.param_values[1], plain.param_values[1], rtol=1e-8)
    np.testing.assert_allclose(shifted.cov_values, plain.cov_values, rtol=1e-6)


def test_row_order_does_not_change_the_fit(fits: dict[str, crtstats.CRTResult]) -> None:
    shuffled = DATA.sample(frac=1.0, random_state=3)
    res = crtstats.gee(REF["binomial_independence"]["formula"], shuffled, cluster="team_id",
                       family="binomial", cov_struct="independence")
    ref = fits["binomial_independence"]
    np.testing.assert_allclose(res.param_values, ref.param_values, rtol=1e-8)
    np.testing.assert_allclose(res.cov_values, ref.cov_values, rtol=1e-7, atol=1e-14)
