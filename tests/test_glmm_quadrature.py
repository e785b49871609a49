"""The likelihood machinery of crtstats.glmm checked against first principles.

* Adaptive Gauss-Hermite quadrature with many nodes must reproduce the cluster
  integrals computed by adaptive numerical integration (scipy.integrate.quad) at the
  same parameters: tolerance 1e-8 relative on the log-likelihood (quad's own accuracy
  is ~1e-10 here; 25-node AGQ of these smooth integrands is exact to ~1e-12).
* The analytic gradient must match central finite differences of the log-likelihood
  (step 1e-6: truncation ~1e-12, rounding ~1e-9 on values of order 100), tolerance
  1e-5 absolute, for every family and for the Laplace and AGQ rules.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import integrate, stats

from crtstats.models._glmm_checks import unique_rows
from crtstats.models._glmm_families import FamilyName, family_terms, row_constant
from crtstats.models._glmm_quadrature import evaluate, make_problem


def small_data(family: FamilyName, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(6), [3, 5, 4, 6, 2, 5])
    n = groups.size
    X = np.column_stack([np.ones(n), rng.normal(size=n), np.repeat(rng.integers(0, 2, 6),
                                                                   np.bincount(groups))])
    eta = X @ np.array([-0.3, 0.5, 0.4]) + rng.normal(0, 0.8, 6)[groups]
    if family == "binomial":
        m = rng.integers(1, 4, n).astype(float)
        y = rng.binomial(m.astype(int), 1 / (1 + np.exp(-eta))).astype(float)
    else:
        m = np.ones(n)
        y = rng.poisson(np.exp(eta + 1.0)).astype(float)
    offset = rng.normal(0, 0.2, n) if family != "binomial" else np.zeros(n)
    return {"X": X, "y": y, "m": m, "offset": offset, "groups": groups}


def phi_for(family: FamilyName) -> np.ndarray:
    phi = [-0.2, 0.4, 0.3, 0.9]
    return np.array(phi + ([np.log(2.5)] if family == "negative_binomial" else []))


def exact_loglik(family: FamilyName, d: dict[str, np.ndarray], phi: np.ndarray) -> float:
    beta, sigma = phi[:3], phi[3]
    theta = float(np.exp(phi[4])) if family == "negative_binomial" else 1.0
    const = row_constant(family, d["y"], d["m"], theta)[0]
    total = 0.0
    for g in np.unique(d["groups"]):
        rows = d["groups"] == g
        eta0 = d["X"][rows] @ beta + d["offset"][rows]

        def log_integrand(b: float, eta0: np.ndarray = eta0, rows: np.ndarray = rows) -> float:
            l0 = family_terms(family, eta0 + sigma * b, d["y"][rows], d["m"][rows], theta)[0]
            return float(np.sum(l0) + np.sum(const[rows]) + stats.norm.logpdf(b))

        peak = max(log_integrand(b) for b in np.linspace(-6, 6, 49))
        value, _ = integrate.quad(lambda b, top=peak: np.exp(log_integrand(b) - top), -12, 12,
                                  epsabs=0, epsrel=1e-12, limit=200)
        total += np.log(value) + peak
    return total


FAMILIES: list[FamilyName] = ["binomial", "poisson", "negative_binomial"]


@pytest.mark.parametrize("family", FAMILIES)
def test_agq_converges_to_the_integral(family: FamilyName) -> None:
    d = small_data(family)
    phi = phi_for(family)
    problem = make_problem(family, d["y"], d["m"], d["X"], d["offset"], d["groups"], 6, 25)
    agq = -evaluate(problem, phi, np.zeros(6), gradient=False).value
    assert agq == pytest.approx(exact_loglik(family, d, phi), rel=1e-8)
    # Laplace is an approximation: close, but not equal
    laplace_problem = make_problem(family, d["y"], d["m"], d["X"], d["offset"], d["groups"],
                                   6, 1)
    laplace = -evaluate(laplace_problem, phi, np.zeros(6), gradient=False).value
    assert abs(laplace - agq) > 1e-6
    assert laplace == pytest.approx(agq, rel=0.05)


@pytest.mark.parametrize("nagq", [1, 2, 7])
@pytest.mark.parametrize("family", FAMILIES)
def test_gradient_matches_finite_differences(family: FamilyName, nagq: int) -> None:
    d = small_data(family, seed=2)
    problem = make_problem(family, d["y"], d["m"], d["X"], d["offset"], d["groups"], 6, nagq)
    phi = phi_for(family)
    start = np.zeros(6)
    grad = evaluate(problem, phi, start).gradient
    assert grad is not None
    h = 1e-6
    numeric = np.array([
        (evaluate(problem, phi + h * e, start, gradient=False).value
         - evaluate(problem, phi - h * e, start, gradient=False).value) / (2 * h)
        for e in np.eye(phi.size)
    ])
    np.testing.assert_allclose(grad, numeric, atol=1e-5)


def test_likelihood_is_even_in_sigma() -> None:
    d = small_data("poisson", seed=3)
    problem = make_problem("poisson", d["y"], d["m"], d["X"], d["offset"], d["groups"], 6, 5)
    phi = phi_for("poisson")
    flipped = phi.copy()
    flipped[3] = -flipped[3]
    a = evaluate(problem, phi, np.zeros(6))
    b = evaluate(problem, flipped, np.zeros(6))
    assert a.value == pytest.approx(b.value, rel=1e-12)
    np.testing.assert_allclose(a.modes, -b.modes, atol=1e-9)


@pytest.mark.parametrize("family", FAMILIES)
def test_modes_converge_far_from_the_start(family: FamilyName) -> None:
    """Large sigma and a poor start: damped Newton still finds every mode."""
    d = small_data(family, seed=4)
    problem = make_problem(family, d["y"], d["m"], d["X"], d["offset"], d["groups"], 6, 3)
    phi = phi_for(family)
    phi[3] = 6.0
    ev = evaluate(problem, phi, np.full(6, 3.0))
    assert ev.inner_converged
    again = evaluate(problem, phi, np.zeros(6))
    np.testing.assert_allclose(ev.modes, again.modes, atol=1e-9)
    assert ev.value == pytest.approx(again.value, rel=1e-12)


@given(arrays(np.float64, st.tuples(st.integers(1, 40), st.integers(1, 4)),
              elements=st.sampled_from([0.0, 1.0, -2.5, 0.1])))
def test_unique_rows_reconstructs_the_rows(keys: np.ndarray) -> None:
    first, inverse = unique_rows(keys)
    np.testing.assert_array_equal(keys[first][inverse], keys)
    assert len(first) == len(np.unique(keys, axis=0))
