"""Fidelity scales and questionnaire instruments: keys, scoring, change between reviews,
and psychometrics.

Every fidelity scale is described by a YAML key in ``data_schema/scales/`` and every
questionnaire instrument by one in ``data_schema/instruments/``; nothing here restates a
scale's or an instrument's items, domains, bands or scorings.
"""

from __future__ import annotations

from crtstats.scales._alpha import AlphaResult, cronbach_alpha
from crtstats.scales._change import CHANGE_STATUS, fidelity_change
from crtstats.scales._checks import check_item_scores
from crtstats.scales._icc import IccForm, IccResult, rater_icc
from crtstats.scales._instrument import (
    InstrumentItem,
    InstrumentKey,
    Scoring,
    available_instruments,
    load_instrument,
)
from crtstats.scales._key import Domain, ScaleItem, ScaleKey, available_scales, load_scale
from crtstats.scales._questionnaire import (
    questionnaire_alpha,
    questionnaire_columns,
    score_questionnaire,
)
from crtstats.scales._score import assign_band, score_columns, score_fidelity

__all__ = [
    "CHANGE_STATUS",
    "AlphaResult",
    "Domain",
    "IccForm",
    "IccResult",
    "InstrumentItem",
    "InstrumentKey",
    "ScaleItem",
    "ScaleKey",
    "Scoring",
    "assign_band",
    "available_instruments",
    "available_scales",
    "check_item_scores",
    "cronbach_alpha",
    "fidelity_change",
    "load_instrument",
    "load_scale",
    "questionnaire_alpha",
    "questionnaire_columns",
    "rater_icc",
    "score_columns",
    "score_fidelity",
    "score_questionnaire",
]
