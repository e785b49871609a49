"""Properties of the GEE sandwiches (crtstats.models._gee_sandwich).

With one observation per cluster, a Gaussian model and independence, the cluster
leverage is the hat value ``h_i`` and the three sandwiches are the heteroskedasticity-
consistent covariances of OLS: robust = HC0, Kauermann-Carroll = HC2 (residuals over
``sqrt(1 - h_i)``), Mancl-DeRouen = HC3 (over ``1 - h_i``). statsmodels computes those
independently; they agree to rtol 1e-10 (same algebra, different order of operations).
"""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from hypothesis import given
from hypothesis import strategies as st

from crtstats.exceptions import ModelSpecificationError
from crtstats.models._gee_sandwich import gee_sandwiches


def _data(seed: int, sizes: list[int], family: str) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(len(sizes)), sizes)
    arm = (np.arange(len(sizes)) % 2)[groups].astype(float)
    x = rng.normal(size=groups.size)
    X = np.column_stack([np.ones(groups.size), arm, x])
    eta = 0.2 + 0.3 * arm + 0.1 * x + rng.normal(0, 0.3, len(sizes))[groups]
    y = rng.poisson(np.exp(eta)).astype(float) if family == "poisson" else eta + rng.normal(
        size=groups.size)
    beta = np.array([0.25, 0.2, 0.05])
    return X, y, groups, beta


def test_single_observation_clusters_give_hc0_hc2_hc3() -> None:
    rng = np.random.default_rng(4)
    X = np.column_stack([np.ones(30), rng.normal(size=30), rng.uniform(size=30)])
    y = X @ [1.0, 0.5, -1.0] + rng.normal(size=30) * (1 + X[:, 2])
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    covs = gee_sandwiches(X, y, np.arange(30), beta, family="gaussian", alpha=0.0)
    ols = sm.OLS(y, X)
    for name, hc in (("robust", "HC0"), ("kauermann-carroll", "HC2"), ("mancl-derouen", "HC3")):
        np.testing.assert_allclose(covs[name], ols.fit(cov_type=hc).cov_params(), rtol=1e-10)


@given(
    seed=st.integers(0, 10_000),
    sizes=st.lists(st.integers(1, 6), min_size=4, max_size=9),
    alpha=st.floats(0.0, 0.6),
    family=st.sampled_from(["gaussian", "poisson", "binomial"]),
)
def test_symmetric_and_invariant_to_cluster_order(
    seed: int, sizes: list[int], alpha: float, family: str
) -> None:
    X, y, groups, beta = _data(seed, sizes, "poisson" if family == "poisson" else "gaussian")
    if family == "binomial":
        y = (y > np.median(y)).astype(float)
    covs = gee_sandwiches(X, y, groups, beta, family=family, alpha=alpha)  # type: ignore[arg-type]
    # relabel clusters and shuffle rows
    rng = np.random.default_rng(seed + 1)
    relabel = rng.permutation(len(sizes))
    order = rng.permutation(len(y))
    again = gee_sandwiches(X[order], y[order], relabel[groups][order], beta,
                           family=family, alpha=alpha)  # type: ignore[arg-type]
    for name, cov in covs.items():
        np.testing.assert_allclose(cov, cov.T, rtol=1e-12, atol=1e-14)
        assert np.all(np.linalg.eigvalsh(cov) > -1e-10 * np.abs(cov).max())
        np.testing.assert_allclose(again[name], cov, rtol=1e-8, atol=1e-12)


def test_offset_shifts_the_mean() -> None:
    X, y, groups, beta = _data(2, [3, 4, 2, 5, 3, 4], "poisson")
    shifted = beta.copy()
    shifted[0] -= 0.7
    a = gee_sandwiches(X, y, groups, beta, family="poisson", alpha=0.1)
    b = gee_sandwiches(X, y, groups, shifted, family="poisson", alpha=0.1,
                       offset=np.full(len(y), 0.7))
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-10)


def test_working_correlation_must_be_positive_definite() -> None:
    X, y, groups, beta = _data(1, [3, 5, 2, 4], "gaussian")
    with pytest.raises(ModelSpecificationError, match="not positive definite"):
        gee_sandwiches(X, y, groups, beta, family="gaussian", alpha=-0.3)
    with pytest.raises(ModelSpecificationError, match="not positive definite"):
        gee_sandwiches(X, y, groups, beta, family="gaussian", alpha=1.0)
