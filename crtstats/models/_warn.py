"""One way for every fitter to issue a warning and record it on its result.

A fitter creates a :class:`WarningLog`, calls :meth:`WarningLog.warn` for each hazard it
finds, and passes :attr:`WarningLog.records` to :class:`~crtstats.models.CRTResult` as
``warnings``. Each warning is issued at once with ``stacklevel`` pointing at the first
frame outside crtstats (the user's call, even when a crtstats analysis called the
fitter), and recorded with its category, so ``res.warnings`` holds every warning the fit
issued and tables can show it.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from crtstats.exceptions import CRTStatsWarning

__all__ = ["FitWarning", "WarningLog", "user_stacklevel"]

_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])


class FitWarning(str):
    """The message of a warning a fit issued, with its category.

    A ``str`` (the message), so ``"boundary" in w`` and printing work as for plain text;
    ``w.category`` is the warning class (e.g. :class:`~crtstats.BoundaryFitWarning`).
    """

    category: type[CRTStatsWarning]

    def __new__(cls, message: str, category: type[CRTStatsWarning]) -> FitWarning:
        obj = super().__new__(cls, message)
        obj.category = category
        return obj

    def __reduce__(self) -> tuple[type[FitWarning], tuple[str, type[CRTStatsWarning]]]:
        return (FitWarning, (str(self), self.category))

    @property
    def category_name(self) -> str:
        """The warning class's name, e.g. ``"BoundaryFitWarning"``."""
        return self.category.__name__


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes :func:`warnings.warn`, called by the caller of this
    function, point at the first frame outside the crtstats package."""
    frame = sys._getframe(1)  # the caller of this function: the frame that will warn
    level = 1
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(
        _PACKAGE_DIR
    ):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


class WarningLog:
    """Issues warnings at the user's call and keeps them for the result.

    Examples
    --------
    >>> import warnings
    >>> from crtstats.exceptions import BoundaryFitWarning
    >>> log = WarningLog()
    >>> with warnings.catch_warnings(record=True):
    ...     warnings.simplefilter("always")
    ...     log.warn("the cluster variance is zero", BoundaryFitWarning)
    >>> log.records[0].category.__name__
    'BoundaryFitWarning'
    """

    def __init__(self) -> None:
        self._records: list[FitWarning] = []

    def warn(self, message: str, category: type[CRTStatsWarning]) -> None:
        """Issue ``message`` as ``category`` at the user's call, and record it."""
        record = FitWarning(message, category)
        self._records.append(record)
        warnings.warn(str(record), category, stacklevel=user_stacklevel())

    def extend(self, records: tuple[FitWarning, ...] | list[FitWarning]) -> None:
        """Record warnings already issued elsewhere (e.g. by a stage of the same fit)."""
        self._records.extend(records)

    @property
    def records(self) -> tuple[FitWarning, ...]:
        """Every warning issued through this log, in order."""
        return tuple(self._records)
