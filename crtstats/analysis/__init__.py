"""Pre-specified analyses of a CORE-style trial, built on the model fitters."""

from crtstats.analysis._common import EFFECT_COLUMNS, AnalysisResult

__all__ = ["EFFECT_COLUMNS", "AnalysisResult"]
