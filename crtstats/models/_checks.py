"""The checks every fitter shares: arguments, columns, rank, cluster-level terms, df.

One implementation of each, so that every fitter refuses the same input with the same
error type and message, and classifies the same column the same way:

* :func:`check_fit_arguments`: ``formula`` is text, ``data`` a DataFrame and each
  column option a column name (:class:`~crtstats.InvalidParameterError` otherwise).
* :func:`require_columns`: :class:`~crtstats.MissingColumnError` naming what is missing.
* :func:`aliased_columns` / :func:`check_rank`: a scale- and shift-invariant rank check.
* :func:`cluster_level_columns` / :func:`between_within`: columns constant within every
  cluster and the between-within degrees of freedom.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crtstats._options import require_columns
from crtstats.exceptions import (
    InvalidParameterError,
    ModelSpecificationError,
    NotEstimableError,
    _format_value,
)

__all__ = [
    "ALIAS_TOL",
    "BetweenWithin",
    "SmallestDf",
    "aliased_columns",
    "between_within",
    "check_column_option",
    "check_fit_arguments",
    "check_rank",
    "cluster_level_columns",
    "constant_within",
    "require_columns",
]

#: A column is aliased when, after centring and scaling, the part of it orthogonal to the
#: columns before it is at most this fraction of its length (R's ``lm`` uses 1e-7).
ALIAS_TOL = 1e-7

#: Relative tolerance on the within-cluster range for a column to count as cluster-level.
_LEVEL_TOL = 1e-12


def check_column_option(option: str, value: Any, *, optional: bool = False) -> None:
    """Raise :class:`InvalidParameterError` unless ``value`` is a column name (a string).

    ``optional=True`` also accepts ``None``.
    """
    if value is None and optional:
        return
    if not isinstance(value, str) or not value:
        kind = "a column name (a non-empty string)" + (" or None" if optional else "")
        raise InvalidParameterError(f"{option} must be {kind}; got {_format_value(value)}.")


def check_fit_arguments(
    fitter: str, formula: Any, data: Any, columns: dict[str, Any] | None = None,
    *, optional: Sequence[str] = (),
) -> None:
    """Check the arguments every fitter takes, with one error type and message template.

    Parameters
    ----------
    fitter
        The fitter's name, for the message.
    formula, data
        The formula (a string) and the data (a DataFrame).
    columns
        Column options by name, e.g. ``{"cluster": cluster, "offset": offset}``.
    optional
        The names in ``columns`` that may be ``None``.
    """
    if not isinstance(formula, str) or not formula.strip():
        raise InvalidParameterError(
            f"{fitter}: formula must be a string such as 'y ~ arm'; got "
            f"{_format_value(formula)}."
        )
    if not isinstance(data, pd.DataFrame):
        raise InvalidParameterError(
            f"{fitter}: data must be a pandas DataFrame; got {type(data).__name__}."
        )
    for option, value in (columns or {}).items():
        check_column_option(f"{fitter}: {option}", value, optional=option in optional)


def aliased_columns(X: np.ndarray) -> list[int]:
    """Indices of the columns of ``X`` that are linear combinations of earlier columns.

    Column ``j`` is aliased when ``|R_jj| <= ALIAS_TOL * ref_j`` in the unpivoted QR
    decomposition of ``X`` (R's ``lm`` criterion). ``ref_j`` is the length of the column
    about its mean when a constant lies in the span of ``X`` (so adding 1e8 to a
    covariate changes nothing), its plain length otherwise; with an explicit intercept
    the columns are also centred before the decomposition, for accuracy. The decision
    depends neither on the number of rows nor on the units of any column.
    """
    X = np.asarray(X, dtype=float)
    n, p = X.shape
    if p == 0:
        return []
    work = X / np.maximum(np.abs(X).max(axis=0), np.finfo(float).tiny)
    lo, hi = work.min(axis=0), work.max(axis=0)
    constant = (hi - lo) <= _LEVEL_TOL * np.maximum(np.abs(hi), np.abs(lo))
    explicit = bool(np.any(constant & (hi != 0)))
    if explicit:
        has_constant = True
    else:
        coef, *_ = np.linalg.lstsq(work, np.ones(n), rcond=None)
        resid = np.ones(n) - work @ coef
        has_constant = float(resid @ resid) <= 1e-20 * n
    centred = work - work.mean(axis=0)
    ref = np.where(constant | (not has_constant), np.linalg.norm(work, axis=0),
                   np.linalg.norm(centred, axis=0))
    if explicit:
        work = np.where(constant, work, centred)
    zero = ref == 0.0
    work[:, ~zero] /= ref[~zero]
    r_mat: np.ndarray = np.linalg.qr(work, mode="r")  # type: ignore[assignment]
    diag = np.zeros(p)
    k = min(r_mat.shape)
    diag[:k] = np.abs(np.diag(r_mat))[:k]
    return [int(j) for j in np.flatnonzero(zero | (diag <= ALIAS_TOL))]


def check_rank(X: np.ndarray, names: Sequence[str], *, formula: str) -> None:
    """Raise :class:`ModelSpecificationError` naming the aliased columns, if any."""
    n, p = X.shape
    if n <= p:
        raise ModelSpecificationError(
            f"{formula!r} has {p} coefficients but only {n} complete rows; the model needs "
            "more rows than coefficients. Use a smaller model or more data."
        )
    aliased = aliased_columns(X)
    if aliased:
        raise NotEstimableError(
            f"the fixed-effects design of {formula!r} is rank deficient (rank "
            f"{p - len(aliased)} of {p}): column(s) {[names[j] for j in aliased]} are "
            "linear combinations of the columns before them (or constant, or all zero). "
            "Remove the redundant term(s) or merge factor levels that never occur; R's "
            "lm() would report them as NA."
        )


def constant_within(values: np.ndarray, groups: np.ndarray, n_groups: int) -> bool:
    """Whether ``values`` (one per row) are exactly constant within every cluster."""
    values = np.asarray(values)
    first = np.empty(n_groups, dtype=values.dtype)
    first[groups] = values  # any row's value; equal to all of them iff constant
    return bool(np.array_equal(first[groups], values))


def cluster_level_columns(X: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Boolean per column of ``X``: True where it is constant within every cluster.

    A column counts as constant when its range within every cluster is at most
    ``1e-12`` of its largest absolute value (as SAS PROC GLIMMIX decides for
    ``DDFM=BETWITHIN``); the intercept is cluster-level.
    """
    X = np.asarray(X, dtype=float)
    first = np.zeros((n_groups, X.shape[1]))
    first[groups] = X  # any row of each cluster
    scale = np.maximum(np.abs(X).max(axis=0, initial=0.0), np.finfo(float).tiny)
    spread = np.abs(X - first[groups]).max(axis=0, initial=0.0)
    out: np.ndarray = spread <= _LEVEL_TOL * scale
    return out


@dataclass(frozen=True)
class BetweenWithin:
    """Between-within degrees of freedom of each column of a fixed-effects design.

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

    @property
    def contrast_df(self) -> Callable[[np.ndarray], float]:
        """df of a contrast: the smallest df of the coefficients it involves (a picklable
        callable, so results that hold it can cross process boundaries)."""
        return SmallestDf(self.df)


@dataclass(frozen=True)
class SmallestDf:
    """The df of a contrast ``L``: the smallest per-coefficient df among the terms it
    involves (any row of ``L`` with a non-zero weight)."""

    per_coef: np.ndarray

    def __call__(self, vec: np.ndarray) -> float:
        used = np.atleast_2d(np.asarray(vec, dtype=float)).any(axis=0)
        return float(self.per_coef[used].min())


def between_within(X: np.ndarray, groups: np.ndarray, n_groups: int) -> BetweenWithin:
    """Classify the columns of ``X`` and give each its between-within df.

    Schluchter and Elashoff (1990); SAS ``DDFM=BETWITHIN``; Li and Redden (2015): a
    cluster-level column gets ``G - p_b`` df, any other ``N - G - p_w``.
    """
    level = cluster_level_columns(X, groups, n_groups)
    p_b = int(level.sum())
    p_w = int(X.shape[1] - p_b)
    df_between = n_groups - p_b
    df_within = int(X.shape[0]) - n_groups - p_w
    df = np.where(level, float(df_between), float(df_within))
    return BetweenWithin(level, df_between, df_within, df)
