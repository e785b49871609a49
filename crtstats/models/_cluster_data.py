"""The data rules that ``cluster_level`` and ``permutation_test`` share.

One rule for incomplete rows in both functions:

* a row with a missing outcome, covariate, exposure, offset or cluster label is
  excluded, and an :class:`~crtstats.ExcludedRowsWarning` (recorded on the result) says
  how many rows, for which column, and which clusters were left with no rows;
* a missing arm (or stratum or pair, for the randomisation test) is an error: the
  allocation is a fact of the design, and leaving a randomised cluster out for an
  unknown allocation would change the comparison (and the set of re-randomisations)
  without anyone deciding it.

Also here: the argument checks, the row sizes from ``exposure=`` (raw) and ``offset=``
(log scale), the checks of the outcome's values for each outcome type, and the
one-row-per-cluster table with the treatment indicator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crtstats._options import require_columns
from crtstats.exceptions import (
    ExcludedRowsWarning,
    ExposureWarning,
    InvalidParameterError,
    ModelSpecificationError,
    _format_value,
)
from crtstats.models._checks import check_column_option, check_fit_arguments
from crtstats.models._design import exposure_message
from crtstats.models._warn import WarningLog

__all__ = [
    "UsedRows",
    "check_arguments",
    "check_outcome_values",
    "cluster_table",
    "complete_rows",
    "row_sizes",
    "treatment_indicator",
]


def check_arguments(fitter: str, data: Any, columns: dict[str, Any],
                    *, optional: Sequence[str] = (), covariates: Any = ()) -> tuple[str, ...]:
    """The shared argument checks for a fitter that takes column names, not a formula.

    ``check_fit_arguments`` checks ``data`` and every column option (its formula check
    is given the fitter's own description, as these fitters take no formula);
    ``covariates`` must be a list of column names. Returns the covariates as a tuple.
    """
    check_fit_arguments(fitter, f"{fitter}(columns)", data, columns, optional=optional)
    if isinstance(covariates, str) or not isinstance(covariates, Sequence):
        raise InvalidParameterError(
            f"{fitter}: covariates must be a list of column names; got "
            f"{_format_value(covariates)}. Pass e.g. covariates=[{covariates!r}]."
        )
    for j, name in enumerate(covariates):
        check_column_option(f"{fitter}: covariates[{j}]", name)
    return tuple(covariates)


@dataclass(frozen=True)
class UsedRows:
    """The complete rows of the data, and what was left out."""

    data: pd.DataFrame
    n_excluded: int
    message: str | None


def complete_rows(data: pd.DataFrame, *, fitter: str, design: Sequence[str],
                  cluster: str, measured: Sequence[str], log: WarningLog) -> UsedRows:
    """Apply the rule for incomplete rows (module docstring); warn about exclusions.

    Parameters
    ----------
    design
        Columns of the allocation (arm, and stratum or pairs): missing is an error.
    measured
        Outcome, covariates, exposure, offset: a row missing one is excluded.
    """
    require_columns(data, [*design, cluster, *measured], used_by=fitter)
    for col in dict.fromkeys(design):
        lacking = data[col].isna().to_numpy()
        if lacking.any():
            where = pd.unique(data.loc[lacking, cluster].dropna())
            raise ModelSpecificationError(
                f"{fitter}: {col!r} is missing in {int(lacking.sum())} row(s) (first row "
                f"{_format_value(data.index[np.flatnonzero(lacking)[0]])}; clusters "
                f"{list(where[:5])}). The allocation of a randomised cluster must be known: "
                "leaving such a cluster out would change the comparison (and the "
                "re-randomisations) silently. Complete the column from the teams table, or "
                "drop those clusters explicitly before the analysis."
            )
    cols = [cluster, *dict.fromkeys(c for c in measured if c != cluster)]
    missing = data[cols].isna()
    lacking = missing.any(axis=1).to_numpy()
    if not lacking.any():
        return UsedRows(data, 0, None)
    used = data.loc[~lacking]
    counts = ", ".join(f"{c!r} ({int(missing[c].sum())})" for c in cols if missing[c].any())
    kept = set(pd.unique(used[cluster]))
    gone = [c for c in pd.unique(data[cluster].dropna()) if c not in kept]
    lost = (f" Cluster(s) {gone[:10]} have no complete row left and are not in the "
            "analysis." if gone else "")
    message = (
        f"{fitter}: {int(lacking.sum())} of {len(data)} row(s) excluded because a value "
        f"was missing in {counts}; the analysis uses the remaining rows (an available-case "
        f"analysis).{lost}"
    )
    log.warn(message, ExcludedRowsWarning)
    return UsedRows(used, int(lacking.sum()), message)


def _first_bad(values: np.ndarray, bad: np.ndarray, index: pd.Index) -> str:
    k = int(np.flatnonzero(bad)[0])
    return (f"row {_format_value(index[k])} has {_format_value(values[k])} "
            f"({int(bad.sum())} such row(s))")


def _numeric(data: pd.DataFrame, column: str, option: str, fitter: str) -> np.ndarray:
    col = data[column]
    if pd.api.types.is_bool_dtype(col):
        return col.to_numpy(dtype=float)
    if not pd.api.types.is_numeric_dtype(col):
        raise ModelSpecificationError(
            f"{fitter}: the {option} column {column!r} must be numeric; it has dtype "
            f"{col.dtype}. Convert it (e.g. to 0/1) before the analysis."
        )
    return col.to_numpy(dtype=float)


def check_outcome_values(data: pd.DataFrame, outcome: str, outcome_type: str,
                         *, fitter: str) -> np.ndarray:
    """The outcome as floats, after checking its values suit ``outcome_type``.

    Raises :class:`ModelSpecificationError` naming the first offending row and value:
    infinite values (any type), values other than 0/1 (``"binary"``), negative or
    fractional values (``"count"``).
    """
    y = _numeric(data, outcome, "outcome", fitter)
    checks = {
        "continuous": (~np.isfinite(y), "finite"),
        "binary": (~np.isin(y, (0.0, 1.0)), "0 or 1 (outcome_type='binary')"),
        "count": (~(np.isfinite(y) & (y >= 0) & (y == np.round(y))),
                  "a whole number >= 0 (outcome_type='count')"),
    }
    bad, wanted = checks[outcome_type]
    if bad.any():
        hint = ("; for a 0/1 outcome pass outcome_type='binary', for counts "
                "outcome_type='count'" if outcome_type == "continuous" else
                "; choose the outcome_type that matches the data")
        raise ModelSpecificationError(
            f"{fitter}: every value of {outcome!r} must be {wanted}; "
            f"{_first_bad(y, bad, data.index)}. Correct the data{hint}."
        )
    return y


def row_sizes(data: pd.DataFrame, *, exposure: str | None, offset: str | None,
              fitter: str, log: WarningLog) -> np.ndarray:
    """Each row's size: 1, or ``exposure * exp(offset)`` when either is given.

    ``exposure`` is raw (service users, person-time) and must be positive and finite;
    ``offset`` is on the log scale and must be finite; an offset of whole numbers above
    1 looks raw and gets an :class:`~crtstats.ExposureWarning`.
    """
    size = np.ones(len(data))
    if exposure is not None:
        raw = _numeric(data, exposure, "exposure", fitter)
        bad = ~(np.isfinite(raw) & (raw > 0))
        if bad.any():
            raise ModelSpecificationError(
                f"{fitter}: exposure {exposure!r} must be positive and finite in every row "
                f"used; {_first_bad(raw, bad, data.index)}. A row with zero exposure has no "
                "person-time and no rate: drop such rows explicitly, or check the data."
            )
        size = size * raw
    if offset is not None:
        values = _numeric(data, offset, "offset", fitter)
        bad = ~np.isfinite(values)
        if bad.any():
            raise ModelSpecificationError(
                f"{fitter}: offset {offset!r} (log scale) must be finite; "
                f"{_first_bad(values, bad, data.index)}, the log of a zero exposure? Pass "
                "the raw exposure as exposure= instead."
            )
        if np.all(values > 1.0) and np.all(values == np.round(values)):
            log.warn(f"{fitter}: {exposure_message(offset)}", ExposureWarning)
        size = size * np.exp(values)
    return size


def treatment_indicator(values: pd.Series, treated: Any = None) -> np.ndarray:
    """1.0 where ``values`` is the treated arm, else 0.0; exactly two arms allowed.

    The treated arm is ``treated`` when given, otherwise ``"intervention"`` (or 1 /
    True for numeric or boolean arms).
    """
    levels = list(pd.unique(values.dropna()))
    if len(levels) != 2:
        raise ModelSpecificationError(
            f"the arm column {values.name!r} must have exactly two arms among the "
            f"{len(values)} cluster(s) analysed; found {levels}. A comparison needs "
            "clusters in both arms: check the row filter, the exclusions and the arm labels."
        )
    if treated is None:
        candidates = [v for v in levels if v == "intervention" or v is True or v == 1]
        if len(candidates) != 1:
            raise ModelSpecificationError(
                f"cannot tell which of the arms {levels} is the intervention; pass "
                "treated=<that arm's value>."
            )
        treated = candidates[0]
    elif treated not in levels:
        raise ModelSpecificationError(
            f"treated={treated!r} is not one of the arms {levels} in {values.name!r}."
        )
    out: np.ndarray = (values == treated).to_numpy(dtype=float)
    return out


def cluster_table(data: pd.DataFrame, *, arm: str, cluster: str, extra: Sequence[str] = ()
                  ) -> pd.DataFrame:
    """One row per cluster (order of first appearance) with its arm and ``extra`` columns.

    Raises
    ------
    ModelSpecificationError
        If the arm, or an ``extra`` column, varies within a cluster.
    """
    cols = [arm, *extra]
    counts = data.groupby(cluster, sort=False)[cols].nunique(dropna=False)
    for col in cols:
        bad = counts.index[counts[col] > 1]
        if len(bad):
            raise ModelSpecificationError(
                f"{col!r} must be constant within each cluster; it varies in {cluster} "
                f"{list(bad[:5])}. Each cluster is allocated as a whole: correct the data."
            )
    return data.groupby(cluster, sort=False)[cols].first().reset_index()
