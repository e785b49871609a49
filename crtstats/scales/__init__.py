"""Fidelity scales: scale keys, scoring, change between reviews, and psychometrics.

Every scale is described by a YAML key in ``data_schema/scales/``; nothing here
restates a scale's items, domains or bands.
"""

from __future__ import annotations

from crtstats.scales._alpha import AlphaResult, cronbach_alpha
from crtstats.scales._change import CHANGE_STATUS, fidelity_change
from crtstats.scales._checks import check_item_scores
from crtstats.scales._icc import IccForm, IccResult, rater_icc
from crtstats.scales._key import Domain, ScaleItem, ScaleKey, available_scales, load_scale
from crtstats.scales._score import assign_band, score_columns, score_fidelity

__all__ = [
    "CHANGE_STATUS",
    "AlphaResult",
    "Domain",
    "IccForm",
    "IccResult",
    "ScaleItem",
    "ScaleKey",
    "assign_band",
    "available_scales",
    "check_item_scores",
    "cronbach_alpha",
    "fidelity_change",
    "load_scale",
    "rater_icc",
    "score_columns",
    "score_fidelity",
]
