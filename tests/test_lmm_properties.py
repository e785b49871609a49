"""Property tests of crtstats.lmm (hypothesis).

Invariants: relabelling the clusters or shuffling the rows changes nothing, and adding
a constant to the outcome moves only the intercept. Tolerances are 1e-7 relative (1e-9
absolute) because both fits are solved to machine precision but reach the optimum by
different floating-point paths (sums in another order); df get 1e-6 since they are
ratios of small differences.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from hypothesis import given
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


@given(seed=_seeds, shift=st.floats(min_value=-1e3, max_value=1e3, allow_nan=False))
def test_adding_a_constant_moves_only_the_intercept(seed: int, shift: float) -> None:
    data = _data(seed)
    base, base_warnings = _fit(data, "kenward-roger")
    moved, moved_warnings = _fit(data.assign(y=data["y"] + shift), "kenward-roger")
    assert base_warnings == moved_warnings
    expected = base.params.copy()
    expected["Intercept"] += shift
    # the intercept absorbs the shift; its absolute error scales with |shift|
    np.testing.assert_allclose(moved.params, expected, rtol=RTOL, atol=ATOL * (1 + abs(shift)))
    np.testing.assert_allclose(moved.std_errors, base.std_errors, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(moved.df, base.df, rtol=1e-5)
    np.testing.assert_allclose(moved.variance_components, base.variance_components,
                               rtol=1e-6, atol=1e-8)
