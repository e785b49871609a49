"""Checks of degenerate data shared by the linear fitters (``lmm``, ``ols``).

Each raises :class:`~crtstats.ModelSpecificationError` with what was found, the value
seen and what to do:

* :func:`check_finite`: an infinite value in the outcome or a model column (missing
  values are excluded by the design; infinite ones would give NaN everywhere);
* :func:`check_outcome_varies`: a constant outcome leaves nothing to estimate;
* :func:`check_terms_vary`: a text or categorical term with a single value in the rows
  used (an empty arm) would silently drop out of the model;
* :func:`check_cluster_level_terms`: a cluster-level factor level (an arm, a stratum)
  with a single cluster has no between-cluster replication.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
from formulaic import Formula

from crtstats.exceptions import ModelSpecificationError, NotEstimableError
from crtstats.models._checks import constant_within
from crtstats.models._design import Design

__all__ = [
    "check_cluster_level_terms",
    "check_finite",
    "check_outcome_varies",
    "check_terms_vary",
    "design_variables",
    "outcome_name",
]


@lru_cache(maxsize=64)
def _variables(formula: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The data columns the left- and right-hand sides of ``formula`` use."""
    parsed = Formula(formula)
    lhs = tuple(sorted(str(v) for v in parsed.lhs.required_variables))
    rhs = tuple(sorted(str(v) for v in parsed.rhs.required_variables))
    return lhs, rhs


def design_variables(formula: str) -> tuple[str, ...]:
    """The data columns the right-hand side of ``formula`` uses."""
    return _variables(formula)[1]


def outcome_name(formula: str) -> str:
    """The outcome as written left of ``~``."""
    return formula.split("~", 1)[0].strip()


def check_finite(fitter: str, formula: str, data: pd.DataFrame, design: Design) -> None:
    """Raise if the outcome or a column of the model matrix holds ``inf`` or ``-inf``."""
    index = data.index[design.used]
    columns = [(f"the outcome {outcome_name(formula)!r}", design.y)]
    columns += [(f"the model column {name!r}", design.X[:, j])
                for j, name in enumerate(design.names)]
    for label, values in columns:
        bad = ~np.isfinite(values)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ModelSpecificationError(
                f"{fitter}: {label} of {formula!r} is not finite in {int(bad.sum())} row(s); "
                f"the first is row {index[k]!r} with value {float(values[k])!r}. Only missing "
                "values (NaN) are excluded; set infinite values to NaN to exclude those "
                "rows, or correct them."
            )


def check_outcome_varies(fitter: str, formula: str, design: Design) -> None:
    """Raise if every used row has the same outcome."""
    y = design.y
    if y.size and np.all(y == y[0]):
        raise ModelSpecificationError(
            f"{fitter}: the outcome {outcome_name(formula)!r} is constant (all {y.size} rows "
            f"used equal {float(y[0])!r}), so its residual variance is zero and there is "
            "nothing to estimate or test. Check that the right column is the outcome and "
            "that rows were not filtered to a single value."
        )


def check_terms_vary(fitter: str, formula: str, data: pd.DataFrame, design: Design) -> None:
    """Raise if a text, boolean or categorical term takes a single value in the rows used.

    Such a term has no contrast to estimate: the formula library would drop it without
    a word (an arm with no clusters left, say). Numeric constants are caught by the
    rank check instead.
    """
    _, rhs = _variables(formula)
    for name in rhs:
        if name not in data.columns:
            continue
        col = data[name]
        numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
        if numeric and not isinstance(col.dtype, pd.CategoricalDtype):
            continue
        seen = pd.unique(col[design.used])
        if len(seen) < 2:
            raise NotEstimableError(
                f"{fitter}: the term {name!r} of {formula!r} takes the single value "
                f"{seen[0]!r} in all {design.nobs} rows used (an empty arm or level?), so "
                "it has no effect to estimate. Check the data (e.g. that every arm has "
                "clusters after exclusions) or drop the term."
            )


def _cluster_level_codes(col: pd.Series, design: Design) -> tuple[np.ndarray, list[str]] | None:
    """Level code per cluster and the level labels, if ``col`` is a cluster-level
    categorical or binary variable (constant within every cluster); otherwise None."""
    numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
    groups, n_groups = design.groups, design.n_clusters
    if numeric and not isinstance(col.dtype, pd.CategoricalDtype):
        values = np.asarray(col, dtype=float)[design.used]
        if not constant_within(values, groups, n_groups):
            return None  # cheap test first: most numeric covariates vary within clusters
        codes_all, levels = pd.factorize(col, sort=False)
        if len(levels) > 2:
            return None
    else:
        codes_all, levels = pd.factorize(col, sort=False)
    codes = codes_all[design.used]
    if not constant_within(codes, groups, n_groups):
        return None
    first = np.zeros(n_groups, dtype=np.intp)
    first[groups] = codes
    return first, [str(v) for v in levels]


def check_cluster_level_terms(
    formula: str, data: pd.DataFrame, design: Design, *, skip: tuple[str, ...] = ()
) -> None:
    """Raise if a cluster-level categorical or binary term has a level in one cluster.

    An effect estimated from a single cluster has no between-cluster replication: a
    mixed model has no between-cluster variance to test it against, and a cluster-robust
    variance misses that cluster's contribution (it is zero with one cluster per arm).
    Columns in ``skip`` (the cluster column itself, fitted as fixed effects) are exempt.
    """
    for name in _variables(formula)[1]:
        if name not in data.columns or name in skip:
            continue
        found = _cluster_level_codes(data[name], design)
        if found is None:
            continue
        first, levels = found
        counts = np.bincount(first, minlength=len(levels))
        present = counts > 0  # levels seen only in excluded rows do not count
        if np.all(counts[present] >= 2):
            continue
        order = sorted(np.flatnonzero(present), key=lambda k: levels[k])
        shown = {levels[k]: int(counts[k]) for k in order}
        small = [levels[k] for k in order if counts[k] < 2]
        raise ModelSpecificationError(
            f"the cluster-level term {name!r} has level(s) {small} with fewer than two "
            f"clusters (clusters per level: {shown}). An effect estimated from a single "
            "cluster has no between-cluster variance to test against; merge levels or "
            "drop the term."
        )
