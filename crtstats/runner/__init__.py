"""Reproducible analysis runs: a plan (TOML) in, a results folder out.

With :mod:`crtstats.io` and :mod:`crtstats.cli` this is where crtstats writes files:
:func:`write_table` and :func:`save_figure` write what tables and plots render.
"""

from crtstats.runner._analyses import AnalysisRun, fit_analysis
from crtstats.runner._design_plan import (
    NULL_READMISSION,
    BinaryDesign,
    FidelityDesign,
    TrialDesign,
    parse_design,
)
from crtstats.runner._files import save_figure, write_table
from crtstats.runner._formula import ALLOWED_TRANSFORMS, check_formula
from crtstats.runner._manifest import TIMESTAMP_FIELD, RecordedWarning, versions
from crtstats.runner._output import (
    ResultsLock,
    Staging,
    check_destination,
    dump_json,
    results_folder,
)
from crtstats.runner._plan import AnalysisSpec, DataSpec, OutputSpec, Plan, load_plan, parse_plan
from crtstats.runner._run import RunResult, run
from crtstats.runner._stages import TrialInputs, analysis_frames, score

__all__ = [
    "ALLOWED_TRANSFORMS",
    "NULL_READMISSION",
    "TIMESTAMP_FIELD",
    "AnalysisRun",
    "AnalysisSpec",
    "BinaryDesign",
    "DataSpec",
    "FidelityDesign",
    "OutputSpec",
    "Plan",
    "RecordedWarning",
    "ResultsLock",
    "RunResult",
    "Staging",
    "TrialDesign",
    "TrialInputs",
    "analysis_frames",
    "check_destination",
    "check_formula",
    "dump_json",
    "fit_analysis",
    "load_plan",
    "parse_design",
    "results_folder",
    "parse_plan",
    "run",
    "save_figure",
    "score",
    "versions",
    "write_table",
]
