"""crtstats: statistics for cluster-randomised trials of Crisis Resolution Team fidelity.

The public API is what this module exports.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from crtstats import datasets, plots, tables
from crtstats.analysis import analyse_admissions, analyse_fidelity, analyse_questionnaire
from crtstats.exceptions import (
    BoundaryFitWarning,
    ContinuityCorrectionWarning,
    ConvergenceWarning,
    CRTStatsError,
    CRTStatsWarning,
    DataFileError,
    EstimandWarning,
    ExcludedRowsWarning,
    ExposureWarning,
    FewClustersWarning,
    InfeasibleDesignError,
    InvalidParameterError,
    MissingColumnError,
    ModelSpecificationError,
    NotEstimableError,
    OutputNotAvailableError,
    PlanError,
    ProrationWarning,
    ScaleKeyError,
    SchemaValidationError,
    SeparationWarning,
)
from crtstats.io import TableFile, read_table
from crtstats.models import (
    ContrastResult,
    CRTResult,
    ICCResult,
    PermutationResult,
    cluster_level,
    design_effect,
    gee,
    glmm,
    icc,
    lmm,
    ols,
    permutation_test,
    standardise,
)
from crtstats.runner import run, save_figure, write_table
from crtstats.scales import cronbach_alpha, fidelity_change, rater_icc, score_fidelity
from crtstats.schema import validate
from crtstats.tables import Table
from crtstats.trial import TrialData, load_trial

try:
    __version__ = version("crtstats")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "analyse_admissions",
    "analyse_fidelity",
    "analyse_questionnaire",
    "BoundaryFitWarning",
    "cluster_level",
    "ContrastResult",
    "ContinuityCorrectionWarning",
    "ConvergenceWarning",
    "cronbach_alpha",
    "CRTResult",
    "CRTStatsError",
    "CRTStatsWarning",
    "DataFileError",
    "datasets",
    "design_effect",
    "EstimandWarning",
    "ExcludedRowsWarning",
    "ExposureWarning",
    "FewClustersWarning",
    "fidelity_change",
    "gee",
    "glmm",
    "icc",
    "standardise",
    "ICCResult",
    "InfeasibleDesignError",
    "InvalidParameterError",
    "lmm",
    "MissingColumnError",
    "load_trial",
    "ModelSpecificationError",
    "NotEstimableError",
    "OutputNotAvailableError",
    "ols",
    "permutation_test",
    "PermutationResult",
    "PlanError",
    "plots",
    "ProrationWarning",
    "rater_icc",
    "read_table",
    "run",
    "save_figure",
    "ScaleKeyError",
    "SchemaValidationError",
    "score_fidelity",
    "SeparationWarning",
    "Table",
    "TableFile",
    "tables",
    "TrialData",
    "validate",
    "write_table",
    "__version__",
]
