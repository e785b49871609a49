"""Checks on how a plan calls its functions: option names, and errors naming the entry.

The functions themselves come from the typed tables of :mod:`crtstats.runner._registry`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from crtstats.exceptions import InvalidParameterError, ModelSpecificationError, PlanError

__all__ = ["check_keywords", "naming_the_entry"]


@contextmanager
def naming_the_entry(wanted_by: str) -> Iterator[None]:
    """Prefix the message of a model or option error raised inside with the plan entry.

    The fitters' own messages say what failed and the value seen; from a run, the user
    also needs to know which plan entry it was.
    """
    try:
        yield
    except (ModelSpecificationError, InvalidParameterError) as err:
        raise type(err)(f"{wanted_by}: {err}") from err


def check_keywords(
    function: Callable[..., Any], options: Mapping[str, Any], *, wanted_by: str,
) -> None:
    """Refuse option names that ``function`` does not take as keywords.

    Raises
    ------
    PlanError
        If an option is not a keyword parameter of ``function``; the message lists
        the ones it takes.
    """
    parameters = inspect.signature(function).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    accepted = [n for n, p in parameters.items()
                if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise PlanError(
            f"{wanted_by}: options {unknown} are not options of "
            f"{function.__module__.split('._')[0]}.{function.__name__}; it takes: "
            f"{', '.join(accepted)}."
        )
