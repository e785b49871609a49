"""The separation check: the fast path gives the full linear programme's answer.

``reference_konis`` is Konis's programme solved whole on every distinct row, as the
check was before the certificate and constraint generation; every property below
compares the fast path with it on small random data sets, separated ones included.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import optimize

from crtstats.models import _glmm_checks
from crtstats.models._glmm_checks import separated_columns, unique_rows


def reference_konis(X: np.ndarray, y: np.ndarray, upper: np.ndarray | None) -> list[int]:
    """Konis (2007) solved whole: the check as it was."""
    at_low = y <= 0
    at_high = (y >= upper) if upper is not None else np.zeros_like(at_low)
    interior = ~(at_low | at_high)
    both = at_low & at_high
    at_low, at_high = at_low & ~both, at_high & ~both
    sign = np.where(at_high, 1.0, 0.0) - np.where(at_low, 1.0, 0.0)
    first, _ = unique_rows(np.column_stack([sign, interior, X]))
    X, sign, interior = X[first], sign[first], interior[first]
    ineq = sign != 0
    res = optimize.linprog(
        -(sign[ineq] @ X[ineq]) if np.any(ineq) else np.zeros(X.shape[1]),
        A_ub=-(sign[ineq, None] * X[ineq]) if np.any(ineq) else None,
        b_ub=np.zeros(int(ineq.sum())) if np.any(ineq) else None,
        A_eq=X[interior] if np.any(interior) else None,
        b_eq=np.zeros(int(interior.sum())) if np.any(interior) else None,
        bounds=[(-1.0, 1.0)] * X.shape[1], method="highs",
    )
    if res.status != 0 or -float(res.fun) <= 1e-6:
        return []
    return [int(j) for j in np.flatnonzero(np.abs(res.x) > 1e-7)]


@st.composite
def data_sets(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Small designs (intercept, a binary column, a coarse and a fine covariate) with
    binary, binomial or count responses; a third of them separated on purpose."""
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(6, 40))
    kind = draw(st.sampled_from(["binary", "binomial", "count"]))
    how = draw(st.sampled_from(["random", "random", "complete", "quasi", "rare"]))
    rng = np.random.default_rng(seed)
    cols = [np.ones(n), rng.integers(0, 2, n).astype(float)]
    cols.append(np.round(rng.normal(size=n), draw(st.integers(0, 2))))
    if draw(st.booleans()):
        cols.append(rng.normal(size=n))
    X = np.column_stack(cols)
    eta = X @ rng.normal(0, 2, X.shape[1])
    if how == "complete":
        eta = 50.0 * np.sign(X @ rng.normal(size=X.shape[1]) + 1e-9)
    elif how == "rare":
        eta = eta - 4.0
    trials = rng.integers(0, 4, n).astype(float) if kind == "binomial" else np.ones(n)
    if kind == "count":
        y = rng.poisson(np.exp(np.clip(eta, -5, 3))).astype(float)
    else:
        y = rng.binomial(trials.astype(int), 1 / (1 + np.exp(-eta))).astype(float)
    if how == "quasi":  # no event where the binary column is 1
        y = np.where(X[:, 1] == 1, 0.0, y)
    return X, y, None if kind == "count" else trials


def _full_rank(X: np.ndarray) -> bool:
    return bool(np.linalg.matrix_rank(X) == X.shape[1])


@given(data_sets())
def test_fast_path_gives_the_full_programmes_answer(
    case: tuple[np.ndarray, np.ndarray, np.ndarray | None],
) -> None:
    X, y, upper = case
    assert separated_columns(X, y, upper) == reference_konis(X, y, upper)


@given(data_sets())
def test_certificate_is_never_issued_for_separated_data(
    case: tuple[np.ndarray, np.ndarray, np.ndarray | None],
) -> None:
    X, y, upper = case
    m = upper
    if m is not None:
        keep = m > 0
        X, y, m = X[keep], y[keep], m[keep]
    sign = np.where((y >= m) if m is not None else np.zeros(len(y), bool), 1.0, 0.0)
    sign = sign - np.where(y <= 0, 1.0, 0.0)
    if X.shape[0] and _glmm_checks._no_separation_certificate(X, y, m, sign):
        assert reference_konis(X, y, m) == []


@given(data_sets())
def test_constraint_generation_decides_as_the_whole_programme(
    case: tuple[np.ndarray, np.ndarray, np.ndarray | None],
) -> None:
    X, y, upper = case
    if not _full_rank(X):
        return
    sign = np.where((y >= upper) if upper is not None else np.zeros(len(y), bool), 1.0, 0.0)
    sign = sign - np.where(y <= 0, 1.0, 0.0)
    if upper is not None:
        sign = np.where(upper > 0, sign, 0.0)
        keep = upper > 0
    else:
        keep = np.ones(len(y), bool)
    with pytest.MonkeyPatch.context() as mp:  # generation from 3 rows, 2 added a round
        mp.setattr(_glmm_checks, "_LP_FULL_ROWS", 3)
        mp.setattr(_glmm_checks, "_LP_ADD_ROWS", 2)
        found = _glmm_checks._konis(X[keep], sign[keep])
    assert bool(found) == bool(reference_konis(X, y, upper))


def test_continuous_covariate_on_many_rows_is_certified() -> None:
    # the case the certificate exists for: no two rows alike, so nothing pools
    rng = np.random.default_rng(3)
    n = 20_000
    X = np.column_stack([np.ones(n), np.repeat([0.0, 1.0], n // 2), rng.normal(0, 1.5, n)])
    y = rng.binomial(1, 1 / (1 + np.exp(1.0 - 0.15 * X[:, 2]))).astype(float)
    sign = np.where(y > 0, 1.0, -1.0)
    assert _glmm_checks._no_separation_certificate(X, y, np.ones(n), sign)
    assert separated_columns(X, y, np.ones(n)) == []


@pytest.mark.parametrize("counts", [False, True])
def test_separation_on_many_rows_is_found_by_generation(counts: bool) -> None:
    rng = np.random.default_rng(4)
    n = 20_000
    arm = np.repeat([0.0, 1.0], n // 2)
    X = np.column_stack([np.ones(n), arm, rng.normal(0, 1.5, n)])
    if counts:
        y = np.where(arm == 1, 0.0, rng.poisson(2.0, n))
        upper = None
    else:
        y = np.where(arm == 1, 0.0, rng.binomial(1, 0.3, n)).astype(float)
        upper = np.ones(n)
    assert separated_columns(X, y, upper) == [1]


def test_rows_without_trials_are_left_out() -> None:
    X = np.column_stack([np.ones(6), [0, 0, 0, 1, 1, 1]])
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    m = np.array([1.0, 2.0, 1.0, 1.0, 2.0, 0.0])
    assert separated_columns(X, y, m) == reference_konis(X, y, m) == []
