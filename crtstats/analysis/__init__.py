"""Pre-specified analyses of a CORE-style trial, built on the model fitters."""

from crtstats.analysis._common import EFFECT_COLUMNS, AnalysisResult
from crtstats.analysis.admissions import analyse_admissions
from crtstats.analysis.fidelity import analyse_fidelity

__all__ = ["EFFECT_COLUMNS", "AnalysisResult", "analyse_admissions", "analyse_fidelity"]
