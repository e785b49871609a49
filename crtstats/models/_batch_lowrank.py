"""The REML search of masked trials as a low-rank change of the complete design.

When every cluster of the complete design has ``m0`` rows, its ``X`` blocks give the
pencil of :class:`~crtstats.models._batch_reml.Balanced`: with ``T' X'X T = I`` and
``T' B T = diag(lambda)`` (``B = sum_i s_i s_i'``), the complete design's
``A0(t) = X' M^{-1} X = X'X - w_0(t) B`` is ``T^{-T} diag(D) T^{-1}`` with
``w_m(t) = t / (1 + m t)`` and ``D = (1 + (m0 - lambda) t) / (1 + m0 t)``.

A trial with missing rows differs from it in the clusters that lost rows only. For such
a cluster with removed rows ``r_1 .. r_k`` and observed sum ``s_o`` (``n_o = m0 - k``
rows left), its part of ``A(t)`` changes by

``- sum_j r_j r_j' - w_{n_o}(t) s_o s_o' + w_0(t) s s'``,  with ``s = s_o + sum_j r_j``,

so that ``A(t) = A0(t) + U C(t) U'`` where the columns of ``U`` are the removed rows and
the observed sums of the affected clusters (``R`` columns, a few per trial) and
``C(t) = w_0(t) E0 - diag(d(t))`` with ``E0`` the block of ones over each cluster's
columns and ``d_j = 1`` for a removed row, ``w_{n_o}(t)`` for an observed sum. Then, with
``U~ = T'U``, ``G = U~' D^{-1} U~`` and ``K = I + C G`` (all ``R x R``),

* ``log |A| = log |X'X| + sum log D + log |K|`` (the determinant lemma),
* ``A^{-1} b = T (b~ - U~ K^{-1} C U~' D^{-1} b~) / D`` (Woodbury), ``b~ = T'b``,
* ``tr(A^{-1} P_1) = sum lambda / (D h_0^2) + tr(E G) - tr(K^{-1} C H)
  - tr(K^{-1} C G E G)`` for ``P_1 = -dA/dt = B / h_0^2 + U E U'``, ``E = -dC/dt``,
  ``H = U~' diag(lambda / (D^2 h_0^2)) U~``, ``h_m = 1 + m t``,

so the profiled REML deviance and its derivative cost ``O(p R^2 + R^3)`` per trial and
ratio instead of the ``O(p^3)`` of a Cholesky factor of every trial's own ``A(t)``. The
outcome parts (``X' M^{-1} y``, ``y' M^{-1} y`` and the cluster residual sums) are the
trial's own, grouped by cluster size as in :class:`~crtstats.models._batch_reml.
GroupedStats`. Used for the search only; the final fit and the inference are computed
from the trial's own grouped statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crtstats.models._batch_reml import GroupedStats

__all__ = ["LowRank", "Pencil", "pencil"]

_LOG_2PI = float(np.log(2.0 * np.pi))
_TINY = float(np.finfo(float).tiny)
_NARROW = 4  # the narrowest part


@dataclass(frozen=True)
class Pencil:
    """The complete design's ``X`` blocks diagonalised (every cluster of ``size`` rows).

    ``xt`` is the working model matrix in the pencil's basis (``X T``), ``sums`` its
    cluster sums, ``gap`` is ``m0 - lambda`` (clipped at 0).
    """

    size: float
    lam: np.ndarray
    gap: np.ndarray
    t_mat: np.ndarray
    logdet_xtx: float
    xt: np.ndarray
    sums: np.ndarray


def pencil(X: np.ndarray, groups: np.ndarray, n_groups: int) -> Pencil | None:
    """The pencil of the complete design, or None when cluster sizes differ."""
    n_g = np.bincount(groups, minlength=n_groups)
    if n_g.min() != n_g.max():
        return None
    m = float(n_g[0])
    sx = np.zeros((n_groups, X.shape[1]))
    np.add.at(sx, groups, X)
    low = np.linalg.cholesky(X.T @ X)
    inv_low = np.linalg.inv(low)
    lam, vecs = np.linalg.eigh(inv_low @ (sx.T @ sx) @ inv_low.T)
    t_mat = inv_low.T @ vecs
    return Pencil(m, lam, np.maximum(m - lam, 0.0), t_mat,
                  2.0 * float(np.sum(np.log(np.diag(low)))), X @ t_mat, sx @ t_mat)


@dataclass(frozen=True)
class _Part:
    """The trials (positions ``idx``) whose change has at most ``width`` columns.

    ``u`` holds the columns of ``U~`` as rows (``(S, R, p)``), ``e0`` the block of ones
    over each cluster's columns, ``is_row`` marks removed rows and ``sum_size`` gives
    the observed rows of a sum column (0 otherwise); unused columns are zero.
    """

    idx: np.ndarray
    u: np.ndarray
    e0: np.ndarray
    is_row: np.ndarray
    sum_size: np.ndarray

    def take(self, keep: np.ndarray, idx: np.ndarray) -> _Part:
        return _Part(idx, self.u[keep], self.e0[keep], self.is_row[keep],
                     self.sum_size[keep])


def _columns(pen: Pencil, groups: np.ndarray, mask: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every column of every trial's ``U~``: trial, slot, cluster, kind (0 removed
    row, 1 observed sum), observed rows, and the column (``(n_cols, p)``)."""
    n_groups = pen.sums.shape[0]
    rows, trials = np.nonzero(~mask)
    clus = groups[rows]
    lost = np.zeros((n_groups, mask.shape[1]))
    np.add.at(lost, (clus, trials), 1.0)
    left = pen.size - lost  # observed rows of each cluster
    # the affected clusters with rows left get one sum column each, after their rows
    a_clus, a_trial = np.nonzero((lost > 0) & (left > 0))
    pair = np.full((n_groups, mask.shape[1]), -1)
    pair[a_clus, a_trial] = np.arange(a_clus.size)
    observed = pen.sums[a_clus].copy()
    inside = pair[clus, trials] >= 0
    np.subtract.at(observed, pair[clus, trials][inside], pen.xt[rows[inside]])
    kind = np.concatenate([np.zeros(rows.size), np.ones(a_clus.size)])
    trial = np.concatenate([trials, a_trial])
    cluster = np.concatenate([clus, a_clus])
    vectors = np.concatenate([pen.xt[rows], observed])
    size = np.concatenate([np.zeros(rows.size), left[a_clus, a_trial]])
    order = np.lexsort((kind, cluster, trial))
    per = np.bincount(trial, minlength=mask.shape[1])
    start = np.concatenate([[0], np.cumsum(per)[:-1]])
    trial = trial[order]
    slot = np.arange(trial.size) - start[trial]
    return trial, slot, cluster[order], kind[order], size[order], vectors[order]


def _parts(pen: Pencil, groups: np.ndarray, mask: np.ndarray) -> tuple[_Part, ...]:
    """The trials of ``mask`` grouped by the width of their change (powers of two)."""
    trial, slot, cluster, kind, size, vectors = _columns(pen, groups, mask)
    rank = np.bincount(trial, minlength=mask.shape[1])
    # few parts (each costs a few array operations per evaluation), little padding:
    # widths 4, 8, 16...
    width = np.where(rank > 0, 2 ** np.ceil(np.log2(np.maximum(rank, 1))), 0).astype(int)
    width = np.where((width > 0) & (width < _NARROW), _NARROW, width)
    parts = []
    for w in np.unique(width[width > 0]):
        idx = np.flatnonzero(width == w)
        where = np.full(mask.shape[1], -1)
        where[idx] = np.arange(idx.size)
        sel = where[trial] >= 0
        at, sl = where[trial[sel]], slot[sel]
        u = np.zeros((idx.size, w, pen.lam.size))
        u[at, sl] = vectors[sel]
        is_row = np.zeros((idx.size, w))
        is_row[at, sl] = kind[sel] == 0
        sum_size = np.zeros((idx.size, w))
        sum_size[at, sl] = size[sel]
        label = np.full((idx.size, w), -1)
        label[at, sl] = cluster[sel]
        e0 = ((label[:, :, None] == label[:, None, :]) & (label[:, :, None] >= 0))
        parts.append(_Part(idx, u, e0.astype(float), is_row, sum_size))
    return tuple(parts)


@dataclass(frozen=True)
class _Woodbury:
    """One part's ``G``, ``C``, ``K^{-1}`` (``K`` when not asked for), ``K^{-1} C U~'
    D^{-1}b~`` and ``log |K|``."""

    g: np.ndarray
    c: np.ndarray
    k_inv: np.ndarray
    y: np.ndarray
    logdet_k: np.ndarray


def _woodbury(part: _Part, t: np.ndarray, d: np.ndarray, b: np.ndarray, h0: np.ndarray,
              *, inverse: bool) -> _Woodbury:
    ud = part.u / d[:, None, :]
    g = np.matmul(ud, part.u.transpose(0, 2, 1))
    c = (t / h0)[:, None, None] * part.e0
    diag = part.is_row + t[:, None] / (1.0 + part.sum_size * t[:, None]) * (
        part.sum_size > 0)
    idx = np.arange(diag.shape[1])
    c[:, idx, idx] -= diag
    k = np.matmul(c, g)
    k[:, idx, idx] += 1.0
    z = np.matmul(ud, b[:, :, None])
    logdet = np.linalg.slogdet(k)[1]
    if not inverse:  # the deviance needs K^{-1} C z only
        return _Woodbury(g, c, k, np.linalg.solve(k, np.matmul(c, z))[:, :, 0], logdet)
    k_inv = np.linalg.inv(k)
    return _Woodbury(g, c, k_inv, np.matmul(k_inv, np.matmul(c, z))[:, :, 0], logdet)


@dataclass(frozen=True)
class LowRank:
    """The search statistics of masked trials (see the module notes)."""

    pen: Pencil
    parts: tuple[_Part, ...]
    wxy: np.ndarray  # (S, p): T' W_xy
    bxy: np.ndarray  # (S, M, p): T' B_xy,m
    wyy: np.ndarray  # (S,)
    byy: np.ndarray  # (S, M)
    sizes: np.ndarray  # (M,)
    counts: np.ndarray  # (S, M)
    nobs: np.ndarray  # (S,)

    @classmethod
    def of(cls, stats: GroupedStats, pen: Pencil, groups: np.ndarray,
           mask: np.ndarray) -> LowRank:
        """The low-rank form of the masked trials of ``stats`` (columns of ``mask``)."""
        p = stats.p
        return cls(pen, _parts(pen, groups, mask), stats.within[:, :p, p] @ pen.t_mat,
                   stats.between[:, :, :p, p] @ pen.t_mat, stats.within[:, p, p],
                   stats.between[:, :, p, p], stats.sizes, stats.counts, stats.nobs)

    @property
    def rank(self) -> np.ndarray:
        """The padded width of each trial's change (0: complete)."""
        out = np.zeros(self.nobs.shape[0], dtype=int)
        for part in self.parts:
            out[part.idx] = part.u.shape[1]
        return out

    def select(self, rows: np.ndarray) -> LowRank:
        """The statistics of a subset of trials (``rows`` may repeat a trial)."""
        parts = []
        for part in self.parts:
            where = np.full(self.nobs.shape[0], -1)
            where[part.idx] = np.arange(part.idx.size)
            pos = np.flatnonzero(where[rows] >= 0)
            if pos.size:
                parts.append(part.take(where[rows[pos]], pos))
        return LowRank(self.pen, tuple(parts), self.wxy[rows], self.bxy[rows],
                       self.wyy[rows], self.byy[rows], self.sizes, self.counts[rows],
                       self.nobs[rows])

    def _solve(self, t: np.ndarray, *, inverse: bool = False
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[_Woodbury],
                          np.ndarray]:
        pen = self.pen
        h0 = 1.0 + pen.size * t
        d = (1.0 + pen.gap[None, :] * t[:, None]) / h0[:, None]  # (S, p)
        v = 1.0 / (self.sizes[None, :] * (1.0 + self.sizes[None, :] * t[:, None]))
        b = self.wxy + np.einsum("sm,smp->sp", v, self.bxy)
        corr = np.zeros_like(b)
        logdet_k = np.zeros(t.shape[0])
        woods = []
        for part in self.parts:
            i = part.idx
            wb = _woodbury(part, t[i], d[i], b[i], h0[i], inverse=inverse)
            corr[i] = np.einsum("srp,sr->sp", part.u, wb.y)
            logdet_k[i] = wb.logdet_k
            woods.append(wb)
        gamma = (b - corr) / d
        rss = np.maximum(self.wyy + np.sum(v * self.byy, axis=1)
                         - np.einsum("sp,sp->s", b, gamma), _TINY)
        return h0, d, gamma, rss, woods, logdet_k

    def deviance(self, t: np.ndarray) -> np.ndarray:
        """The profiled REML deviance at ``t`` (per trial)."""
        _, d, _, rss, _, logdet_k = self._solve(t)
        dof = self.nobs - self.pen.lam.size
        logdet_m = np.sum(self.counts * np.log1p(self.sizes[None, :] * t[:, None]), axis=1)
        logdet_a = self.pen.logdet_xtx + np.sum(np.log(d), axis=1) + logdet_k
        out: np.ndarray = logdet_m + logdet_a + dof * (1.0 + _LOG_2PI + np.log(rss / dof))
        return out

    def deviance_grid(self, grid: np.ndarray) -> np.ndarray:
        """The deviance of every trial at every ratio of ``grid``, ``(S, K)``, a few
        ratios per call."""
        n_sims = self.nobs.shape[0]
        step = max(1, 4096 // max(n_sims, 1))
        out = np.empty((n_sims, grid.size))
        for k in range(0, grid.size, step):
            ks = grid[k:k + step]
            tiled = self.select(np.tile(np.arange(n_sims), ks.size))
            out[:, k:k + ks.size] = tiled.deviance(np.repeat(ks, n_sims)).reshape(
                ks.size, n_sims).T
        return out

    def score(self, t: np.ndarray) -> np.ndarray:
        """The derivative of :meth:`deviance` up to a positive factor, as
        :func:`crtstats.models._batch_reml.score`."""
        h0, d, gamma, rss, woods, _ = self._solve(t, inverse=True)
        pen, p = self.pen, self.pen.lam.size
        lam_w = pen.lam[None, :] / (d * (h0**2)[:, None])  # lambda / (D h0^2)
        tr_p1 = np.sum(lam_w, axis=1)
        beta_p1 = np.sum(pen.lam[None, :] * gamma**2, axis=1) / h0**2
        for part, wb in zip(self.parts, woods, strict=True):
            i = part.idx
            e = -part.e0 / (h0[i] ** 2)[:, None, None]
            idx = np.arange(e.shape[1])
            e[:, idx, idx] += (part.sum_size > 0) / (1.0 + part.sum_size * t[i, None]) ** 2
            hmat = np.matmul(part.u * (lam_w[i] / d[i])[:, None, :],
                             part.u.transpose(0, 2, 1))
            kinv_c = np.matmul(wb.k_inv, wb.c)
            tr_p1[i] += (np.einsum("sij,sji->s", e, wb.g)
                         - np.einsum("sij,sji->s", kinv_c,
                                     hmat + np.matmul(np.matmul(wb.g, e), wb.g)))
            uu = np.einsum("srp,sp->sr", part.u, gamma[i])
            beta_p1[i] += np.einsum("sr,srq,sq->s", uu, e, uu)
        h = 1.0 + self.sizes[None, :] * t[:, None]
        trace = np.sum(self.counts * self.sizes[None, :] / h, axis=1) - tr_p1
        quad = (np.sum(self.byy / h**2, axis=1)
                - 2.0 * np.einsum("sp,sp->s", gamma,
                                  np.einsum("sm,smp->sp", 1.0 / h**2, self.bxy))
                + beta_p1)
        sigma2 = rss / (self.nobs - p)
        out: np.ndarray = trace - quad / sigma2
        return out
