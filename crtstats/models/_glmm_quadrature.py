"""Marginal log-likelihood of a random-intercept GLMM by adaptive Gauss-Hermite quadrature.

The random intercept of cluster ``i`` is written ``u_i = sigma * b_i`` with ``b_i``
standard normal (lme4's spherical parametrisation), so the parameter vector is
``phi = (beta, sigma)`` or, for the negative binomial, ``(beta, sigma, alpha)`` with
``alpha = log theta``. The likelihood is even in ``sigma``; the fit reports ``|sigma|``.

For each cluster the integrand's log, ``g(b) = sum_j l(eta_j) - b^2 / 2`` with
``eta_j = x_j beta + offset_j + sigma b``, is maximised by Newton's method (vectorised
over clusters), and

``log L_i = log s_i + log sum_k w_k exp(g(b_i + s_i z_k) + z_k^2 / 2)``,

with ``s_i = (-g''(b_i))^(-1/2)`` and ``(z_k, w_k)`` the Gauss-Hermite rule for the
standard normal density (weights summing to 1); one node (``z = 0, w = 1``) is the
Laplace approximation ``g(b_i) - log(-g''(b_i)) / 2``. The gradient is analytic: the
direct derivative plus the chain rule through the mode ``b_i`` (implicit function
theorem) and through the scale ``s_i`` (third derivatives of ``l``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.polynomial import hermite_e
from scipy import sparse

from crtstats.models._glmm_checks import unique_rows
from crtstats.models._glmm_families import (
    FamilyName,
    family_terms,
    log_density,
    mode_terms,
    newton_terms,
    row_constant,
)

__all__ = ["Evaluation", "GLMMProblem", "evaluate", "make_problem"]

_MAX_INNER = 200
_INNER_TOL = 1e-11
_MAX_STEP = 4.0
_SAFE_STEP = 0.1  # |sigma| h below this: a Newton step surely raises g


@dataclass(frozen=True)
class GLMMProblem:
    """Everything the marginal likelihood needs, fixed for one fit."""

    family: FamilyName
    y: np.ndarray
    m: np.ndarray
    X: np.ndarray
    offset: np.ndarray
    groups: np.ndarray
    n_groups: int
    nodes: np.ndarray
    log_weights: np.ndarray
    starts: np.ndarray  # first row of each cluster (rows are sorted by cluster)
    indicator: sparse.csr_matrix  # G x n, one 1 per column
    const: np.ndarray = field(repr=False)  # eta-free row constants (binomial, Poisson)

    @property
    def n_beta(self) -> int:
        """Number of fixed-effect coefficients."""
        return int(self.X.shape[1])

    @property
    def n_params(self) -> int:
        """Length of ``phi``: coefficients, sigma and (NB2) log theta."""
        return self.n_beta + (2 if self.family == "negative_binomial" else 1)

    def split(self, phi: np.ndarray) -> tuple[np.ndarray, float, float]:
        """``(beta, sigma, theta)`` from ``phi`` (theta is 1.0 for binomial and Poisson)."""
        p = self.n_beta
        theta = float(np.exp(phi[p + 1])) if self.family == "negative_binomial" else 1.0
        return phi[:p], float(phi[p]), theta

    def group_sum(self, values: np.ndarray) -> np.ndarray:
        """Sum rows within clusters: ``(n,)`` to ``(G,)``, ``(n, k)`` to ``(G, k)``."""
        if values.ndim == 1:
            out: np.ndarray = np.add.reduceat(values, self.starts)
            return out
        return np.asarray(self.indicator @ values)


def make_problem(
    family: FamilyName,
    y: np.ndarray,
    m: np.ndarray,
    X: np.ndarray,
    offset: np.ndarray,
    groups: np.ndarray,
    n_groups: int,
    nagq: int,
) -> GLMMProblem:
    """Bundle the data, sorted by cluster, with the ``nagq``-point Gauss-Hermite rule.

    Every cluster code ``0..n_groups-1`` must occur in ``groups``. Binomial rows that
    share cluster, covariates and offset are pooled into one row of summed successes
    and trials, which leaves the log-likelihood and its derivatives unchanged (the
    binomial coefficients of the original rows are kept in ``const``).
    """
    const = (row_constant(family, y, m, 1.0)[0] if family != "negative_binomial"
             else np.zeros(y.shape[0]))
    if family == "binomial" and not _all_distinct(X):
        first, inverse = unique_rows(np.column_stack([groups, offset, X]))
        k = first.shape[0]
        y, m, const = (np.bincount(inverse, weights=v, minlength=k) for v in (y, m, const))
        X, offset, groups = X[first], offset[first], groups[first]
    order = np.argsort(groups, kind="stable")
    y, m, X, offset, groups = y[order], m[order], X[order], offset[order], groups[order]
    const = const[order]
    starts = np.searchsorted(groups, np.arange(n_groups))
    if nagq == 1:
        nodes, weights = np.zeros(1), np.ones(1)
    else:
        nodes, weights = hermite_e.hermegauss(nagq)
        weights = weights / np.sqrt(2.0 * np.pi)
    n = y.shape[0]
    indicator = sparse.csr_matrix((np.ones(n), (groups, np.arange(n))), shape=(n_groups, n))
    return GLMMProblem(
        family=family, y=y, m=m, X=X, offset=offset, groups=groups, n_groups=n_groups,
        nodes=nodes, log_weights=np.log(weights), starts=starts, indicator=indicator,
        const=const,
    )


def _all_distinct(X: np.ndarray) -> bool:
    """Whether some column alone tells every row apart (then no two rows pool)."""
    n = X.shape[0]
    return any(np.unique(X[:, j]).shape[0] == n for j in range(X.shape[1]))


def _log_integrand(
    problem: GLMMProblem, eta0: np.ndarray, sigma: float, theta: float, b: np.ndarray
) -> np.ndarray:
    """``g(b)`` per cluster, without the row constants."""
    l0 = log_density(problem.family, eta0 + sigma * b[problem.groups], problem.y, problem.m,
                     theta)
    out: np.ndarray = problem.group_sum(l0) - 0.5 * b**2
    return out


def conditional_modes(
    problem: GLMMProblem, eta0: np.ndarray, sigma: float, theta: float, start: np.ndarray
) -> tuple[np.ndarray, bool]:
    """Maximise ``g(b)`` in every cluster by damped Newton's method.

    ``g`` is strictly concave for all three families (``l'' < 0``). Far from the mode a
    full Newton step can overshoot when the curvature changes fast (large ``sigma``).
    The third eta-derivative is at most the second in size in all three families, so
    ``|g_3| <= |sigma| |g_2|`` and over a step ``h`` the curvature changes by a factor
    within ``exp(+-|sigma| h)``: a Newton step with ``|sigma| h <= 0.1`` raises ``g``
    (its gain is at least ``0.44 g'^2 / |g''|``). Longer steps are halved, cluster by
    cluster, until ``g`` does not decrease. Returns the modes and whether they
    converged.
    """
    b = start.copy()
    groups = problem.groups
    current: np.ndarray | None = None  # g(b), computed only when a long step needs it
    for _ in range(_MAX_INNER):
        l1, l2 = newton_terms(problem.family, eta0 + sigma * b[groups], problem.y, problem.m,
                              theta)
        grad = sigma * problem.group_sum(l1) - b
        curv = 1.0 - sigma**2 * problem.group_sum(l2)
        step = np.clip(grad / curv, -_MAX_STEP, _MAX_STEP)
        if abs(sigma) * np.max(np.abs(step)) > _SAFE_STEP:
            if current is None:
                current = _log_integrand(problem, eta0, sigma, theta, b)
            for _ in range(40):
                trial = _log_integrand(problem, eta0, sigma, theta, b + step)
                worse = ~(trial >= current - 1e-12 * np.abs(current))
                if not np.any(worse):
                    break
                step = np.where(worse, 0.5 * step, step)
            current = trial
        else:
            current = None
        b = b + step
        if _settled(float(np.max(np.abs(step))), sigma, float(np.max(np.abs(b)))):
            return b, True
    return b, False


def _settled(longest: float, sigma: float, b_max: float) -> bool:
    """Whether the modes are within ``1e-2 * _INNER_TOL`` after a step of ``longest``.

    the third eta-derivative is at most the second in size in all three families, so
    ``|g_3| <= |sigma| |g_2|`` and the
    error left after a Newton step of length ``h`` near the mode is at most
    ``|sigma| h^2 / 2`` (this saves the last, negligible step).
    """
    tol = _INNER_TOL * max(1.0, b_max)
    if longest < tol:
        return True
    return longest < 1e-3 and 0.5 * abs(sigma) * longest**2 < 1e-2 * tol


@dataclass(frozen=True)
class Evaluation:
    """Negative log-likelihood, its gradient in ``phi`` and the per-cluster quantities."""

    value: float
    gradient: np.ndarray | None
    modes: np.ndarray
    scales: np.ndarray
    inner_converged: bool


def evaluate(
    problem: GLMMProblem, phi: np.ndarray, start: np.ndarray, *, gradient: bool = True
) -> Evaluation:
    """Negative marginal log-likelihood at ``phi`` (and its gradient when asked)."""
    beta, sigma, theta = problem.split(phi)
    eta0 = problem.X @ beta + problem.offset
    b, ok = conditional_modes(problem, eta0, sigma, theta, start)
    groups, z = problem.groups, problem.nodes
    eta_mode = eta0 + sigma * b[groups]
    mt = mode_terms(problem.family, eta_mode, problem.y, problem.m, theta)
    curv = 1.0 - sigma**2 * problem.group_sum(mt.l2)
    s = 1.0 / np.sqrt(curv)
    bk = b[:, None] + s[:, None] * z[None, :]
    if z.shape[0] == 1 and problem.family != "negative_binomial":
        # Laplace: the one node is the mode, where l' is already known
        l0 = log_density(problem.family, eta_mode, problem.y, problem.m, theta)[:, None]
        l1, la = mt.l1[:, None], None
    else:
        l0, l1, la = family_terms(
            problem.family, eta0[:, None] + sigma * bk[groups], problem.y[:, None],
            problem.m[:, None], theta,
        )
    if problem.family == "negative_binomial":
        const, const_a = row_constant(problem.family, problem.y, problem.m, theta)
    else:
        const, const_a = problem.const, np.zeros(0)
    a = (problem.log_weights + problem.group_sum(l0) + problem.group_sum(const)[:, None]
         - 0.5 * bk**2 + 0.5 * z**2)
    top = np.max(a, axis=1)
    lse = top + np.log(np.sum(np.exp(a - top[:, None]), axis=1))
    value = -float(np.sum(np.log(s) + lse))
    if not gradient:
        return Evaluation(value, None, b, s, ok)
    pi = np.exp(a - lse[:, None])
    s1 = problem.group_sum(l1)
    gb = sigma * s1 - bk
    big_b = np.sum(pi * gb, axis=1)
    big_c = 1.0 / s + np.sum(pi * gb * z, axis=1)
    dsd = -0.5 * s**3  # ds / dD
    # fixed effects
    direct_beta = problem.X.T @ np.sum(pi[groups] * l1, axis=1)
    s2, s3 = problem.group_sum(mt.l2), problem.group_sum(mt.l3)
    db_beta = sigma * problem.group_sum(mt.l2[:, None] * problem.X) / curv[:, None]
    dd_beta = -sigma**2 * (problem.group_sum(mt.l3[:, None] * problem.X)
                           + (s3 * sigma)[:, None] * db_beta)
    g_beta = direct_beta + np.sum(big_b[:, None] * db_beta
                                  + (big_c * dsd)[:, None] * dd_beta, axis=0)
    # sigma
    db_sigma = (problem.group_sum(mt.l1) + sigma * s2 * b) / curv
    dd_sigma = -2.0 * sigma * s2 - sigma**2 * s3 * (b + sigma * db_sigma)
    g_sigma = float(np.sum(pi * s1 * bk) + np.sum(big_b * db_sigma + big_c * dsd * dd_sigma))
    parts = [g_beta, np.array([g_sigma])]
    if problem.family == "negative_binomial":
        db_alpha = sigma * problem.group_sum(mt.l1a) / curv
        dd_alpha = -sigma**2 * (problem.group_sum(mt.l2a) + s3 * sigma * db_alpha)
        assert la is not None
        g_alpha = float(
            np.sum(pi * problem.group_sum(la)) + np.sum(const_a)
            + np.sum(big_b * db_alpha + big_c * dsd * dd_alpha)
        )
        parts.append(np.array([g_alpha]))
    return Evaluation(value, -np.concatenate(parts), b, s, ok)
