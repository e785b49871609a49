"""Model fitters for cluster-randomised trials; each returns a :class:`CRTResult`."""

from crtstats.models._cluster_level import cluster_level
from crtstats.models._gee import gee
from crtstats.models._glmm import glmm
from crtstats.models._icc import ICCResult, design_effect, icc
from crtstats.models._lmm import lmm
from crtstats.models._nb_glm import negative_binomial_rate
from crtstats.models._ols import ols
from crtstats.models._permutation import PermutationResult, permutation_test
from crtstats.models._result import ContrastResult, CRTResult

__all__ = ["CRTResult", "ContrastResult", "glmm", "ols", "gee", "cluster_level",
           "permutation_test", "PermutationResult", "icc", "ICCResult", "design_effect",
           "lmm", "negative_binomial_rate"]
