"""Model fitters for cluster-randomised trials; each returns a :class:`CRTResult`.

Every result has the same vocabulary (``params``, ``std_errors``, ``df``,
``pvalues``, ``conf_int()``, ``cov``, ``contrast()``, ``wald_test()``, ``resid``,
``fitted_values``, ``predict()``, ``spec``, ``warnings``); what each fitter adds is a
typed, frozen record on ``CRTResult.details`` (see ``docs/results.md``).
"""

from crtstats.models._batch_glmm import BatchedGLMM
from crtstats.models._batch_lmm import BatchedLMM
from crtstats.models._batch_result import BatchedFit
from crtstats.models._cluster_level import cluster_level
from crtstats.models._contrast import ContrastResult
from crtstats.models._details import (
    ClusterLevelDetails,
    FitDetails,
    GeeDetails,
    GlmmDetails,
    LmmDetails,
    ModelSpec,
    NegativeBinomialDetails,
    OlsDetails,
    PanelDetails,
)
from crtstats.models._estimand import (
    CONDITIONINGS,
    MEASURES,
    POPULATIONS,
    Estimand,
    estimand_of,
    measure_of_scale,
)
from crtstats.models._estimands import EFFECT_TERMS, EstimandsResult, estimands
from crtstats.models._gee import gee
from crtstats.models._glmm import glmm
from crtstats.models._icc import ICCResult, design_effect, icc
from crtstats.models._ics import informative_size_test
from crtstats.models._lmm import lmm
from crtstats.models._nb_glm import negative_binomial_rate
from crtstats.models._ols import ols
from crtstats.models._permutation import PermutationResult, permutation_test
from crtstats.models._predict import Predictor, predictor_from_design
from crtstats.models._result import CRTResult
from crtstats.models._standardise import StandardisedResult, StandardiseType, standardise
from crtstats.models._wald import WaldMethod, WaldStatistic, WaldTestResult

__all__ = ["CRTResult", "ContrastResult", "glmm", "ols", "gee", "cluster_level",
           "permutation_test", "PermutationResult", "icc", "ICCResult", "design_effect",
           "lmm", "WaldTestResult", "WaldMethod", "WaldStatistic", "ModelSpec",
           "FitDetails", "LmmDetails", "GlmmDetails", "GeeDetails", "OlsDetails",
           "ClusterLevelDetails", "NegativeBinomialDetails", "PanelDetails", "Predictor",
           "predictor_from_design", "negative_binomial_rate", "BatchedLMM", "BatchedGLMM",
           "BatchedFit", "standardise", "StandardisedResult", "StandardiseType", "Estimand",
           "estimand_of", "measure_of_scale", "estimands", "EstimandsResult", "EFFECT_TERMS",
           "informative_size_test", "CONDITIONINGS", "MEASURES", "POPULATIONS"]
