"""A fast path for the model matrices of plain formulas, checked against formulaic.

formulaic spends most of a small fit's design time encoding each factor through
pandas. For the formulas trial analyses mostly use (bare numeric columns and
categorical columns with treatment contrasts, their interactions, an intercept) the
columns are products of a numeric column and 0/1 level indicators, which numpy forms
directly. The structure (which terms, which factors at full or reduced rank, the column
names) is formulaic's own, taken from the ModelSpec of a first build; it depends only on
the formula and on the columns' dtypes and levels, which form the cache key.

Safety: a plan is made only when the spec holds no transform state and every factor is
a bare column (numeric or boolean, or a categorical whose contrasts are treatment
contrasts on the column's own levels); and the first time a key is seen, the fast
matrices are compared with formulaic's and the plan is kept only if they are identical.
Otherwise formulaic builds every matrix, as before.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from formulaic import ModelSpec
from formulaic.parser.types import Factor
from formulaic.transforms.contrasts import TreatmentContrasts

__all__ = ["FastPlan", "cache_key", "lookup", "make_plan", "remember"]

_MAX_ENTRIES = 256
_CACHE: OrderedDict[Hashable, FastPlan | None] = OrderedDict()
_LOCK = threading.Lock()


@dataclass(frozen=True)
class FastPlan:
    """How to form ``y`` and ``X`` from the columns of a frame.

    ``terms`` holds one entry per scoped term, in formulaic's column order: the factors
    as (column, reduced rank) pairs, empty for the intercept.
    """

    response: str
    terms: tuple[tuple[tuple[str, bool], ...], ...]
    names: tuple[str, ...]
    spec: ModelSpec

    def matrices(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """The response and the model matrix on ``frame``."""
        n = len(frame)
        y = np.asarray(frame[self.response], dtype=float)
        cache: dict[tuple[str, bool], list[np.ndarray]] = {}
        blocks: list[np.ndarray] = []
        for term in self.terms:
            if not term:
                blocks.append(np.ones(n))
                continue
            parts = [cache.setdefault(f, _factor_columns(frame, *f)) for f in term]
            for combo in itertools.product(*reversed(parts)):
                col = combo[-1]
                for other in combo[-2::-1]:
                    col = col * other
                blocks.append(col)
        X = np.empty((n, len(blocks)), order="F")  # formulaic's layout, so that BLAS
        for j, col in enumerate(blocks):  # sums in the fitters run in the same order
            X[:, j] = col
        return y, X


def _factor_columns(frame: pd.DataFrame, column: str, reduced: bool) -> list[np.ndarray]:
    values = frame[column]
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        start = 1 if reduced else 0
        return [(codes == k).astype(float) for k in range(start, len(values.cat.categories))]
    return [np.asarray(values, dtype=float)]


def cache_key(formula: str, frame: pd.DataFrame) -> Hashable:
    """The formula with each column's name, dtype and (for categoricals) levels."""
    parts: list[Hashable] = [formula]
    for name in frame.columns:
        dtype = frame[name].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            parts.append((name, "category", tuple(dtype.categories), bool(dtype.ordered)))
        else:
            parts.append((name, str(dtype)))
    return tuple(parts)


def lookup(key: Hashable) -> tuple[bool, FastPlan | None]:
    """(whether the key is known, its plan or None when formulaic must build it)."""
    with _LOCK:
        if key not in _CACHE:
            return False, None
        _CACHE.move_to_end(key)
        return True, _CACHE[key]


def remember(key: Hashable, plan: FastPlan | None) -> None:
    """Store a plan (or None: this key always goes through formulaic)."""
    with _LOCK:
        _CACHE[key] = plan
        _CACHE.move_to_end(key)
        while len(_CACHE) > _MAX_ENTRIES:
            _CACHE.popitem(last=False)


def make_plan(lhs: ModelSpec, rhs: ModelSpec, frame: pd.DataFrame, names: tuple[str, ...],
              y: np.ndarray, X: np.ndarray) -> FastPlan | None:
    """A plan for these specs when the fast matrices equal formulaic's ``y`` and ``X``."""
    if lhs.transform_state or rhs.transform_state:
        return None
    response = _single_factor(lhs)
    if response is None or not _plain_factor(lhs, response, frame):
        return None
    terms: list[tuple[tuple[str, bool], ...]] = []
    for structure in rhs.structure or ():
        for scoped in structure.scoped_terms:
            if scoped.scale != 1:
                return None
            factors = tuple((str(f.factor.expr), bool(f.reduced)) for f in scoped.factors)
            if not all(_plain_factor(rhs, name, frame) for name, _ in factors):
                return None
            terms.append(factors)
    plan = FastPlan(response, tuple(terms), names, rhs)
    try:
        fast_y, fast_X = plan.matrices(frame)
    except Exception:  # any surprise: formulaic keeps building this formula
        return None
    if fast_X.shape != X.shape or not (np.array_equal(fast_y, y) and np.array_equal(fast_X, X)):
        return None
    return plan


def _single_factor(spec: ModelSpec) -> str | None:
    structure = spec.structure or []
    if len(structure) != 1 or len(structure[0].scoped_terms) != 1:
        return None
    factors = structure[0].scoped_terms[0].factors
    return str(factors[0].factor.expr) if len(factors) == 1 else None


def _plain_factor(spec: ModelSpec, name: str, frame: pd.DataFrame) -> bool:
    """A bare column, numeric or boolean, or categorical with treatment contrasts."""
    if name not in frame.columns:
        return False
    kind, state = spec.encoder_state.get(name, (None, {}))
    col = frame[name]
    if kind is Factor.Kind.NUMERICAL:
        return pd.api.types.is_numeric_dtype(col) and not isinstance(
            col.dtype, pd.CategoricalDtype
        )
    if kind is not Factor.Kind.CATEGORICAL or not isinstance(col.dtype, pd.CategoricalDtype):
        return False
    contrasts = state.get("contrasts")
    levels = list(col.cat.categories)
    return (
        state.get("categories") == levels
        and contrasts is not None
        and type(contrasts.contrasts) is TreatmentContrasts
        and repr(contrasts.contrasts) == repr(TreatmentContrasts())
        and list(contrasts.levels) == levels
    )
