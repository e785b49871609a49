"""crtstats: statistics for cluster-randomised trials of Crisis Resolution Team fidelity.

The public API is what this module exports.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from crtstats import datasets, plots, tables
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
    ScaleKeyError,
    SchemaValidationError,
    SeparationWarning,
)
from crtstats.analysis import analyse_admissions, analyse_fidelity
from crtstats.io import TableFile, read_table
from crtstats.models import ContrastResult, CRTResult, glmm, ols
from crtstats.models import (
    ICCResult,
    PermutationResult,
    cluster_level,
    design_effect,
    gee,
    icc,
    lmm,
    permutation_test,
)
from crtstats.runner import run
from crtstats.scales import cronbach_alpha, fidelity_change, rater_icc, score_fidelity
from crtstats.schema import validate
from crtstats.tables import Table
from crtstats.trial import TrialData, load_trial

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
    "ScaleKeyError",
    "SchemaValidationError",
    "SeparationWarning",
    "Table",
    "TableFile",
    "TrialData",
    "__version__",
    "analyse_admissions",
    "analyse_fidelity",
    "cronbach_alpha",
    "datasets",
    "fidelity_change",
    "glmm",
    "gee",
    "cluster_level",
    "permutation_test",
    "PermutationResult",
    "icc",
    "ICCResult",
    "design_effect",
    "ols",
    "plots",
    "rater_icc",
    "lmm",
    "load_trial",
    "read_table",
    "run",
    "score_fidelity",
    "tables",
    "validate",
]
