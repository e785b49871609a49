"""Laplace-approximated restricted likelihood of a random-intercept GLMM (glmmTMB's REML).

The fixed effects are integrated out with the random effects (a flat prior on
``beta``), and the integral over the joint ``(beta, b)`` is approximated by Laplace's
method. With ``u_i = sigma b_i``, ``b_i ~ N(0, 1)`` and the penalised log-likelihood

``h(beta, b) = sum_ij l(y_ij | eta_ij) - sum_i b_i^2 / 2``,
``eta_ij = x_ij' beta + o_ij + sigma b_i``,

the negative restricted log-likelihood is

``f_R(sigma) = -h(beta~, b~) - sum_ij c_ij + log det H / 2 - (p / 2) log(2 pi)``,

where ``(beta~, b~)`` maximises ``h`` for the given ``sigma`` (the joint mode), ``c_ij``
the row constants, and ``H`` the negative Hessian of ``h`` in ``(b, beta)``. ``H`` has a
diagonal ``b`` block ``A_i = 1 - sigma^2 sum_j l''_ij``, the cross blocks ``B_i =
-sigma sum_j l''_ij x_ij`` and ``D = -sum_ij l''_ij x_ij x_ij'``, so
``log det H = sum_i log A_i + log det S`` with the per-cluster Schur complement
``S = D - sum_i B_i B_i' / A_i`` (``p x p``): no ``n x n`` or ``G x G`` matrix is formed.

The gradient in ``sigma`` is ``-sum_i b~_i sum_j l'_ij + tr(H^-1 dH/dsigma) / 2``, the
total derivative of ``H`` running through the joint mode (``d(b~, beta~)/dsigma = H^-1
r``, ``r_i = sum_j l'_ij + sigma b~_i sum_j l''_ij``, ``r_beta = sum_ij l''_ij x_ij
b~_i``) with the third derivatives ``l'''``. The fixed effects reported are
``beta~`` at the estimate ``sigma^``; their covariance is glmmTMB's (the ``beta``
block of the inverse of TMB's joint precision):
``cov(beta) = S^-1 + (d beta~/d sigma)(d beta~/d sigma)' / f_R''(sigma^)``, and
``S^-1`` alone when ``sigma^`` is on the boundary.

Everything is vectorised over ``S`` outcome columns (one column for :func:`crtstats.glmm`,
many for :class:`crtstats.models.BatchedGLMM`), rows sorted by cluster.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from crtstats._options import check_option
from crtstats.exceptions import InvalidParameterError
from crtstats.models._glmm_families import FamilyName, log_density, mode_terms
from crtstats.models._glmm_fit import FitOutcome
from crtstats.models._glmm_quadrature import Evaluation, GLMMProblem

__all__ = ["GLMMMethod", "RemlData", "RemlOutcome", "check_method", "fit_problem",
           "fit_reml"]

#: ``"laplace"``: maximum likelihood; ``"laplace-reml"``: restricted likelihood.
GLMMMethod = Literal["laplace", "laplace-reml"]

_MAX_INNER = 100
_MAX_OUTER = 60
_INNER_TOL = 1e-14  # Newton decrement of h, relative to |h|
_DECREMENT_TOL = 1e-12
_BOUNDARY_SIGMA = 1e-4  # as crtstats.glmm: sigma held fixed below it
_CONVERGED = 1e-6  # outer Newton decrement below which a fit is called converged


def check_method(method: str, family: str, nagq: int) -> None:
    """Check ``method`` of :func:`crtstats.glmm` against the family and ``nagq``."""
    check_option("method", method, get_args(GLMMMethod))
    if method == "laplace-reml" and (family == "negative_binomial" or nagq != 1):
        raise InvalidParameterError(
            f"method='laplace-reml' is the Laplace approximation (nagq=1) for the binomial "
            f"and Poisson families; got family={family!r}, nagq={nagq}. Use "
            "method='laplace' for quadrature or the negative binomial."
        )


@dataclass(frozen=True)
class RemlData:
    """Rows sorted by cluster: ``X (k, p)``, ``offset (k,)``, ``groups (k,)``, each
    cluster's first row ``starts (G,)``, responses and trials ``y, m (k, S)`` and the
    row constants summed per column ``const (S,)``."""

    family: FamilyName
    X: np.ndarray
    offset: np.ndarray
    groups: np.ndarray
    starts: np.ndarray
    y: np.ndarray
    m: np.ndarray
    const: np.ndarray

    def gsum(self, values: np.ndarray) -> np.ndarray:
        """Sums within clusters over the first axis."""
        if self.starts.shape[0] == values.shape[0]:
            return values
        out: np.ndarray = np.add.reduceat(values, self.starts, axis=0)
        return out

    def select(self, cols: np.ndarray) -> RemlData:
        """The columns ``cols``."""
        return RemlData(self.family, self.X, self.offset, self.groups, self.starts,
                        self.y[:, cols], self.m[:, cols], self.const[cols])


@dataclass(frozen=True)
class _Mode:
    """The joint mode and the pieces of ``H`` at it, per column."""

    beta: np.ndarray  # (S, p)
    b: np.ndarray  # (G, S)
    eta: np.ndarray  # (k, S)
    a: np.ndarray  # (G, S): A_i
    bx: np.ndarray  # (G, S, p): B_i
    schur: np.ndarray  # (S, p, p)
    penalised: np.ndarray  # (S,): h at the mode
    converged: np.ndarray  # (S,)


def _pieces(d: RemlData, beta: np.ndarray, b: np.ndarray, sigma: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                       np.ndarray, np.ndarray]:
    """``eta``, ``l'``, ``l''``, ``A``, ``B``, ``S`` and ``h`` at ``(beta, b, sigma)``."""
    eta = d.X @ beta.T + d.offset[:, None] + sigma * b[d.groups]
    t = mode_terms(d.family, eta, d.y, d.m, 1.0)
    a = 1.0 - sigma**2 * d.gsum(t.l2)
    bx = -sigma[None, :, None] * d.gsum(t.l2[:, :, None] * d.X[:, None, :])
    dd = -np.einsum("kp,ks,kq->spq", d.X, t.l2, d.X)
    schur = dd - np.einsum("gsp,gs,gsq->spq", bx, 1.0 / a, bx)
    h = np.sum(log_density(d.family, eta, d.y, d.m, 1.0), axis=0) - 0.5 * np.sum(b**2, axis=0)
    return eta, t.l1, t.l2, a, bx, schur, h


def _penalised(d: RemlData, beta: np.ndarray, b: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    eta = d.X @ beta.T + d.offset[:, None] + sigma * b[d.groups]
    out: np.ndarray = (np.sum(log_density(d.family, eta, d.y, d.m, 1.0), axis=0)
                       - 0.5 * np.sum(b**2, axis=0))
    return out


def joint_mode(d: RemlData, sigma: np.ndarray, beta0: np.ndarray, b0: np.ndarray) -> _Mode:
    """Maximise ``h`` over ``(beta, b)`` for each column by Newton's method with step
    halving (``h`` is strictly concave for the canonical links); the linear system is
    solved through the Schur complement."""
    beta, b = beta0.copy(), b0.copy()
    done = np.zeros(beta.shape[0], dtype=bool)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        eta, l1, _, a, bx, schur, h = _pieces(d, beta, b, sigma)
        for _ in range(_MAX_INNER):
            gb = sigma * d.gsum(l1) - b
            gbeta = np.einsum("kp,ks->sp", d.X, l1)
            rhs = gbeta - np.einsum("gsp,gs->sp", bx, gb / a)
            dbeta = np.linalg.solve(schur, rhs[:, :, None])[:, :, 0]
            db = (gb - np.einsum("gsp,sp->gs", bx, dbeta)) / a
            decrement = np.einsum("sp,sp->s", gbeta, dbeta) + np.sum(gb * db, axis=0)
            small = np.abs(decrement) < _INNER_TOL * np.maximum(1.0, np.abs(h))
            t = np.where(done, 0.0, 1.0)
            for _ in range(30):  # halve the steps that lower h (the last, small, one too)
                trial = _penalised(d, beta + t[:, None] * dbeta, b + t * db, sigma)
                worse = ~(trial >= h - 1e-13 * np.abs(h)) & (t > 0)
                if not worse.any():
                    break
                t = np.where(worse, 0.5 * t, t)
            beta = beta + t[:, None] * dbeta
            b = b + t * db
            eta, l1, _, a, bx, schur, h = _pieces(d, beta, b, sigma)
            done |= small  # a step after a decrement this small is quadratically smaller
            if done.all():
                break
    return _Mode(beta, b, eta, a, bx, schur, h, done)


@dataclass(frozen=True)
class _Value:
    value: np.ndarray  # (S,) f_R
    gradient: np.ndarray  # (S,)
    dbeta: np.ndarray  # (S, p): d beta~ / d sigma
    db: np.ndarray  # (G, S): d b~ / d sigma
    mode: _Mode


def evaluate(d: RemlData, sigma: np.ndarray, beta0: np.ndarray, b0: np.ndarray) -> _Value:
    """``f_R(sigma)`` and its gradient for every column (see the module notes)."""
    md = joint_mode(d, sigma, beta0, b0)
    p = d.X.shape[1]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        t = mode_terms(d.family, md.eta, d.y, d.m, 1.0)
        sign, logdet = np.linalg.slogdet(md.schur)
        logdet = np.where(sign > 0, logdet, np.nan)
        value = (-(md.penalised + d.const) + 0.5 * (np.sum(np.log(md.a), axis=0) + logdet)
                 - 0.5 * p * math.log(2.0 * math.pi))
        s1, s2 = d.gsum(t.l1), d.gsum(t.l2)
        cinv = np.linalg.inv(md.schur)
        v = md.bx / md.a[:, :, None]  # A_i^-1 B_i
        # d(b~, beta~)/d sigma = H^-1 r
        rb = s1 + sigma * md.b * s2
        rbeta = np.einsum("kp,ks->sp", d.X, t.l2 * md.b[d.groups])
        dbeta = np.einsum("spq,sq->sp", cinv, rbeta - np.einsum("gsp,gs->sp", v, rb))
        db = rb / md.a - np.einsum("gsp,sp->gs", v, dbeta)
        e = (d.X @ dbeta.T) + md.b[d.groups] + sigma * db[d.groups]
        l3e = t.l3 * e
        d_a = -2.0 * sigma * s2 - sigma**2 * d.gsum(l3e)
        d_bx = (-d.gsum(t.l2[:, :, None] * d.X[:, None, :])
                - sigma[None, :, None] * d.gsum(l3e[:, :, None] * d.X[:, None, :]))
        cv = np.einsum("spq,gsq->gsp", cinv, v)
        h_bb = 1.0 / md.a + np.einsum("gsp,gsp->gs", v, cv)
        quad = np.einsum("kp,spq,kq->ks", d.X, cinv, d.X)
        trace = (np.sum(h_bb * d_a, axis=0) - 2.0 * np.einsum("gsp,gsp->s", cv, d_bx)
                 - np.sum(l3e * quad, axis=0))
        gradient = -np.sum(md.b * s1, axis=0) + 0.5 * trace
    return _Value(value, gradient, dbeta, db, md)


@dataclass(frozen=True)
class RemlOutcome:
    """The REML fit of every column.

    ``beta (S, p)``, ``sigma (S,)`` (``>= 0``), the restricted log-likelihood, the
    covariance of ``beta`` with ``sigma`` estimated and with ``sigma`` held fixed, the
    joint modes ``b``, the conditional SDs of ``b`` (``sqrt`` of the ``b`` diagonal of
    ``H^-1`` plus ``(du_i/dsigma)^2 / (sigma^2 f_R'')`` for ``u = sigma b`` off the
    boundary, as TMB's ``sdreport``), ``f_R''``, the final decrement, the iterations
    and the convergence flags (decrement below ``1e-6``, inner modes settled, ``S``
    positive definite and ``f_R''`` positive off the boundary ``sigma < 1e-4``).
    """

    beta: np.ndarray
    sigma: np.ndarray
    loglik: np.ndarray
    cov: np.ndarray
    cov_fixed: np.ndarray
    b: np.ndarray
    b_sd: np.ndarray
    curvature: np.ndarray
    decrement: np.ndarray
    iterations: int
    converged: np.ndarray


def _curvature(d: RemlData, sigma: np.ndarray, ev: _Value) -> np.ndarray:
    """``f_R''(sigma)`` by central differences of the analytic gradient."""
    h = 1e-5 * np.maximum(1.0, np.abs(sigma))
    beta, b = ev.mode.beta, ev.mode.b
    both = evaluate(_twice(d), np.concatenate([sigma + h, sigma - h]),
                    np.concatenate([beta, beta]), np.concatenate([b, b], axis=1))
    up, down = np.split(both.gradient, 2)
    out: np.ndarray = (up - down) / (2.0 * h)
    return out


def _twice(d: RemlData) -> RemlData:
    return RemlData(d.family, d.X, d.offset, d.groups, d.starts, np.tile(d.y, 2),
                    np.tile(d.m, 2), np.tile(d.const, 2))


def _newton(d: RemlData, sigma: np.ndarray, beta: np.ndarray
            ) -> tuple[np.ndarray, _Value, np.ndarray, np.ndarray, int]:
    """Damped Newton on ``sigma`` per column from ``sigma`` (``f_R`` is even in it)."""
    n_cols = sigma.shape[0]
    ev = evaluate(d, sigma, beta, np.zeros((d.starts.shape[0], n_cols)))
    curv = _curvature(d, sigma, ev)
    decrement = np.full(n_cols, np.inf)
    active = np.isfinite(ev.value)
    iterations = 0
    for _ in range(_MAX_OUTER):
        iterations += 1
        floor = np.maximum(np.abs(curv), 1e-8)
        # f_R(-sigma) = f_R(sigma): a step never crosses 0, so as not to swap sigma for
        # -sigma (no descent); a boundary optimum is approached by factors of 10
        step = np.clip(-ev.gradient / floor, -0.9 * np.abs(sigma), 2.0) * np.sign(sigma)
        decrement = np.where(active, ev.gradient**2 / floor, decrement)
        if not active.any():
            break
        idx = np.flatnonzero(active)
        t = np.ones(idx.size)
        for _ in range(40):
            trial = evaluate(d.select(idx), sigma[idx] + t * step[idx], ev.mode.beta[idx],
                             ev.mode.b[:, idx])
            better = trial.value <= ev.value[idx] + 1e-13 * np.abs(ev.value[idx])
            if better.all() or t[0] < 1e-8:
                break
            t = np.where(better, t, 0.5 * t)
        keep = idx[better]
        sigma = sigma.copy()
        sigma[keep] = sigma[keep] + t[better] * step[keep]
        active[idx[~better]] = False
        active &= decrement >= _DECREMENT_TOL  # the last, small, step is taken
        ev = evaluate(d, sigma, ev.mode.beta, ev.mode.b)
        curv = _curvature(d, sigma, ev)
    return sigma, ev, curv, decrement, iterations


def fit_reml(d: RemlData, beta0: np.ndarray, sigma0: np.ndarray) -> RemlOutcome:
    """Maximise the restricted likelihood of every column from ``(beta0, sigma0)``."""
    sigma, ev, curv, decrement, iterations = _newton(d, sigma0.astype(float), beta0)
    md = ev.mode
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        cinv = np.linalg.inv(md.schur)
        cov = cinv + np.einsum("sp,sq->spq", ev.dbeta, ev.dbeta) / curv[:, None, None]
        v = md.bx / md.a[:, :, None]
        b_var = 1.0 / md.a + np.einsum("gsp,spq,gsq->gs", v, cinv, v)
        # the uncertainty of sigma^ too (TMB's sdreport): u = sigma b, du/dsigma
        du = md.b + sigma * ev.db
        inside = np.abs(sigma) >= _BOUNDARY_SIGMA
        b_var = b_var + np.where(inside, du**2 / (sigma**2 * curv), 0.0)
        # on the boundary sigma is held fixed, and f_R'' there may be ~0
        pos = np.all(np.linalg.eigvalsh(md.schur) > 0.0, axis=1) & (
            (curv > 0.0) | (np.abs(sigma) < _BOUNDARY_SIGMA))
    converged = (pos & md.converged & (decrement < _CONVERGED) & np.isfinite(ev.value)
                 & np.all(np.isfinite(md.beta), axis=1))
    return RemlOutcome(beta=md.beta, sigma=np.abs(sigma), loglik=-ev.value,
                       cov=0.5 * (cov + cov.transpose(0, 2, 1)),
                       cov_fixed=0.5 * (cinv + cinv.transpose(0, 2, 1)),
                       b=md.b * np.where(sigma < 0, -1.0, 1.0), b_sd=np.sqrt(b_var),
                       curvature=curv, decrement=decrement, iterations=iterations,
                       converged=converged)


def fit_problem(problem: GLMMProblem, beta0: np.ndarray) -> tuple[FitOutcome, RemlOutcome]:
    """The REML fit of one :class:`~crtstats.models._glmm_quadrature.GLMMProblem`
    (binomial or Poisson) from ``beta0`` and ``sigma = 1`` (lme4's start), as a
    :class:`~crtstats.models._glmm_fit.FitOutcome` for the result builder."""
    data = RemlData(problem.family, problem.X, problem.offset, problem.groups,
                    problem.starts, problem.y[:, None], problem.m[:, None],
                    np.array([float(np.sum(problem.const))]))
    res = fit_reml(data, beta0[None, :], np.ones(1))
    phi = np.concatenate([res.beta[0], res.sigma])
    evaluation = Evaluation(value=-float(res.loglik[0]), gradient=None, modes=res.b[:, 0],
                            scales=res.b_sd[:, 0], inner_converged=bool(res.converged[0]))
    outcome = FitOutcome(phi=phi, evaluation=evaluation, hessian=res.curvature[:, None],
                         converged=bool(res.converged[0]), decrement=float(res.decrement[0]),
                         iterations=res.iterations, message="restricted likelihood")
    return outcome, res
