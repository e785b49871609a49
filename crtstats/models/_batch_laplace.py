"""Laplace likelihood of the random-intercept logistic GLMM for many outcome columns.

The same marginal likelihood, gradient and optimiser as :func:`crtstats.glmm` with
``nagq=1`` (:mod:`crtstats.models._glmm_quadrature`, :mod:`crtstats.models._glmm_fit`),
vectorised over trials. Rows that share cluster and covariates are pooled into one
row of summed successes and trials (``Y`` and the mask enter only through these sums),
so with cluster-level covariates a trial is ``G`` binomial counts whatever the number
of service users. With ``u_i = sigma b_i`` and ``phi = (beta, sigma)``:

``-log L = -sum_i [g_i(b^_i) - log(1 - sigma^2 sum_j l''_ij) / 2]``,
``g_i(b) = sum_j [y_ij eta_ij - m_ij log(1 + e^eta_ij)] - b^2 / 2``,

with ``b^_i`` the conditional mode (damped Newton per cluster, vectorised over
clusters and trials) and the analytic gradient through the mode and the curvature.
The optimiser is damped Newton from the GLM start (``sigma = 1``, lme4's start), with
the Hessian from central differences of the analytic gradient (step
``1e-5 max(1, |phi_j|)``, as the scalar fit), eigenvalues floored to make each step a
descent direction, and step halving; it stops when the Newton decrement is below
``1e-10``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

__all__ = ["Pooled", "evaluate", "glm_start", "hessian", "newton"]

_MAX_INNER = 200
_INNER_TOL = 1e-11
_MAX_STEP = 4.0
_SAFE_STEP = 0.1
_DECREMENT_TOL = 1e-10
_MAX_NEWTON = 100


@dataclass(frozen=True)
class Pooled:
    """Pooled binomial data of ``S`` trials: ``k`` distinct (cluster, covariate) rows.

    ``y`` and ``m`` are ``(k, S)`` successes and trials; ``X`` is ``(k, p)``; the rows
    are sorted by cluster and ``starts`` holds each cluster's first row.
    """

    X: np.ndarray
    groups: np.ndarray
    starts: np.ndarray
    y: np.ndarray
    m: np.ndarray

    def select(self, cols: np.ndarray) -> Pooled:
        """The trials ``cols``."""
        return Pooled(self.X, self.groups, self.starts, self.y[:, cols], self.m[:, cols])

    @property
    def n_groups(self) -> int:
        """Clusters."""
        return int(self.starts.shape[0])

    def gsum(self, values: np.ndarray) -> np.ndarray:
        """Sums within clusters: ``(k, S)`` to ``(G, S)``, ``(k, S, p)`` to ``(G, S, p)``.

        The rows are sorted by cluster, so this is a segmented sum (no BLAS call, which
        stalls on a busy machine); with one row per cluster it is the identity.
        """
        if self.starts.shape[0] == values.shape[0]:
            return values
        out: np.ndarray = np.add.reduceat(values, self.starts, axis=0)
        return out


def _log_integrand(d: Pooled, eta0: np.ndarray, sigma: np.ndarray, b: np.ndarray) -> np.ndarray:
    eta = eta0 + sigma * b[d.groups]
    out: np.ndarray = d.gsum(d.y * eta - d.m * np.logaddexp(0.0, eta)) - 0.5 * b**2
    return out


def _settled(step: np.ndarray, sigma: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`crtstats.models._glmm_quadrature._settled` per trial."""
    longest = np.max(np.abs(step), axis=0)
    tol = _INNER_TOL * np.maximum(1.0, np.max(np.abs(b), axis=0))
    out: np.ndarray = (longest < tol) | (
        (longest < 1e-3) & (0.5 * np.abs(sigma) * longest**2 < 1e-2 * tol))
    return out


def modes(d: Pooled, eta0: np.ndarray, sigma: np.ndarray,
          start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Conditional modes ``(G, S)`` by the damped Newton steps of
    :func:`crtstats.models._glmm_quadrature.conditional_modes`, and whether each
    trial's modes settled. Trials drop out of the iterations as they settle."""
    b = start.copy()
    done = np.zeros(b.shape[1], dtype=bool)
    act = np.arange(b.shape[1])
    sub, e0, sg, bb = d, eta0, sigma, b
    for _ in range(_MAX_INNER):
        eta = e0 + sg * bb[sub.groups]
        p = special.expit(eta)
        mp = sub.m * p
        grad = sg * sub.gsum(sub.y - mp) - bb
        curv = 1.0 - sg**2 * sub.gsum(mp * (p - 1.0))
        step = np.clip(grad / curv, -_MAX_STEP, _MAX_STEP)
        long = np.abs(sg) * np.abs(step) > _SAFE_STEP
        if np.any(long):  # halve the long steps that lower g, on those trials only
            cols = np.flatnonzero(long.any(axis=0))
            part, e0c, sgc, bc = sub.select(cols), e0[:, cols], sg[cols], bb[:, cols]
            stc, lc = step[:, cols], long[:, cols]
            current = _log_integrand(part, e0c, sgc, bc)
            for _ in range(40):
                trial = _log_integrand(part, e0c, sgc, bc + stc)
                worse = lc & ~(trial >= current - 1e-12 * np.abs(current))
                if not np.any(worse):
                    break
                stc = np.where(worse, 0.5 * stc, stc)
            step[:, cols] = stc
        bb = bb + step
        b[:, act] = bb
        settled = _settled(step, sg, bb)
        if settled.all():
            done[act] = True
            break
        if settled.any():
            done[act[settled]] = True
            keep = ~settled
            act = act[keep]
            sub, e0, sg, bb = sub.select(np.flatnonzero(keep)), e0[:, keep], sg[keep], bb[:, keep]
    return b, done


@dataclass(frozen=True)
class Evaluation:
    """Negative log-likelihood ``(S,)``, gradient ``(S, p + 1)``, modes and scales."""

    value: np.ndarray
    gradient: np.ndarray
    modes: np.ndarray
    scales: np.ndarray
    inner_ok: np.ndarray


@dataclass(frozen=True)
class _Pieces:
    value: np.ndarray  # (S,)
    d_eta: np.ndarray  # (k, S): derivative of -log L in each row's linear predictor
    d_sigma: np.ndarray  # (G, S): each cluster's derivative of -log L in sigma
    modes: np.ndarray
    scales: np.ndarray
    inner_ok: np.ndarray


def _pieces(d: Pooled, eta0: np.ndarray, sigma: np.ndarray, start: np.ndarray) -> _Pieces:
    """The Laplace terms at linear predictors ``eta0`` (without the random effect)."""
    b, ok = modes(d, eta0, sigma, start)
    eta = eta0 + sigma * b[d.groups]
    pr = special.expit(eta)
    l1 = d.y - d.m * pr
    l2 = -d.m * (pr * (1.0 - pr))
    l3 = l2 * (1.0 - 2.0 * pr)
    s1, s2, s3 = d.gsum(l1), d.gsum(l2), d.gsum(l3)
    curv = 1.0 - sigma**2 * s2
    s = 1.0 / np.sqrt(curv)
    a = d.gsum(d.y * eta - d.m * np.logaddexp(0.0, eta)) - 0.5 * b**2
    gb = sigma * s1 - b
    cd = -0.5 * s**2  # big_c * ds/dD (big_c = 1 / s at the one node)
    # the chain rule through the modes and curvatures, per row
    ratio = sigma / curv
    extra = ((gb * ratio)[d.groups] * l2
             - (cd * sigma**2)[d.groups] * (l3 + (s3 * sigma * ratio)[d.groups] * l2))
    db_sigma = (s1 + sigma * s2 * b) / curv
    dd_sigma = -2.0 * sigma * s2 - sigma**2 * s3 * (b + sigma * db_sigma)
    return _Pieces(value=-np.sum(np.log(s) + a, axis=0), d_eta=-(l1 + extra),
                   d_sigma=-(s1 * b + gb * db_sigma + cd * dd_sigma), modes=b, scales=s,
                   inner_ok=ok)


def evaluate(d: Pooled, phi: np.ndarray, start: np.ndarray) -> Evaluation:
    """Laplace negative log-likelihood and its gradient for every trial (as
    :func:`crtstats.models._glmm_quadrature.evaluate` with one node)."""
    p = d.X.shape[1]
    pc = _pieces(d, np.einsum("kp,sp->ks", d.X, phi[:, :p]), phi[:, p], start)
    grad = np.concatenate([np.einsum("kp,ks->sp", d.X, pc.d_eta),
                           np.sum(pc.d_sigma, axis=0)[:, None]], axis=1)
    return Evaluation(pc.value, grad, pc.modes, pc.scales, pc.inner_ok)


def _cluster_level_hessian(d: Pooled, phi: np.ndarray, start: np.ndarray) -> np.ndarray:
    """The Hessian when each cluster has one pooled row (cluster-level covariates).

    Cluster ``i``'s term depends on ``beta`` only through its linear predictor
    ``eta_i``, so the Hessian is ``X' diag(F_ee) X`` with the cross terms
    ``X' F_es`` and ``sum F_ss``: central differences of the per-cluster derivatives in
    ``(eta_i, sigma)``, four evaluations for all coefficients (steps ``1e-5 max(1,
    |.|)``, as the scalar fit's).
    """
    p = d.X.shape[1]
    n_sims = phi.shape[0]
    eta0 = np.einsum("kp,sp->ks", d.X, phi[:, :p])
    sigma = phi[:, p]
    he = 1e-5 * np.maximum(1.0, np.abs(eta0))
    hs = 1e-5 * np.maximum(1.0, np.abs(sigma))
    tiled = Pooled(d.X, d.groups, d.starts, np.tile(d.y, 4), np.tile(d.m, 4))
    etas = np.concatenate([eta0 + he, eta0 - he, eta0, eta0], axis=1)
    sigmas = np.concatenate([sigma, sigma, sigma + hs, sigma - hs])
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        pc = _pieces(tiled, etas, sigmas, np.tile(start, 4))
    e_up, e_down, s_up, s_down = np.split(pc.d_eta, 4, axis=1)
    ge_up, ge_down, gs_up, gs_down = np.split(pc.d_sigma, 4, axis=1)
    f_ee = (e_up - e_down) / (2.0 * he)
    f_es = 0.5 * ((s_up - s_down) / (2.0 * hs) + (ge_up - ge_down) / (2.0 * he))
    f_ss = np.sum(gs_up - gs_down, axis=0) / (2.0 * hs)
    out = np.empty((n_sims, p + 1, p + 1))
    out[:, :p, :p] = np.einsum("kp,ks,kq->spq", d.X, f_ee, d.X)
    out[:, :p, p] = out[:, p, :p] = np.einsum("kp,ks->sp", d.X, f_es)
    out[:, p, p] = f_ss
    return out


def glm_start(d: Pooled) -> np.ndarray:
    """``(beta, 1)`` from a few IRLS steps of the GLM, as
    :func:`crtstats.models._glmm_fit.glm_start` (trials in the columns)."""
    X, y, m = d.X, d.y, d.m
    k, p = X.shape
    mu = (y + 0.5) / (m + 1.0)
    eta = np.log(mu / (1.0 - mu))
    beta = np.zeros((y.shape[1], p))
    for _ in range(8):
        pr = 1.0 / (1.0 + np.exp(-eta))
        w = np.maximum(m * pr * (1.0 - pr), 1e-8)
        work = eta + (y - m * pr) / w
        a = np.einsum("kp,ks,kq->spq", X, w, X) + 1e-10 * np.eye(p)
        previous, beta = beta, np.linalg.solve(a, ((w * work).T @ X)[:, :, None])[:, :, 0]
        eta = np.clip(X @ beta.T, -30.0, 30.0)
        if np.all(np.max(np.abs(beta - previous), axis=1)
                  < 1e-6 * (1.0 + np.max(np.abs(beta), axis=1))):
            break
    return np.concatenate([beta, np.ones((beta.shape[0], 1))], axis=1)


_STACK = 2_000_000  # pooled rows x trials evaluated in one call by hessian()


def _gradients(d: Pooled, phis: list[np.ndarray], start: np.ndarray) -> list[np.ndarray]:
    """The gradient at each of several ``phi`` (each ``(S, q)``), evaluated together:
    the trials are repeated side by side, as many as ``_STACK`` allows at a time."""
    n_sims = start.shape[1]
    per_call = max(1, _STACK // max(1, d.y.shape[0] * n_sims))
    out: list[np.ndarray] = []
    for first in range(0, len(phis), per_call):
        block = phis[first:first + per_call]
        reps = len(block)
        tiled = Pooled(d.X, d.groups, d.starts, np.tile(d.y, reps), np.tile(d.m, reps))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            grad = evaluate(tiled, np.concatenate(block), np.tile(start, reps)).gradient
        out.extend(np.split(grad, reps))
    return out


def hessian(d: Pooled, phi: np.ndarray, start: np.ndarray, *,
            central: bool = True) -> np.ndarray:
    """Differences of the analytic gradient (central, or forward from ``phi`` for the
    search steps), symmetrised, ``(S, q, q)``."""
    if d.starts.shape[0] == d.y.shape[0]:
        return _cluster_level_hessian(d, phi, start)
    q = phi.shape[1]
    h = 1e-5 * np.maximum(1.0, np.abs(phi))
    points = []
    for j in range(q):
        up = phi.copy()
        up[:, j] += h[:, j]
        points.append(up)
        if central:
            down = phi.copy()
            down[:, j] -= h[:, j]
            points.append(down)
    if not central:
        points.append(phi)
    grads = _gradients(d, points, start)
    out = np.empty((phi.shape[0], q, q))
    for j in range(q):
        if central:
            out[:, :, j] = (grads[2 * j] - grads[2 * j + 1]) / (2.0 * h[:, j, None])
        else:
            out[:, :, j] = (grads[j] - grads[-1]) / h[:, j, None]
    return 0.5 * (out + out.transpose(0, 2, 1))


def _direction(hess: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """``-H^{-1} g`` with eigenvalues floored (:func:`..._glmm_fit._newton_direction`)."""
    vals, vecs = np.linalg.eigh(hess)
    floor = 1e-8 * np.maximum(1.0, np.max(np.abs(vals), axis=1))
    vals = np.maximum(np.abs(vals), floor[:, None])
    out: np.ndarray = -np.einsum("sij,sj->si", vecs,
                                 np.einsum("sji,sj->si", vecs, grad) / vals)
    return out


@dataclass(frozen=True)
class NewtonOutcome:
    """Where the Newton iterations stopped, per trial."""

    phi: np.ndarray
    evaluation: Evaluation
    decrement: np.ndarray


def _take(ev: Evaluation, new: Evaluation, rows: np.ndarray, sel: np.ndarray) -> None:
    """Write ``new[sel]`` into ``ev`` at ``rows`` (in place)."""
    ev.value[rows] = new.value[sel]
    ev.gradient[rows] = new.gradient[sel]
    ev.modes[:, rows] = new.modes[:, sel]
    ev.scales[:, rows] = new.scales[:, sel]
    ev.inner_ok[rows] = new.inner_ok[sel]


def newton(d: Pooled, phi0: np.ndarray) -> NewtonOutcome:
    """Damped Newton iterations for every trial until the decrement is below 1e-10."""
    phi = phi0.copy()
    n_sims = phi.shape[0]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        ev = evaluate(d, phi, np.zeros((d.n_groups, n_sims)))
    decrement = np.full(n_sims, np.inf)
    active = np.ones(n_sims, dtype=bool)
    for _ in range(_MAX_NEWTON):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        sub = d.select(idx)
        hess = hessian(sub, phi[idx], ev.modes[:, idx], central=False)
        step = _direction(hess, ev.gradient[idx])
        dec = -np.einsum("si,si->s", ev.gradient[idx], step)
        decrement[idx] = dec
        moving = np.flatnonzero(dec >= _DECREMENT_TOL)
        final = np.flatnonzero(dec < _DECREMENT_TOL)
        if final.size:  # the last, tiny step: the optimum to rounding, not to 1e-5 SE
            rows = idx[final]
            trial_phi = phi[rows] + step[final]
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                trial = evaluate(d.select(rows), trial_phi, ev.modes[:, rows])
            gain = np.flatnonzero(trial.value <= ev.value[rows] + 1e-12 * np.abs(
                ev.value[rows]))
            phi[rows[gain]] = trial_phi[gain]
            _take(ev, trial, rows[gain], gain)
            active[rows] = False
        t = np.ones(moving.size)
        pending = np.arange(moving.size)
        while pending.size and t[pending[0]] > 1e-6:
            rows = idx[moving[pending]]
            trial_phi = phi[rows] + t[pending, None] * step[moving[pending]]
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                trial = evaluate(d.select(rows), trial_phi, ev.modes[:, rows])
            better: np.ndarray = trial.value <= ev.value[rows]
            accept = np.flatnonzero(better)
            phi[rows[accept]] = trial_phi[accept]
            _take(ev, trial, rows[accept], accept)
            pending = pending[~better]
            t[pending] *= 0.5
        if pending.size:  # no descent along the direction: stop there, as the scalar fit
            active[idx[moving[pending]]] = False
    return NewtonOutcome(phi, ev, decrement)
