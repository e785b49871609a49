"""Joint Wald tests of ``L beta = rhs``: the hypothesis, the methods, the result.

Each fitter gives its result a :class:`WaldMethod`, a callable that turns a full-rank
q x p hypothesis matrix and ``L b - rhs`` into an F statistic with its numerator and
denominator df. The methods:

* :func:`kenward_roger_wald` (``lmm``): pbkrtest ``KRmodcomp``, the scaled F;
* :func:`satterthwaite_wald` (``lmm``): lmerTest ``contestMD``;
* :func:`cr2_htz_wald` (``ols`` with CR2): clubSandwich ``Wald_test(test = "HTZ")``;
* :func:`plain_wald` (everything else): ``F = W / q`` with the smallest of the rows'
  df (between-within, ``G - q``, residual or cluster-level t df).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol, TypeAlias

import numpy as np
import pandas as pd
from scipy import stats

from crtstats.exceptions import ModelSpecificationError
from crtstats.models._cr2 import ClusterRobust, htz_df
from crtstats.models._details import readonly_array
from crtstats.models._lmm_ddf import VarianceGeometry, kr_f_scaling, satterthwaite_f_test

__all__ = [
    "Hypothesis",
    "WaldMethod",
    "WaldStatistic",
    "WaldTestResult",
    "cr2_htz_wald",
    "hypothesis_matrix",
    "kenward_roger_wald",
    "plain_wald",
    "rhs_vector",
    "satterthwaite_wald",
]

Hypothesis: TypeAlias = (
    np.ndarray
    | Sequence[Sequence[float]]
    | Sequence[float]
    | Mapping[str, Mapping[str, float]]
    | Sequence[str]
)
"""A q x p matrix ``L``, named contrasts (name -> {term: weight}), or term names (each
term = 0)."""


@dataclass(frozen=True)
class WaldStatistic:
    """F statistic of one hypothesis with its df (``scaling``: the factor applied to
    ``W / q``, e.g. Kenward-Roger's ``lambda`` or HTZ's ``delta``)."""

    statistic: float
    num_df: float
    den_df: float
    scaling: float = 1.0
    method: str | None = None


class WaldMethod(Protocol):
    """Turns ``L`` (q x p, full row rank) and ``L b - rhs`` into a :class:`WaldStatistic`."""

    def __call__(self, lmat: np.ndarray, difference: np.ndarray) -> WaldStatistic: ...


def _used(lmat: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.any(lmat != 0.0, axis=0))


def _quadratic(lmat: np.ndarray, difference: np.ndarray, cov: np.ndarray) -> float:
    """``d' (L V L')^{-1} d`` using only the terms ``L`` touches."""
    used = _used(lmat)
    sub = lmat[:, used]
    middle = sub @ cov[np.ix_(used, used)] @ sub.T
    if not np.all(np.isfinite(middle)):
        raise ModelSpecificationError(
            "the covariance between the terms of this hypothesis is not estimated (NaN), "
            "so a joint test is not available; test the terms one at a time with "
            "contrast()."
        )
    return float(difference @ np.linalg.solve(middle, difference))


@dataclass(frozen=True)
class PlainWald:
    """``F = (L b - rhs)' (L V L')^{-1} (L b - rhs) / q`` on ``q`` and the smallest of
    ``row_df(L_k)`` over the rows (the between-within or constant df of the fit)."""

    cov: np.ndarray
    row_df: Callable[[np.ndarray], float]

    def __call__(self, lmat: np.ndarray, difference: np.ndarray) -> WaldStatistic:
        q = lmat.shape[0]
        den = min(float(self.row_df(row)) for row in lmat)
        return WaldStatistic(_quadratic(lmat, difference, self.cov) / q, q, den)


@dataclass(frozen=True)
class KenwardRogerWald:
    """``lambda (L b - rhs)' (L Phi_A L')^{-1} (L b - rhs) / q`` on ``(q, df_KR)``, as
    ``pbkrtest::KRmodcomp`` (``Phi_A`` the adjusted covariance)."""

    geo: VarianceGeometry
    cov_adjusted: np.ndarray

    def __call__(self, lmat: np.ndarray, difference: np.ndarray) -> WaldStatistic:
        q = lmat.shape[0]
        df, scaling = kr_f_scaling(self.geo, lmat)
        wald = _quadratic(lmat, difference, self.cov_adjusted)
        return WaldStatistic(scaling * wald / q, q, df, scaling)


@dataclass(frozen=True)
class SatterthwaiteWald:
    """The multi-df Satterthwaite F of ``lmerTest::contestMD``."""

    geo: VarianceGeometry
    boundary: bool

    def __call__(self, lmat: np.ndarray, difference: np.ndarray) -> WaldStatistic:
        f, q, df = satterthwaite_f_test(self.geo, lmat, difference, boundary=self.boundary)
        return WaldStatistic(f, q, df)


@dataclass(frozen=True)
class Cr2HtzWald:
    """The CR2 Hotelling T-squared (HTZ) test of ``clubSandwich::Wald_test``.

    Holds the least-squares pieces (model matrix, residuals, bread ``(X'X)^{-1}``,
    cluster codes) and forms the per-cluster CR2 matrices only when a test is asked
    for, so a fit pays nothing for it.
    """

    X: np.ndarray = field(repr=False)
    resid: np.ndarray = field(repr=False)
    bread: np.ndarray = field(repr=False)
    groups: np.ndarray = field(repr=False)
    cov: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        for name in ("X", "resid", "bread", "cov"):
            object.__setattr__(self, name, readonly_array(getattr(self, name)))
        groups = np.array(self.groups, dtype=np.intp, copy=True)
        groups.flags.writeable = False
        object.__setattr__(self, "groups", groups)

    @cached_property
    def robust(self) -> ClusterRobust:
        """The CR2 pieces per cluster (computed once, on first use)."""
        return ClusterRobust.from_fit(self.X, self.resid, self.bread, self.groups)

    def __call__(self, lmat: np.ndarray, difference: np.ndarray) -> WaldStatistic:
        q = lmat.shape[0]
        nu = htz_df(self.robust, lmat)
        delta = max((nu - q + 1.0) / nu, 0.0)
        wald = _quadratic(lmat, difference, self.cov)
        return WaldStatistic(delta * wald / q, q, nu - q + 1.0, delta, "cr2-htz")


def plain_wald(cov: np.ndarray, row_df: Callable[[np.ndarray], float]) -> WaldMethod:
    """:class:`PlainWald` of ``cov`` and ``row_df``."""
    return PlainWald(cov, row_df)


def kenward_roger_wald(geo: VarianceGeometry, cov_adjusted: np.ndarray) -> WaldMethod:
    """:class:`KenwardRogerWald` of ``geo`` and the adjusted covariance."""
    return KenwardRogerWald(geo, cov_adjusted)


def satterthwaite_wald(geo: VarianceGeometry, *, boundary: bool) -> WaldMethod:
    """:class:`SatterthwaiteWald` of ``geo``."""
    return SatterthwaiteWald(geo, boundary)


def cr2_htz_wald(
    X: np.ndarray, resid: np.ndarray, bread: np.ndarray, groups: np.ndarray, cov: np.ndarray
) -> WaldMethod:
    """:class:`Cr2HtzWald` of a least-squares fit and its CR2 covariance."""
    return Cr2HtzWald(X, resid, bread, groups, cov)


def _from_mapping(
    hypothesis: Mapping[str, Mapping[str, float]], names: tuple[str, ...]
) -> tuple[np.ndarray, tuple[str, ...]]:
    rows = []
    for label, weights in hypothesis.items():
        if not isinstance(weights, Mapping):
            raise ModelSpecificationError(
                f"named contrast {label!r} must map term names to weights; got "
                f"{weights!r}."
            )
        unknown = [k for k in weights if k not in names]
        if unknown:
            raise ModelSpecificationError(
                f"contrast {label!r} names unknown term(s) {unknown}; the model's terms "
                f"are {list(names)}."
            )
        rows.append([float(weights.get(n, 0.0)) for n in names])
    return np.array(rows, dtype=float).reshape(len(rows), len(names)), tuple(
        str(k) for k in hypothesis
    )


def hypothesis_matrix(
    hypothesis: Hypothesis, names: tuple[str, ...]
) -> tuple[np.ndarray, tuple[str, ...]]:
    """The q x p matrix ``L`` and a label per row, checked to be of full row rank.

    Raises
    ------
    ModelSpecificationError
        For unknown terms, a wrong number of columns, non-finite or all-zero rows, or
        rows that are linearly dependent (a rank-deficient hypothesis).
    """
    p = len(names)
    if isinstance(hypothesis, Mapping):
        lmat, labels = _from_mapping(hypothesis, names)
    elif isinstance(hypothesis, str) or (
        isinstance(hypothesis, Sequence) and len(hypothesis) > 0
        and all(isinstance(h, str) for h in hypothesis)
    ):
        terms = [hypothesis] if isinstance(hypothesis, str) else list(hypothesis)
        lmat, labels = _from_mapping({str(t): {str(t): 1.0} for t in terms}, names)
    else:
        lmat = np.atleast_2d(np.asarray(hypothesis, dtype=float))
        if lmat.ndim != 2 or lmat.shape[1] != p:
            raise ModelSpecificationError(
                f"the hypothesis matrix must have one column per coefficient ({p}); got "
                f"shape {np.shape(hypothesis)}."
            )
        labels = tuple(f"row {k + 1}" for k in range(lmat.shape[0]))
    if lmat.shape[0] == 0 or not np.all(np.isfinite(lmat)):
        raise ModelSpecificationError("the hypothesis must have rows of finite weights.")
    if np.any(~np.any(lmat != 0.0, axis=1)):
        raise ModelSpecificationError("a row of the hypothesis has all weights zero.")
    scaled = lmat / np.abs(lmat).max(axis=1, keepdims=True)
    rank = int(np.linalg.matrix_rank(scaled))
    if rank < lmat.shape[0]:
        raise ModelSpecificationError(
            f"the {lmat.shape[0]} rows of the hypothesis are linearly dependent (rank "
            f"{rank}): drop the redundant rows so that each constraint is tested once."
        )
    return lmat, labels


def rhs_vector(rhs: float | Sequence[float], q: int) -> np.ndarray:
    """The right-hand side as q finite values (one value is used for every row)."""
    values = np.asarray(rhs, dtype=float)
    if values.ndim == 0:
        values = np.full(q, float(values))
    if values.shape != (q,) or not np.all(np.isfinite(values)):
        raise ModelSpecificationError(
            f"rhs must be one finite value or one per row of the hypothesis ({q}); got "
            f"{rhs!r}."
        )
    return values


def f_pvalue(statistic: float, num_df: float, den_df: float) -> float:
    """Upper tail of ``F(num_df, den_df)`` (chi-squared / q when ``den_df`` is inf)."""
    if not np.isfinite(statistic) or np.isnan(den_df) or den_df <= 0:
        return float("nan")
    if np.isinf(den_df):
        return float(stats.chi2.sf(statistic * num_df, num_df))
    return float(stats.f.sf(statistic, num_df, den_df))


@dataclass(frozen=True, kw_only=True)
class WaldTestResult:
    """A joint test of ``L beta = rhs``.

    Attributes
    ----------
    statistic
        The F statistic (also as ``F``), scaled where the method scales it.
    num_df, den_df
        Numerator and denominator degrees of freedom.
    pvalue
        Upper tail of ``F(num_df, den_df)``.
    df_method
        The method (``"kenward-roger"``, ``"satterthwaite"``, ``"cr2-htz"``,
        ``"between-within"``...).
    scaling
        The factor applied to ``W / q`` (Kenward-Roger ``lambda``, HTZ ``delta``; 1
        otherwise).
    hypothesis
        The q x p matrix ``L`` (read-only).
    rhs
        The right-hand side (read-only, length q).
    term_names
        The coefficient names, one per column of ``L``.
    row_names
        A label per row of ``L``.
    """

    statistic: float
    num_df: float
    den_df: float
    pvalue: float
    df_method: str
    scaling: float
    hypothesis: np.ndarray = field(repr=False)
    rhs: np.ndarray = field(repr=False)
    term_names: tuple[str, ...] = field(repr=False)
    row_names: tuple[str, ...] = field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hypothesis", readonly_array(self.hypothesis))
        object.__setattr__(self, "rhs", readonly_array(self.rhs))
        object.__setattr__(self, "term_names", tuple(self.term_names))
        object.__setattr__(self, "row_names", tuple(self.row_names))

    @property
    def F(self) -> float:  # the conventional name of the statistic
        """The F statistic (same as ``statistic``)."""
        return self.statistic

    def to_frame(self) -> pd.DataFrame:
        """One-row frame: ``hypothesis, statistic, num_df, den_df, pvalue, df_method``."""
        return pd.DataFrame(
            {
                "hypothesis": [", ".join(self.row_names)],
                "statistic": [self.statistic],
                "num_df": [self.num_df],
                "den_df": [self.den_df],
                "pvalue": [self.pvalue],
                "df_method": [self.df_method],
            }
        )
