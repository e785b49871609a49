"""Cell formatting: numbers to display text, never touching the numbers themselves.

Every function here takes full-precision values and returns a string; rounding
happens only in the returned text. Missing values (``None``, ``NaN``, ``pd.NA``)
become ``na_rep``.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

__all__ = [
    "format_ci",
    "format_integer",
    "format_interval",
    "format_mean_sd",
    "format_n_percent",
    "format_number",
    "format_percent",
    "format_pvalue",
    "is_missing",
]


def is_missing(value: Any) -> bool:
    """Whether ``value`` is a missing value (``None``, ``NaN``, ``pd.NA``, ``NaT``)."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def format_number(value: Any, decimals: int, *, na_rep: str = "") -> str:
    """Fixed-point text with ``decimals`` places; ``-0.00`` is written ``0.00``.

    Infinite values are written ``inf`` (e.g. the df of a z test).

    Examples
    --------
    >>> format_number(1.2345, 2)
    '1.23'
    >>> format_number(-0.0004, 2)
    '0.00'
    >>> format_number(float("nan"), 2, na_rep="NA")
    'NA'
    """
    if is_missing(value):
        return na_rep
    number = float(value)
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    text = f"{number:.{decimals}f}"
    if text.startswith("-") and float(text) == 0.0:
        text = text[1:]
    return text


def format_integer(value: Any, *, na_rep: str = "") -> str:
    """A count as a whole number (rounded half to even if it is not whole).

    Examples
    --------
    >>> format_integer(25.0)
    '25'
    """
    if is_missing(value):
        return na_rep
    return format_number(value, 0, na_rep=na_rep)


def format_percent(proportion: Any, decimals: int, *, na_rep: str = "") -> str:
    """A proportion (0 to 1) as a percentage with ``decimals`` places.

    Examples
    --------
    >>> format_percent(0.4567, 1)
    '45.7%'
    """
    if is_missing(proportion):
        return na_rep
    return f"{format_number(100.0 * float(proportion), decimals)}%"


def format_pvalue(pvalue: Any, decimals: int = 3, *, na_rep: str = "") -> str:
    """A p-value with ``decimals`` places, or ``< 0.001`` (for 3 places) below that.

    Notes
    -----
    With ``d`` places a p-value below :math:`10^{-d}` is written ``< 10^{-d}`` in
    fixed-point form, so no p-value is ever shown as ``0.000``.

    Examples
    --------
    >>> format_pvalue(0.0412)
    '0.041'
    >>> format_pvalue(0.00002)
    '< 0.001'
    >>> format_pvalue(0.04, 1)
    '< 0.1'
    """
    if is_missing(pvalue):
        return na_rep
    p = float(pvalue)
    threshold = 10.0 ** (-decimals)
    if p < threshold and float(f"{p:.{decimals}f}") < threshold:
        return f"< {threshold:.{decimals}f}"
    return format_number(p, decimals)


def format_interval(low: Any, high: Any, decimals: int, *, na_rep: str = "") -> str:
    """An interval as ``low to high`` ("to" rather than a dash, which reads as minus).

    Examples
    --------
    >>> format_interval(-1.02, 2.97, 2)
    '-1.02 to 2.97'
    """
    if is_missing(low) or is_missing(high):
        return na_rep
    return f"{format_number(low, decimals)} to {format_number(high, decimals)}"


def format_ci(estimate: Any, low: Any, high: Any, decimals: int, *, na_rep: str = "") -> str:
    """An estimate with its interval: ``1.23 (0.45 to 2.01)``.

    Examples
    --------
    >>> format_ci(0.97, -1.02, 2.97, 2)
    '0.97 (-1.02 to 2.97)'
    >>> format_ci(0.97, float("nan"), float("nan"), 2)
    '0.97'
    """
    if is_missing(estimate):
        return na_rep
    text = format_number(estimate, decimals)
    interval = format_interval(low, high, decimals)
    return f"{text} ({interval})" if interval else text


def format_mean_sd(mean: Any, sd: Any, decimals: int, *, na_rep: str = "") -> str:
    """A mean with its standard deviation: ``45.2 (12.1)``.

    Examples
    --------
    >>> format_mean_sd(45.21, 12.07, 1)
    '45.2 (12.1)'
    """
    if is_missing(mean):
        return na_rep
    text = format_number(mean, decimals)
    return text if is_missing(sd) else f"{text} ({format_number(sd, decimals)})"


def format_n_percent(count: Any, proportion: Any, decimals: int, *, na_rep: str = "") -> str:
    """A count with its percentage: ``12 (40.0%)``.

    Examples
    --------
    >>> format_n_percent(12, 0.4, 1)
    '12 (40.0%)'
    """
    if is_missing(count):
        return na_rep
    text = format_integer(count)
    return text if is_missing(proportion) else f"{text} ({format_percent(proportion, decimals)})"
