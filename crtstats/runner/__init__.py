"""Reproducible analysis runs: a plan (TOML) in, a results folder out.

With :mod:`crtstats.io` and :mod:`crtstats.cli` this is where crtstats writes files:
:func:`write_table` and :func:`save_figure` write what tables and plots render.
"""

from crtstats.runner._analyses import AnalysisRun
from crtstats.runner._files import save_figure, write_table
from crtstats.runner._formula import ALLOWED_TRANSFORMS, check_formula
from crtstats.runner._manifest import TIMESTAMP_FIELD, RecordedWarning
from crtstats.runner._plan import AnalysisSpec, DataSpec, OutputSpec, Plan, load_plan, parse_plan
from crtstats.runner._run import RunResult, run

__all__ = [
    "ALLOWED_TRANSFORMS",
    "TIMESTAMP_FIELD",
    "AnalysisRun",
    "AnalysisSpec",
    "DataSpec",
    "OutputSpec",
    "Plan",
    "RecordedWarning",
    "RunResult",
    "check_formula",
    "load_plan",
    "parse_plan",
    "run",
    "save_figure",
    "write_table",
]
