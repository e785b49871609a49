"""Sandwich covariances of GEE estimates, with the small-sample bias corrections.

Everything here is a pure function of the fitted quantities (design, response, cluster
codes, coefficients and working correlation), so the formulas can be checked against
an independent implementation at the same estimates. Nothing loops over clusters and
no ``n_i x n_i`` matrix is formed: each cluster's leverage enters through the p x p
matrix ``C_i = L' B_i L`` (``B^-1 = L L'``), whose nonzero eigenvalues are those of the
leverage ``H_ii``, and all clusters' ``C_i`` are decomposed in one batched call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

import numpy as np

from crtstats.exceptions import ModelSpecificationError
from crtstats.models._gee_fit import Clusters, GeeFamily, exchangeable_c, mean_parts

__all__ = ["SANDWICH_TYPES", "GeeFamily", "SandwichType", "gee_sandwiches"]

SandwichType = Literal["robust", "mancl-derouen", "kauermann-carroll", "fay-graubard"]
SANDWICH_TYPES: tuple[SandwichType, ...] = get_args(SandwichType)

#: A cluster whose leverage has an eigenvalue within this of 1 determines a direction of
#: the coefficients alone: (I - H_ii)^-1 does not exist.
_LEVERAGE_TOL = 1e-10


def _check_alpha(alpha: float, n_max: int) -> None:
    if not (alpha < 1.0 and 1.0 + (n_max - 1) * alpha > 0.0):
        raise ModelSpecificationError(
            f"the exchangeable working correlation {alpha!r} is not positive definite for a "
            f"cluster of {n_max}: it must lie in (-1/(n_max - 1), 1) = "
            f"({-1.0 / max(n_max - 1, 1):.4g}, 1). Use cov_struct='independence'."
        )


def _cluster_crossprod(a: np.ndarray, cl: Clusters) -> np.ndarray:
    """``a_i' a_i`` for every cluster (rows sorted by cluster): shape (G, p, p)."""
    n, p = a.shape
    if n * p * p <= 1 << 22:  # row outer products fit in 32 MB: one reduceat
        outer = (a[:, :, None] * a[:, None, :]).reshape(n, p * p)
        out: np.ndarray = cl.sums(outer).reshape(cl.n, p, p)
        return out
    codes = np.repeat(np.arange(cl.n), cl.sizes.astype(np.intp))
    out = np.empty((cl.n, p, p))
    for j in range(p):  # a loop over column pairs, not clusters
        for k in range(j, p):
            col = np.bincount(codes, weights=a[:, j] * a[:, k], minlength=cl.n)
            out[:, j, k] = col
            out[:, k, j] = col
    return out


def _leverage_scores(c_mat: np.ndarray, v: np.ndarray, chol: np.ndarray,
                     labels: tuple[str, ...] | None) -> tuple[np.ndarray, np.ndarray]:
    """``B^-1 D_i' V_i^-1 (I - H_ii)^-k r_i`` for k = 1 (MD) and 1/2 (KC), all clusters.

    With ``v_i = L' U_i`` and ``C_i = W Lambda W'``, the two are
    ``L W (I - Lambda)^-k W' v_i``: the Woodbury identity turns the n_i x n_i power of
    ``I - H_ii`` into the p x p power of ``I - C_i``.
    """
    lam, vecs = np.linalg.eigh(c_mat)
    top = lam.max(axis=1)
    if np.any(top >= 1.0 - _LEVERAGE_TOL):
        g = int(np.argmax(top))
        name = repr(labels[g]) if labels is not None else f"number {g}"
        raise ModelSpecificationError(
            f"cluster {name} has leverage {top[g]:.6g} (1 means it alone determines a "
            "combination of the coefficients, e.g. it is the only cluster in an arm or "
            "stratum): the bias-corrected sandwiches divide by 1 - leverage and are "
            "undefined. Merge strata or use more clusters per arm."
        )
    rest = np.clip(1.0 - lam, np.finfo(float).tiny, None)
    w = np.einsum("gji,gj->gi", vecs, v)
    md = np.einsum("gij,gj->gi", vecs, w / rest) @ chol.T
    kc = np.einsum("gij,gj->gi", vecs, w / np.sqrt(rest)) @ chol.T
    return md, kc


def gee_sandwiches(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    beta: np.ndarray,
    *,
    family: GeeFamily,
    alpha: float,
    offset: np.ndarray | None = None,
    fg_bound: float = 0.75,
    labels: tuple[str, ...] | None = None,
    weights: np.ndarray | None = None,
) -> Mapping[str, np.ndarray]:
    """Model-based and sandwich covariances of GEE coefficients.

    Parameters
    ----------
    X, y
        Design matrix (n x p) and response (n).
    groups
        Cluster code per row, 0..G-1 (rows need not be sorted).
    beta
        The GEE estimates.
    family
        ``"binomial"`` (logit), ``"poisson"`` (log) or ``"gaussian"`` (identity).
    alpha
        Exchangeable working correlation (0 for independence).
    offset
        Offset on the linear-predictor scale (zeros when None).
    fg_bound
        The bound ``b`` of the Fay-Graubard correction (0.75 in their paper).
    labels
        Cluster labels by code, for messages.
    weights
        Row weights, constant within each cluster (e.g. ``1 / n_i``): cluster i's
        ``B_i`` and ``U_i`` are multiplied by ``w_i`` (None: all 1).

    Returns
    -------
    Mapping[str, numpy.ndarray]
        ``"naive"`` (``B^-1``, without the dispersion) and one p x p covariance for each
        of :data:`SANDWICH_TYPES`.

    Raises
    ------
    ModelSpecificationError
        If the exchangeable correlation is not positive definite for the largest
        cluster, or a cluster has leverage 1 (the corrections are undefined).

    Notes
    -----
    With ``D_i = d mu_i / d beta``, working covariance ``V_i``, residual ``r_i``,
    ``B = sum_i D_i' V_i^-1 D_i`` and leverage ``H_ii = D_i B^-1 D_i' V_i^-1``, each
    sandwich is ``B^-1 (sum_i u_i u_i') B^-1`` with the score ``u_i``:

    - robust (Liang and Zeger 1986): ``u_i = D_i' V_i^-1 r_i``;
    - Mancl-DeRouen (2001): ``u_i = D_i' V_i^-1 (I - H_ii)^-1 r_i``;
    - Kauermann-Carroll (2001): ``u_i = D_i' V_i^-1 (I - H_ii)^-1/2 r_i``;
    - Fay-Graubard (2001): ``u_i = A_i D_i' V_i^-1 r_i`` with
      ``A_i = diag{(1 - min(b, [D_i' V_i^-1 D_i B^-1]_jj))^-1/2}``.

    The dispersion cancels from every sandwich, so it is not needed. With
    ``B_i = D_i' V_i^-1 D_i``, ``U_i = D_i' V_i^-1 r_i`` and ``B^-1 = L L'``, the
    Woodbury identity gives ``B^-1 D_i' V_i^-1 (I - H_ii)^-1 r_i = (B - B_i)^-1 U_i``
    (the one-step jackknife) and, for the principal root,
    ``B^-1 D_i' V_i^-1 (I - H_ii)^-1/2 r_i = L (I - L' B_i L)^-1/2 L' U_i``; ``B_i`` and
    ``U_i`` come in closed form for the exchangeable working correlation
    (:mod:`crtstats.models._gee_fit`).

    References
    ----------
    Liang KY, Zeger SL (1986). Biometrika 73:13-22.
    Mancl LA, DeRouen TA (2001). Biometrics 57:126-134.
    Kauermann G, Carroll RJ (2001). JASA 96:1387-1396.
    Fay MP, Graubard BI (2001). Biometrics 57:1198-1206.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.column_stack([np.ones(6), [0, 0, 0, 1, 1, 1.0]])
    >>> y = np.array([1.0, 2.0, 1.5, 3.0, 2.5, 4.0])
    >>> groups = np.array([0, 0, 1, 1, 2, 2])
    >>> beta = np.linalg.lstsq(X, y, rcond=None)[0]
    >>> covs = gee_sandwiches(X, y, groups, beta, family="gaussian", alpha=0.0)
    >>> sorted(covs)
    ['fay-graubard', 'kauermann-carroll', 'mancl-derouen', 'naive', 'robust']

    R: ``geepack::geeglm(..., std.err = "san.se")`` gives the robust one;
    ``std.err = "jack"`` gives ``(G - p - q - r) / G`` times Mancl-DeRouen (q
    correlation and r dispersion parameters).
    """
    cl = Clusters.of(np.asarray(groups, dtype=np.intp))
    _check_alpha(alpha, int(cl.sizes.max()))
    off = np.zeros(len(y)) if offset is None else np.asarray(offset, dtype=float)
    X, y, off = X[cl.order], y[cl.order], off[cl.order]
    eta = X @ beta + off
    mu, dmu, var = mean_parts(eta, family)
    root = np.sqrt(var)
    e = (y - mu) / root
    s = (dmu / root)[:, None] * X
    if weights is not None:
        root_w = np.sqrt(np.asarray(weights, dtype=float)[cl.order])
        e, s = e * root_w, s * root_w[:, None]
    c = exchangeable_c(alpha, cl.sizes)
    k = 1.0 / (1.0 - alpha)
    t = cl.sums(s)  # G x p
    scores = k * (cl.sums(s * e[:, None]) - (c * cl.sums(e))[:, None] * t)  # U_i, G x p
    bread = k * (s.T @ s - (t * c[:, None]).T @ t)
    b_inv = np.linalg.inv(bread)
    b_inv = (b_inv + b_inv.T) / 2.0
    chol = np.linalg.cholesky(b_inv)
    # C_i = L' B_i L, from the whitened rows s L and sums t L
    sl, tl = s @ chol, t @ chol
    c_mat = k * (_cluster_crossprod(sl, cl)
                 - c[:, None, None] * tl[:, :, None] * tl[:, None, :])
    md, kc = _leverage_scores(c_mat, scores @ chol, chol, labels)
    # diag(B_i B^-1): (s_i' s_i B^-1)_jj - c_i t_ij (t_i B^-1)_j, over 1 - alpha
    q_diag = k * (cl.sums(s * (s @ b_inv)) - c[:, None] * t * (t @ b_inv))
    fg = (scores / np.sqrt(1.0 - np.minimum(fg_bound, q_diag))) @ b_inv
    adjusted = {"robust": scores @ b_inv, "mancl-derouen": md, "kauermann-carroll": kc,
                "fay-graubard": fg}
    out: dict[str, np.ndarray] = {"naive": b_inv}
    for name in SANDWICH_TYPES:
        a = adjusted[name]
        cov = a.T @ a
        out[name] = (cov + cov.T) / 2.0
    return out
