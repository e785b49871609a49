"""The small checkers every section of a plan uses: keys, types, choices and values.

Each raises a :class:`~crtstats.exceptions.PlanError` that says where in the plan the
problem is, what was found and what is allowed.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from typing import Any, TypeVar

from crtstats.exceptions import PlanError

__all__ = ["OptionValue", "choice", "choices", "get_value", "option_value", "unknown_keys"]

_Scalar = str | int | float | bool
OptionValue = _Scalar | list[_Scalar]


def unknown_keys(table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise PlanError(
                f"{where} has an unknown key {key!r}; allowed keys: {', '.join(allowed)}.{hint}"
            )


def get_value(
    table: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str,
    *, default: Any = None, required: bool = False,
) -> Any:
    if key not in table:
        if required:
            raise PlanError(f"{where} needs the key {key!r}.")
        return default
    value = table[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # bool is an int in Python; a plan's true/false must not pass as a number
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise PlanError(f"{where}: {key} must be a {names}; got {value!r}.")
    return value


_Choice = TypeVar("_Choice", bound=str)


def choice(value: Any, allowed: tuple[_Choice, ...], key: str, where: str) -> _Choice:
    if value not in allowed:
        close = difflib.get_close_matches(str(value), allowed, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise PlanError(
            f"{where}: {key} must be one of {', '.join(map(repr, allowed))}; "
            f"got {value!r}.{hint}"
        )
    return next(a for a in allowed if a == value)


def choices(
    table: Mapping[str, Any], key: str, allowed: tuple[_Choice, ...], where: str,
    default: tuple[_Choice, ...] | None = None,
) -> tuple[_Choice, ...]:
    values = get_value(table, key, list, where,
                  default=list(allowed if default is None else default))
    chosen = tuple(choice(v, allowed, key, where) for v in values)
    if len(set(chosen)) != len(chosen):
        raise PlanError(f"{where}: {key} lists a value twice: {list(chosen)}.")
    return chosen


def option_value(value: Any, key: str, where: str) -> OptionValue:
    values = value if isinstance(value, list) else [value]
    if any(isinstance(v, float) and not math.isfinite(v) for v in values):
        raise PlanError(f"{where}: {key} must be a finite number; got {value!r}.")
    if isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list) and all(isinstance(v, str | int | float | bool) for v in value):
        return list(value)
    raise PlanError(
        f"{where}: {key} must be a string, number, true/false or a list of them; got {value!r}."
    )
