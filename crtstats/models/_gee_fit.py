"""The GEE fit: Fisher scoring with closed-form working covariances and moment estimators.

Everything is vectorised over clusters: the rows are sorted by cluster once and every
per-cluster sum is one ``np.add.reduceat`` (:class:`Clusters`), never a Python loop over
clusters. With Pearson residuals
``e = (y - mu) / sqrt(v(mu))`` and the scaled derivatives ``s = A^-1/2 D`` (rows
``x' dmu/deta / sqrt(v(mu))``), the exchangeable working correlation
``R_i = (1 - alpha) I + alpha J`` has the closed-form inverse
``R_i^-1 = (I - c_i J) / (1 - alpha)`` with ``c_i = alpha / (1 + (n_i - 1) alpha)``, so

``B_i = D_i' V_i^-1 D_i = (s_i' s_i - c_i t_i t_i') / (1 - alpha)`` and
``U_i = D_i' V_i^-1 r_i = (s_i' e_i - c_i t_i E_i) / (1 - alpha)``

with ``t_i`` the column sums of ``s_i`` and ``E_i`` the sum of ``e_i`` (the dispersion
``phi`` cancels from the Fisher step and from every sandwich).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from scipy import special

__all__ = [
    "GeeFamily",
    "GeeFit",
    "Moments",
    "MOMENTS",
    "Clusters",
    "exchangeable_c",
    "fit_gee",
    "mean_parts",
]

GeeFamily = Literal["binomial", "poisson", "gaussian"]
Moments = Literal["geepack", "sas"]
MOMENTS: tuple[Moments, ...] = get_args(Moments)

#: Iteration limit and tolerance (on the largest absolute change of any parameter,
#: relative to ``1 + |value|``); geepack's default is 25 iterations at 1e-4 absolute.
MAX_ITER = 100
TOL = 1e-12


@dataclass(frozen=True)
class GeeFit:
    """Estimates of a GEE fit.

    Attributes
    ----------
    beta
        Regression coefficients.
    alpha
        Exchangeable working correlation (0 for independence).
    scale
        Dispersion ``phi`` by the chosen moment estimator.
    converged
        Whether the largest relative change fell below :data:`TOL`.
    iterations
        Fisher-scoring iterations used.
    invalid_alpha
        When the iterations stopped because the moment estimates left their range
        (``alpha`` outside ``(-1/(n_max - 1), 1)``, or ``phi`` not positive), the
        offending ``alpha``; ``alpha`` and ``scale`` are then the last valid ones.
    """

    beta: np.ndarray
    alpha: float
    scale: float
    converged: bool
    iterations: int
    invalid_alpha: float | None = None


def mean_parts(eta: np.ndarray, family: GeeFamily
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, ``d mu / d eta`` and variance function for the canonical links."""
    tiny = np.finfo(float).tiny  # keeps e = (y - mu) / sqrt(v) finite as mu -> 0 or 1
    if family == "binomial":
        mu = special.expit(eta)
        var = mu * (1.0 - mu)
        return mu, var, np.maximum(var, tiny)
    if family == "poisson":
        mu = np.exp(np.minimum(eta, 700.0))
        return mu, mu, np.maximum(mu, tiny)
    return eta.copy(), np.ones_like(eta), np.ones_like(eta)


@dataclass(frozen=True)
class Clusters:
    """Where each cluster's rows start once the rows are sorted by cluster code.

    Attributes
    ----------
    order
        The permutation that sorts the rows by cluster (stable).
    starts
        First sorted row of each cluster.
    sizes
        Rows per cluster (float).
    """

    order: np.ndarray
    starts: np.ndarray
    sizes: np.ndarray

    @classmethod
    def of(cls, groups: np.ndarray) -> Clusters:
        """The layout of cluster codes ``groups`` (0..G-1, each present)."""
        order = np.argsort(groups, kind="stable")
        g = groups[order]
        starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
        sizes = np.diff(np.r_[starts, g.size]).astype(float)
        return cls(order, starts, sizes)

    @property
    def n(self) -> int:
        """Number of clusters."""
        return int(self.starts.size)

    def sums(self, values: np.ndarray) -> np.ndarray:
        """Per-cluster sums of sorted ``values`` (n or n x k): shape (G,) or (G, k)."""
        out: np.ndarray = np.add.reduceat(values, self.starts, axis=0)
        return out


def exchangeable_c(alpha: float, sizes: np.ndarray) -> np.ndarray:
    """``c_i = alpha / (1 + (n_i - 1) alpha)`` of ``R_i^-1 = (I - c_i J) / (1 - alpha)``."""
    out: np.ndarray = alpha / (1.0 + (sizes - 1.0) * alpha)
    return out


def _start(X: np.ndarray, y: np.ndarray, offset: np.ndarray, family: GeeFamily
           ) -> np.ndarray:
    """One weighted least-squares step from glm's starting means (as ``glm.fit``)."""
    if family == "binomial":
        mu = (y + 0.5) / 2.0
        eta = special.logit(mu)
        w = mu * (1.0 - mu)
        z = eta + (y - mu) / w
    elif family == "poisson":
        mu = y + 0.1
        eta = np.log(mu)
        w = mu
        z = eta + (y - mu) / mu
    else:
        w = np.ones_like(y)
        z = y
    wx = w[:, None] * X
    beta: np.ndarray = np.linalg.solve(X.T @ wx, wx.T @ (z - offset))
    return beta


def _moments(e: np.ndarray, e_sum: np.ndarray, cl: Clusters, p: int, exchangeable: bool,
             moments: Moments) -> tuple[float, float]:
    """Dispersion ``phi`` and exchangeable ``alpha`` from the Pearson residuals.

    geepack: ``phi = sum e^2 / N``, ``alpha = sum_i sum_{j<k} e_ij e_ik / (M phi)``;
    SAS PROC GENMOD: ``N - p`` and ``M - p``; ``M = sum_i n_i (n_i - 1) / 2``.
    """
    n = e.shape[0]
    ss = float(e @ e)
    ddf = p if moments == "sas" else 0
    phi = ss / (n - ddf)
    if not exchangeable:
        return phi, 0.0
    pairs = (float(e_sum @ e_sum) - ss) / 2.0
    m_pairs = float(np.sum(cl.sizes * (cl.sizes - 1.0))) / 2.0
    return phi, pairs / ((m_pairs - ddf) * phi)


def residuals(X: np.ndarray, y: np.ndarray, offset: np.ndarray, beta: np.ndarray,
              family: GeeFamily) -> tuple[np.ndarray, np.ndarray]:
    """Pearson residuals ``e = A^-1/2 (y - mu)`` and scaled derivatives ``s = A^-1/2 D``."""
    mu, dmu, var = mean_parts(X @ beta + offset, family)
    root = np.sqrt(var)
    return (y - mu) / root, (dmu / root)[:, None] * X


def fisher_parts(s: np.ndarray, e: np.ndarray, e_sum: np.ndarray, cl: Clusters,
                 alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """``B = sum_i B_i`` and ``U = sum_i U_i`` (both without ``1/phi``); rows sorted."""
    bread = s.T @ s
    score = s.T @ e
    if alpha != 0.0:
        c = exchangeable_c(alpha, cl.sizes)
        t = cl.sums(s)
        bread = (bread - (t * c[:, None]).T @ t) / (1.0 - alpha)
        score = (score - t.T @ (c * e_sum)) / (1.0 - alpha)
    return bread, score


def fit_gee(X: np.ndarray, y: np.ndarray, groups: np.ndarray, n_groups: int,
            offset: np.ndarray, *, family: GeeFamily, exchangeable: bool,
            moments: Moments = "geepack", weights: np.ndarray | None = None) -> GeeFit:
    """Solve the GEE by Fisher scoring, updating ``phi`` and ``alpha`` each iteration.

    Each iteration takes the moment estimates at the current ``beta`` and one Fisher
    step ``beta += B^-1 U`` with them; the fixed point is geepack's (``geese.fit``
    alternates the same three updates). Stops when the largest change of ``beta``,
    ``alpha`` and ``phi``, relative to ``1 + |value|``, is below :data:`TOL`.

    ``weights`` (per row, constant within each cluster, e.g. ``1 / n_i``) multiply
    each cluster's contribution to the estimating equations: the Pearson residuals and
    scaled derivatives are multiplied by ``sqrt(w)``, so ``B = sum_i w_i B_i`` and
    ``U = sum_i w_i U_i`` (used with the independence working correlation).
    """
    cl = Clusters.of(groups)
    X, y, offset = X[cl.order], y[cl.order], offset[cl.order]
    root_w = None if weights is None else np.sqrt(np.asarray(weights, float)[cl.order])
    bound = -1.0 / max(cl.sizes.max() - 1.0, 1.0)
    # a diverging fit (separation) overflows on its way to non-finite values, which the
    # checks below detect and report; numpy's own warnings would only repeat that
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return _iterate(X, y, offset, cl, family, exchangeable, moments, bound, root_w)


def _iterate(X: np.ndarray, y: np.ndarray, offset: np.ndarray, cl: Clusters,
             family: GeeFamily, exchangeable: bool, moments: Moments, bound: float,
             root_w: np.ndarray | None = None) -> GeeFit:
    """The Fisher-scoring iterations of :func:`fit_gee` (rows sorted by cluster)."""
    p = X.shape[1]

    def weighted(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e_, s_ = residuals(X, y, offset, b, family)
        if root_w is None:
            return e_, s_
        return e_ * root_w, s_ * root_w[:, None]

    def moments_at(b: np.ndarray) -> tuple[float, float]:
        e = weighted(b)[0]
        return _moments(e, cl.sums(e), cl, p, exchangeable, moments)

    def valid(phi_: float, alpha_: float) -> bool:
        return bool(np.isfinite(phi_) and phi_ > 0.0 and np.isfinite(alpha_) and (
            not exchangeable or bound < alpha_ < 1.0))

    beta = _start(X, y, offset, family)
    alpha, phi = 0.0, np.nan
    it = 0
    for it in range(1, MAX_ITER + 1):
        e, s = weighted(beta)
        e_sum = cl.sums(e)
        phi_new, alpha_new = _moments(e, e_sum, cl, p, exchangeable, moments)
        if not valid(phi_new, alpha_new):
            return GeeFit(beta, alpha, phi, False, it, invalid_alpha=alpha_new)
        bread, score = fisher_parts(s, e, e_sum, cl, alpha_new)
        try:
            step = np.linalg.solve(bread, score)
        except np.linalg.LinAlgError:
            return GeeFit(beta, alpha_new, phi_new, False, it)
        change = max(
            float(np.max(np.abs(step) / (1.0 + np.abs(beta + step)))),
            abs(alpha_new - alpha) / (1.0 + abs(alpha_new)),
            abs(phi_new - phi) / (1.0 + abs(phi_new)) if np.isfinite(phi) else np.inf,
        )
        alpha, phi = alpha_new, phi_new
        if not np.all(np.isfinite(beta + step)):
            return GeeFit(beta, alpha, phi, False, it)
        beta = beta + step
        if change <= TOL:
            # the reported alpha and phi are those at the final beta (geepack's order)
            phi_end, alpha_end = moments_at(beta)
            if valid(phi_end, alpha_end):
                return GeeFit(beta, alpha_end, phi_end, True, it)
            return GeeFit(beta, alpha, phi, False, it, invalid_alpha=alpha_end)
    return GeeFit(beta, alpha, phi, False, it)
