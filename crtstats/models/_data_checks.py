"""Checks of degenerate data shared by the linear fitters (``lmm``, ``ols``).

Each raises :class:`~crtstats.ModelSpecificationError` with what was found, the value
seen and what to do:

* :func:`check_finite`: an infinite value in the outcome or a model column (missing
  values are excluded by the design; infinite ones would give NaN everywhere);
* :func:`check_outcome_varies`: a constant outcome leaves nothing to estimate;
* :func:`check_terms_vary`: a text or categorical term with a single value in the rows
  used (an empty arm) would silently drop out of the model.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
from formulaic import Formula

from crtstats.exceptions import ModelSpecificationError
from crtstats.models._design import Design

__all__ = ["check_finite", "check_outcome_varies", "check_terms_vary", "outcome_name"]


@lru_cache(maxsize=64)
def _variables(formula: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The data columns the left- and right-hand sides of ``formula`` use."""
    parsed = Formula(formula)
    lhs = tuple(sorted(str(v) for v in parsed.lhs.required_variables))
    rhs = tuple(sorted(str(v) for v in parsed.rhs.required_variables))
    return lhs, rhs


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
                f"the first is row {index[k]!r} with value {values[k]!r}. Only missing "
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
            raise ModelSpecificationError(
                f"{fitter}: the term {name!r} of {formula!r} takes the single value "
                f"{seen[0]!r} in all {design.nobs} rows used (an empty arm or level?), so "
                "it has no effect to estimate. Check the data (e.g. that every arm has "
                "clusters after exclusions) or drop the term."
            )
