"""One checker for keyword options with a closed set of allowed values."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from crtstats.exceptions import InvalidParameterError, _format_value


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
