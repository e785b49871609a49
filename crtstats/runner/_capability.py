"""Looking up the public functions a plan's stages call, with a clear error if absent.

A plan may ask for a stage (a model, a table, a figure) whose function this version of
crtstats does not provide. The runner then stops before writing anything, with a
:class:`~crtstats.exceptions.PlanError` that names the missing capability and the plan
entry that asked for it; it never substitutes something else.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from crtstats.exceptions import InvalidParameterError, ModelSpecificationError, PlanError

__all__ = ["capability", "check_keywords", "has_capability", "naming_the_entry"]


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


def has_capability(module: str, name: str) -> bool:
    """Whether ``module`` can be imported and has the attribute ``name``."""
    try:
        imported = importlib.import_module(module)
    except ImportError:
        return False
    return hasattr(imported, name)


def capability(module: str, name: str, *, wanted_by: str) -> Callable[..., Any]:
    """The callable ``module.name``, or a :class:`PlanError` naming what is missing.

    Parameters
    ----------
    module, name
        Where the function lives, e.g. ``"crtstats.models"`` and ``"gee"``.
    wanted_by
        The plan entry that needs it, for the message (e.g. ``"[[analysis]] 'gee'"``).

    Raises
    ------
    PlanError
        If the module cannot be imported or lacks ``name``.
    """
    if not has_capability(module, name):
        raise PlanError(
            f"{wanted_by} needs {module}.{name}, which this version of crtstats does not "
            "provide; remove what needs it from the plan, or use a crtstats that has it."
        )
    found: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return found


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
