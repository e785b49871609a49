"""Model fitters for cluster-randomised trials; each returns a :class:`CRTResult`."""

from crtstats.models._glmm import glmm
from crtstats.models._ols import ols
from crtstats.models._result import ContrastResult, CRTResult

__all__ = ["CRTResult", "ContrastResult", "glmm", "ols"]
