"""From a formula, a DataFrame and a cluster column to the arrays a fitter needs.

Every fitter builds its design here so that formula handling, factor coding and the
accounting of excluded rows are the same everywhere. Factor levels follow pandas
``Categorical`` order when the column is categorical, otherwise sorted order (as R
does for character columns); the first level is the reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from formulaic import Formula

from crtstats.exceptions import ModelSpecificationError
from crtstats.models._checks import require_columns

__all__ = ["Design", "build_design", "exposure_message"]


@dataclass(frozen=True)
class Design:
    """Response, model matrix and cluster codes for the rows used in a fit.

    Attributes
    ----------
    y
        Response, float, length n.
    X
        Fixed-effects model matrix, n x p.
    names
        Column names of ``X`` (formulaic/R style, e.g. ``arm[T.intervention]``).
    groups
        Integer cluster code per row, 0..G-1, in order of first appearance.
    cluster_labels
        The cluster labels, indexed by code.
    offset
        Offset per row on the linear-predictor scale (zeros when none was given):
        ``log(exposure) + offset`` when both are given.
    used
        Boolean mask over the rows of the input frame: True for rows in the fit.
    n_excluded
        Rows left out because a variable the model uses (or the cluster) is missing.
    rhs_spec
        formulaic's ``ModelSpec`` of the right-hand side, to code new data the same way.
    """

    y: np.ndarray
    X: np.ndarray
    names: tuple[str, ...]
    groups: np.ndarray
    cluster_labels: tuple[str, ...]
    offset: np.ndarray
    used: np.ndarray
    n_excluded: int
    offset_looks_raw: bool = False
    rhs_spec: Any = None

    @property
    def nobs(self) -> int:
        """Rows in the fit."""
        return int(self.y.shape[0])

    @property
    def n_clusters(self) -> int:
        """Clusters in the fit."""
        return len(self.cluster_labels)

    @property
    def cluster_sizes(self) -> np.ndarray:
        """Rows per cluster, indexed by code."""
        return np.bincount(self.groups, minlength=self.n_clusters)

    @property
    def exclusion_message(self) -> str | None:
        """What was left out and why, for an :class:`~crtstats.ExcludedRowsWarning`;
        None when every row was used."""
        if not self.n_excluded:
            return None
        return (
            f"{self.n_excluded} of {self.n_excluded + self.nobs} row(s) excluded because "
            "the response, a covariate, the cluster, the offset or the exposure was "
            "missing; the fit uses the remaining rows (an available-case analysis)."
        )


def exposure_message(offset: str) -> str:
    """The :class:`~crtstats.ExposureWarning` text for an offset that looks raw."""
    return (
        f"the offset column {offset!r} holds only whole numbers above 1, which looks like a "
        "raw exposure (service users, person-time) rather than its logarithm; offset= is "
        f"added to the linear predictor as it is. Pass exposure={offset!r} to have it "
        "logged, or offset=<a column of log values>."
    )


def _plain_dtypes(frame: pd.DataFrame, variables: Sequence[str]) -> pd.DataFrame:
    """Text columns become sorted categoricals, nullable numbers become float64.

    ``frame`` holds only the columns the model uses; the result is a new frame.
    """
    columns: dict[str, object] = {}
    for name in frame.columns:
        col = frame[name]
        if name not in variables or isinstance(col.dtype, pd.CategoricalDtype) or (
            pd.api.types.is_bool_dtype(col)
        ):
            columns[name] = col.array
        elif pd.api.types.is_numeric_dtype(col):
            columns[name] = col.to_numpy(dtype="float64")
        else:
            if col.dtype == object:  # mixed Python objects are compared as their text
                col = col.astype(str)
            codes, levels = pd.factorize(col, sort=True)  # hash-based: fast on 1e5+ rows
            categories = pd.Index(levels.astype(str))
            columns[name] = pd.Categorical.from_codes(codes, categories=categories)
    return pd.DataFrame(columns, index=frame.index)


def build_design(
    formula: str,
    data: pd.DataFrame,
    *,
    cluster: str | None,
    offset: str | None = None,
    exposure: str | None = None,
) -> Design:
    """Build the design of ``formula`` on ``data`` with clusters from ``cluster``.

    Rows with a missing value in any variable the formula uses, in the cluster column
    or in the offset or exposure column are excluded and counted in ``n_excluded``;
    nothing else is dropped, and row order is kept. ``exposure`` (raw, e.g. service
    users) enters the linear predictor as ``log(exposure)``, ``offset`` as it is.

    Raises
    ------
    ModelSpecificationError
        If the formula has no response, names unknown columns, leaves no rows, or an
        exposure is not positive and finite or an offset not finite.
    """
    if not isinstance(data, pd.DataFrame):
        raise ModelSpecificationError(f"data must be a pandas DataFrame; got {type(data)}.")
    try:
        parsed = Formula(formula)
    except Exception as err:  # formulaic raises several types for syntax errors
        raise ModelSpecificationError(f"cannot parse formula {formula!r}: {err}") from None
    if not hasattr(parsed, "lhs"):
        raise ModelSpecificationError(f"formula {formula!r} has no response (left of '~').")
    variables = sorted(str(v) for v in parsed.required_variables)
    extra = [c for c in (cluster, offset, exposure) if c is not None]
    require_columns(data, [*variables, *extra], used_by=repr(formula))
    subset = data[[*dict.fromkeys([*variables, *extra])]]
    used = ~subset.isna().any(axis=1).to_numpy()
    if not used.any():
        raise ModelSpecificationError(f"no complete rows for {formula!r}.")
    frame = _plain_dtypes(subset.loc[used], variables)
    try:
        lhs, rhs = parsed.get_model_matrix(frame, na_action="raise", output="pandas")
    except Exception as err:
        raise ModelSpecificationError(f"cannot build the design of {formula!r}: {err}") from None
    if lhs.shape[1] != 1:
        raise ModelSpecificationError(
            f"the response of {formula!r} must be one numeric column; got {list(lhs.columns)}."
        )
    y = np.asarray(lhs.iloc[:, 0], dtype=float)
    X = np.asarray(rhs, dtype=float)
    if cluster is not None:
        codes, labels = pd.factorize(frame[cluster], sort=False)
        groups = codes.astype(np.intp)
        cluster_labels = tuple(str(v) for v in labels)
    else:
        groups = np.arange(len(frame), dtype=np.intp)
        cluster_labels = tuple(str(i) for i in range(len(frame)))
    off, looks_raw = _offset(frame, offset, exposure)
    return Design(
        y=y,
        X=X,
        names=tuple(str(c) for c in rhs.columns),
        groups=groups,
        cluster_labels=cluster_labels,
        offset=off,
        used=used,
        n_excluded=int((~used).sum()),
        offset_looks_raw=looks_raw,
        rhs_spec=rhs.model_spec,
    )


def _numeric(frame: pd.DataFrame, column: str, option: str) -> np.ndarray:
    col = frame[column]
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        raise ModelSpecificationError(
            f"{option} column {column!r} must be numeric; it has dtype {col.dtype}."
        )
    return np.asarray(col, dtype=float)


def _offset(frame: pd.DataFrame, offset: str | None, exposure: str | None
            ) -> tuple[np.ndarray, bool]:
    """The offset on the linear-predictor scale, and whether ``offset`` looks raw."""
    out = np.zeros(len(frame))
    looks_raw = False
    if exposure is not None:
        raw = _numeric(frame, exposure, "exposure")
        bad = ~(np.isfinite(raw) & (raw > 0))
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ModelSpecificationError(
                f"exposure column {exposure!r} must be positive and finite in every row the "
                f"model uses; row {frame.index[k]!r} has {raw[k]!r} ({int(bad.sum())} such "
                "row(s)). An exposure of zero contributes nothing: drop those rows "
                "explicitly, or check the data."
            )
        out += np.log(raw)
    if offset is not None:
        values = _numeric(frame, offset, "offset")
        bad = ~np.isfinite(values)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ModelSpecificationError(
                f"offset column {offset!r} must be finite; row {frame.index[k]!r} has "
                f"{values[k]!r} (the log of a zero exposure?). The offset is on the "
                "linear-predictor scale: pass the raw exposure as exposure= instead."
            )
        looks_raw = bool(np.all(values > 1.0) and np.all(values == np.round(values)))
        out += values
    return out, looks_raw
