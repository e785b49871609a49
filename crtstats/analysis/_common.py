"""What a pre-specified trial analysis returns: a tidy effects frame and its fits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from crtstats.models import CRTResult

__all__ = ["EFFECT_COLUMNS", "AnalysisResult"]

#: Columns of every effects frame, in order. Ratio-scale estimates (odds and rate
#: ratios) are already exponentiated; ``scale`` says which scale a row is on.
EFFECT_COLUMNS = (
    "outcome",      # e.g. "fidelity total", "admitted"
    "analysis",     # e.g. "LMM arm x review", "ANCOVA (CR2)"
    "role",         # "primary" or "sensitivity"
    "estimand",     # e.g. "arm effect at 12m"
    "scale",        # "difference", "odds ratio", "rate ratio", "risk difference"
    "estimate",
    "conf_low",
    "conf_high",
    "pvalue",
    "df",           # inf for z
    "df_method",
    "cov_type",
    "icc",          # NaN where the analysis has none
    "icc_low",
    "icc_high",
    "n_clusters",
    "nobs",
)


@dataclass(frozen=True)
class AnalysisResult:
    """The effects of a pre-specified analysis and the fits behind them.

    Attributes
    ----------
    effects
        One row per outcome, analysis and estimand, with the columns of
        :data:`EFFECT_COLUMNS`.
    results
        The fitted models by the name used in ``effects["analysis"]`` (and outcome).
    notes
        Plain-language notes (exclusions, boundary fits, methods) for reports.
    """

    effects: pd.DataFrame
    results: Mapping[str, CRTResult] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
