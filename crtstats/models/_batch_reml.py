"""Profiled REML of the random-intercept LMM for many outcome vectors at once.

For one simulated trial ``s`` with working outcome ``y`` and working model matrix ``X``
(centred and scaled, :mod:`crtstats.models._lmm_basis`), write ``x~ = (x, y)`` for the
bordered row. Every quantity the profiled REML criterion of
:mod:`crtstats.models._lmm_fit` needs is then a function of

* ``W~``: the within-cluster cross-products of ``x~`` (``(p+1) x (p+1)``), and
* ``B~_m = sum_{i: n_i = m} s~_i s~_i'`` for each distinct cluster size ``m``, with
  ``s~_i = X~_i' 1`` the cluster sums (``S_i = 1'y_i`` in the last place),

because ``X' M^{-1} X``, ``X' M^{-1} y`` and ``y' M^{-1} y`` are the blocks of
``W~ + sum_m v_m(t) B~_m`` with ``v_m(t) = 1 / (m (1 + m t))``, and the sums over
clusters of ``R_i^2 = (S_i - s_i' beta)^2`` of each size are ``r' B~_m r`` with
``r = (-beta, 1)``. The cost of an evaluation is ``O(M p^2)`` per trial for ``M``
distinct cluster sizes, whatever the number of rows or clusters, and every step below
is vectorised over the trials. Without missing rows the ``X`` blocks are the same for
every trial (``shared``), which the grid search exploits; with one cluster size as
well, the search runs on the diagonalised pencil of :class:`Balanced` in ``O(p)``.

The search is that of :func:`crtstats.models._lmm_fit.fit_profiled`, trial by trial:
the profiled deviance on the same grid of variance ratios locates the best local
minimum; a minimum at ``t = 0`` with a non-negative derivative there is a boundary fit
(the cluster variance is zero); otherwise the root of the derivative in the bracket
around the grid minimum is found by a safeguarded regula falsi (the Illinois variant),
vectorised, to the relative tolerance of the scalar fit's Brent search. Trials for
which the bracket shows no sign change are left to the scalar fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from crtstats.models._lmm_fit import _ratio_grid

__all__ = ["Balanced", "GroupedStats", "RemlBatch", "Search", "batched_cholesky",
           "fit_batch", "grouped_stats"]

_LOG_2PI = float(np.log(2.0 * np.pi))
_TINY = float(np.finfo(float).tiny)
_RTOL = 1e-13  # as the scalar fit's Brent search (brentq rtol)
_MAX_ITER = 200


@dataclass(frozen=True)
class GroupedStats:
    """Per-trial sufficient statistics, grouped by cluster size.

    Attributes
    ----------
    within
        ``(S, q, q)``: the within-cluster cross-products of ``(X, y)``, ``q = p + 1``.
    between
        ``(S, M, q, q)``: ``B~_m`` for each distinct cluster size.
    sizes
        ``(M,)``: the distinct (non-zero) cluster sizes.
    counts
        ``(S, M)``: the number of clusters of each size in each trial.
    nobs
        ``(S,)``: rows used in each trial.
    shared
        True when the ``X`` blocks are the same in every trial (no missing rows).
    """

    within: np.ndarray
    between: np.ndarray
    sizes: np.ndarray
    counts: np.ndarray
    nobs: np.ndarray
    shared: bool

    @property
    def p(self) -> int:
        """Fixed-effect coefficients."""
        return int(self.within.shape[1] - 1)

    def full(self, t: np.ndarray) -> np.ndarray:
        """``W~ + sum_m v_m(t) B~_m`` per trial (``t`` of shape ``(S,)``)."""
        v = 1.0 / (self.sizes[None, :] * (1.0 + self.sizes[None, :] * t[:, None]))
        out: np.ndarray = self.within + np.einsum("sm,smij->sij", v, self.between)
        return out

    def select(self, rows: np.ndarray) -> GroupedStats:
        """The statistics of a subset of trials."""
        return GroupedStats(self.within[rows], self.between[rows], self.sizes,
                            self.counts[rows], self.nobs[rows], self.shared)


def _bordered(xx: np.ndarray, xy: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """``[[xx, xy], [xy', yy]]`` per trial: ``xx (S|.., p, p)``, ``xy (.., p)``."""
    p = xx.shape[-1]
    lead = xy.shape[:-1]
    out = np.empty((*lead, p + 1, p + 1))
    out[..., :p, :p] = np.broadcast_to(xx, (*lead, p, p))
    out[..., :p, p] = xy
    out[..., p, :p] = xy
    out[..., p, p] = yy
    return out


def grouped_stats(
    X: np.ndarray, Y: np.ndarray, groups: np.ndarray, n_groups: int,
    mask: np.ndarray | None,
) -> GroupedStats:
    """Reduce ``S`` outcome columns to their grouped sufficient statistics.

    ``X`` is ``(n, p)``, ``Y`` is ``(n, S)`` (values at masked rows are ignored) and
    ``mask`` is ``(n, S)`` (True: row used) or None. Within-cluster parts are summed
    from deviations about the cluster means, as :func:`~crtstats.models._lmm_fit.
    cluster_stats` does for the outcome; with a mask, ``W_xx`` is ``X'X`` minus its
    between-cluster part (``X`` is centred and scaled, so nothing large is differenced).
    """
    n, p = X.shape
    ind = np.zeros((n_groups, n))
    ind[groups, np.arange(n)] = 1.0
    if mask is None:
        n_g = ind.sum(axis=1)
        sizes = np.unique(n_g)
        sx = ind @ X
        sy = ind @ Y
        dx = X - (sx / n_g[:, None])[groups]
        dy = Y - (sy / n_g[:, None])[groups]
        wxx = dx.T @ dx
        within = _bordered(wxx, (dx.T @ dy).T, np.einsum("rs,rs->s", dy, dy))
        between = np.empty((Y.shape[1], sizes.size, p + 1, p + 1))
        for k, m in enumerate(sizes):
            sel = n_g == m
            between[:, k] = _bordered(sx[sel].T @ sx[sel], (sx[sel].T @ sy[sel]).T,
                                      np.einsum("gs,gs->s", sy[sel], sy[sel]))
        counts = np.broadcast_to(np.array([np.sum(n_g == m) for m in sizes], float),
                                 (Y.shape[1], sizes.size)).copy()
        nobs = np.full(Y.shape[1], float(n))
        return GroupedStats(within, between, sizes, counts, nobs, True)
    return _masked_stats(X, Y, groups, ind, mask)


def _masked_stats(X: np.ndarray, Y: np.ndarray, groups: np.ndarray, ind: np.ndarray,
                  mask: np.ndarray) -> GroupedStats:
    """:func:`grouped_stats` with a mask: the complete design's ``X`` sums less those of
    the removed rows (few per trial), so no product over all rows and trials is formed
    for the ``X`` parts."""
    n, p = X.shape
    n_groups, n_sims = ind.shape[0], Y.shape[1]
    mf = mask.astype(float)
    yw = np.where(mask, Y, 0.0)
    rows, trials = np.nonzero(~mask)
    lost = np.zeros((n_groups, n_sims))
    np.add.at(lost, (groups[rows], trials), 1.0)
    n_g = ind.sum(axis=1)[:, None] - lost  # (G, S)
    safe = np.where(n_g > 0, n_g, 1.0)
    sx = np.broadcast_to(ind @ X, (n_sims, n_groups, p)).copy()
    np.subtract.at(sx, (trials, groups[rows]), X[rows])
    sy = np.zeros((n_groups, n_sims))
    np.add.at(sy, groups, yw)
    dy = (yw - (sy / safe)[groups]) * mf  # sums to zero within each cluster
    xtx = np.broadcast_to(X.T @ X, (n_sims, p, p)).copy()
    np.subtract.at(xtx, trials, X[rows, :, None] * X[rows, None, :])
    between_x = np.matmul((sx / safe.T[:, :, None]).transpose(0, 2, 1), sx)
    wxx = xtx - between_x
    within = _bordered(0.5 * (wxx + wxx.transpose(0, 2, 1)), np.einsum("rp,rs->sp", X, dy),
                       np.einsum("rs,rs->s", dy, dy))
    sizes = np.unique(n_g[n_g > 0])
    st = np.concatenate([sx, sy.T[:, :, None]], axis=2)  # (S, G, q)
    between = np.empty((n_sims, sizes.size, p + 1, p + 1))
    counts = np.empty((n_sims, sizes.size))
    for k, m in enumerate(sizes):
        w = (n_g == m).T.astype(float)  # (S, G)
        between[:, k] = np.matmul((st * w[:, :, None]).transpose(0, 2, 1), st)
        counts[:, k] = w.sum(axis=1)
    return GroupedStats(within, between, sizes, counts, mf.sum(axis=0), False)


def batched_cholesky(a: np.ndarray) -> np.ndarray:
    """The Cholesky pivots ``d_j`` (squared diagonal) of each ``(q, q)`` matrix in ``a``.

    ``a`` is ``(S, q, q)``; returns ``(S, q)``. Non-positive pivots propagate as NaN in
    the later ones (no exception), so one bad trial does not stop the others. The last
    pivot of a bordered matrix ``[[A, b], [b', c]]`` is ``c - b' A^{-1} b``.
    """
    try:  # LAPACK on the whole stack when every matrix is positive definite
        low_all = np.linalg.cholesky(a)
    except np.linalg.LinAlgError:
        pass  # some trial's matrix is not: the column loop below gives it NaN pivots
    else:
        diag: np.ndarray = np.diagonal(low_all, axis1=1, axis2=2) ** 2
        return diag
    m = np.ascontiguousarray(a.transpose(1, 2, 0))  # batch last: fast column loops
    q = m.shape[0]
    low = np.zeros_like(m)
    piv = np.empty((q, m.shape[2]))
    with np.errstate(invalid="ignore", divide="ignore"):
        for j in range(q):
            d = m[j, j] - np.einsum("kb,kb->b", low[j, :j], low[j, :j])
            piv[j] = d
            low[j, j] = np.sqrt(np.where(d > 0.0, d, np.nan))
            if j + 1 < q:
                low[j + 1:, j] = (m[j + 1:, j] - np.einsum("ikb,kb->ib", low[j + 1:, :j],
                                                           low[j, :j])) / low[j, j]
    out: np.ndarray = piv.T
    return out


def _criterion(stats: GroupedStats, t: np.ndarray, logdet_a: np.ndarray,
               rss: np.ndarray) -> np.ndarray:
    """The profiled REML deviance of :func:`crtstats.models._lmm_fit._criterion`."""
    dof = stats.nobs - stats.p
    logdet_m = np.sum(stats.counts * np.log1p(stats.sizes[None, :] * t[:, None]), axis=1)
    out: np.ndarray = logdet_m + logdet_a + dof * (1.0 + _LOG_2PI + np.log(rss / dof))
    return out


def _grid_deviance(stats: GroupedStats, grid: np.ndarray) -> np.ndarray:
    """The profiled deviance of every trial at every grid ratio, ``(S, K)``."""
    p, n_sims = stats.p, stats.nobs.shape[0]
    out = np.empty((n_sims, grid.size))
    if stats.shared:
        v = 1.0 / (stats.sizes[None, :] * (1.0 + stats.sizes[None, :] * grid[:, None]))
        a_k = stats.within[0, :p, :p] + np.einsum("km,mij->kij", v, stats.between[0, :, :p, :p])
        logdet_a = np.linalg.slogdet(a_k)[1]
        a_inv = np.linalg.inv(a_k)
        b = stats.within[:, :p, p][None] + np.einsum("km,smi->ksi", v, stats.between[:, :, :p, p])
        c = stats.within[:, p, p][None] + np.einsum("km,sm->ks", v, stats.between[:, :, p, p])
        quad = np.einsum("ksi,kij,ksj->ks", b, a_inv, b)
        rss = np.maximum(c - quad, _TINY)
        for k in range(grid.size):
            out[:, k] = _criterion(stats, np.full(n_sims, grid[k]),
                                   np.full(n_sims, logdet_a[k]), rss[k])
        return out
    for k in range(grid.size):
        t = np.full(n_sims, grid[k])
        piv = batched_cholesky(stats.full(t))
        logdet_a = np.sum(np.log(piv[:, :p]), axis=1)
        out[:, k] = _criterion(stats, t, logdet_a, np.maximum(piv[:, p], _TINY))
    return out


@dataclass(frozen=True)
class _Profile:
    beta: np.ndarray  # (S, p)
    a_inv: np.ndarray  # (S, p, p)
    rss: np.ndarray  # (S,)


def _profile(stats: GroupedStats, t: np.ndarray) -> _Profile:
    """Fixed effects, ``A^{-1}`` and ``r' M^{-1} r`` at ratio ``t`` (per trial)."""
    p = stats.p
    full = stats.full(t)
    a_inv = np.linalg.inv(full[:, :p, :p])
    beta = np.einsum("sij,sj->si", a_inv, full[:, :p, p])
    rss = np.maximum(full[:, p, p] - np.einsum("si,si->s", full[:, :p, p], beta), _TINY)
    return _Profile(beta, a_inv, rss)


def resid_quads(between: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """``sum_{i: n_i = m} R_i^2`` per trial and size, ``R_i = S_i - s_i' beta``."""
    r = np.concatenate([-beta, np.ones((beta.shape[0], 1))], axis=1)
    out: np.ndarray = np.einsum("si,smij,sj->sm", r, between, r)
    return out


def score(stats: GroupedStats, t: np.ndarray) -> np.ndarray:
    """Derivative of the profiled REML deviance in ``t`` up to a positive factor, as
    :func:`crtstats.models._lmm_fit._score`: ``tr(P_M J) - r'M^{-1}JM^{-1}r / s2``."""
    p = stats.p
    prof = _profile(stats, t)
    h = 1.0 + stats.sizes[None, :] * t[:, None]
    quads = resid_quads(stats.between, prof.beta)
    r = np.concatenate([-prof.beta, np.ones((t.shape[0], 1))], axis=1)
    v = 1.0 / (stats.sizes[None, :] * h)
    rss = np.maximum(np.einsum("si,sij,sj->s", r, stats.within, r)
                     + np.sum(v * quads, axis=1), _TINY)
    sigma2 = rss / (stats.nobs - p)
    trace = np.sum(stats.counts * stats.sizes[None, :] / h, axis=1)
    p1 = np.einsum("sm,smij->sij", 1.0 / h**2, stats.between[:, :, :p, :p])
    trace -= np.einsum("sij,sji->s", prof.a_inv, p1)
    out: np.ndarray = trace - np.sum(quads / h**2, axis=1) / sigma2
    return out


@dataclass(frozen=True)
class Balanced:
    """One cluster size and no missing rows: the pencil ``(X'X, B)`` diagonalised.

    With ``T' X'X T = I`` and ``T' B T = diag(lambda)`` (``B = sum_i s_i s_i'``, all
    clusters of size ``m``), ``T' A(t) T = diag(D)`` with
    ``D = 1 + lambda (v(t) - 1/m)``, so the profiled deviance and its derivative cost
    ``O(p)`` per trial and ratio: ``beta~ = (T'b) / D``, ``r'M^{-1}r = c - sum
    (T'b)^2 / D``, ``log|A| = log|X'X| + sum log D`` and ``tr(A^{-1} B) = sum lambda /
    D``. Used for the search only; the final fit is :func:`_profile`'s.
    """

    size: float
    n_clusters: float
    lam: np.ndarray  # (p,)
    logdet_xtx: float
    omega: np.ndarray  # (S, p): T' W_xy
    psi: np.ndarray  # (S, p): T' B_xy
    wyy: np.ndarray
    byy: np.ndarray
    nobs: np.ndarray

    @classmethod
    def of(cls, stats: GroupedStats) -> Balanced:
        """The diagonalised statistics (``stats.shared`` with one cluster size)."""
        p, m = stats.p, float(stats.sizes[0])
        b = stats.between[0, 0, :p, :p]
        low = np.linalg.cholesky(stats.within[0, :p, :p] + b / m)
        inv_low = np.linalg.inv(low)
        lam, vecs = np.linalg.eigh(inv_low @ b @ inv_low.T)
        t_mat = inv_low.T @ vecs
        return cls(m, float(stats.counts[0, 0]), lam,
                   2.0 * float(np.sum(np.log(np.diag(low)))),
                   stats.within[:, :p, p] @ t_mat, stats.between[:, 0, :p, p] @ t_mat,
                   stats.within[:, p, p], stats.between[:, 0, p, p], stats.nobs)

    def select(self, rows: np.ndarray) -> Balanced:
        """The statistics of a subset of trials."""
        return Balanced(self.size, self.n_clusters, self.lam, self.logdet_xtx,
                        self.omega[rows], self.psi[rows], self.wyy[rows], self.byy[rows],
                        self.nobs[rows])

    def _solve(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        v = 1.0 / (self.size * (1.0 + self.size * t))
        d = 1.0 + self.lam[None, :] * (v - 1.0 / self.size)[:, None]
        bt = self.omega + v[:, None] * self.psi
        rss = np.maximum(self.wyy + v * self.byy - np.sum(bt**2 / d, axis=1), _TINY)
        return d, bt / d, rss, v

    def deviance(self, t: np.ndarray) -> np.ndarray:
        """The profiled REML deviance at ``t`` (per trial)."""
        d, _, rss, _ = self._solve(t)
        dof = self.nobs - self.lam.size
        out: np.ndarray = (self.n_clusters * np.log1p(self.size * t) + self.logdet_xtx
                           + np.sum(np.log(d), axis=1)
                           + dof * (1.0 + _LOG_2PI + np.log(rss / dof)))
        return out

    def deviance_grid(self, grid: np.ndarray) -> np.ndarray:
        """The deviance of every trial at every ratio of ``grid``, ``(S, K)``."""
        n_sims = self.nobs.shape[0]
        return np.column_stack([self.deviance(np.full(n_sims, t)) for t in grid])

    def score(self, t: np.ndarray) -> np.ndarray:
        """:func:`score` in ``O(p)`` per trial."""
        d, beta_t, rss, _ = self._solve(t)
        h = 1.0 + self.size * t
        quad = self.byy - 2.0 * np.sum(beta_t * self.psi, axis=1) + np.sum(
            self.lam * beta_t**2, axis=1)
        sigma2 = rss / (self.nobs - self.lam.size)
        trace = self.n_clusters * self.size / h - np.sum(self.lam / d, axis=1) / h**2
        out: np.ndarray = trace - quad / h**2 / sigma2
        return out


class Search(Protocol):
    """Statistics with a faster profiled deviance and score for the search
    (:class:`Balanced`, :class:`crtstats.models._batch_lowrank.LowRank`)."""

    def select(self, rows: np.ndarray) -> Search:
        """The statistics of a subset of trials."""

    def deviance(self, t: np.ndarray) -> np.ndarray:
        """The profiled REML deviance at ``t`` (per trial)."""

    def deviance_grid(self, grid: np.ndarray) -> np.ndarray:
        """The deviance of every trial at every ratio of ``grid``, ``(S, K)``."""

    def score(self, t: np.ndarray) -> np.ndarray:
        """The derivative of the deviance in ``t`` up to a positive factor."""


def _score_of(stats: GroupedStats | Search, t: np.ndarray) -> np.ndarray:
    return score(stats, t) if isinstance(stats, GroupedStats) else stats.score(t)


@dataclass(frozen=True)
class RemlBatch:
    """The REML fits of a batch of trials (working units).

    ``scalar`` marks the trials the vectorised search left to the scalar fit (no sign
    change of the derivative around the grid minimum, or no convergence).
    """

    t: np.ndarray
    beta: np.ndarray
    a_inv: np.ndarray
    sigma2: np.ndarray
    boundary: np.ndarray
    scalar: np.ndarray


def _illinois(stats: GroupedStats | Search, low: np.ndarray, high: np.ndarray,
              s_low: np.ndarray, s_high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Roots of the score in ``[low, high]`` (``s_low < 0 < s_high``), vectorised."""
    lo, hi, f_lo, f_hi = low.copy(), high.copy(), s_low.copy(), s_high.copy()
    side = np.zeros(lo.shape, dtype=np.int8)
    root = 0.5 * (lo + hi)
    active = np.ones(lo.shape, dtype=bool)
    for _ in range(_MAX_ITER):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        a, b, fa, fb = lo[idx], hi[idx], f_lo[idx], f_hi[idx]
        x = b - fb * (b - a) / (fb - fa)
        bad = ~((x > a) & (x < b))
        x = np.where(bad, 0.5 * (a + b), x)
        fx = _score_of(stats.select(idx), x)
        root[idx] = x
        pos = fx > 0.0
        # Illinois: halve the value kept at the end that was not replaced twice running
        keep_lo = pos & (side[idx] == 1)
        keep_hi = ~pos & (side[idx] == -1)
        f_lo[idx] = np.where(keep_lo, 0.5 * fa, np.where(~pos, fx, fa))
        f_hi[idx] = np.where(keep_hi, 0.5 * fb, np.where(pos, fx, fb))
        hi[idx] = np.where(pos, x, b)
        lo[idx] = np.where(pos, a, x)
        side[idx] = np.where(pos, 1, -1)
        done = (fx == 0.0) | (hi[idx] - lo[idx] <= _RTOL * np.abs(x) + 1e-300)
        active[idx[done]] = False
    return root, active


def fit_batch(stats: GroupedStats, search: Search | None = None) -> RemlBatch:
    """REML for every trial of ``stats``: grid, boundary test, vectorised root search.

    ``search``, when given, holds the same trials' statistics in a form with a faster
    deviance and score (the low-rank form of masked trials); otherwise the balanced
    pencil is used when the trials share one cluster size and no row is missing.
    """
    grid = _ratio_grid()
    n_sims = stats.nobs.shape[0]
    if search is None and stats.shared and stats.sizes.size == 1:
        search = Balanced.of(stats)
    if search is not None:
        devs = search.deviance_grid(grid)
    else:
        devs = _grid_deviance(stats, grid)
    chosen: GroupedStats | Search = stats if search is None else search
    k = np.argmin(devs, axis=1)
    s0 = _score_of(chosen, np.zeros(n_sims))
    boundary = (k == 0) & (s0 >= 0.0)
    t_hat = np.zeros(n_sims)
    scalar = np.zeros(n_sims, dtype=bool)
    inner = np.flatnonzero(~boundary)
    if inner.size:
        sub = chosen.select(inner)
        low = grid[np.maximum(k[inner] - 1, 0)]
        high = grid[np.minimum(k[inner] + 1, grid.size - 1)]
        s_low = np.where(low == 0.0, s0[inner], _score_of(sub, low))
        s_high = _score_of(sub, high)
        ok = (s_low < 0.0) & (s_high > 0.0)
        scalar[inner[~ok]] = True
        good = np.flatnonzero(ok)
        if good.size:
            root, unfinished = _illinois(sub.select(good), low[good], high[good],
                                         s_low[good], s_high[good])
            t_hat[inner[good]] = root
            scalar[inner[good[unfinished]]] = True
    prof = _profile(stats, t_hat)
    a_inv = 0.5 * (prof.a_inv + prof.a_inv.transpose(0, 2, 1))
    return RemlBatch(t=t_hat, beta=prof.beta, a_inv=a_inv,
                     sigma2=prof.rss / (stats.nobs - stats.p), boundary=boundary,
                     scalar=scalar)
