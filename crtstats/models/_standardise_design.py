"""Counterfactual designs for standardisation: every row's ``by`` set to each level.

The rows are those the fit used (complete in the response, the covariates, the cluster
and any offset or exposure); each row keeps its covariates, cluster and exposure, and
only the ``by`` column changes. The model matrix is built as the fit built it (the
same factor levels, and the fit's column names are checked).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crtstats.exceptions import ModelSpecificationError
from crtstats.models._checks import require_columns
from crtstats.models._design import Design, build_design, new_model_matrix
from crtstats.models._glmm_checks import unique_rows

__all__ = ["Counterfactual", "counterfactual_designs"]

_MAX_LEVELS = 20


@dataclass(frozen=True)
class Counterfactual:
    """The fitted rows (text coded as categoricals, the response as the fit coded it),
    their design, the levels of ``by`` and, per row, integer codes of each model
    column (``"(offset)"`` and ``"(cluster)"`` too) for grouping rows into patterns."""

    design: Design
    rows: pd.DataFrame
    by: str
    values: tuple[object, ...]
    levels: tuple[str, ...]
    codes: dict[str, np.ndarray]
    formula: str
    cluster: str | None
    offset: str | None
    exposure: str | None
    binary: bool

    def patterns(self, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """First row of each distinct combination of the ``keys`` codes, and each row's
        pattern (``first[inverse]`` has the same codes as every row)."""
        n = self.design.nobs
        if not keys:
            return np.zeros(1, dtype=np.intp), np.zeros(n, dtype=np.intp)
        key = np.zeros(n, dtype=np.int64)
        radix = 1
        for name in keys:
            codes = self.codes[name]
            size = int(codes.max()) + 1 if codes.size else 1
            radix *= size
            if radix > 2**62:
                stacked = np.column_stack([self.codes[k] for k in keys])
                first, inverse = unique_rows(stacked)
                return first, inverse
            key = key * size + codes
        return _first_and_codes(key)

    def matrices(self, first: np.ndarray) -> tuple[np.ndarray, ...]:
        """The model matrix of the rows ``first`` with ``by`` set to each level."""
        rows = self.rows.iloc[first]
        design = self.design
        stateful = design.model_spec is not None and bool(design.model_spec.transform_state)
        out = []
        for value in self.values:
            new = rows.assign(**{self.by: _set_column(rows[self.by], value, len(rows))})
            if stateful:  # transforms keep the fit's state (means, knots)
                out.append(new_model_matrix(design, new))
                continue
            cf = build_design(self.formula, new, cluster=self.cluster, offset=self.offset,
                              exposure=self.exposure, binary_response=self.binary)
            if cf.names != design.names or cf.nobs != len(rows):
                raise ModelSpecificationError(
                    f"standardise: with {self.by}={value!r} in every row the model's "
                    f"columns are {list(cf.names)}, not the fit's {list(design.names)}; "
                    "the level cannot be set on its own."
                )
            out.append(cf.X)
        return tuple(out)


def _levels(column: pd.Series, by: str) -> tuple[list[object], list[str]]:
    """The values of ``by`` in the rows used (category order, else sorted) and labels."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        seen = set(column.dropna().unique())
        values: list[object] = [c for c in column.cat.categories if c in seen]
    elif pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        values = sorted(column.dropna().unique().tolist())
    else:
        values = sorted(column.dropna().astype(str).unique().tolist())
    if len(values) < 2:
        raise ModelSpecificationError(
            f"standardise: by={by!r} takes {len(values)} value(s) ({values}) in the rows the "
            "model used; standardisation compares at least two levels (arms). Check the "
            "column, or that the data are those the model was fitted to."
        )
    if len(values) > _MAX_LEVELS:
        raise ModelSpecificationError(
            f"standardise: by={by!r} takes {len(values)} distinct values; it must be a "
            f"factor such as the arm (at most {_MAX_LEVELS} levels)."
        )
    return values, [str(v) for v in values]


def _set_column(column: pd.Series, value: object, n: int) -> pd.Series:
    """A column of ``n`` copies of ``value`` coded as the original column is."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        code = list(column.cat.categories).index(value)
        values = pd.Categorical.from_codes(np.full(n, code), dtype=column.dtype)
        return pd.Series(values, index=column.index, name=column.name)
    return pd.Series(np.full(n, value), index=column.index, name=column.name).astype(
        column.dtype)


def _as_categories(rows: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """Text columns as categoricals of their sorted levels, as ``build_design`` codes
    text, so that any subset of rows and any level set keeps the same coding."""
    text = {c: rows[c] for c in columns if c in rows.columns
            and not isinstance(rows[c].dtype, pd.CategoricalDtype)
            and not pd.api.types.is_numeric_dtype(rows[c])
            and not pd.api.types.is_bool_dtype(rows[c])}
    if not text:
        return rows
    coded = {}
    for name, col in text.items():
        codes, levels = pd.factorize(col.astype(str), sort=True)
        coded[name] = pd.Categorical.from_codes(codes, categories=pd.Index(levels))
    return rows.assign(**coded)


def counterfactual_designs(
    formula: str,
    data: pd.DataFrame,
    *,
    by: str,
    names: tuple[str, ...],
    cluster: str | None,
    offset: str | None,
    exposure: str | None,
    binary: bool,
) -> Counterfactual:
    """The fitted rows' design and the model matrices with ``by`` set to each level.

    Raises
    ------
    MissingColumnError
        If ``by`` is not a column of ``data``.
    ModelSpecificationError
        If ``by`` is not in the model, has fewer than two levels in the rows used, or
        the design rebuilt on ``data`` does not have the fit's columns.
    """
    require_columns(data, [by], used_by="standardise(by=)")
    design = build_design(formula, data, cluster=cluster, offset=offset, exposure=exposure,
                          binary_response=binary)
    if design.names != names:
        raise ModelSpecificationError(
            f"standardise: the model's columns rebuilt on these data are {list(design.names)}, "
            f"not the fit's {list(names)}: pass the data the model was fitted to."
        )
    if by not in design.columns:
        raise ModelSpecificationError(
            f"standardise: by={by!r} is not a variable of the model {formula!r} (it uses "
            f"{list(design.columns)}); standardised risks would not differ between its "
            "levels. Standardise over the arm the model includes."
        )
    rows = data.loc[design.used] if not design.used.all() else data
    values, labels = _levels(rows[by], by)
    rows = _as_categories(rows, tuple(design.columns))
    if design.response is not None:  # as the fit coded it (a text response as 0/1)
        rows = rows.assign(**{design.response: design.y})
    codes = {name: _codes(rows[name]) for name in design.columns}
    codes["(offset)"] = pd.factorize(design.offset)[0].astype(np.int64)
    codes["(cluster)"] = design.groups.astype(np.int64)
    return Counterfactual(design=design, rows=rows, by=by, values=tuple(values),
                          levels=tuple(labels), codes=codes, formula=formula,
                          cluster=cluster, offset=offset, exposure=exposure, binary=binary)


def _first_and_codes(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hash-based grouping (no sort): each row's group code and each group's first row."""
    codes, uniques = pd.factorize(key)
    codes = np.asarray(codes, dtype=np.intp)
    first = np.empty(len(uniques), dtype=np.intp)
    first[codes[::-1]] = np.arange(codes.shape[0] - 1, -1, -1)  # the last write wins
    return first, codes


def _codes(column: pd.Series) -> np.ndarray:
    if isinstance(column.dtype, pd.CategoricalDtype):
        return np.asarray(column.cat.codes, dtype=np.int64)
    return np.asarray(pd.factorize(column.to_numpy())[0], dtype=np.int64)
