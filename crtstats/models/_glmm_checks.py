"""Design checks for the GLMM: between-within df, separation, rank.

Pure functions of the design arrays; :func:`crtstats.glmm` turns what they find into
errors and warnings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

__all__ = [
    "BetweenWithin",
    "between_within",
    "rank_deficient_columns",
    "separated_columns",
    "unique_rows",
]


@dataclass(frozen=True)
class BetweenWithin:
    """Between-within degrees of freedom of each column of the fixed-effects design.

    Attributes
    ----------
    cluster_level
        True for columns constant within every cluster (the intercept included).
    df_between
        ``G - p_b``: clusters minus the number of cluster-level columns.
    df_within
        ``N - G - p_w``: rows minus clusters minus the number of within-cluster columns.
    df
        ``df_between`` for cluster-level columns, ``df_within`` for the others.
    """

    cluster_level: np.ndarray
    df_between: int
    df_within: int
    df: np.ndarray


def between_within(X: np.ndarray, groups: np.ndarray, n_groups: int) -> BetweenWithin:
    """Classify the columns of ``X`` and give each its between-within df.

    A column is cluster-level when its range within every cluster is zero (up to
    ``1e-12`` of its scale), as SAS PROC GLIMMIX decides for ``DDFM=BETWITHIN``.
    """
    col_max = np.full((n_groups, X.shape[1]), -np.inf)
    col_min = np.full((n_groups, X.shape[1]), np.inf)
    np.maximum.at(col_max, groups, X)
    np.minimum.at(col_min, groups, X)
    scale = np.maximum(np.max(np.abs(X), axis=0), 1.0)
    cluster_level = np.all(col_max - col_min <= 1e-12 * scale, axis=0)
    p_b = int(np.sum(cluster_level))
    p_w = int(X.shape[1] - p_b)
    df_between = n_groups - p_b
    df_within = X.shape[0] - n_groups - p_w
    df = np.where(cluster_level, float(df_between), float(df_within))
    return BetweenWithin(cluster_level, df_between, df_within, df)


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


def rank_deficient_columns(X: np.ndarray) -> list[int]:
    """Indices of columns that are (numerically) linear combinations of earlier columns.

    From the diagonal of ``R`` in the unpivoted QR decomposition of the column-scaled
    ``X``: ``|R_jj|`` near zero means column ``j`` lies in the span of columns ``< j``.
    """
    scale = np.maximum(np.linalg.norm(X, axis=0), np.finfo(float).tiny)
    r = np.linalg.qr(X / scale, mode="r")
    diag = np.abs(np.diag(r))
    return [int(j) for j in np.flatnonzero(diag < 1e-9 * max(X.shape))]


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
