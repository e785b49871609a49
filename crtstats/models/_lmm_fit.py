"""Fitting the random-intercept linear mixed model from per-cluster sufficient statistics.

The model is ``y_ij = x_ij' beta + b_i + e_ij`` with ``b_i ~ N(0, tau)`` and
``e_ij ~ N(0, sigma2)``. The covariance of cluster ``i`` is
``V_i = sigma2 * (I + t J)`` with ``t = tau / sigma2`` and ``J`` the all-ones matrix, so
``V_i^{-1} = (I - w_i J) / sigma2`` with ``w_i = t / (1 + n_i t)``. Every quantity the
likelihood needs is then a weighted sum over clusters of the cluster sizes ``n_i``, the
column sums ``s_i = X_i' 1`` and the response sums ``S_i = 1' y_i``, plus the
within-cluster cross-products ``W_xx = sum_i (X_i - 1 xbar_i')'(X_i - 1 xbar_i')`` (and
``W_xy``, ``W_yy``). With ``v_i = 1 / (n_i (1 + n_i t))``,

``X' M^{-1} X = W_xx + sum_i v_i s_i s_i'``,

a sum of positive semi-definite terms: no difference of large numbers is formed, so the
sums stay accurate when the cluster means are far apart relative to the within-cluster
spread (the caller centres and scales ``y`` and ``X`` first, see
:mod:`crtstats.models._lmm_basis`). One evaluation of the profiled criterion costs
``O(G p^2)`` for ``G`` clusters and ``p`` coefficients, whatever the number of rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

__all__ = ["ClusterStats", "LmmFit", "cluster_stats", "fit_profiled", "within_rss"]

_LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class ClusterStats:
    """Per-cluster sufficient statistics of a random-intercept LMM.

    Attributes
    ----------
    n
        Rows per cluster, float, length G.
    sx
        Column sums of ``X`` per cluster, G x p.
    sy
        Sums of ``y`` per cluster, length G.
    xtx, xty, yty
        The totals ``X'X``, ``X'y`` and ``y'y``.
    wxx, wxy, wyy
        The within-cluster cross-products of ``X`` and ``y`` about their cluster means
        (``X'X = W_xx + sum_i s_i s_i' / n_i``, and so on).
    """

    n: np.ndarray
    sx: np.ndarray
    sy: np.ndarray
    xtx: np.ndarray
    xty: np.ndarray
    yty: float
    wxx: np.ndarray
    wxy: np.ndarray
    wyy: float

    @property
    def nobs(self) -> int:
        """Rows in the fit."""
        return int(round(float(self.n.sum())))

    @property
    def n_params(self) -> int:
        """Fixed-effect coefficients."""
        return int(self.xtx.shape[0])


def cluster_stats(y: np.ndarray, X: np.ndarray, groups: np.ndarray, n_groups: int) -> ClusterStats:
    """Reduce the rows to per-cluster sums (one pass over the data)."""
    n = np.bincount(groups, minlength=n_groups).astype(float)
    sx = np.empty((n_groups, X.shape[1]))
    for j in range(X.shape[1]):
        sx[:, j] = np.bincount(groups, weights=X[:, j], minlength=n_groups)
    sy = np.bincount(groups, weights=y, minlength=n_groups)
    # deviations from the cluster means, so that the within-cluster part is summed
    # directly rather than as a difference of two large totals
    dx = X - (sx / n[:, None])[groups]
    dy = y - (sy / n)[groups]
    # einsum rather than BLAS: multithreaded BLAS dot products of long vectors stall on
    # busy machines, and these are single passes over the rows anyway
    wxx = np.einsum("ij,ik->jk", dx, dx)
    wxy = np.einsum("ij,i->j", dx, dy)
    wyy = float(np.einsum("i,i->", dy, dy))
    between = sx / n[:, None]
    return ClusterStats(
        n=n, sx=sx, sy=sy, xtx=wxx + sx.T @ between, xty=wxy + between.T @ sy,
        yty=wyy + float(sy @ (sy / n)), wxx=wxx, wxy=wxy, wyy=wyy,
    )


def _between_weights(n: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    """``v_i = 1 / (n_i (1 + n_i t))``: ``X' M^{-1} X = W_xx + sum_i v_i s_i s_i'``."""
    return np.asarray(1.0 / (n * (1.0 + n * t)))


def within_rss(stats: ClusterStats, beta: np.ndarray) -> float:
    """Within-cluster residual sum of squares at ``beta``: ``sum_ij (r_ij - rbar_i)^2``."""
    return float(stats.wyy - 2.0 * float(beta @ stats.wxy) + float(beta @ stats.wxx @ beta))


@dataclass(frozen=True)
class _Profile:
    """The fixed effects and residual variance profiled out at a variance ratio ``t``."""

    t: float
    beta: np.ndarray
    a_mat: np.ndarray  # A = X' M^{-1} X, M = I + t J
    rss: float  # r' M^{-1} r at beta
    deviance: float  # -2 log-likelihood (REML or ML), profiled


def _criterion(
    stats: ClusterStats, logdet_m: np.ndarray, logdet_a: np.ndarray, rss: np.ndarray,
    reml: bool,
) -> np.ndarray:
    n, p = stats.nobs, stats.n_params
    if reml:
        out = logdet_m + logdet_a + (n - p) * (1.0 + _LOG_2PI + np.log(rss / (n - p)))
    else:
        out = logdet_m + n * (1.0 + _LOG_2PI + np.log(rss / n))
    return np.asarray(out)


def _profile(stats: ClusterStats, t: float, reml: bool) -> _Profile:
    v = _between_weights(stats.n, t)
    a_mat = stats.wxx + stats.sx.T @ (v[:, None] * stats.sx)
    b_vec = stats.wxy + stats.sx.T @ (v * stats.sy)
    c_val = stats.wyy + float(v @ stats.sy**2)
    chol = np.linalg.cholesky(a_mat)
    beta = np.linalg.solve(a_mat, b_vec)
    rss = max(c_val - float(b_vec @ beta), np.finfo(float).tiny)
    logdet_m = float(np.log1p(stats.n * t).sum())
    logdet_a = 2.0 * float(np.log(np.diag(chol)).sum())
    dev = float(_criterion(stats, np.array(logdet_m), np.array(logdet_a), np.array(rss), reml))
    return _Profile(t=t, beta=beta, a_mat=a_mat, rss=rss, deviance=dev)


def _profile_grid(stats: ClusterStats, ts: np.ndarray, reml: bool) -> np.ndarray:
    """The profiled deviance at many ratios at once (batched p x p algebra)."""
    v = _between_weights(stats.n[None, :], ts[:, None])  # K x G
    outer = stats.sx[:, :, None] * stats.sx[:, None, :]  # G x p x p
    a_mats = stats.wxx[None] + np.tensordot(v, outer, axes=(1, 0))
    b_vecs = stats.wxy[None] + (v * stats.sy[None, :]) @ stats.sx
    c_vals = stats.wyy + v @ stats.sy**2
    chol = np.linalg.cholesky(a_mats)
    beta = np.linalg.solve(a_mats, b_vecs[:, :, None])[:, :, 0]
    rss = np.maximum(c_vals - np.einsum("kp,kp->k", b_vecs, beta), np.finfo(float).tiny)
    logdet_m = np.log1p(ts[:, None] * stats.n[None, :]).sum(axis=1)
    logdet_a = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    return _criterion(stats, logdet_m, logdet_a, rss, reml)


def _score(stats: ClusterStats, t: float, reml: bool) -> float:
    """Derivative of the profiled deviance in ``t``, up to a positive factor.

    ``d dev / dt = tr(P_M J) - r' M^{-1} J M^{-1} r / sigma2_hat`` where ``P_M`` is
    ``M^{-1} - M^{-1} X A^{-1} X' M^{-1}`` for REML and ``M^{-1}`` for ML.
    """
    v = _between_weights(stats.n, t)
    weighted = v[:, None] * stats.sx
    a_inv = np.linalg.inv(stats.wxx + stats.sx.T @ weighted)
    beta = a_inv @ (stats.wxy + weighted.T @ stats.sy)
    h = 1.0 + stats.n * t
    resid_sums = stats.sy - stats.sx @ beta
    # r' M^{-1} r = (within-cluster residual SS) + sum_i v_i R_i^2
    rss = max(within_rss(stats, beta) + float(v @ resid_sums**2), np.finfo(float).tiny)
    n, p = stats.nobs, stats.n_params
    sigma2 = rss / (n - p if reml else n)
    trace = float((stats.n / h).sum())
    if reml:
        c_scaled = stats.sx / h[:, None]
        trace -= float(np.sum(a_inv * (c_scaled.T @ c_scaled)))
    return trace - float(((resid_sums / h) ** 2).sum()) / sigma2


def _ratio_grid() -> np.ndarray:
    """Variance ratios ``t = icc / (1 - icc)`` on a grid of intra-cluster correlations."""
    # t = icc / (1 - icc) = exp(logit(icc)), logit from -14 to 25 (ICC up to 1 - 1e-11)
    return np.concatenate([[0.0], np.exp(np.linspace(-14.0, 25.0, 79))])


@dataclass(frozen=True)
class LmmFit:
    """The maximiser of the profiled (restricted) likelihood.

    Attributes
    ----------
    beta
        Fixed effects (GLS at the estimated variances).
    tau, sigma2
        Cluster and residual variances.
    deviance
        ``-2`` times the maximised (restricted) log-likelihood.
    a_inv
        ``(X' M^{-1} X)^{-1}``; the model-based covariance of ``beta`` is
        ``sigma2 * a_inv``.
    boundary
        True when the cluster variance is estimated as exactly zero.
    converged
        Whether the root finder met its tolerance.
    """

    beta: np.ndarray
    tau: float
    sigma2: float
    deviance: float
    a_inv: np.ndarray
    boundary: bool
    converged: bool


def _bracket(stats: ClusterStats, reml: bool) -> tuple[float, float] | None:
    """A bracket of the best local minimum on the grid, or None when it is at t = 0."""
    grid = _ratio_grid()
    devs = _profile_grid(stats, grid, reml)
    k = int(np.argmin(devs))
    if k == 0 and _score(stats, 0.0, reml) >= 0.0:
        return None
    low = grid[max(k - 1, 0)]
    high = grid[min(k + 1, grid.size - 1)]
    return float(low), float(high)


def fit_profiled(stats: ClusterStats, *, reml: bool) -> LmmFit:
    """Maximise the profiled (restricted) likelihood over the variance ratio.

    A grid over the intra-cluster correlation locates the best local minimum of the
    profiled deviance; the root of its derivative is then found to machine precision by
    Brent's method. A minimum at ``t = 0`` with a non-negative derivative there is a
    boundary fit.
    """
    bracket = _bracket(stats, reml)
    converged = True
    if bracket is None:
        t_hat = 0.0
    else:
        low, high = bracket
        s_low, s_high = _score(stats, low, reml), _score(stats, high, reml)
        if s_low < 0.0 < s_high:
            t_hat, info = optimize.brentq(
                lambda t: _score(stats, t, reml), low, high, xtol=1e-300, rtol=1e-13,
                maxiter=200, full_output=True,
            )
            converged = bool(info.converged)
        else:  # no sign change: fall back on a bounded search of the deviance itself
            res = optimize.minimize_scalar(
                lambda t: _profile(stats, t, reml).deviance, bounds=(low, high),
                method="bounded", options={"xatol": 1e-12 * max(high, 1.0)},
            )
            # a criterion still falling at the top of the grid (ICC -> 1) has no optimum
            t_hat, converged = float(res.x), bool(res.success) and s_high > 0.0
    prof = _profile(stats, float(t_hat), reml)
    n, p = stats.nobs, stats.n_params
    sigma2 = prof.rss / (n - p if reml else n)
    a_inv = np.linalg.inv(prof.a_mat)
    return LmmFit(
        beta=prof.beta,
        tau=float(t_hat) * sigma2,
        sigma2=sigma2,
        deviance=prof.deviance,
        a_inv=(a_inv + a_inv.T) / 2.0,
        boundary=bracket is None,
        converged=converged,
    )
