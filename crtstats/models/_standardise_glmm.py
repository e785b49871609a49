"""What standardisation needs from a :func:`~crtstats.glmm` fit, rebuilt from its data.

The result holds the covariance of ``beta`` (the beta block of the inverse Hessian of
the negative log-likelihood in ``phi = (beta, sigma[, log theta])``). The delta method
also needs the variance parameters' rows: their Hessian columns ``B`` (p x r) and
``C`` (r x r) are computed as the fit computes its Hessian (central differences of
the analytic gradient, at the estimates), and with ``V_bb`` the result's covariance
the joint covariance follows from the Schur complement:

``V_bs = -V_bb B C^-1``, ``V_ss = C^-1 + C^-1 B' V_bb B C^-1``.

This is the inverse of the Laplace (or AGQ) deviance Hessian, as lme4's ``vcov`` with
``use.hessian = TRUE`` for ``beta``, extended to ``sigma``; it costs 2r likelihood
gradients, not the 2(p + r) of the full Hessian.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crtstats.exceptions import ModelSpecificationError
from crtstats.models._design import Design
from crtstats.models._details import GlmmDetails
from crtstats.models._glmm import _offset_shift, _trials
from crtstats.models._glmm_families import mode_terms, row_constant
from crtstats.models._glmm_quadrature import GLMMProblem, evaluate, make_problem
from crtstats.models._result import CRTResult
from crtstats.models._standardise_design import Counterfactual

__all__ = ["GlmmPieces", "glmm_pieces"]

_BOUNDARY_SIGMA = 1e-4  # as glmm: lme4's isSingular() tolerance
_LOGLIK_AGREE = 1e-7


@dataclass(frozen=True)
class GlmmPieces:
    """The estimates, their joint covariance over ``phi``, and the cluster modes.

    ``u_grad`` is the derivative of each cluster's predicted effect ``u_i = sigma b_i``
    in ``phi`` (G x k), through the mode equation; ``weights`` the binomial trials.
    """

    beta: np.ndarray
    sigma: float
    cov: np.ndarray
    boundary: bool
    u: np.ndarray
    u_grad: np.ndarray
    weights: np.ndarray


def _pool(design: Design, m: np.ndarray, offset: np.ndarray, family: str,
          cf: Counterfactual) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                       np.ndarray, float]:
    """Binomial rows sharing cluster, offset and covariates pooled (as ``make_problem``
    pools them, but grouped by the columns' codes rather than by sorting rows), with
    the log-likelihood constant this changes; other families are returned as they are."""
    y, X, groups = design.y, design.X, design.groups
    if family != "binomial":
        return y, m, X, offset, groups, 0.0
    first, inverse = cf.patterns([*design.columns, "(offset)", "(cluster)"])
    k = first.shape[0]
    py, pm = (np.bincount(inverse, weights=v, minlength=k) for v in (y, m))
    # 0/1 rows have no binomial coefficient
    before = 0.0 if np.all(m == 1.0) else float(np.sum(row_constant("binomial", y, m, 1.0)[0]))
    after = float(np.sum(row_constant("binomial", py, pm, 1.0)[0]))
    return py, pm, X[first], offset[first], groups[first], before - after


def _phi(result: CRTResult, details: GlmmDetails, problem: GLMMProblem) -> np.ndarray:
    parts = [np.asarray(result.param_values, dtype=float),
             np.array([np.sqrt(details.cluster_variance)])]
    if problem.family == "negative_binomial":
        assert details.nb_shape is not None
        parts.append(np.array([np.log(details.nb_shape)]))
    return np.concatenate(parts)


def _variance_columns(problem: GLMMProblem, phi: np.ndarray, start: np.ndarray,
                      rows: list[int]) -> np.ndarray:
    """Columns ``rows`` of the Hessian, by central differences of the gradient."""
    out = np.empty((phi.shape[0], len(rows)))
    for k, j in enumerate(rows):
        h = 1e-5 * max(1.0, abs(float(phi[j])))
        up, down = phi.copy(), phi.copy()
        up[j] += h
        down[j] -= h
        g_up, g_down = (evaluate(problem, x, start).gradient for x in (up, down))
        assert g_up is not None and g_down is not None
        out[:, k] = (g_up - g_down) / (2.0 * h)
    return out


def _joint_cov(v_bb: np.ndarray, cols: np.ndarray, p: int) -> np.ndarray:
    """The joint covariance from ``V_bb`` and the Hessian's variance columns."""
    b, c = cols[:p], cols[p:]
    c = 0.5 * (c + c.T)
    c_inv = np.linalg.inv(c)
    v_bs = -v_bb @ b @ c_inv
    v_ss = c_inv + c_inv @ b.T @ v_bb @ b @ c_inv
    top = np.hstack([v_bb, v_bs])
    out = np.asarray(np.vstack([top, np.hstack([v_bs.T, v_ss])]), dtype=float)
    sym: np.ndarray = 0.5 * (out + out.T)
    return sym


def _mode_gradient(problem: GLMMProblem, phi: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``d u_i / d phi`` with ``u_i = sigma b_i`` and ``b_i`` the conditional mode.

    Differentiating the mode equation ``sigma sum_j l'(eta_j) - b_i = 0``:
    ``db/dbeta = sigma sum_j l''_j x_j / D_i``, ``db/dsigma = (sum_j l'_j + sigma
    b_i sum_j l''_j) / D_i`` (and ``sigma sum_j dl'_j/dalpha / D_i`` for NB2), with
    ``D_i = 1 - sigma^2 sum_j l''_j``.
    """
    beta, sigma, theta = problem.split(phi)
    eta = problem.X @ beta + problem.offset + sigma * b[problem.groups]
    mt = mode_terms(problem.family, eta, problem.y, problem.m, theta)
    s2 = problem.group_sum(mt.l2)
    curv = 1.0 - sigma**2 * s2
    db = [sigma * problem.group_sum(mt.l2[:, None] * problem.X) / curv[:, None],
          ((problem.group_sum(mt.l1) + sigma * s2 * b) / curv)[:, None]]
    if problem.family == "negative_binomial":
        db.append((sigma * problem.group_sum(mt.l1a) / curv)[:, None])
    grad = sigma * np.hstack(db)
    grad[:, problem.n_beta] += b  # d(sigma b)/dsigma = b + sigma db/dsigma
    return grad


def glmm_pieces(result: CRTResult, data: pd.DataFrame, cf: Counterfactual) -> GlmmPieces:
    """Rebuild the fit's likelihood on ``data`` and return the pieces (see module).

    Raises
    ------
    ModelSpecificationError
        If the log-likelihood at the estimates on ``data`` is not the fit's: the data
        are not those the model was fitted to.
    """
    spec, details, design = result.spec, result.details, cf.design
    assert spec is not None and isinstance(details, GlmmDetails)
    family = result.family
    m = _trials(data, design, spec.trials)
    shift, intercept = _offset_shift(design)
    nagq = int(spec.options.get("nagq", 1))
    y, pm, X, off, groups, const = _pool(design, m, design.offset - shift, family, cf)
    problem = make_problem(family, y, pm, X, off, groups, design.n_clusters, nagq)  # type: ignore[arg-type]
    phi = _phi(result, details, problem)
    if intercept is not None:
        phi[intercept] += shift
    p = problem.n_beta
    sigma = float(phi[p])
    ranef = result.random_effects
    assert ranef is not None
    labels = tuple(str(v) for v in ranef["cluster"])
    if labels != design.cluster_labels:
        raise ModelSpecificationError(
            "standardise: the clusters of these data are not those of the fit; pass the "
            "data the model was fitted to."
        )
    u = ranef["estimate"].to_numpy(dtype=float)
    start = u / sigma if sigma > 0 else np.zeros_like(u)
    ev = evaluate(problem, phi, start, gradient=False)
    if result.loglik is not None and abs(const - ev.value - result.loglik) > _LOGLIK_AGREE * (
        1.0 + abs(result.loglik)
    ):
        raise ModelSpecificationError(
            f"standardise: the log-likelihood at the fit's estimates on these data is "
            f"{const - ev.value!r}, not the fit's {result.loglik!r}: pass the data the model was "
            "fitted to (same rows, same columns)."
        )
    v_bb = np.array(result.cov_values, dtype=float)
    k = phi.shape[0]
    boundary = sigma < _BOUNDARY_SIGMA
    if boundary:
        cov = np.zeros((k, k))
        cov[:p, :p] = v_bb
    else:
        cols = _variance_columns(problem, phi, ev.modes, list(range(p, k)))
        cov = _joint_cov(v_bb, cols, p)
    b = ev.modes
    return GlmmPieces(
        beta=np.asarray(result.param_values, dtype=float), sigma=sigma, cov=cov,
        boundary=boundary, u=sigma * b, u_grad=_mode_gradient(problem, phi, b),
        weights=m,
    )
