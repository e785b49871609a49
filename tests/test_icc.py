"""crtstats.icc and crtstats.design_effect against R (tests/reference/icc.R).

Tolerances: the ANOVA estimator, mean squares and n0 are closed forms, so rtol 1e-10.
The Wald (1940) limits are roots found by Brent's method here and by uniroot (tol
1e-14) in R: rtol 1e-8. psych::ICC and lme4 agree with the balanced formulas to rtol
1e-9 (lme4's REML optimum is found numerically: rtol 1e-7).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import crtstats
from crtstats.exceptions import (
    InvalidParameterError,
    MissingColumnError,
    ModelSpecificationError,
)

REFERENCE = Path(__file__).resolve().parent / "reference"
REF = json.loads((REFERENCE / "icc.json").read_text())
DYE = pd.read_csv(REFERENCE / "data" / "icc_dyestuff.csv")
ADM = pd.read_csv(REFERENCE / "data" / "gee_admissions.csv")


def test_balanced_anova_and_f_interval() -> None:
    ref = REF["dyestuff"]
    res = crtstats.icc(DYE, outcome="yield", cluster="batch")
    assert res.estimate == pytest.approx(ref["icc"], rel=1e-10)
    assert (res.msb, res.msw, res.n0) == pytest.approx((ref["msb"], ref["msw"], ref["n0"]),
                                                       rel=1e-10)
    np.testing.assert_allclose([res.conf_low, res.conf_high], ref["wald_ci"], rtol=1e-8)
    # the exact interval of balanced data is the F interval, and psych's ICC1
    np.testing.assert_allclose([res.conf_low, res.conf_high], ref["f_ci"], rtol=1e-8)
    np.testing.assert_allclose([res.conf_low, res.conf_high], ref["psych_icc1_ci"], rtol=1e-8)
    assert res.estimate == pytest.approx(ref["psych_icc1"], rel=1e-9)
    assert res.estimate == pytest.approx(ref["lme4_icc"], rel=1e-7)
    res90 = crtstats.icc(DYE, outcome="yield", cluster="batch", level=0.90)
    np.testing.assert_allclose([res90.conf_low, res90.conf_high], ref["wald_ci_90"],
                               rtol=1e-8)


@pytest.mark.parametrize("outcome", ["age", "admitted"])
def test_unbalanced_exact_and_smith_intervals(outcome: str) -> None:
    ref = REF[outcome]
    exact = crtstats.icc(ADM, outcome=outcome, cluster="team_id")
    smith = crtstats.icc(ADM, outcome=outcome, cluster="team_id", method="smith")
    for res in (exact, smith):
        assert res.estimate == pytest.approx(ref["icc"], rel=1e-10)
        assert res.n0 == pytest.approx(ref["n0"], rel=1e-12)
        assert res.n_clusters == 25 and res.nobs == len(ADM)
    np.testing.assert_allclose([exact.conf_low, exact.conf_high], ref["wald_ci"], rtol=1e-8)
    np.testing.assert_allclose([smith.conf_low, smith.conf_high], ref["smith_ci"], rtol=1e-10)


def test_smith_on_balanced_data() -> None:
    res = crtstats.icc(DYE, outcome="yield", cluster="batch", method="smith")
    np.testing.assert_allclose([res.conf_low, res.conf_high], REF["dyestuff"]["smith_ci"],
                               rtol=1e-10)


def test_design_effect_matches_formula() -> None:
    for case in REF["design_effect"]:
        got = crtstats.design_effect(case["m"], case["cv"], case["icc"])
        assert got == pytest.approx(case["deff"], rel=1e-14)


@pytest.mark.parametrize(
    ("args", "match"),
    [((0, 0.1, 0.05), "mean_size"), ((10, -0.1, 0.05), "cv"), ((10, 0.1, 1.5), "icc"),
     ((10, float("nan"), 0.05), "cv")],
)
def test_design_effect_rejects_bad_values(args: tuple[float, float, float], match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        crtstats.design_effect(*args)


def test_bad_input() -> None:
    with pytest.raises(InvalidParameterError, match="method must be one of"):
        crtstats.icc(DYE, outcome="yield", cluster="batch", method="reml")  # type: ignore[arg-type]
    with pytest.raises(MissingColumnError, match=r"no column\(s\) \['nope'\]"):
        crtstats.icc(DYE, outcome="nope", cluster="batch")
    with pytest.raises(ModelSpecificationError, match="at least 2 clusters"):
        crtstats.icc(DYE.iloc[:5], outcome="yield", cluster="batch")
    flat = DYE.assign(yield_=1.0)
    with pytest.raises(ModelSpecificationError, match="does not vary"):
        crtstats.icc(flat, outcome="yield_", cluster="batch")
    with pytest.raises(InvalidParameterError, match="level"):
        crtstats.icc(DYE, outcome="yield", cluster="batch", level=95)


def test_missing_outcomes_are_counted() -> None:
    data = DYE.copy()
    data.loc[[0, 7], "yield"] = np.nan
    res = crtstats.icc(data, outcome="yield", cluster="batch")
    assert res.n_excluded == 2 and res.nobs == 28
    assert res.to_frame().loc[0, "icc"] == res.estimate


@given(
    sizes=st.lists(st.integers(2, 12), min_size=3, max_size=8),
    seed=st.integers(0, 10_000),
    level=st.sampled_from([0.8, 0.9, 0.95]),
)
def test_interval_contains_estimate_and_relabelling_is_harmless(
    sizes: list[int], seed: int, level: float
) -> None:
    rng = np.random.default_rng(seed)
    labels = np.repeat([f"c{i}" for i in range(len(sizes))], sizes)
    y = rng.normal(size=len(sizes))[np.arange(len(sizes)).repeat(sizes)] + rng.normal(
        size=len(labels))
    data = pd.DataFrame({"c": labels, "y": y})
    res = crtstats.icc(data, outcome="y", cluster="c", level=level)
    # the exact limits live in [-1/(n_max - 1), 1]; the ANOVA estimate's floor is
    # -1/(n0 - 1), lower when sizes differ, so only an estimate inside that range is
    # guaranteed to be covered
    floor = -1.0 / (max(sizes) - 1)
    assert floor - 1e-12 <= res.conf_low <= max(res.estimate, floor) + 1e-12
    assert res.estimate <= res.conf_high <= 1.0
    relabelled = data.assign(c=data["c"].map(lambda s: "z" + s[::-1])).sample(
        frac=1.0, random_state=seed)
    again = crtstats.icc(relabelled, outcome="y", cluster="c", level=level)
    assert again.estimate == pytest.approx(res.estimate, rel=1e-9, abs=1e-12)
    assert again.conf_low == pytest.approx(res.conf_low, rel=1e-7, abs=1e-10)
