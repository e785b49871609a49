"""What a pre-specified trial analysis returns: a tidy effects frame and its fits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from crtstats.models import CRTResult

__all__ = ["AnalysisResult"]


@dataclass(frozen=True)
class AnalysisResult:
    """The effects of a pre-specified analysis and the fits behind them.

    Attributes
    ----------
    effects
        One row per outcome, analysis and estimand, with the columns of
        :data:`crtstats.analysis.EFFECT_COLUMNS`.
    results
        The fitted models by the name used in ``effects["analysis"]`` (and outcome).
    notes
        Plain-language notes (exclusions, boundary fits, methods) for reports.
    """

    effects: pd.DataFrame
    results: Mapping[str, CRTResult] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
