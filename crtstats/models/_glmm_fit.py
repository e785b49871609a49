"""Maximising the GLMM marginal likelihood: starting values, optimiser, Hessian.

Quasi-Newton (BFGS with the analytic gradient) from a GLM start, then Newton steps with
a Hessian from central differences of the analytic gradient until the Newton
decrement is negligible. The same Hessian gives the covariance of the estimates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from crtstats.models._glmm_quadrature import Evaluation, GLMMProblem, evaluate

__all__ = ["FitOutcome", "glm_start", "maximise"]

_DECREMENT_TOL = 1e-10
_MAX_NEWTON = 12
_SMALL_STEP = 1e-8


@dataclass(frozen=True)
class FitOutcome:
    """Where the optimiser stopped, with the Hessian there."""

    phi: np.ndarray
    evaluation: Evaluation
    hessian: np.ndarray
    converged: bool
    decrement: float
    iterations: int
    message: str


def glm_start(problem: GLMMProblem) -> tuple[np.ndarray, np.ndarray]:
    """Starting ``phi`` and inverse-Hessian guess from a GLM fit (no random effect).

    IRLS gives ``beta``; ``sigma`` starts at 1 (lme4's start). For NB2 the Poisson GLM
    coefficients are used with a moment estimate of ``theta``. The inverse-Hessian guess
    for BFGS is ``(X' W X)^{-1}`` for ``beta`` and fixed variances for ``sigma`` and
    ``log theta``. A few IRLS steps suffice; under separation they stop at moderate
    values.
    """
    X, y, m, off = problem.X, problem.y, problem.m, problem.offset
    if problem.family == "binomial":
        mu = (y + 0.5) / (m + 1.0)
        eta = np.log(mu / (1.0 - mu))
    else:
        eta = np.log(y + 0.5)
    beta = np.zeros(X.shape[1])
    for _ in range(8):
        if problem.family == "binomial":
            p = 1.0 / (1.0 + np.exp(-eta))
            w = np.maximum(m * p * (1.0 - p), 1e-8)
            work = eta - off + (y - m * p) / w
        else:
            mu = np.exp(eta)
            w = np.maximum(mu, 1e-8)
            work = eta - off + (y - mu) / w
        xtw = X.T * w
        previous, beta = beta, np.linalg.solve(xtw @ X + 1e-10 * np.eye(X.shape[1]),
                                               xtw @ work)
        eta = np.clip(X @ beta + off, -30.0, 30.0)
        if np.max(np.abs(beta - previous)) < 1e-6 * (1.0 + np.max(np.abs(beta))):
            break
    phi = [beta, np.array([1.0])]
    scales = [0.1]
    if problem.family == "negative_binomial":
        mu = np.exp(eta)
        excess = float(np.mean((y - mu) ** 2 - mu))
        theta = float(np.mean(mu**2)) / excess if excess > 0 else 100.0
        phi.append(np.array([np.log(np.clip(theta, 0.05, 100.0))]))
        scales.append(0.5)
    p = X.shape[1]
    hess_inv = np.diag(np.r_[np.zeros(p), scales])
    info = np.linalg.inv(xtw @ X + 1e-8 * np.eye(p))
    hess_inv[:p, :p] = 0.5 * (info + info.T)
    return np.concatenate(phi), hess_inv


def _hessian(problem: GLMMProblem, phi: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Central differences of the analytic gradient, symmetrised."""
    k = phi.shape[0]
    hess = np.empty((k, k))
    for j in range(k):
        h = 1e-5 * max(1.0, abs(float(phi[j])))
        up, down = phi.copy(), phi.copy()
        up[j] += h
        down[j] -= h
        g_up = evaluate(problem, up, start).gradient
        g_down = evaluate(problem, down, start).gradient
        assert g_up is not None and g_down is not None
        hess[:, j] = (g_up - g_down) / (2.0 * h)
    return 0.5 * (hess + hess.T)


def _newton_direction(hess: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """``-H^{-1} g`` with eigenvalues floored so that the step is a descent direction."""
    vals, vecs = np.linalg.eigh(hess)
    floor = 1e-8 * max(1.0, float(np.max(np.abs(vals))))
    vals = np.maximum(np.abs(vals), floor)
    out: np.ndarray = -(vecs @ ((vecs.T @ grad) / vals))
    return out


def maximise(problem: GLMMProblem, phi0: np.ndarray, hess_inv0: np.ndarray) -> FitOutcome:
    """Minimise the negative marginal log-likelihood from ``phi0``."""
    start = np.zeros(problem.n_groups)
    cache = {"b": start}

    def fun(phi: np.ndarray) -> tuple[float, np.ndarray]:
        # trial points of the line search may overflow exp(eta); they are rejected
        # because their value is not finite, and the final point is checked below
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            ev = evaluate(problem, phi, cache["b"])
        assert ev.gradient is not None
        if not (np.isfinite(ev.value) and np.all(np.isfinite(ev.gradient))):
            return np.inf, np.zeros_like(phi)
        cache["b"] = ev.modes
        return ev.value, ev.gradient

    res = optimize.minimize(
        fun, phi0, jac=True, method="BFGS",
        options={"gtol": 1e-6, "maxiter": 1000, "hess_inv0": hess_inv0},
    )
    phi = np.asarray(res.x, dtype=float)
    iterations = int(res.nit)
    ev = evaluate(problem, phi, cache["b"])
    hess = _hessian(problem, phi, ev.modes)
    decrement = np.inf
    for _ in range(_MAX_NEWTON):
        assert ev.gradient is not None
        step = _newton_direction(hess, ev.gradient)
        decrement = float(-ev.gradient @ step)
        if decrement < _DECREMENT_TOL:
            break
        t = 1.0
        while t > 1e-6:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                trial = evaluate(problem, phi + t * step, ev.modes)
            if trial.value <= ev.value:
                break
            t *= 0.5
        else:
            break
        phi = phi + t * step
        iterations += 1
        ev = trial  # evaluated at phi, with its gradient
        if decrement < _SMALL_STEP:
            # the step moved phi by < 1e-4 standard errors: the Hessian is unchanged to
            # that order and the new decrement is quadratically small
            assert ev.gradient is not None
            decrement = float(ev.gradient @ np.linalg.solve(hess, ev.gradient))
            break
        hess = _hessian(problem, phi, ev.modes)
    converged = bool(decrement < 1e-6 and ev.inner_converged and np.all(np.isfinite(phi)))
    return FitOutcome(
        phi=phi, evaluation=ev, hessian=hess, converged=converged, decrement=decrement,
        iterations=iterations, message=str(res.message),
    )
