"""Sandwich covariances of GEE estimates, with the small-sample bias corrections.

Everything here is a pure function of the fitted quantities (design, response, cluster
codes, coefficients and working correlation), so the formulas can be checked against
an independent implementation at the same estimates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from scipy import linalg, special

from crtstats.exceptions import ModelSpecificationError

__all__ = ["SANDWICH_TYPES", "GeeFamily", "SandwichType", "gee_sandwiches"]

GeeFamily = Literal["binomial", "poisson", "gaussian"]
SandwichType = Literal["robust", "mancl-derouen", "kauermann-carroll", "fay-graubard"]
SANDWICH_TYPES: tuple[SandwichType, ...] = get_args(SandwichType)


@dataclass(frozen=True)
class _Cluster:
    """Whitened derivative matrix and residual of one cluster (``L^-1 D``, ``L^-1 r``)."""

    d: np.ndarray
    r: np.ndarray


def _mean_and_variance(
    eta: np.ndarray, family: GeeFamily
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, derivative d mu / d eta and variance function, for the canonical links."""
    if family == "binomial":
        mu = special.expit(eta)
        var = mu * (1.0 - mu)
        return mu, var, var
    if family == "poisson":
        mu = np.exp(eta)
        return mu, mu, mu
    return eta.copy(), np.ones_like(eta), np.ones_like(eta)


def _whitened_clusters(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    offset: np.ndarray,
    beta: np.ndarray,
    family: GeeFamily,
    alpha: float,
) -> list[_Cluster]:
    """Per cluster, ``S^-1 D`` and ``S^-1 r`` where ``V = S S'`` is the working covariance.

    ``S = A^1/2 R^1/2`` with ``R = (1 - alpha) I + alpha J`` exchangeable, whose
    symmetric inverse root is ``(1 - alpha)^-1/2 (I - J/n) + (1 + (n - 1) alpha)^-1/2 J/n``.
    """
    n_max = int(np.bincount(groups).max())
    if not (alpha < 1.0 and 1.0 + (n_max - 1) * alpha > 0.0):
        raise ModelSpecificationError(
            f"the exchangeable working correlation {alpha!r} is not positive definite for a "
            f"cluster of {n_max}; use cov_struct='independence'."
        )
    eta = X @ beta + offset
    mu, dmu, var = _mean_and_variance(eta, family)
    scaled_d = (dmu / np.sqrt(var))[:, None] * X
    scaled_r = (y - mu) / np.sqrt(var)
    out: list[_Cluster] = []
    for g in range(int(groups.max()) + 1):
        idx = np.flatnonzero(groups == g)
        n = idx.size
        k_within = (1.0 - alpha) ** -0.5
        k_mean = (1.0 + (n - 1) * alpha) ** -0.5

        def root(a: np.ndarray, kw: float = k_within, km: float = k_mean) -> np.ndarray:
            m = a.mean(axis=0, keepdims=True)
            res: np.ndarray = kw * (a - m) + km * m
            return res

        out.append(_Cluster(d=root(scaled_d[idx]), r=root(scaled_r[idx, None])[:, 0]))
    return out


def _leverage_power(
    d: np.ndarray, b_chol: np.ndarray, r: np.ndarray, power: float
) -> np.ndarray:
    """``(I - d B^-1 d')^(-power) r`` with ``B^-1 = b_chol b_chol'``.

    The leverage ``d B^-1 d'`` has rank at most p, so with the thin SVD
    ``d b_chol = U S W'`` the power is ``I + U ((1 - S^2)^(-power) - 1) U'``: O(n p^2)
    instead of an n x n eigendecomposition.
    """
    u, s, _ = linalg.svd(d @ b_chol, full_matrices=False)
    lam = np.clip(1.0 - s**2, np.finfo(float).tiny, None)
    out: np.ndarray = r + u @ ((lam ** (-power) - 1.0) * (u.T @ r))
    return out


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
) -> Mapping[str, np.ndarray]:
    """Model-based and sandwich covariances of GEE coefficients.

    Parameters
    ----------
    X, y
        Design matrix (n x p) and response (n).
    groups
        Cluster code per row, 0..G-1.
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

    Returns
    -------
    Mapping[str, numpy.ndarray]
        ``"naive"`` (``B^-1``, without the scale) and one p x p covariance for each of
        :data:`SANDWICH_TYPES`.

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

    The dispersion cancels from every sandwich, so it is not needed. ``(I - H_ii)``
    is not symmetric, but with ``V_i = L_i L_i'`` it equals
    ``L_i (I - L_i^-1 D_i B^-1 D_i' L_i^-T) L_i^-1``, whose principal powers are
    computed from the symmetric middle factor.

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

    R: ``geepack::geeglm(..., std.err = "san.se")`` gives the robust one.
    """
    off = np.zeros(len(y)) if offset is None else np.asarray(offset, dtype=float)
    clusters = _whitened_clusters(X, y, groups, off, beta, family, alpha)
    p = X.shape[1]
    bread = np.zeros((p, p))
    for c in clusters:
        bread += c.d.T @ c.d
    b_inv = linalg.inv(bread)
    b_inv = (b_inv + b_inv.T) / 2.0
    b_chol = linalg.cholesky(b_inv, lower=True)
    meats: dict[str, np.ndarray] = {name: np.zeros((p, p)) for name in SANDWICH_TYPES}
    for c in clusters:
        scores: dict[str, np.ndarray] = {
            "robust": c.d.T @ c.r,
            "mancl-derouen": c.d.T @ _leverage_power(c.d, b_chol, c.r, 1.0),
            "kauermann-carroll": c.d.T @ _leverage_power(c.d, b_chol, c.r, 0.5),
        }
        q_diag = np.diag(c.d.T @ c.d @ b_inv)
        scores["fay-graubard"] = scores["robust"] / np.sqrt(1.0 - np.minimum(fg_bound, q_diag))
        for name, u in scores.items():
            meats[name] += np.outer(u, u)
    out: dict[str, np.ndarray] = {"naive": b_inv}
    for name, meat in meats.items():
        cov = b_inv @ meat @ b_inv
        out[name] = (cov + cov.T) / 2.0
    return out
