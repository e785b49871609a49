"""Property tests of crtstats.lmm (hypothesis).

Invariants: relabelling the clusters or shuffling the rows changes nothing; adding a
constant up to 1e8 to the outcome or a covariate, or rescaling either by 1e-6 to 1e6,
changes slopes, SEs, variance components (in their units), df and p by at most 1e-6.
Tolerances for relabelling are 1e-7 relative (1e-9 absolute) because both fits are
solved to machine precision but reach the optimum by different floating-point paths
(sums in another order); df get 1e-6 since they are ratios of small differences.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

import crtstats

RTOL, ATOL = 1e-7, 1e-9
RTOL_DF = 1e-6

_seeds = st.integers(min_value=0, max_value=2**31 - 1)
_ddf = st.sampled_from(["kenward-roger", "satterthwaite"])


def _data(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_clusters = int(rng.integers(4, 10))
    sizes = rng.integers(1, 7, n_clusters)
    cluster = np.repeat(np.arange(n_clusters), sizes)
    arm = (np.arange(n_clusters) % 2)[cluster]
    x = rng.normal(size=cluster.size)
    y = (2.0 + 0.5 * arm + x + rng.normal(scale=rng.uniform(0.0, 2.0), size=n_clusters)[cluster]
         + rng.normal(size=cluster.size))
    return pd.DataFrame({"team": [f"T{c}" for c in cluster], "arm": arm, "x": x, "y": y})


def _fit(data: pd.DataFrame, ddf: str) -> tuple[crtstats.CRTResult, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = crtstats.lmm("y ~ arm + x", data, cluster="team", ddf=ddf)  # type: ignore[arg-type]
    return res, sorted(type(w.message).__name__ for w in caught)


def _assert_same(a: crtstats.CRTResult, b: crtstats.CRTResult) -> None:
    np.testing.assert_allclose(a.params, b.params, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(a.std_errors, b.std_errors, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(a.df, b.df, rtol=RTOL_DF)
    for key in ("cluster", "residual"):
        np.testing.assert_allclose(a.variance_components[key], b.variance_components[key],
                                   rtol=RTOL, atol=ATOL)
    assert a.loglik is not None and b.loglik is not None
    np.testing.assert_allclose(a.loglik, b.loglik, rtol=RTOL)
    assert a.info["boundary"] == b.info["boundary"]


@given(seed=_seeds, shuffle=_seeds, ddf=_ddf)
def test_row_order_and_cluster_labels_do_not_matter(seed: int, shuffle: int, ddf: str) -> None:
    data = _data(seed)
    base, base_warnings = _fit(data, ddf)
    rng = np.random.default_rng(shuffle)
    labels = data["team"].unique()
    relabel = dict(zip(labels, [f"Z{v}" for v in rng.permutation(len(labels))], strict=True))
    moved = data.assign(team=data["team"].map(relabel)).iloc[rng.permutation(len(data))]
    other, other_warnings = _fit(moved, ddf)
    assert base_warnings == other_warnings
    _assert_same(base, other)
    re_base = base.random_effects
    re_other = other.random_effects
    assert re_base is not None and re_other is not None
    mapped = re_other.set_index("cluster").loc[[relabel[c] for c in re_base["cluster"]]]
    np.testing.assert_allclose(mapped["estimate"], re_base["estimate"], rtol=RTOL, atol=ATOL)


_shifts = st.floats(min_value=-1e8, max_value=1e8, allow_nan=False)
_scales = st.floats(min_value=-6.0, max_value=6.0).map(lambda e: 10.0**e)
SLOPES = ["arm", "x"]
#: Invariance tolerance. The fit runs in a centred, scaled basis, so the only change
#: left is the rounding of the data themselves: y + 1e8 is stored to 1.5e-8, which
#: moves the estimates by about 1e-8 of their SE; 1e-6 leaves a wide margin.
RTOL_INV = 1e-6
#: each example fits twice; 20 per invariance keeps the file under a minute on CI
_INVARIANCE = settings(max_examples=20, deadline=None)


def _assert_invariant(moved: crtstats.CRTResult, base: crtstats.CRTResult, *,
                      terms: list[str], coef_scale: pd.Series, var_scale: float) -> None:
    """``moved`` equals ``base`` after undoing the units (``coef_scale``, ``var_scale``)
    on ``terms``, to RTOL_INV relative. A coefficient or variance near zero has no
    meaningful relative error, so those are compared on the scale of their SE and of
    the total variance."""
    se = base.std_errors[terms]
    coef = moved.params[terms] / coef_scale[terms]
    np.testing.assert_array_less(
        np.abs(coef - base.params[terms]), RTOL_INV * np.maximum(np.abs(base.params[terms]), se)
    )
    np.testing.assert_allclose(moved.std_errors[terms] / coef_scale[terms], se, rtol=RTOL_INV)
    np.testing.assert_allclose(moved.df[terms], base.df[terms], rtol=RTOL_INV)
    np.testing.assert_allclose(moved.pvalues[terms], base.pvalues[terms], rtol=RTOL_INV)
    total = float(base.variance_components.sum())
    np.testing.assert_array_less(
        np.abs(moved.variance_components / var_scale - base.variance_components),
        RTOL_INV * total,
    )
    assert moved.info["boundary"] == base.info["boundary"]


@_INVARIANCE
@given(seed=_seeds, shift=_shifts, ddf=_ddf)
def test_adding_a_constant_to_the_outcome_moves_only_the_intercept(
    seed: int, shift: float, ddf: str
) -> None:
    data = _data(seed)
    base, base_warnings = _fit(data, ddf)
    moved, moved_warnings = _fit(data.assign(y=data["y"] + shift), ddf)
    assert base_warnings == moved_warnings
    ones = pd.Series(1.0, index=base.params.index)
    _assert_invariant(moved, base, terms=SLOPES, coef_scale=ones, var_scale=1.0)
    # the intercept absorbs the shift; its SE and df do not change
    np.testing.assert_allclose(moved.params["Intercept"] - shift, base.params["Intercept"],
                               atol=RTOL_INV * (abs(base.params["Intercept"]) + abs(shift)))
    np.testing.assert_allclose(moved.std_errors["Intercept"], base.std_errors["Intercept"],
                               rtol=RTOL_INV)
    np.testing.assert_allclose(moved.df["Intercept"], base.df["Intercept"], rtol=RTOL_INV)


@_INVARIANCE
@given(seed=_seeds, shift=_shifts, ddf=_ddf)
def test_adding_a_constant_to_a_covariate_changes_no_slope(
    seed: int, shift: float, ddf: str
) -> None:
    data = _data(seed)
    base, base_warnings = _fit(data, ddf)
    moved, moved_warnings = _fit(data.assign(x=data["x"] + shift), ddf)
    assert base_warnings == moved_warnings
    ones = pd.Series(1.0, index=base.params.index)
    _assert_invariant(moved, base, terms=SLOPES, coef_scale=ones, var_scale=1.0)


@_INVARIANCE
@given(seed=_seeds, scale=_scales, ddf=_ddf)
def test_rescaling_the_outcome_rescales_everything(seed: int, scale: float, ddf: str) -> None:
    data = _data(seed)
    base, base_warnings = _fit(data, ddf)
    moved, moved_warnings = _fit(data.assign(y=data["y"] * scale), ddf)
    assert base_warnings == moved_warnings
    factor = pd.Series(scale, index=base.params.index)
    _assert_invariant(moved, base, terms=list(base.params.index), coef_scale=factor,
                      var_scale=scale**2)
    assert moved.icc is not None and base.icc is not None
    np.testing.assert_allclose(moved.icc, base.icc, rtol=RTOL_INV, atol=1e-12)


@_INVARIANCE
@given(seed=_seeds, scale=_scales, ddf=_ddf)
def test_rescaling_a_covariate_rescales_its_slope_only(seed: int, scale: float, ddf: str) -> None:
    data = _data(seed)
    base, base_warnings = _fit(data, ddf)
    moved, moved_warnings = _fit(data.assign(x=data["x"] * scale), ddf)
    assert base_warnings == moved_warnings
    factor = pd.Series(1.0, index=base.params.index)
    factor["x"] = 1.0 / scale
    _assert_invariant(moved, base, terms=list(base.params.index), coef_scale=factor,
                      var_scale=1.0)
    # a contrast's df and SE follow the same map (KR df invariant under reparametrisation)
    mixed = {"arm": 1.0, "x": 1.0}
    one = base.contrast(mixed)
    other = moved.contrast({"arm": 1.0, "x": scale})
    np.testing.assert_allclose(other.df, one.df, rtol=RTOL_INV)
    np.testing.assert_allclose(other.std_error, one.std_error, rtol=RTOL_INV)
