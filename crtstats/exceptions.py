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

from enum import StrEnum
from typing import Any

import pandas as pd

__all__ = [
    "BoundaryFitWarning",
    "CRTStatsError",
    "CRTStatsWarning",
    "ContinuityCorrectionWarning",
    "ConvergenceWarning",
    "DataFileError",
    "EstimandWarning",
    "ExcludedRowsWarning",
    "ExposureWarning",
    "FewClustersWarning",
    "InfeasibleDesignError",
    "InvalidParameterError",
    "MappingError",
    "MissingColumnError",
    "ModelSpecificationError",
    "NotEstimableError",
    "OutputNotAvailableError",
    "PlanError",
    "FAILURE_COLUMNS",
    "OutputPathError",
    "ProrationWarning",
    "ReasonCode",
    "ScaleKeyError",
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


class MissingColumnError(ModelSpecificationError):
    """A column named by a formula or an option is not in the data.

    Every fitter raises this one type, with the message naming the missing column(s),
    what asked for them, and the columns that are there.
    """


class NotEstimableError(ModelSpecificationError):
    """The data cannot identify a term of the model as specified.

    Raised for a rank-deficient fixed-effects design (a term that is a linear
    combination of others, or all zero because a factor level never occurs) and for a
    term that takes a single value. In a partial trial (an interim analysis before the
    last review, an arm without some review) a planned analysis can meet this; a run
    then reports that analysis as not possible, with this message, and goes on.
    """


class PlanError(CRTStatsError, ValueError):
    """An analysis plan is malformed or asks for something not allowed."""


class ScaleKeyError(CRTStatsError, ValueError):
    """A fidelity scale key (``data_schema/scales/*.yaml``) is unknown or malformed."""


class MappingError(InvalidParameterError):
    """A data mapping (``columns=``, ``[data.mapping]``, ``--mapping``) is malformed or
    names a column or sheet that the data do not have."""


class OutputPathError(CRTStatsError, FileExistsError):
    """An output path cannot be written safely: it is one of the inputs, it holds one,
    or another run is writing the same results folder."""


class InfeasibleDesignError(CRTStatsError, ValueError):
    """A requested power or sample size cannot be reached by any design of the kind asked
    for (e.g. too few clusters whatever their size)."""


class ReasonCode(StrEnum):
    """Stable codes for validation problems; the ``reason_code`` of a failure case.

    The values are part of the public API: scripts may filter on them, and a code is
    never renamed or reused for another meaning.
    """

    MISSING_COLUMN = "missing_column"  # a column the schema requires is absent
    UNKNOWN_COLUMN = "unknown_column"  # a column the schema does not know (where not allowed)
    TYPE = "type"  # a value cannot be read as the declared type
    REQUIRED = "required"  # a required value is empty
    ENUM = "enum"  # a value outside the allowed set
    MINIMUM = "minimum"  # a value below the minimum
    MAXIMUM = "maximum"  # a value above the maximum
    NOT_INTEGER = "not_integer"  # a score that is not a whole number
    PATTERN = "pattern"  # a value that does not match the declared pattern
    DUPLICATE_KEY = "duplicate_key"  # the primary key repeats
    UNKNOWN_TEAM = "unknown_team"  # a team_id not in the teams table
    INCONSISTENT = "inconsistent"  # arm or stratum disagrees where repeated
    BED_DAYS_NOT_ADMITTED = "bed_days_not_admitted"  # bed days > 0 where admitted is 0
    EXPOSURE = "exposure"  # exposure not positive
    TOO_FEW_TEAMS = "too_few_teams"  # fewer than two teams in an arm
    EMPTY_TABLE = "empty_table"  # a table with no rows
    DUPLICATE_COLUMN = "duplicate_column"  # two columns of one table share a name
    LONG_FORMAT = "long_format"  # a long-format table whose columns are not mapped
    NONRESPONSE_ITEMS = "nonresponse_items"  # item scores on a row marked responded = false


#: The columns of every ``failure_cases`` frame, in order.
FAILURE_COLUMNS = ("table", "row", "column", "value", "check", "reason_code")


class OutputNotAvailableError(PlanError):
    """A table or figure needs data or results that this trial or run does not have.

    A run leaves such a table or figure out of its defaults and says why in the report;
    one that the plan's ``[output]`` asks for by name stops the run with this error.
    """


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

    @classmethod
    def from_cases(cls, cases: list[dict[str, Any]], *, subject: str) -> SchemaValidationError:
        """Build the error from failure-case dicts with the keys of ``FAILURE_COLUMNS``.

        ``subject`` names what was validated (e.g. ``"table fidelity"``).
        """
        frame = pd.DataFrame(cases, columns=list(FAILURE_COLUMNS))
        frame["row"] = frame["row"].astype("Int64")
        frame["reason_code"] = frame["reason_code"].astype(str)
        first = frame.iloc[0] if len(frame) else None
        detail = (
            f"; first: table {first['table']}, row {first['row']}, column {first['column']}, "
            f"value {_format_value(first['value'])}: {first['check']}"
            if first is not None
            else ""
        )
        return cls(f"{subject} failed validation with {len(frame)} problem(s){detail}", frame)


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


class ExcludedRowsWarning(CRTStatsWarning):
    """Rows were left out of a fit (a missing response, covariate, cluster or arm).

    The number and the reason are in the message and in the result's ``warnings``;
    nothing is dropped without this warning.
    """


class ContinuityCorrectionWarning(CRTStatsWarning):
    """A cluster with no events has no log summary: 0.5 was added to its total.

    The ratio then depends on the correction; the message names the clusters.
    """


class ExposureWarning(CRTStatsWarning):
    """An ``offset=`` column looks like a raw exposure (whole numbers above 1).

    ``offset=`` is on the linear-predictor (log) scale; a raw count of service users or
    person-time belongs in ``exposure=``, which is logged inside the fitter.
    """


class ProrationWarning(CRTStatsWarning):
    """Some fidelity totals were prorated from incompletely scored reviews."""


class EstimandWarning(CRTStatsWarning):
    """An analysis does not estimate the estimand the plan declares for it.

    For example a participant-average effect asked of an exchangeable GEE or of a
    mixed-model coefficient, which weight clusters by an efficiency weight.
    """


def _format_value(value: Any) -> str:
    """Render a value for an error message, short and unambiguous."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            value = value.item()  # numpy and pandas scalars print as plain Python values
        except (ValueError, TypeError):
            pass
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
