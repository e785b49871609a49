"""Pre-specified analyses of a CORE-style trial, built on the model fitters.

Every analysis returns an :class:`AnalysisResult` whose effects rows are built by
:func:`effect_row` and :func:`randomisation_row`, the one row builder (also used by the
runner for a plan's model entries).
"""

from crtstats.analysis._common import AnalysisResult
from crtstats.analysis._effects import (
    EFFECT_COLUMNS,
    OPTIONAL_EFFECT_COLUMNS,
    RATIO_SCALES,
    ROLES,
    default_scale,
    effect_row,
    effects_frame,
    is_boundary,
    randomisation_row,
)
from crtstats.analysis.admissions import analyse_admissions, ics_limits
from crtstats.analysis.fidelity import analyse_fidelity, fidelity_did
from crtstats.analysis.questionnaire import analyse_questionnaire, questionnaire_effects

__all__ = [
    "EFFECT_COLUMNS",
    "OPTIONAL_EFFECT_COLUMNS",
    "RATIO_SCALES",
    "ROLES",
    "AnalysisResult",
    "analyse_admissions",
    "analyse_fidelity",
    "analyse_questionnaire",
    "default_scale",
    "effect_row",
    "effects_frame",
    "is_boundary",
    "fidelity_did",
    "ics_limits",
    "questionnaire_effects",
    "randomisation_row",
]
