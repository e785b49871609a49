"""Separation check for the GLMM (and any binary or count fit).

Pure functions of the design arrays; :func:`crtstats.glmm` turns what they find into
errors and warnings.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy import optimize

__all__ = ["separated_columns", "unique_rows"]

_LP_FULL_ROWS = 2000  # up to this many distinct rows the programme is solved whole
_LP_ADD_ROWS = 1000  # violated constraints added per round of constraint generation
_LP_MAX_ROUNDS = 60
_LP_FEAS_TOL = 1e-7  # HiGHS's primal feasibility tolerance, used for the added rows too
_LP_POSITIVE = 1e-6  # an optimum above this is separation (as Konis's programme)
_CERT_STEPS = 15  # Newton steps of the GLM that looks for the certificate
_CERT_RCOND = 1e-10  # below this reciprocal condition of R, leave the question to the LP


def unique_rows(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One representative row index per distinct row of ``keys``, and each row's group.

    ``keys[first][inverse]`` equals ``keys``. A lexicographic sort; much faster than
    ``np.unique(axis=0)`` on float rows.
    """
    order = np.lexsort(keys.T[::-1])
    ordered = keys[order]
    new = np.r_[True, np.any(ordered[1:] != ordered[:-1], axis=1)]
    inverse = np.empty(keys.shape[0], dtype=np.intp)
    inverse[order] = np.cumsum(new) - 1
    return order[new], inverse


def separated_columns(X: np.ndarray, y: np.ndarray, upper: np.ndarray | None) -> list[int]:
    """Columns whose coefficients are infinite because of (quasi-)complete separation.

    Parameters
    ----------
    X
        Fixed-effects design, n x p, of full column rank.
    y
        Response: successes (binomial) or counts.
    upper
        Binomial trials per row; ``None`` for counts (no upper bound).

    Returns
    -------
    list of int
        The columns with ``d_j != 0`` in the direction ``d`` found by the linear
        programme below; empty when the maximum likelihood estimate is finite.

    Notes
    -----
    With ``s_i = +1`` where ``y_i`` is at its upper bound (``upper``), ``-1`` where it
    is 0, and the other rows "interior", the data are separated exactly when the cone
    ``C = {d : s_i x_i d >= 0 (bounded rows), x_i d = 0 (interior rows)}`` holds a
    ``d != 0``: the log-likelihood then rises along ``d`` for ever (Albert and Anderson
    1984). Konis (2007) decides it by the linear programme: maximise
    ``sum_bounded s_i x_i d`` over ``C`` with ``|d_j| <= 1``; a positive optimum is
    separation. The random intercept does not prevent it: a cluster-level column that
    separates the clusters is as infinite as in a GLM.

    The programme costs about ``N^1.8`` on ``N`` distinct rows, so it is reached by
    two exact routes that do not change its answer:

    1. A certificate of no separation (Gordan's alternative). If ``r`` is any vector
       with ``X' r = 0`` and ``s_i r_i > 0`` on every bounded row, then for ``d`` in
       ``C``: ``0 = r' X d = sum_bounded |r_i| s_i x_i d + sum_interior r_i x_i d``,
       a sum of non-negative terms plus zeros, so ``s_i x_i d = 0`` on bounded rows,
       ``X d = 0`` and ``d = 0`` (full rank): ``C = {0}``. The GLM score residuals
       ``r_i = y_i - m_i p_i`` (binomial) or ``y_i - mu_i`` (counts) have
       ``s_i r_i > 0`` on every bounded row at *any* finite ``beta`` (``0 < p_i < 1``,
       ``mu_i > 0``); Newton steps of the GLM make ``X' r`` small, and ``r`` is then
       projected exactly onto ``{X' r = 0}`` (through the QR decomposition of ``X``).
       The certificate is accepted only if every bounded ``s_i r_i`` exceeds twice a
       bound on what the remaining rounding error could change it by. The GLM's
       convergence is therefore never taken as proof; only the exact algebraic
       identity is, and it implies the programme's optimum is 0. When no certificate
       is found (separation, near-separation, ill-conditioning), the programme is
       solved.
    2. The programme by constraint generation: it is solved with the objective over
       all rows and the constraints of a subset of rows (a relaxation, so its optimum
       is at least the full one); an optimum of at most ``1e-6`` ends with no
       separation, and a solution feasible for every row (to HiGHS's tolerance
       ``1e-7``) is optimal for the full programme. Otherwise the most violated rows
       are added and it is solved again. Up to 2000 distinct rows it is solved whole.

    Identical rows are pooled first (they repeat a constraint); binomial rows with no
    trials carry no information and are left out.

    References
    ----------
    Albert A, Anderson JA (1984). On the existence of maximum likelihood estimates in
    logistic regression models. Biometrika 71:1-10.
    Konis K (2007). Linear programming algorithms for detecting separated data in
    binary logistic regression models. DPhil thesis, University of Oxford.

    Examples
    --------
    No admission in the intervention arm: its coefficient is minus infinity (in R,
    ``detectseparation::detect_separation`` on the GLM).

    >>> import numpy as np
    >>> arm = np.repeat([0.0, 1.0], 5)
    >>> X = np.column_stack([np.ones(10), arm])
    >>> separated_columns(X, np.r_[0, 1, 1, 0, 1, np.zeros(5)], np.ones(10))
    [1]
    >>> separated_columns(X, np.r_[0, 1, 1, 0, 1, 0, 0, 1, 0, 0], np.ones(10))
    []
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    m = None if upper is None else np.asarray(upper, dtype=float)
    if m is not None:  # binomial rows with zero trials carry no information
        keep = m > 0
        X, y, m = X[keep], y[keep], m[keep]
    at_low = y <= 0
    at_high = (y >= m) if m is not None else np.zeros_like(at_low)
    sign = np.where(at_high, 1.0, 0.0) - np.where(at_low, 1.0, 0.0)
    if X.shape[0] == 0 or not np.any(sign != 0):
        return []  # no bounded row: every row forces x_i d = 0, so d = 0
    if _no_separation_certificate(X, y, m, sign):
        return []
    first, _ = unique_rows(np.column_stack([sign, X]))
    return _konis(X[first], sign[first])


def _glm_residuals(
    X: np.ndarray, y: np.ndarray, m: np.ndarray | None
) -> Iterator[np.ndarray]:
    """Score residuals of successive Newton (IRLS) iterates of the GLM, without offset.

    Binomial with logit link when ``m`` is given, Poisson with log link otherwise. The
    linear predictor is clipped to ``[-30, 30]`` so that the iterates stay finite
    under separation; any finite iterate serves (see :func:`separated_columns`).
    """
    if m is not None:
        mu0 = (y + 0.5) / (m + 1.0)
        eta = np.log(mu0 / (1.0 - mu0))
    else:
        eta = np.log(y + 0.5)
    for _ in range(_CERT_STEPS):
        if m is not None:
            p = 1.0 / (1.0 + np.exp(-eta))
            resid, w = y - m * p, np.maximum(m * p * (1.0 - p), 1e-300)
        else:
            mu = np.exp(eta)
            resid, w = y - mu, np.maximum(mu, 1e-300)
        yield resid
        xtw = X.T * w
        try:
            beta = np.linalg.solve(xtw @ X, xtw @ eta + X.T @ resid)
        except np.linalg.LinAlgError:
            return
        eta = np.clip(X @ beta, -30.0, 30.0)


def _no_separation_certificate(
    X: np.ndarray, y: np.ndarray, m: np.ndarray | None, sign: np.ndarray
) -> bool:
    """True only if an exact certificate that the cone ``C`` is ``{0}`` was found.

    See :func:`separated_columns`, Notes (1). With ``Q`` an orthonormal basis of the
    columns of ``X``, ``cert = r - Q Q' r`` has ``X' cert = 0`` up to rounding; a
    further correction ``-Q (Q' cert)`` would change row ``i`` by at most
    ``|q_i| |Q' cert|``, so the signs hold exactly if every bounded ``s_i cert_i``
    exceeds twice that (plus the rounding of ``Q' cert`` itself). Returns False (leave
    it to the linear programme) whenever the certificate fails or cannot be trusted.
    """
    n, p = X.shape
    if n <= p:
        return False
    scale = np.maximum(np.abs(X).max(axis=0), np.finfo(float).tiny)
    q, r_mat = np.linalg.qr(X / scale)
    diag = np.abs(np.diag(r_mat))
    if diag.min() <= _CERT_RCOND * diag.max():
        return False
    q_norm = np.sqrt(np.sum(q**2, axis=1))
    bounded = sign != 0
    rounding = 4.0 * n * np.finfo(float).eps
    with np.errstate(over="ignore", invalid="ignore"):
        for resid in _glm_residuals(X / scale, y, m):
            if not np.all(np.isfinite(resid)):
                return False
            cert = resid - q @ (q.T @ resid)
            left = float(np.linalg.norm(q.T @ cert)) + rounding * float(np.linalg.norm(cert))
            slack = 2.0 * q_norm[bounded] * left
            if np.all(sign[bounded] * cert[bounded] > slack):
                return True
    return False


def _konis(X: np.ndarray, sign: np.ndarray) -> list[int]:
    """Konis's programme on the distinct rows, by constraint generation when large."""
    ineq = sign != 0
    # the constraint rows: a_i d >= 0 (bounded, a_i = s_i x_i), a_i d = 0 (interior)
    a = np.where(ineq[:, None], sign[:, None] * X, X)
    cost = -a[ineq].sum(axis=0) if np.any(ineq) else np.zeros(X.shape[1])
    n = X.shape[0]
    if n <= _LP_FULL_ROWS:
        active = np.ones(n, dtype=bool)
    else:
        active = np.zeros(n, dtype=bool)
        active[np.linspace(0, n - 1, _LP_FULL_ROWS // 2).astype(np.intp)] = True
        active[np.argmin(X, axis=0)] = True
        active[np.argmax(X, axis=0)] = True
    for _ in range(_LP_MAX_ROUNDS):
        direction = _solve(a, ineq, active, cost)
        if direction is None:
            return []
        values = a @ direction
        violation = np.where(ineq, -values, np.abs(values))
        violated = (violation > _LP_FEAS_TOL) & ~active
        if not np.any(violated):
            return [int(j) for j in np.flatnonzero(np.abs(direction) > 1e-7)]
        worst = np.flatnonzero(violated)
        worst = worst[np.argsort(-violation[worst])[:_LP_ADD_ROWS]]
        active[worst] = True
    active[:] = True  # not settled by generation: the whole programme
    direction = _solve(a, ineq, active, cost)
    return [] if direction is None else [
        int(j) for j in np.flatnonzero(np.abs(direction) > 1e-7)
    ]


def _solve(
    a: np.ndarray, ineq: np.ndarray, active: np.ndarray, cost: np.ndarray
) -> np.ndarray | None:
    """The programme with the constraints of the ``active`` rows; None if its optimum
    is at most ``1e-6`` (no separation) or it could not be solved."""
    rows_ub = active & ineq
    rows_eq = active & ~ineq
    a_ub = -a[rows_ub] if np.any(rows_ub) else None
    b_ub = np.zeros(int(rows_ub.sum())) if np.any(rows_ub) else None
    a_eq = a[rows_eq] if np.any(rows_eq) else None
    b_eq = np.zeros(int(rows_eq.sum())) if np.any(rows_eq) else None
    res = optimize.linprog(
        cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq,
        bounds=[(-1.0, 1.0)] * a.shape[1], method="highs",
    )
    if res.status != 0 or -float(res.fun) <= _LP_POSITIVE:
        return None
    return np.asarray(res.x, dtype=float)
