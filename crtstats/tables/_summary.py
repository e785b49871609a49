"""Rows of by-arm summaries (n, n (%), mean (SD)) and their suppression.

A summary row has ``label``, ``statistic`` (``n``, ``n_percent`` or ``mean_sd``) and,
for each arm, ``<arm>_n`` (people or teams with data), ``<arm>_value`` (count or mean)
and ``<arm>_spread`` (proportion or SD).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from crtstats.tables._common import ARMS, is_small
from crtstats.tables._table import Column

__all__ = ["arm_columns", "count_row", "mean_row", "percent_row", "suppress_rows"]


def count_row(label: str, counts: Mapping[str, float], **extra: Any) -> dict[str, Any]:
    """A row of counts: ``n`` and ``value`` are the count."""
    row: dict[str, Any] = {"label": label, "statistic": "n", **extra}
    for arm in ARMS:
        count = float(counts.get(arm, 0))
        row |= {f"{arm}_n": count, f"{arm}_value": count, f"{arm}_spread": np.nan}
    return row


def mean_row(label: str, values: Mapping[str, pd.Series], **extra: Any) -> dict[str, Any]:
    """A row of means and SDs (``ddof=1``) over the non-missing values of each arm."""
    row: dict[str, Any] = {"label": label, "statistic": "mean_sd", **extra}
    for arm in ARMS:
        v = pd.to_numeric(values.get(arm, pd.Series(dtype=float)), errors="raise")
        v = v.astype(float).dropna()
        row |= {
            f"{arm}_n": float(len(v)),
            f"{arm}_value": float(v.mean()) if len(v) else np.nan,
            f"{arm}_spread": float(v.std(ddof=1)) if len(v) > 1 else np.nan,
        }
    return row


def percent_row(
    label: str, hits: Mapping[str, float], totals: Mapping[str, float], **extra: Any
) -> dict[str, Any]:
    """A row of counts with their proportion of ``totals`` (the ``n`` column)."""
    row: dict[str, Any] = {"label": label, "statistic": "n_percent", **extra}
    for arm in ARMS:
        hit, total = float(hits.get(arm, 0)), float(totals.get(arm, 0))
        row |= {
            f"{arm}_n": total,
            f"{arm}_value": hit,
            f"{arm}_spread": hit / total if total > 0 else np.nan,
        }
    return row


def arm_columns(*, n_label: str, value_label: str, decimals: int,
                decimals_column: str | None = None) -> list[Column]:
    """Displayed ``N`` and summary columns for each arm, keyed ``<arm>_n``/``<arm>_summary``."""
    columns = []
    for arm in ARMS:
        columns.append(Column(n_label, (f"{arm}_n",), "integer", key=f"{arm}_n"))
        columns.append(
            Column(value_label, (f"{arm}_value", f"{arm}_spread"), "summary",
                   decimals=decimals, statistic_column="statistic", key=f"{arm}_summary",
                   decimals_column=decimals_column)
        )
    return columns


def arm_groups(headers: Mapping[str, str]) -> dict[str, list[str]]:
    """Column groups for :func:`arm_columns`, with the header text of each arm."""
    return {headers[arm]: [f"{arm}_n", f"{arm}_summary"] for arm in ARMS}


def _withhold(frame: pd.DataFrame, cells: set[tuple[int, str]], i: int, arm: str,
              parts: tuple[str, ...]) -> None:
    for part in parts:
        cells.add((i, f"{arm}_{part}"))
        frame.loc[i, f"{arm}_{part}"] = np.nan


def suppress_rows(
    frame: pd.DataFrame, threshold: int | None, *, people: pd.Series, family: pd.Series
) -> tuple[pd.DataFrame, set[tuple[int, str]]]:
    """Withhold small counts of people in summary rows; return the frame and the cells.

    Rules, for rows where ``people`` is true (rows about teams are never withheld):

    * a count (``n``, or the count of an ``n_percent`` row) of 1 to ``threshold - 1``
      is withheld with its percentage;
    * a mean and SD over 1 to ``threshold - 1`` people are withheld with their ``n``;
    * complementary suppression: when exactly one category of a variable (rows sharing
      ``family``) is withheld in an arm, the next-smallest category of that arm is
      withheld too, so the first cannot be recovered by subtraction from ``n``.
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
            if statistic == "mean_sd" and is_small(n, threshold):
                _withhold(out, cells, i, arm, ("n", "value", "spread"))
            elif statistic == "n" and is_small(value, threshold):
                _withhold(out, cells, i, arm, ("n", "value", "spread"))
            elif statistic == "n_percent":
                if is_small(value, threshold):
                    _withhold(out, cells, i, arm, ("value", "spread"))
                if is_small(n, threshold):
                    _withhold(out, cells, i, arm, ("n", "value", "spread"))
    _complementary(out, cells, people, family)
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
