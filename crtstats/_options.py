"""Argument checks shared by every layer: options with a closed set of allowed values,
and columns a function needs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from crtstats.exceptions import InvalidParameterError, MissingColumnError, _format_value

__all__ = ["check_option", "require_columns"]


def check_option(name: str, value: Any, allowed: Iterable[Any]) -> None:
    """Raise :class:`InvalidParameterError` unless ``value`` is one of ``allowed``.

    The message names the option, lists the allowed values and shows what was given.

    Examples
    --------
    >>> check_option("ddf", "kenward-roger", ("kenward-roger", "satterthwaite"))
    >>> check_option("ddf", "KR", ("kenward-roger", "satterthwaite"))
    Traceback (most recent call last):
    ...
    crtstats.exceptions.InvalidParameterError: ddf must be one of 'kenward-roger', ...; got 'KR'.
    """
    allowed = tuple(allowed)
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise InvalidParameterError(
            f"{name} must be one of {choices}; got {_format_value(value)}."
        )


def require_columns(data: pd.DataFrame, columns: Sequence[str], *, used_by: str) -> None:
    """Raise :class:`MissingColumnError` if any of ``columns`` is not in ``data``.

    ``used_by`` says what needs them (a formula, an option), for the message.
    """
    missing = [c for c in dict.fromkeys(columns) if c not in data.columns]
    if missing:
        shown = list(data.columns)
        more = "" if len(shown) <= 30 else f" (and {len(shown) - 30} more)"
        raise MissingColumnError(
            f"the data have no column(s) {missing} used by {used_by}; available columns: "
            f"{shown[:30]}{more}."
        )
