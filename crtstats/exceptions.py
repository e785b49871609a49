"""Every exception and warning that crtstats raises.

All exceptions derive from :class:`CRTStatsError` and from the built-in exception
that fits, so ``except ValueError`` keeps working. All warnings derive from
:class:`CRTStatsWarning`. Statistical hazards (few clusters, a fit on the
boundary, non-convergence, separation) each have a warning of their own so that
a script can turn one of them into an error without touching the others::

    import warnings
    import crtstats
    warnings.simplefilter("error", crtstats.BoundaryFitWarning)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "BoundaryFitWarning",
    "CRTStatsError",
    "CRTStatsWarning",
    "ConvergenceWarning",
    "DataFileError",
    "FewClustersWarning",
    "InvalidParameterError",
    "ModelSpecificationError",
    "PlanError",
    "ProrationWarning",
    "SchemaValidationError",
    "SeparationWarning",
]


class CRTStatsError(Exception):
    """Base class of every exception raised by crtstats."""


class InvalidParameterError(CRTStatsError, ValueError):
    """An option was given a value outside the ones it allows."""


class DataFileError(CRTStatsError, OSError):
    """A data file cannot be found, opened or parsed."""


class ModelSpecificationError(CRTStatsError, ValueError):
    """A model cannot be fitted as specified (formula, columns or design)."""


class PlanError(CRTStatsError, ValueError):
    """An analysis plan is malformed or asks for something not allowed."""


class SchemaValidationError(CRTStatsError, ValueError):
    """A table failed validation.

    Parameters
    ----------
    message
        A one-paragraph summary of what failed.
    failure_cases
        One row per problem with columns ``table, row, column, value, check,
        reason_code``. ``row`` is the 0-based position of the row in the table as
        given (``<NA>`` for problems of a whole column or table).
    """

    def __init__(self, message: str, failure_cases: pd.DataFrame) -> None:
        super().__init__(message)
        self.failure_cases = failure_cases


class CRTStatsWarning(UserWarning):
    """Base class of every warning issued by crtstats."""


class FewClustersWarning(CRTStatsWarning):
    """Too few clusters for the inference asked for to hold its nominal level."""


class BoundaryFitWarning(CRTStatsWarning):
    """A variance component was estimated on the boundary of its space (zero)."""


class ConvergenceWarning(CRTStatsWarning):
    """The optimiser did not meet its convergence criteria."""


class SeparationWarning(CRTStatsWarning):
    """Complete or quasi-complete separation: some estimates are not finite."""


class ProrationWarning(CRTStatsWarning):
    """Some fidelity totals were prorated from incompletely scored reviews."""


def _format_value(value: Any) -> str:
    """Render a value for an error message, short and unambiguous."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
