"""Validation of trial tables against the schemas in ``data_schema/``.

:func:`validate` checks one table and returns it with its declared dtypes, or raises
:class:`~crtstats.exceptions.SchemaValidationError` listing every problem;
:func:`build_schema` gives the pandera schema built from a table's JSON file.
"""

from __future__ import annotations

from crtstats.schema._build import BuiltSchema, CheckInfo, build_schema
from crtstats.schema._validate import collect_problems, failure_frame, validate

__all__ = [
    "BuiltSchema",
    "CheckInfo",
    "build_schema",
    "collect_problems",
    "failure_frame",
    "validate",
]
