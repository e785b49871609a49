"""crtstats: statistics for cluster-randomised trials of Crisis Resolution Team fidelity.

The public API is what this module exports.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from crtstats import datasets
from crtstats.exceptions import (
    BoundaryFitWarning,
    ConvergenceWarning,
    CRTStatsError,
    CRTStatsWarning,
    DataFileError,
    FewClustersWarning,
    InvalidParameterError,
    ModelSpecificationError,
    PlanError,
    ProrationWarning,
    SchemaValidationError,
    SeparationWarning,
)
from crtstats.io import TableFile, read_table
from crtstats.models import ContrastResult, CRTResult

try:
    __version__ = version("crtstats")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "BoundaryFitWarning",
    "CRTResult",
    "CRTStatsError",
    "CRTStatsWarning",
    "ContrastResult",
    "ConvergenceWarning",
    "DataFileError",
    "FewClustersWarning",
    "InvalidParameterError",
    "ModelSpecificationError",
    "PlanError",
    "ProrationWarning",
    "SchemaValidationError",
    "SeparationWarning",
    "TableFile",
    "__version__",
    "datasets",
    "read_table",
]
