"""Kenward-Roger and Satterthwaite inference for one contrast, vectorised over trials.

The formulas are those of :mod:`crtstats.models._lmm_ddf` written with the grouped
statistics of :mod:`crtstats.models._batch_reml`: with ``h_m = sigma2 + m tau`` and
``u_m = sigma2 / h_m`` for clusters of size ``m`` and ``B_m = sum_{n_i = m} s_i s_i'``,

* ``P_1 = sum_m B_m / h_m^2``, ``P_2 = (W + sum_m u_m^2 / m B_m) / sigma2^2``,
* ``Q_11 = sum_m m B_m / h_m^3``, ``Q_12 = sum_m B_m / h_m^3``,
  ``Q_22 = (W + sum_m u_m^3 / m B_m) / sigma2^3``,

and the traces ``tr(V^{-1} G_r V^{-1} G_s)`` are sums over sizes weighted by the number
of clusters of each size. For a single contrast ``l`` (one row) with ``f = Phi l'`` and
``a_r = f' P_r f / (l Phi l')``, Kenward and Roger's ``A_1`` and ``A_2`` are both
``sum_rs W_rs a_r a_s``, and the adjusted variance is
``l Phi l' + 2 sum_rs W_rs (f' Q_rs f - (P_r f)' Phi (P_s f))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crtstats.models._batch_reml import GroupedStats, RemlBatch, resid_quads

__all__ = ["ContrastInference", "contrast_inference"]


@dataclass(frozen=True)
class ContrastInference:
    """Variance (working units) and df of one contrast per trial."""

    variance: np.ndarray
    df: np.ndarray


@dataclass(frozen=True)
class _Geometry:
    phi: np.ndarray  # (S, p, p)
    p_mats: tuple[np.ndarray, np.ndarray]
    q_mats: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
    trace_p: np.ndarray  # (S, 2, 2)


def _sum_sizes(weights: np.ndarray, mats: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.einsum("sm,smij->sij", weights, mats)
    return out


def _geometry(stats: GroupedStats, fit: RemlBatch) -> _Geometry:
    p = stats.p
    s2 = fit.sigma2[:, None]
    tau = (fit.t * fit.sigma2)[:, None]
    m = stats.sizes[None, :]
    h = s2 + m * tau
    u = s2 / h
    b_mats = stats.between[:, :, :p, :p]
    w = stats.within[:, :p, :p]
    phi = fit.sigma2[:, None, None] * fit.a_inv
    p1 = _sum_sizes(1.0 / h**2, b_mats)
    p2 = (w + _sum_sizes(u**2 / m, b_mats)) / (s2**2)[:, :, None]
    q11 = _sum_sizes(m / h**3, b_mats)
    q12 = _sum_sizes(1.0 / h**3, b_mats)
    q22 = (w + _sum_sizes(u**3 / m, b_mats)) / (s2**3)[:, :, None]
    c = stats.counts
    k11 = np.sum(c * (m / h) ** 2, axis=1)
    k12 = np.sum(c * m / h**2, axis=1)
    k22 = np.sum(c * ((m - 1.0) / s2**2 + 1.0 / h**2), axis=1)
    k_trace = np.stack([np.stack([k11, k12], -1), np.stack([k12, k22], -1)], -2)
    p_mats = (p1, p2)
    q_mats = ((q11, q12), (q12, q22))
    phi_p = [phi @ pm for pm in p_mats]
    trace_p = np.empty_like(k_trace)
    for r in range(2):
        for s in range(2):
            trace_p[:, r, s] = (
                k_trace[:, r, s]
                - 2.0 * np.einsum("sij,sij->s", phi, q_mats[r][s])
                + np.einsum("sij,sji->s", phi_p[r], phi_p[s])
            )
    return _Geometry(phi, p_mats, q_mats, trace_p)


def _inv2(mats: np.ndarray) -> np.ndarray:
    """Inverse of each symmetric 2 x 2 matrix (closed form)."""
    a, b, d = mats[:, 0, 0], mats[:, 0, 1], mats[:, 1, 1]
    det = a * d - b * b
    out = np.empty_like(mats)
    out[:, 0, 0], out[:, 1, 1] = d / det, a / det
    out[:, 0, 1] = out[:, 1, 0] = -b / det
    return out


def _kr_weights(trace_p: np.ndarray) -> np.ndarray:
    """``2 tr(P G_r P G_s)^{-1}`` (pseudo-inverse where nearly singular), as
    :func:`crtstats.models._lmm_ddf.kr_weights`."""
    eig = np.linalg.eigvalsh(trace_p)
    out = 2.0 * _inv2(trace_p)
    near = np.min(np.abs(eig), axis=1) <= 1e-10
    if np.any(near):
        out[near] = 2.0 * np.linalg.pinv(trace_p[near])
    return out


def _kr_df(a2: np.ndarray) -> np.ndarray:
    """:func:`crtstats.models._lmm_ddf.kr_df` for ``q = 1`` (where ``A_1 = A_2``)."""
    q = 1.0
    a1 = a2
    with np.errstate(divide="ignore", invalid="ignore"):
        b = (a1 + 6.0 * a2) / (2.0 * q)
        g = ((q + 1.0) * a1 - (q + 4.0) * a2) / ((q + 2.0) * a2)
        denom = 3.0 * q + 2.0 * (1.0 - g)
        c1, c2, c3 = g / denom, (q - g) / denom, (q + 2.0 - g) / denom
        v0 = 1.0 + c1 * b
        v0 = np.where(np.abs(v0) < 1e-10, 0.0, v0)
        v1, v2 = 1.0 - c2 * b, 1.0 - c3 * b
        top = 1.0 - a2 / q
        ratio = np.where((np.abs(top) < 1e-14) & (np.abs(v1) < 1e-14), 1.0, top / v1)
        rho = ratio**2 * v0 / (q * v2)
        df = 4.0 + (q + 2.0) / (q * rho - 1.0)
    return np.where(a2 == 0.0, np.inf, df)


def _observed_info(stats: GroupedStats, fit: RemlBatch, geo: _Geometry) -> np.ndarray:
    """:func:`crtstats.models._lmm_ddf._observed_info` (REML) from grouped sums."""
    p = stats.p
    s2 = fit.sigma2[:, None]
    m = stats.sizes[None, :]
    h = s2 + m * (fit.t * fit.sigma2)[:, None]
    u = s2 / h
    beta = fit.beta
    b_mats = stats.between[:, :, :p, :p]
    # sum_{n_i = m} s_i R_i and sum R_i^2, R_i the cluster sums of y - X beta
    sr = stats.between[:, :, :p, p] - np.einsum("smij,sj->smi", b_mats, beta)
    rr = resid_quads(stats.between, beta)
    w = stats.within
    wxr = w[:, :p, p] - np.einsum("sij,sj->si", w[:, :p, :p], beta)
    r = np.concatenate([-beta, np.ones((beta.shape[0], 1))], axis=1)
    wrr = np.einsum("si,sij,sj->s", r, w, r)
    g1 = np.einsum("sm,smi->si", 1.0 / h**2, sr)
    g2 = (wxr + np.einsum("sm,smi->si", u**2 / m, sr)) / s2**2
    m11 = np.sum(rr * m / h**3, axis=1)
    m12 = np.sum(rr / h**3, axis=1)
    m22 = (wrr + np.sum(u**3 / m * rr, axis=1)) / fit.sigma2**3
    g = np.stack([g1, g2], axis=2)  # (S, p, 2)
    quad = np.stack([np.stack([m11, m12], -1), np.stack([m12, m22], -1)], -2)
    quad = quad - np.einsum("sir,sij,sjt->srt", g, geo.phi, g)
    out: np.ndarray = quad - 0.5 * geo.trace_p
    return out


def contrast_inference(
    stats: GroupedStats, fit: RemlBatch, contrast: np.ndarray, ddf: str
) -> ContrastInference:
    """Variance and df of the working contrast ``contrast`` in every trial.

    ``ddf="kenward-roger"`` gives the adjusted variance and KR df;
    ``"satterthwaite"`` the model-based variance and lmerTest's df (only the residual
    variance enters at the boundary).
    """
    geo = _geometry(stats, fit)
    f = np.einsum("sij,j->si", geo.phi, contrast)
    var = f @ contrast
    pf = [np.einsum("sij,sj->si", pm, f) for pm in geo.p_mats]
    grad = np.stack([np.einsum("si,si->s", f, x) for x in pf], axis=1)  # f' P_r f
    if ddf == "kenward-roger":
        w = _kr_weights(geo.trace_p)
        a = grad / var[:, None]
        a2 = np.einsum("sr,srt,st->s", a, w, a)
        adj = np.zeros_like(var)
        for r in range(2):
            for s in range(2):
                qf = np.einsum("si,sij,sj->s", f, geo.q_mats[r][s], f)
                pp = np.einsum("si,sij,sj->s", pf[r], geo.phi, pf[s])
                adj += w[:, r, s] * (qf - pp)
        return ContrastInference(var + 2.0 * adj, _kr_df(a2))
    info = _observed_info(stats, fit, geo)
    inside = np.einsum("sr,srt,st->s", grad, _inv2(info), grad)
    edge = grad[:, 1] ** 2 / info[:, 1, 1]
    spread = np.where(fit.boundary, edge, inside)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = 2.0 * var**2 / spread
    df = np.where(spread == 0.0, np.inf, np.where(spread < 0.0, np.nan, df))
    return ContrastInference(var, df)
