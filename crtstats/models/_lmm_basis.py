"""The working basis of the LMM fit: the outcome and the columns of ``X`` centred and scaled.

Sums of squares formed from raw data lose about ``log10(mean^2 / variance)`` digits: an
outcome near 1e8 with unit spread leaves nothing of the residual variance. The fit is
therefore computed on

``y_w = (y - m) / c`` and ``x_wj = (x_j - m_j) / d_j``,

with ``m``, ``m_j`` the means when the model has an intercept (a constant column, which
keeps the column space and so the model unchanged) and zero otherwise, and ``c``, ``d_j``
powers of two near the standard deviations (root mean squares without an intercept), so
that the scaling itself is exact. With ``k`` the intercept column (value ``a``), the
original columns are ``X = X_w K`` with ``K = diag(d) + e_k m'`` (``d_k = a``, ``m_k = 0``),
so the original coefficients are

``beta = c T beta_w + (m / a) e_k`` with ``T = K^{-1} = D^{-1} - e_k (D^{-1} m)' / a``,

their covariance is ``c^2 T Cov(beta_w) T'``, and a contrast ``L beta`` has the df of
``L T beta_w`` (Kenward-Roger and Satterthwaite df are invariant under such a
reparametrisation). The variance components scale by ``c^2``; the REML deviance gains
``2 log|det K| + 2 (n - p) log c`` (ML: ``2 n log c``), since ``log|X' V^{-1} X|``
depends on the units of ``X`` as in lme4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["WorkingBasis", "working_basis"]


def _power_of_two(value: np.ndarray) -> np.ndarray:
    """The power of two nearest ``value`` (1 where ``value`` is zero or not finite)."""
    safe = np.where(np.isfinite(value) & (value > 0.0), value, 1.0)
    return np.asarray(np.exp2(np.round(np.log2(safe))))


@dataclass(frozen=True)
class WorkingBasis:
    """How the working ``y_w``, ``X_w`` relate to the original ``y``, ``X``.

    Attributes
    ----------
    y_shift, y_scale
        ``m`` and ``c``: ``y = m + c y_w``.
    x_shift, x_scale
        ``m_j`` and ``d_j`` per column: ``x_j = m_j + d_j x_wj`` (the intercept column,
        if any, has ``m_k = 0`` and ``d_k`` its constant value).
    intercept
        Index of the intercept column, or None.
    """

    y_shift: float
    y_scale: float
    x_shift: np.ndarray
    x_scale: np.ndarray
    intercept: int | None

    def apply(self, y: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The working outcome and model matrix."""
        return (y - self.y_shift) / self.y_scale, (X - self.x_shift) / self.x_scale

    @property
    def transform(self) -> np.ndarray:
        """``T``, with ``beta = y_scale T beta_w + offset``."""
        t_mat = np.diag(1.0 / self.x_scale)
        if self.intercept is not None:
            k = self.intercept
            t_mat[k] -= self.x_shift / self.x_scale / self.x_scale[k]
        return t_mat

    @property
    def offset(self) -> np.ndarray:
        """The constant part of ``beta``: ``(m / a) e_k``."""
        out = np.zeros(self.x_scale.size)
        if self.intercept is not None:
            out[self.intercept] = self.y_shift / self.x_scale[self.intercept]
        return out

    def coefficients(self, beta_w: np.ndarray) -> np.ndarray:
        """The original coefficients from the working ones."""
        out: np.ndarray = self.y_scale * (self.transform @ beta_w) + self.offset
        return out

    def deviance_shift(self, nobs: int, *, reml: bool) -> float:
        """What the working deviance gains in the original units."""
        p = self.x_scale.size
        if not reml:
            return float(2.0 * nobs * np.log(self.y_scale))
        log_det_k = float(np.log(np.abs(self.x_scale)).sum())
        return float(2.0 * log_det_k + 2.0 * (nobs - p) * np.log(self.y_scale))


def _intercept_column(X: np.ndarray) -> int | None:
    """The first column that is constant and non-zero, if any."""
    if X.shape[0] == 0:
        return None
    first = X[0]
    constant = np.all(X == first, axis=0) & (first != 0.0)
    hits = np.flatnonzero(constant)
    return int(hits[0]) if hits.size else None


def working_basis(y: np.ndarray, X: np.ndarray) -> WorkingBasis:
    """Choose the centring and scaling of ``y`` and ``X`` (see the module notes)."""
    k = _intercept_column(X)
    p = X.shape[1]
    if k is None:
        y_shift = 0.0
        x_shift = np.zeros(p)
        y_spread = float(np.sqrt(np.mean(y**2)))
        x_spread = np.sqrt(np.mean(X**2, axis=0))
    else:
        y_shift = float(np.mean(y))
        x_shift = X.mean(axis=0)
        x_shift[k] = 0.0
        y_spread = float(np.std(y))
        x_spread = X.std(axis=0)
    x_scale = _power_of_two(x_spread)
    if k is not None:
        x_scale[k] = X[0, k]
    return WorkingBasis(
        y_shift=y_shift, y_scale=float(_power_of_two(np.array(y_spread))),
        x_shift=x_shift, x_scale=x_scale, intercept=k,
    )
