"""crtstats.ols against R (lm + clubSandwich 0.5.8): tests/reference/ols.R -> ols.json.

Tolerances (from the issue), and why they are safe to meet:

- estimates: 1e-6 relative. Both sides solve the same least-squares problem in double
  precision; observed agreement is about 1e-12.
- standard errors and covariance: 1e-6 relative. Same closed-form sandwich; the
  eigen-decompositions of I - H_jj agree to rounding.
- df: 1e-4 absolute. The Satterthwaite df is a ratio of traces of the same matrices;
  observed agreement is about 1e-11.
- p-values: 1e-6 absolute. They follow from the above through the t distribution.

Covariance matrices are compared entry by entry relative to the largest diagonal entry,
because off-diagonal entries near zero make a purely relative comparison meaningless.
"""

from __future__ import annotations

import json
import re
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import crtstats
from crtstats import CRTResult, FewClustersWarning
from crtstats.exceptions import ExcludedRowsWarning

REFERENCE = Path(__file__).resolve().parent / "reference"

REF = json.loads((REFERENCE / "ols.json").read_text())
EST_RTOL = 1e-6
SE_RTOL = 1e-6
DF_ATOL = 1e-4
P_ATOL = 1e-6
COV_TYPES = ("classical", "CR1", "CR2")


def r_name(name: str) -> str:
    """formulaic's column name in R's spelling: ``arm[T.x]`` -> ``armx``."""
    if name == "Intercept":
        return "(Intercept)"
    return re.sub(r"(\w+)\[T\.([^\]]+)\]", r"\1\2", name)


@cache
def dataset(name: str) -> pd.DataFrame:
    if name == "admissions":
        trial = crtstats.datasets.load_example()
        return trial.admissions.merge(trial.teams[["team_id", "arm", "stratum"]], on="team_id")
    csv = REF["datasets"][name]["csv"] if name in REF["datasets"] else name
    return pd.read_csv(REFERENCE / "data" / csv)


@cache
def fitted(name: str, cov_type: str) -> CRTResult:
    ref = REF["datasets"][name]
    with warnings.catch_warnings():
        # CR1 with few clusters warns by design; that warning has its own test below
        warnings.simplefilter("ignore", FewClustersWarning)
        # rows with a missing value are left out (as lm does) and that is warned of
        warnings.simplefilter("ignore", ExcludedRowsWarning)
        res = crtstats.ols(
            ref["formula"], dataset(name), cluster=ref["cluster"], cov_type=cov_type
        )
    excluded = [w for w in res.warnings if w.category is ExcludedRowsWarning]
    assert len(excluded) == (res.info["n_excluded"] > 0)
    return res


def check_against(res: CRTResult, ref: dict[str, Any], cov_type: str) -> None:
    assert [r_name(n) for n in res.param_names] == ref["coef_names"]
    assert res.nobs == ref["nobs"]
    block = ref[cov_type]
    np.testing.assert_allclose(res.param_values, ref["coef"], rtol=EST_RTOL)
    np.testing.assert_allclose(res.std_errors.to_numpy(), block["se"], rtol=SE_RTOL)
    cov_ref = np.array(block["vcov"], dtype=float)
    scale = np.max(np.diag(cov_ref))
    np.testing.assert_allclose(res.cov_values / scale, cov_ref / scale, rtol=0, atol=SE_RTOL)
    np.testing.assert_allclose(res.df_values, block["df"], rtol=0, atol=DF_ATOL)
    np.testing.assert_allclose(res.pvalues.to_numpy(), block["pvalue"], rtol=0, atol=P_ATOL)


@pytest.mark.parametrize("cov_type", COV_TYPES)
@pytest.mark.parametrize("name", sorted(REF["datasets"]))
def test_coefficients_match_clubsandwich(name: str, cov_type: str) -> None:
    ref = REF["datasets"][name]
    res = fitted(name, cov_type)
    check_against(res, ref, cov_type)
    assert res.n_clusters == ref["n_clusters"]
    assert res.cov_type == cov_type
    assert res.df_method == {"classical": "residual", "CR1": "clusters-1",
                             "CR2": "bell-mccaffrey"}[cov_type]
    assert res.loglik == pytest.approx(ref["loglik"], rel=EST_RTOL)
    assert res.info["sigma"] == pytest.approx(ref["sigma"], rel=EST_RTOL)


@pytest.mark.parametrize(
    ("name", "index"),
    [(n, i) for n, d in sorted(REF["datasets"].items()) for i in range(len(d["contrasts"]))],
)
def test_cr2_contrasts_match_linear_contrast_and_wald_htz(name: str, index: int) -> None:
    ref = REF["datasets"][name]["contrasts"][index]
    res = fitted(name, "CR2")
    weights = {n: float(ref["weights"].get(r_name(n), 0.0)) for n in res.param_names}
    assert sum(w != 0 for w in weights.values()) == len(ref["weights"])
    con = res.contrast(weights)
    assert con.estimate == pytest.approx(ref["estimate"], rel=EST_RTOL)
    assert con.std_error == pytest.approx(ref["se"], rel=SE_RTOL)
    assert con.df == pytest.approx(ref["df"], abs=DF_ATOL)
    # a single-constraint HTZ Wald test has the Satterthwaite df as its denominator df
    assert con.df == pytest.approx(ref["wald_df_denom"], abs=DF_ATOL)
    assert con.tstat**2 == pytest.approx(ref["wald_F"], rel=EST_RTOL)
    assert con.pvalue == pytest.approx(ref["pvalue"], abs=P_ATOL)
    low, high = con.conf_int(0.95)
    assert low == pytest.approx(ref["conf_low"], rel=EST_RTOL)
    assert high == pytest.approx(ref["conf_high"], rel=EST_RTOL)


def test_mortality_rows_with_missing_outcome_are_counted() -> None:
    data = dataset("mortality")
    res = fitted("mortality", "CR2")
    incomplete = data[["mrate", "legal", "beertaxa", "state", "year"]].isna().any(axis=1)
    assert res.info["n_excluded"] == int(incomplete.sum()) > 0
    assert res.nobs + res.info["n_excluded"] == len(data)


def test_unequal_cluster_sizes_are_in_the_hundreds() -> None:
    sizes = dataset("unequal")["cluster"].value_counts()
    assert sizes.max() >= 400 and sizes.min() < 50  # the data set is what it claims


@pytest.mark.parametrize("outcome", sorted(REF["ancova"]))
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_fidelity_ancova_on_the_example(outcome: str, cov_type: str) -> None:
    ref = REF["ancova"][outcome]
    data = dataset("ols_fidelity_ancova.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewClustersWarning)
        warnings.simplefilter("ignore", ExcludedRowsWarning)
        res = crtstats.ols(ref["formula"], data, cluster="team_id", cov_type=cov_type)
    check_against(res, ref, cov_type)
    assert res.info["n_excluded"] == ref["n_excluded"]
    # without a cluster column each row is its own cluster: the same HC2 / CR1 numbers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewClustersWarning)
        warnings.simplefilter("ignore", ExcludedRowsWarning)
        rowwise = crtstats.ols(ref["formula"], data, cluster=None, cov_type=cov_type)
    np.testing.assert_allclose(rowwise.cov_values, res.cov_values, rtol=1e-12, atol=0)
    np.testing.assert_allclose(rowwise.df_values, res.df_values, rtol=1e-12)
