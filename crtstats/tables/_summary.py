"""Rows of by-arm summaries (n, n (%), mean (SD), median (IQR)) and their suppression.

A summary row has ``label``, ``statistic`` (``n``, ``n_percent``, ``mean_sd`` or
``median_iqr``) and, for each arm and for ``overall`` (the arms pooled),
``<group>_n`` (people or teams with data), ``<group>_value`` (count, mean or median),
``<group>_spread`` (proportion, SD or lower quartile) and ``<group>_upper`` (the upper
quartile of a ``median_iqr`` row, else missing).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from crtstats.tables._common import ARMS, is_small
from crtstats.tables._table import Column

__all__ = ["GROUPS", "OVERALL", "arm_columns", "count_row", "mean_row", "median_row",
           "percent_row", "suppress_rows"]

#: The column group of the arms pooled.
OVERALL = "overall"
#: The arms in reporting order, then the arms pooled.
GROUPS: tuple[str, ...] = (*ARMS, OVERALL)


def _cells(group: str, n: float, value: float, spread: float = np.nan,
           upper: float = np.nan) -> dict[str, float]:
    return {f"{group}_n": n, f"{group}_value": value, f"{group}_spread": spread,
            f"{group}_upper": upper}


def count_row(label: str, counts: Mapping[str, float], **extra: Any) -> dict[str, Any]:
    """A row of counts: ``n`` and ``value`` are the count; overall is their sum."""
    row: dict[str, Any] = {"label": label, "statistic": "n", **extra}
    for arm in ARMS:
        count = float(counts.get(arm, 0))
        row |= _cells(arm, count, count)
    total = sum(float(counts.get(arm, 0)) for arm in ARMS)
    return row | _cells(OVERALL, total, total)


def _numbers(values: Mapping[str, pd.Series]) -> dict[str, pd.Series]:
    """Each arm's non-missing values as floats, and ``overall``: the arms pooled."""
    out = {}
    for arm in ARMS:
        v = pd.to_numeric(values.get(arm, pd.Series(dtype=float)), errors="raise")
        out[arm] = v.astype(float).dropna()
    out[OVERALL] = pd.concat([out[arm] for arm in ARMS], ignore_index=True)
    return out


def mean_row(label: str, values: Mapping[str, pd.Series], **extra: Any) -> dict[str, Any]:
    """A row of means and SDs (``ddof=1``) over the non-missing values of each arm."""
    row: dict[str, Any] = {"label": label, "statistic": "mean_sd", **extra}
    for group, v in _numbers(values).items():
        row |= _cells(group, float(len(v)), float(v.mean()) if len(v) else np.nan,
                      float(v.std(ddof=1)) if len(v) > 1 else np.nan)
    return row


def median_row(label: str, values: Mapping[str, pd.Series], **extra: Any) -> dict[str, Any]:
    """A row of medians and quartiles over the non-missing values of each arm.

    Quartiles interpolate linearly between order statistics, R's ``quantile(type = 7)``
    (numpy's default).
    """
    row: dict[str, Any] = {"label": label, "statistic": "median_iqr", **extra}
    for group, v in _numbers(values).items():
        if len(v):
            q1, median, q3 = np.quantile(v.to_numpy(), [0.25, 0.5, 0.75])
            row |= _cells(group, float(len(v)), float(median), float(q1), float(q3))
        else:
            row |= _cells(group, 0.0, np.nan)
    return row


def percent_row(
    label: str, hits: Mapping[str, float], totals: Mapping[str, float], **extra: Any
) -> dict[str, Any]:
    """A row of counts with their proportion of ``totals`` (the ``n`` column)."""
    row: dict[str, Any] = {"label": label, "statistic": "n_percent", **extra}
    all_hits = all_totals = 0.0
    for arm in ARMS:
        hit, total = float(hits.get(arm, 0)), float(totals.get(arm, 0))
        all_hits, all_totals = all_hits + hit, all_totals + total
        row |= _cells(arm, total, hit, hit / total if total > 0 else np.nan)
    return row | _cells(OVERALL, all_totals, all_hits,
                        all_hits / all_totals if all_totals > 0 else np.nan)


def arm_columns(*, n_label: str, value_label: str, decimals: int,
                decimals_column: str | None = None, overall: bool = False) -> list[Column]:
    """Displayed ``N`` and summary columns for each arm (and the arms pooled, with
    ``overall``), keyed ``<group>_n``/``<group>_summary``."""
    columns = []
    for group in GROUPS if overall else ARMS:
        columns.append(Column(n_label, (f"{group}_n",), "integer", key=f"{group}_n"))
        columns.append(
            Column(value_label, (f"{group}_value", f"{group}_spread", f"{group}_upper"),
                   "summary", decimals=decimals, statistic_column="statistic",
                   key=f"{group}_summary", decimals_column=decimals_column)
        )
    return columns


def arm_groups(headers: Mapping[str, str]) -> dict[str, list[str]]:
    """Column groups for :func:`arm_columns`, with the header text of each arm (and of
    ``overall`` when ``headers`` has it)."""
    return {headers[g]: [f"{g}_n", f"{g}_summary"] for g in GROUPS if g in headers}


_ALL_PARTS = ("n", "value", "spread", "upper")


def _withhold(frame: pd.DataFrame, cells: set[tuple[int, str]], i: int, arm: str,
              parts: tuple[str, ...]) -> None:
    for part in parts:
        if f"{arm}_{part}" not in frame.columns:
            continue
        cells.add((i, f"{arm}_{part}"))
        frame.loc[i, f"{arm}_{part}"] = np.nan


def suppress_rows(
    frame: pd.DataFrame, threshold: int | None, *, people: pd.Series, family: pd.Series
) -> tuple[pd.DataFrame, set[tuple[int, str]]]:
    """Withhold small counts of people in summary rows; return the frame and the cells.

    Rules, for rows where ``people`` is true (rows about teams are never withheld):

    * a count (``n``, or the count of an ``n_percent`` row) of 1 to ``threshold - 1``
      is withheld with its percentage;
    * a mean and SD (or median and quartiles) over 1 to ``threshold - 1`` people are
      withheld with their ``n``;
    * complementary suppression: when exactly one category of a variable (rows sharing
      ``family``) is withheld in an arm, the next-smallest category of that arm is
      withheld too, so the first cannot be recovered by subtraction from ``n``;
    * the overall cells of a row (where the frame has them) are withheld when any arm's
      are, as the overall figure less the other arm's would give the withheld one.
    """
    out = frame.reset_index(drop=True).copy()
    cells: set[tuple[int, str]] = set()
    if threshold is None:
        return out, cells
    people = people.reset_index(drop=True)
    family = family.reset_index(drop=True)
    for i in range(len(out)):
        if not people.iloc[i]:
            continue
        for arm in ARMS:
            n, value = out.loc[i, f"{arm}_n"], out.loc[i, f"{arm}_value"]
            statistic = out.loc[i, "statistic"]
            if statistic in ("mean_sd", "median_iqr") and is_small(n, threshold):
                _withhold(out, cells, i, arm, _ALL_PARTS)
            elif statistic == "n" and is_small(value, threshold):
                _withhold(out, cells, i, arm, _ALL_PARTS)
            elif statistic == "n_percent":
                if is_small(value, threshold):
                    _withhold(out, cells, i, arm, ("value", "spread"))
                if is_small(n, threshold):
                    _withhold(out, cells, i, arm, _ALL_PARTS)
    _complementary(out, cells, people, family)
    if f"{OVERALL}_n" in out.columns:
        for i in range(len(out)):
            withheld = {part for arm in ARMS for part in _ALL_PARTS
                        if (i, f"{arm}_{part}") in cells}
            if withheld:
                _withhold(out, cells, i, OVERALL, tuple(p for p in _ALL_PARTS if p in withheld))
    return out, cells


def _complementary(out: pd.DataFrame, cells: set[tuple[int, str]], people: pd.Series,
                   family: pd.Series) -> None:
    for key in family[people & family.notna()].unique():
        rows = [i for i in range(len(out)) if people.iloc[i] and family.iloc[i] == key
                and out.loc[i, "statistic"] == "n_percent"]
        if len(rows) < 2:
            continue
        for arm in ARMS:
            hidden = [i for i in rows if (i, f"{arm}_value") in cells]
            shown = [i for i in rows if (i, f"{arm}_value") not in cells]
            if len(hidden) == 1 and shown:
                smallest = min(shown, key=lambda i: float(out[f"{arm}_value"].iloc[i]))
                _withhold(out, cells, smallest, arm, ("value", "spread"))
