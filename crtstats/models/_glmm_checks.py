"""Separation check for the GLMM (and any binary or count fit).

Pure functions of the design arrays; :func:`crtstats.glmm` turns what they find into
errors and warnings.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize

__all__ = ["separated_columns", "unique_rows"]


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

    Solves the linear programme of Konis (2007): find ``d`` with ``|d_j| <= 1`` and
    ``x_i d <= 0`` where ``y_i`` is at its lower bound 0, ``x_i d >= 0`` where it is at
    its upper bound (``upper``: the binomial trials; ``None`` for counts) and
    ``x_i d = 0`` elsewhere, maximising the total ``|x_i d|``. A positive optimum means
    the likelihood keeps rising along ``d``; the columns with ``d_j != 0`` are returned.
    The random intercept does not prevent this: a cluster-level column that separates
    the clusters is as infinite as in a GLM.
    """
    at_low = y <= 0
    at_high = (y >= upper) if upper is not None else np.zeros_like(at_low)
    interior = ~(at_low | at_high)
    both = at_low & at_high  # binomial rows with zero trials carry no information
    at_low, at_high = at_low & ~both, at_high & ~both
    sign = np.where(at_high, 1.0, 0.0) - np.where(at_low, 1.0, 0.0)
    # identical (constraint, row) pairs add nothing to the programme: keep one of each
    first, _ = unique_rows(np.column_stack([sign, interior, X]))
    X, sign, interior = X[first], sign[first], interior[first]
    ineq = sign != 0
    a_ub = -(sign[ineq, None] * X[ineq]) if np.any(ineq) else None
    b_ub = np.zeros(int(np.sum(ineq))) if np.any(ineq) else None
    a_eq = X[interior] if np.any(interior) else None
    b_eq = np.zeros(int(np.sum(interior))) if np.any(interior) else None
    cost = -(sign[ineq] @ X[ineq]) if np.any(ineq) else np.zeros(X.shape[1])
    res = optimize.linprog(
        cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq,
        bounds=[(-1.0, 1.0)] * X.shape[1], method="highs",
    )
    if res.status != 0 or -float(res.fun) <= 1e-6:
        return []
    direction = np.asarray(res.x)
    return [int(j) for j in np.flatnonzero(np.abs(direction) > 1e-7)]
