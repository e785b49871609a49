"""Cluster-robust (sandwich) covariance for least squares: CR1, CR2 and their df.

The estimators follow Bell and McCaffrey (2002) and Pustejovsky and Tipton (2018), as
implemented in the R package clubSandwich for unweighted ``lm`` fits (working model
``Phi = I``). Everything here is pure numpy on the arrays of a fitted model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ClusterRobust", "sym_power"]

#: Eigenvalues at or below this are treated as zero when taking matrix powers, as in
#: clubSandwich's ``matrix_power`` (``tol = -12`` on the log10 scale).
EIGEN_TOL = 1e-12


def sym_power(mat: np.ndarray, power: float, *, tol: float = EIGEN_TOL) -> np.ndarray:
    """Power of a symmetric matrix through its eigen-decomposition.

    Eigenvalues at or below ``tol`` get power zero, so that a singular matrix has a
    generalised (Moore-Penrose type) inverse square root.

    Parameters
    ----------
    mat
        Symmetric matrix, k x k.
    power
        The power, e.g. ``-0.5``.
    tol
        Eigenvalues not above this count as zero.

    Returns
    -------
    numpy.ndarray
        ``V diag(lambda^power) V'`` with ``lambda^power`` set to 0 where
        ``lambda <= tol``.

    Examples
    --------
    >>> import numpy as np
    >>> sym_power(np.diag([4.0, 0.0]), -0.5)
    array([[0.5, 0. ],
           [0. , 0. ]])
    """
    values, vectors = np.linalg.eigh(mat)
    safe = np.where(values > tol, values, 1.0)
    scaled = np.where(values > tol, safe**power, 0.0)
    out: np.ndarray = (vectors * scaled) @ vectors.T
    return out


def _cr2_cluster(
    xj: np.ndarray, ej: np.ndarray, bread: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``X_j'A_j e_j``, ``X_j'A_j X_j``, ``X_j'A_j A_j X_j`` for ``A_j = (I - H_jj)^{-1/2}``.

    ``H_jj = X_j M X_j'`` has rank ``r <= p``: with the thin SVD ``X_j = U S V'``
    (``U`` n_j x r) it is ``U B U'``, ``B = S V' M V S``. So ``I - H_jj`` has eigenvalue 1
    off the span of ``U`` and the eigenvalues of ``I - B`` on it, and
    ``A_j = I + U ((I - B)^{-1/2} - I) U'`` (with the same zero threshold as
    :func:`sym_power`). This costs ``O(n_j p^2)`` instead of ``O(n_j^3)``.
    """
    u, sv, vt = np.linalg.svd(xj, full_matrices=False)
    keep = sv > (sv[0] if sv.size else 0.0) * max(xj.shape) * np.finfo(float).eps
    if not keep.any():  # a cluster whose rows are all zero in X: A_j = I
        xx: np.ndarray = xj.T @ xj
        score: np.ndarray = xj.T @ ej
        return score, xx, xx
    u = u[:, keep]
    us = sv[keep, None] * vt[keep]  # U'X_j = S V', r x p
    eye = np.eye(us.shape[0])
    ib = eye - us @ bread @ us.T
    half = sym_power((ib + ib.T) / 2.0, -0.5) - eye
    axj: np.ndarray = xj + u @ (half @ us)
    out: tuple[np.ndarray, np.ndarray, np.ndarray] = (axj.T @ ej, xj.T @ axj, axj.T @ axj)
    return out


def _cluster_index(groups: np.ndarray, n_clusters: int) -> list[np.ndarray]:
    order = np.argsort(groups, kind="stable")
    bounds = np.cumsum(np.bincount(groups, minlength=n_clusters))[:-1]
    return np.split(order, bounds)


@dataclass(frozen=True)
class ClusterRobust:
    """Sandwich covariances of OLS estimates with clusters.

    Build it with :meth:`from_fit`; then :meth:`cov` gives the CR1 or CR2 covariance
    and :meth:`satterthwaite_df` the Bell-McCaffrey/Satterthwaite df of any contrast
    under CR2.

    Attributes
    ----------
    bread
        ``M = (X'X)^{-1}``, p x p.
    scores_cr1, scores_cr2
        Per-cluster score sums ``X_j' A_j e_j`` (J x p) with ``A_j`` the CR1 factor
        ``sqrt(J/(J-1)) I`` and the CR2 matrix ``(I - H_jj)^{-1/2}``.
    xax
        ``X_j' A_j X_j`` per cluster for CR2 (J x p x p).
    xaax
        ``X_j' A_j A_j X_j`` per cluster for CR2 (J x p x p).
    """

    bread: np.ndarray
    scores_cr1: np.ndarray
    scores_cr2: np.ndarray
    xax: np.ndarray
    xaax: np.ndarray

    @property
    def n_clusters(self) -> int:
        """Number of clusters J."""
        return int(self.scores_cr2.shape[0])

    @classmethod
    def from_fit(
        cls, X: np.ndarray, resid: np.ndarray, bread: np.ndarray, groups: np.ndarray
    ) -> ClusterRobust:
        """Compute the per-cluster pieces from the design, residuals and bread.

        Parameters
        ----------
        X
            Model matrix, n x p (full column rank).
        resid
            OLS residuals, length n.
        bread
            ``(X'X)^{-1}``.
        groups
            Cluster code per row, 0..J-1, every code used.
        """
        n_clusters = int(groups.max()) + 1
        p = X.shape[1]
        sizes = np.bincount(groups, minlength=n_clusters)
        factor = np.sqrt(n_clusters / (n_clusters - 1.0))
        scores_cr1 = factor * np.stack(
            [np.bincount(groups, weights=X[:, k] * resid, minlength=n_clusters)
             for k in range(p)], axis=1
        )
        scores_cr2 = np.empty((n_clusters, p))
        xax = np.empty((n_clusters, p, p))
        xaax = np.empty((n_clusters, p, p))
        # one-row clusters (HC2), all at once: A_j = (1 - h_jj)^{-1/2}
        single = np.flatnonzero(sizes[groups] == 1)
        codes = groups[single]
        xs = X[single]
        one_minus_h = 1.0 - np.einsum("ip,pq,iq->i", xs, bread, xs)
        safe = np.where(one_minus_h > EIGEN_TOL, one_minus_h, 1.0)
        a = np.where(one_minus_h > EIGEN_TOL, safe**-0.5, 0.0)
        outer = np.einsum("ip,iq->ipq", xs, xs)
        scores_cr2[codes] = xs * (a * resid[single])[:, None]
        xax[codes] = a[:, None, None] * outer
        xaax[codes] = (a**2)[:, None, None] * outer
        for j, rows in enumerate(_cluster_index(groups, n_clusters)):
            if sizes[j] > 1:
                scores_cr2[j], xax[j], xaax[j] = _cr2_cluster(X[rows], resid[rows], bread)
        return cls(bread=bread, scores_cr1=scores_cr1, scores_cr2=scores_cr2,
                   xax=xax, xaax=xaax)

    def cov(self, kind: str) -> np.ndarray:
        """The CR1 or CR2 covariance ``M (sum_j X_j' A_j e_j e_j' A_j X_j) M``."""
        scores = self.scores_cr2 if kind == "CR2" else self.scores_cr1
        meat = scores.T @ scores
        half: np.ndarray = self.bread @ meat @ self.bread
        out: np.ndarray = (half + half.T) / 2.0
        return out

    def satterthwaite_df(self, contrasts: np.ndarray) -> np.ndarray:
        """Bell-McCaffrey/Satterthwaite df of ``c' V_CR2 c`` for each row ``c``.

        Parameters
        ----------
        contrasts
            k x p matrix, one contrast per row (or a single length-p vector).

        Returns
        -------
        numpy.ndarray
            k degrees of freedom ``tr(G)^2 / ||G||_F^2`` (see Notes of
            :func:`crtstats.ols`).
        """
        cmat = np.atleast_2d(np.asarray(contrasts, dtype=float))
        b = cmat @ self.bread  # k x p, rows are (M c)'
        diag = np.einsum("kp,jpq,kq->kj", b, self.xaax, b, optimize=True)  # d_j = u_j'u_j
        w = np.einsum("jpq,kq->kjp", self.xax, b, optimize=True)  # w_j = X_j'A_jX_j M c
        quad = np.einsum("kjp,pq,kjq->kj", w, self.bread, w, optimize=True)  # w_j' M w_j
        ms = self.bread @ np.einsum("kjp,kjq->kpq", w, w)  # M sum_j w_j w_j'
        trace = diag.sum(axis=1) - quad.sum(axis=1)
        frob = (
            (diag**2).sum(axis=1)
            - 2.0 * (diag * quad).sum(axis=1)
            + np.einsum("kpq,kqp->k", ms, ms)
        )
        out: np.ndarray = trace**2 / frob
        return out
