"""Kenward-Roger and Satterthwaite inference for the random-intercept LMM, per cluster.

The covariance of the data is ``V = tau G_1 + sigma2 G_2`` with ``G_1 = Z Z'`` (one
all-ones block per cluster) and ``G_2 = I``. Every matrix that Kenward and Roger (1997)
and Satterthwaite's method need is a p x p (or 2 x 2) sum over clusters, because
``V_i^{-k} = sigma2^{-k} (I - (1 - u_i^k) / n_i J)`` with ``u_i = sigma2 / h_i`` and
``h_i = sigma2 + n_i tau``. With ``s_i = X_i' 1``:

* ``P_1 = X'V^{-1} G_1 V^{-1} X = sum_i s_i s_i' / h_i^2``
* ``P_2 = X'V^{-2} X``
* ``Q_11 = sum_i n_i s_i s_i' / h_i^3``, ``Q_12 = sum_i s_i s_i' / h_i^3``,
  ``Q_22 = X'V^{-3} X``
* ``tr(V^{-1} G_r V^{-1} G_s)``: ``sum (n_i / h_i)^2``, ``sum n_i / h_i^2`` and
  ``sum (n_i - 1) / sigma2^2 + 1 / h_i^2``.

No n x n matrix is ever formed.

The fit may be computed in a working basis (centred and scaled ``y`` and ``X``, see
:mod:`crtstats.models._lmm_basis`): then ``beta = c T beta_w + const`` and the geometry
records ``T`` (``basis``) and ``c`` (``y_scale``). :func:`kr_df` and
:func:`satterthwaite_df` take contrasts of the original coefficients and evaluate them
as ``L T`` in the working basis (both df are invariant under a nonsingular linear
reparametrisation and under rescaling ``y``), and :func:`kr_covariance` returns the
adjusted covariance of the original coefficients, ``c^2 T Phi_A T'``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crtstats.models._lmm_fit import ClusterStats, LmmFit, within_rss

__all__ = ["VarianceGeometry", "geometry", "kr_df", "kr_f_scaling", "satterthwaite_df",
           "satterthwaite_f_test"]


@dataclass(frozen=True)
class VarianceGeometry:
    """The derivatives of the fixed-effects covariance in the variance parameters.

    Attributes
    ----------
    phi
        Model-based covariance of the fixed effects, ``(X' V^{-1} X)^{-1}``.
    p_mats
        ``P_r = X' V^{-1} G_r V^{-1} X`` for ``r`` = cluster, residual; the derivative
        of ``phi`` in parameter ``r`` is ``phi P_r phi``.
    q_mats
        ``Q_rs = X' V^{-1} G_r V^{-1} G_s V^{-1} X`` as a 2 x 2 nested list.
    trace_p
        ``tr(P G_r P G_s)`` with ``P`` the REML projection (twice the expected REML
        information).
    observed_info
        Observed information of the variance parameters ``(tau, sigma2)`` for the
        likelihood that was maximised (REML or ML, with ``beta`` profiled out).
    basis
        ``T`` with ``beta = y_scale T beta_w + const`` when the pieces above are in a
        working basis (centred and scaled data); None when they are in the original one.
        ``phi``, ``p_mats`` and ``q_mats`` are always in the working basis: map a
        contrast ``L`` of the original coefficients with :meth:`working_contrast`.
    y_scale
        The factor ``c`` by which the working outcome was divided (1 when none).
    """

    phi: np.ndarray
    p_mats: tuple[np.ndarray, np.ndarray]
    q_mats: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
    trace_p: np.ndarray
    observed_info: np.ndarray
    basis: np.ndarray | None = None
    y_scale: float = 1.0

    def working_contrast(self, contrast: np.ndarray) -> np.ndarray:
        """``L T``: the contrast ``L`` of the original coefficients, in the working
        basis (up to the factor ``y_scale``, which no df depends on)."""
        lmat = np.asarray(contrast, dtype=float)
        if self.basis is None:
            return lmat
        out: np.ndarray = lmat @ self.basis
        return out

    def to_original(self, cov: np.ndarray) -> np.ndarray:
        """A covariance of the working coefficients as one of the original ones,
        ``y_scale^2 T cov T'``."""
        mapped = cov if self.basis is None else self.basis @ cov @ self.basis.T
        out: np.ndarray = self.y_scale**2 * (mapped + mapped.T) / 2.0
        return out

    @property
    def model_cov(self) -> np.ndarray:
        """Model-based covariance of the original coefficients, ``y_scale^2 T phi T'``."""
        return self.to_original(self.phi)


def _inv_power(stats: ClusterStats, fit: LmmFit, k: int) -> np.ndarray:
    """``X' V^{-k} X`` from the cluster sums."""
    u = fit.sigma2 / (fit.sigma2 + stats.n * fit.tau)
    weights = u**k / stats.n  # X'X - sum (1 - u^k)/n s s' without the difference
    out = (stats.wxx + stats.sx.T @ (weights[:, None] * stats.sx)) / fit.sigma2**k
    return np.asarray(out)


def _weighted_outer(sx: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return np.asarray(sx.T @ (weights[:, None] * sx))


def _observed_info(
    stats: ClusterStats, fit: LmmFit, phi: np.ndarray, k_trace: np.ndarray,
    trace_p: np.ndarray, reml: bool,
) -> np.ndarray:
    """``-d^2 loglik / d theta_r d theta_s = -tr(.)/2 + e' G_r P G_s e``, ``e = P y``."""
    s2, tau, n = fit.sigma2, fit.tau, stats.n
    h = s2 + n * tau
    u = s2 / h
    r_sums = stats.sy - stats.sx @ fit.beta  # cluster sums of y - X beta
    e_sums = r_sums / h  # cluster sums of e = V^{-1} (y - X beta)
    # within-cluster parts of X'r and r'r, so that no large totals are differenced
    wxr = stats.wxy - stats.wxx @ fit.beta
    wrr = within_rss(stats, fit.beta)
    # g_r = X' V^{-1} G_r e and m_rs = (G_r e)' V^{-1} (G_s e)
    g1 = stats.sx.T @ (e_sums / h)
    g2 = (wxr + stats.sx.T @ (u**2 / n * r_sums)) / s2**2
    m11 = float((e_sums**2 * n / h).sum())
    m12 = float((e_sums * r_sums / h**2).sum())
    m22 = (wrr + float((u**3 / n * r_sums**2).sum())) / s2**3
    g = np.column_stack([g1, g2])
    quad = np.array([[m11, m12], [m12, m22]]) - g.T @ phi @ g
    trace = trace_p if reml else k_trace
    return np.asarray(quad - 0.5 * trace)


def geometry(
    stats: ClusterStats, fit: LmmFit, *, reml: bool, basis: np.ndarray | None = None,
    y_scale: float = 1.0,
) -> VarianceGeometry:
    """All the p x p and 2 x 2 pieces of Kenward-Roger and Satterthwaite, per cluster.

    ``basis`` and ``y_scale`` say how the coefficients of ``stats`` (a working basis)
    map to the original ones (see :class:`VarianceGeometry`); by default they are the
    original ones.
    """
    s2, tau, n, sx = fit.sigma2, fit.tau, stats.n, stats.sx
    h = s2 + n * tau
    phi = fit.sigma2 * fit.a_inv
    p1 = _weighted_outer(sx, 1.0 / h**2)
    p2 = _inv_power(stats, fit, 2)
    q11 = _weighted_outer(sx, n / h**3)
    q12 = _weighted_outer(sx, 1.0 / h**3)
    q22 = _inv_power(stats, fit, 3)
    k11 = float(((n / h) ** 2).sum())
    k12 = float((n / h**2).sum())
    k22 = float(((n - 1.0) / s2**2 + 1.0 / h**2).sum())
    k_trace = np.array([[k11, k12], [k12, k22]])
    p_mats = (p1, p2)
    q_mats = ((q11, q12), (q12, q22))
    trace_p = np.empty((2, 2))
    for r in range(2):
        for s in range(2):
            trace_p[r, s] = (
                k_trace[r, s]
                - 2.0 * float(np.sum(phi * q_mats[r][s]))
                + float(np.sum((phi @ p_mats[r]) * (phi @ p_mats[s]).T))
            )
    info = _observed_info(stats, fit, phi, k_trace, trace_p, reml)
    return VarianceGeometry(
        phi=phi, p_mats=p_mats, q_mats=q_mats, trace_p=trace_p, observed_info=info,
        basis=basis, y_scale=y_scale,
    )


def kr_weights(geo: VarianceGeometry) -> np.ndarray:
    """``W = 2 (tr(P G_r P G_s))^{-1}``: the expected-information covariance of the
    variance parameters (a pseudo-inverse when that matrix is numerically singular)."""
    eig = np.linalg.eigvalsh(geo.trace_p)
    if np.min(np.abs(eig)) > 1e-10:
        return np.asarray(2.0 * np.linalg.inv(geo.trace_p))
    return np.asarray(2.0 * np.linalg.pinv(geo.trace_p))


def kr_covariance(geo: VarianceGeometry) -> np.ndarray:
    """Kenward-Roger adjusted covariance ``phi + 2 phi U phi`` with
    ``U = sum_rs W_rs (Q_rs - P_r phi P_s)``, of the original coefficients (computed in
    the working basis and mapped back, ``y_scale^2 T (phi + 2 phi U phi) T'``; the
    adjustment is equivariant under a linear reparametrisation)."""
    w = kr_weights(geo)
    phi = geo.phi
    u = np.zeros_like(phi)
    for r in range(2):
        for s in range(2):
            u += w[r, s] * (geo.q_mats[r][s] - geo.p_mats[r] @ phi @ geo.p_mats[s])
    adj = phi + 2.0 * phi @ u @ phi
    return geo.to_original((adj + adj.T) / 2.0)


def kr_df(geo: VarianceGeometry, contrast: np.ndarray) -> float:
    """Kenward-Roger denominator df of the hypothesis ``L beta = 0`` (L is q x p).

    ``A_1 = sum W_rs tr(Theta phi P_r phi) tr(Theta phi P_s phi)``,
    ``A_2 = sum W_rs tr(Theta phi P_r phi Theta phi P_s phi)`` with
    ``Theta = L' (L phi L')^{-1} L``; then ``df = 4 + (q + 2) / (q rho - 1)`` with
    ``rho`` from ``A_1, A_2`` as in Kenward and Roger (1997), section 4.
    """
    lmat = np.atleast_2d(geo.working_contrast(np.asarray(contrast, dtype=float)))
    q = lmat.shape[0]
    phi = geo.phi
    w = kr_weights(geo)
    theta = lmat.T @ np.linalg.solve(lmat @ phi @ lmat.T, lmat)
    us = [theta @ phi @ pm @ phi for pm in geo.p_mats]
    a1 = a2 = 0.0
    for r in range(2):
        for s in range(2):
            a1 += w[r, s] * float(np.trace(us[r])) * float(np.trace(us[s]))
            a2 += w[r, s] * float(np.sum(us[r] * us[s].T))
    if a2 == 0.0:
        return float("inf")  # the variance parameters do not touch this contrast
    b = (a1 + 6.0 * a2) / (2.0 * q)
    g = ((q + 1.0) * a1 - (q + 4.0) * a2) / ((q + 2.0) * a2)
    denom = 3.0 * q + 2.0 * (1.0 - g)
    c1, c2, c3 = g / denom, (q - g) / denom, (q + 2.0 - g) / denom
    v0 = 1.0 + c1 * b
    v0 = 0.0 if abs(v0) < 1e-10 else v0
    v1, v2 = 1.0 - c2 * b, 1.0 - c3 * b
    top = 1.0 - a2 / q
    ratio = 1.0 if abs(top) < 1e-14 and abs(v1) < 1e-14 else top / v1
    rho = ratio**2 * v0 / (q * v2)
    return float(4.0 + (q + 2.0) / (q * rho - 1.0))


def satterthwaite_df(geo: VarianceGeometry, contrast: np.ndarray, *, boundary: bool) -> float:
    """Satterthwaite df of ``L beta`` (L a single row), as lmerTest computes it.

    ``df = 2 (L phi L')^2 / (g' A g)`` with ``g_r = L phi P_r phi L'`` the gradient of
    ``L phi L'`` in the variance parameters and ``A`` the inverse observed information.
    At the boundary (cluster variance zero) the cluster variance does not vary to first
    order (lmerTest's relative-SD parameterisation has zero derivative there), so only
    the residual variance enters.
    """
    vec = geo.working_contrast(np.asarray(contrast, dtype=float).ravel())
    var = float(vec @ geo.phi @ vec)
    grad = np.array([float(vec @ geo.phi @ pm @ geo.phi @ vec) for pm in geo.p_mats])
    if boundary:
        spread = grad[1] ** 2 / geo.observed_info[1, 1]
    else:
        spread = float(grad @ np.linalg.solve(geo.observed_info, grad))
    if spread == 0.0:
        return float("inf")  # the variance parameters do not touch this contrast
    if spread < 0.0:
        return float("nan")  # observed information not positive definite: no df
    return float(2.0 * var**2 / spread)


def _working(geo: VarianceGeometry, lmat: np.ndarray) -> np.ndarray:
    """Contrasts of the original coefficients in the basis of ``geo`` (the same when
    the geometry is in the original basis)."""
    to_working = getattr(geo, "working_contrast", None)
    return lmat if to_working is None else np.asarray(to_working(lmat))


def _model_cov(geo: VarianceGeometry) -> np.ndarray:
    """The model-based covariance of the original coefficients."""
    return np.asarray(getattr(geo, "model_cov", geo.phi))


def kr_f_scaling(geo: VarianceGeometry, contrast: np.ndarray) -> tuple[float, float]:
    """Kenward-Roger denominator df and F scaling ``lambda`` of ``L beta = 0``.

    ``lambda = df (1 - A_2 / q) / (df - 2)`` (1 when ``|df - 2| < 0.01``, and
    ``1 - A_2 / q`` when df is infinite), so that ``lambda F`` with
    ``F = (L b)' (L Phi_A L')^{-1} (L b) / q`` is referred to ``F(q, df)``, exactly as
    ``pbkrtest::KRmodcomp`` (its ``F.scaling``).
    """
    lmat = np.atleast_2d(np.asarray(contrast, dtype=float))
    q = lmat.shape[0]
    df = kr_df(geo, lmat)
    phi = geo.phi
    w = kr_weights(geo)
    lmat = _working(geo, lmat)  # A_2 is invariant under a change of basis
    theta = lmat.T @ np.linalg.solve(lmat @ phi @ lmat.T, lmat)
    us = [theta @ phi @ pm @ phi for pm in geo.p_mats]
    a2 = sum(
        w[r, s] * float(np.sum(us[r] * us[s].T)) for r in range(2) for s in range(2)
    )
    if not np.isfinite(df):
        return df, 1.0 - a2 / q
    if abs(df - 2.0) < 1e-2:
        return df, 1.0
    return df, float(df * (1.0 - a2 / q) / (df - 2.0))


def satterthwaite_f_test(
    geo: VarianceGeometry, contrast: np.ndarray, difference: np.ndarray, *, boundary: bool
) -> tuple[float, int, float]:
    """Satterthwaite F test of ``L beta = rhs`` (``difference = L b - rhs``), as
    ``lmerTest::contestMD``.

    With ``L Phi L' = P diag(d) P'`` (eigenvalues above ``sqrt(eps) d_max`` kept, q of
    them), ``F = sum_m (P_m' (L b - rhs))^2 / d_m / q``; each ``t_m`` has the
    Satterthwaite df ``nu_m`` of the contrast ``P_m' L``, and the F has
    ``2 E / (E - q)`` df with ``E = sum nu_m / (nu_m - 2)`` (the mean when the
    ``nu_m`` agree to 1e-8, 2 when any ``nu_m <= 2``).

    Returns
    -------
    tuple
        ``(F, q, df)``.
    """
    lmat = np.atleast_2d(np.asarray(contrast, dtype=float))
    values, vectors = np.linalg.eigh(lmat @ _model_cov(geo) @ lmat.T)
    order = np.argsort(values)[::-1]  # decreasing, as R's eigen()
    values, vectors = values[order], vectors[:, order]
    keep = values > max(np.sqrt(np.finfo(float).eps) * values[0], 0.0)
    q = int(keep.sum())
    ptl = (vectors.T @ lmat)[:q]
    t2 = (vectors.T @ np.asarray(difference, dtype=float))[:q] ** 2 / values[:q]
    nu = np.array([satterthwaite_df(geo, row, boundary=boundary) for row in ptl])
    if q == 1 or bool(np.all(np.abs(np.diff(nu)) < 1e-8)):
        df = float(np.mean(nu))
    elif bool(np.any(nu <= 2.0)):
        df = 2.0
    else:
        e = float(np.sum(nu / (nu - 2.0)))
        df = 2.0 * e / (e - q)
    return float(t2.sum() / q), q, df
