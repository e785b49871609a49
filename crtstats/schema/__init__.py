"""Validation of trial tables against the schemas in ``data_schema/``.

:func:`validate` checks one table and returns it with its declared dtypes, or raises
:class:`~crtstats.exceptions.SchemaValidationError` listing every problem;
:func:`build_schema` gives the pandera schema built from a table's JSON file;
:func:`field_levels` (and :data:`ARMS`, :data:`REVIEWS`, :data:`PERIODS`) the allowed
values of a coded column (:data:`WAVES` the questionnaire waves). Validation also checks
the item columns of questionnaire tables (extra columns such as ``csq8_01``) as whole
numbers. The cross-table checks and the long-format reshaping are
exported for :mod:`crtstats.trial`; :func:`parse_mapping`,
:func:`load_mapping` and :func:`apply_mapping` read and apply a data mapping.
"""

from __future__ import annotations

from crtstats.schema._build import BuiltSchema, CheckInfo, build_schema
from crtstats.schema._cross import cross_table_problems
from crtstats.schema._levels import ARMS, PERIODS, REVIEWS, WAVES, field_levels
from crtstats.schema._mapping import (
    MAPPING_KEYS,
    DataMapping,
    InstrumentItems,
    Recoding,
    TableMapping,
    apply_mapping,
    load_mapping,
    parse_mapping,
)
from crtstats.schema._reshape import derive_table, is_long_format, long_row, pivot_long
from crtstats.schema._validate import collect_problems, failure_frame, records, validate

__all__ = [
    "ARMS",
    "MAPPING_KEYS",
    "PERIODS",
    "REVIEWS",
    "WAVES",
    "BuiltSchema",
    "CheckInfo",
    "DataMapping",
    "InstrumentItems",
    "Recoding",
    "TableMapping",
    "apply_mapping",
    "build_schema",
    "collect_problems",
    "cross_table_problems",
    "derive_table",
    "failure_frame",
    "field_levels",
    "is_long_format",
    "load_mapping",
    "long_row",
    "parse_mapping",
    "pivot_long",
    "records",
    "validate",
]
