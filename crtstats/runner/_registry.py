"""The functions a plan's stages call, as typed lookup tables.

A plan names its fitters, named analyses, tables and figures from fixed lists (the
``Literal`` types of :mod:`crtstats.runner._plan`); each list has one table here, typed by
what its functions return, so everything downstream of a lookup is typed too. A test
checks that every table covers exactly its plan list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from matplotlib.axes import Axes

from crtstats.analysis import (
    AnalysisResult,
    analyse_admissions,
    analyse_fidelity,
    analyse_questionnaire,
)
from crtstats.models import (
    CRTResult,
    PermutationResult,
    cluster_level,
    gee,
    glmm,
    lmm,
    ols,
    permutation_test,
)
from crtstats.plots import (
    caterpillar,
    cluster_size,
    domain_profile,
    forest,
    questionnaire_means,
    trajectories,
)
from crtstats.runner._plan import FigureName, Fitter, Outcome, TableName
from crtstats.tables import Table, baseline, consort_flow, effects, fidelity_by_arm, item_change

__all__ = ["FIGURE_FUNCTIONS", "FITTER_FUNCTIONS", "Fit", "NAMED_ANALYSES",
           "TABLE_BUILDERS"]

#: What a plan's model entry returns.
Fit = CRTResult | PermutationResult

#: The fitters a ``[[analysis]]`` entry may name with ``fitter = "..."``: the formula
#: fitters take ``(formula, data, cluster=...)``, the others ``(data, cluster=...)``.
FITTER_FUNCTIONS: Mapping[Fitter, Callable[..., Fit]] = {
    "lmm": lmm,
    "ols": ols,
    "glmm": glmm,
    "gee": gee,
    "cluster_level": cluster_level,
    "permutation_test": permutation_test,
}

#: The pre-specified trial analyses, by ``outcome = "..."``: fidelity takes
#: ``(scores, teams)``, the admissions outcomes ``(trial, outcome=...)``, questionnaires
#: ``(trial, table=..., instrument=...)``.
NAMED_ANALYSES: Mapping[Outcome, Callable[..., AnalysisResult]] = {
    "fidelity": analyse_fidelity,
    "admitted": analyse_admissions,
    "readmitted": analyse_admissions,
    "questionnaire": analyse_questionnaire,
}

#: The table builders of ``[output] tables`` (``data_summary`` is the runner's own).
TABLE_BUILDERS: Mapping[TableName, Callable[..., Table]] = {
    "consort_flow": consort_flow,
    "baseline": baseline,
    "fidelity_by_arm": fidelity_by_arm,
    "effects": effects,
    "item_change": item_change,
}

#: The plot functions of ``[output] figures``.
FIGURE_FUNCTIONS: Mapping[FigureName, Callable[..., Axes]] = {
    "trajectories": trajectories,
    "domain_profile": domain_profile,
    "forest": forest,
    "caterpillar": caterpillar,
    "cluster_size": cluster_size,
    "questionnaire_means": questionnaire_means,
}

