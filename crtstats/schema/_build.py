"""Build pandera schemas from the Frictionless Table Schema files in ``data_schema/``.

Nothing here lists a field or a limit: every column, type, constraint, key and rule
comes from the JSON file of the table. A constraint the builder does not know raises
at build time, so no rule in a schema file is ever silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc

from crtstats.exceptions import ReasonCode
from crtstats.io import declared_dtype, load_schema

__all__ = ["BuiltSchema", "CheckInfo", "build_schema", "type_description"]

_SUPPORTED = frozenset({"required", "unique", "enum", "minimum", "maximum", "pattern"})

_TYPE_TEXT = {
    "string": "text",
    "integer": "a whole number",
    "number": "a finite number",
    "date": "a date written YYYY-MM-DD",
    "boolean": "true or false",
}


def type_description(field: dict[str, Any]) -> str:
    """What a value of ``field`` must be, in words (the ``check`` of a ``type`` problem)."""
    return f"must be {_TYPE_TEXT[field['type']]}"


@dataclass(frozen=True)
class CheckInfo:
    """What one pandera check of a built schema means: its reason code and wording."""

    reason: ReasonCode
    description: str
    column: str | None = None


@dataclass(frozen=True)
class BuiltSchema:
    """A table's pandera schema with the meaning of each of its checks.

    ``column_checks[name][k]`` describes check number ``k`` of column ``name``;
    ``frame_checks[k]`` describes data-frame-level check number ``k`` (a row rule);
    ``item_columns`` is the schema's ``x-crtstats-item-columns`` entry (the pattern of
    the extra columns that hold item scores), or None.
    """

    table: str
    schema: pa.DataFrameSchema
    fields: dict[str, dict[str, Any]]
    column_checks: dict[str, list[CheckInfo]]
    frame_checks: list[CheckInfo]
    key: tuple[str, ...]
    missing_values: tuple[str, ...]
    extra_columns: bool
    table_rules: tuple[dict[str, Any], ...]
    item_columns: dict[str, Any] | None = None


def _values_text(values: list[Any]) -> str:
    return ", ".join(repr(v) for v in values)


def _field_checks(field: dict[str, Any]) -> tuple[list[pa.Check], list[CheckInfo]]:
    constraints: dict[str, Any] = field.get("constraints", {})
    unknown = sorted(set(constraints) - _SUPPORTED)
    if unknown:
        raise ValueError(
            f"schema field {field['name']!r} uses constraint(s) {unknown} that crtstats does "
            f"not implement; supported: {sorted(_SUPPORTED)}."
        )
    codes: dict[str, str] = field.get("x-crtstats-reason-codes", {})
    name = field["name"]
    checks: list[pa.Check] = []
    infos: list[CheckInfo] = []

    def add(check: pa.Check, kind: str, text: str) -> None:
        checks.append(check)
        infos.append(CheckInfo(ReasonCode(codes.get(kind, kind)), text, name))

    if "enum" in constraints:
        allowed = constraints["enum"]
        add(pa.Check.isin(allowed), "enum", f"one of {_values_text(allowed)}")
    if "minimum" in constraints:
        add(pa.Check.ge(constraints["minimum"]), "minimum", f">= {constraints['minimum']}")
    if "maximum" in constraints:
        add(pa.Check.le(constraints["maximum"]), "maximum", f"<= {constraints['maximum']}")
    if "pattern" in constraints:
        pattern = constraints["pattern"]
        add(pa.Check(_full_match(pattern)),
            "pattern", f"{field.get('x-crtstats-pattern-description', 'a value')} "
            f"(pattern {pattern})")
    return checks, infos


def _full_match(pattern: str) -> Callable[[pd.Series], pd.Series]:
    """A check that each value matches ``pattern`` as a whole, with Python's ``re``.

    Values of printable ASCII only (almost all identifiers) are matched by Arrow's RE2
    engine, which agrees with ``re`` on such text and is many times faster; any other
    value, or a pattern RE2 cannot compile, is matched by ``re`` itself.
    """
    compiled = re.compile(pattern)
    anchored = f"^(?:{pattern})$"

    def check(values: pd.Series) -> pd.Series:
        text = values.astype("string[pyarrow]")
        arrow = pyarrow.array(text.array)
        plain = np.asarray(pc.fill_null(pc.match_substring_regex(arrow, r"^[ -~]*$"), False))
        try:
            fast = np.asarray(pc.fill_null(pc.match_substring_regex(arrow, anchored), True))
        except pyarrow.ArrowInvalid:
            plain = np.zeros(len(text), dtype=bool)
            fast = np.ones(len(text), dtype=bool)
        result = fast.astype(bool)
        slow = np.flatnonzero(~plain & text.notna().to_numpy())
        result[slow] = [compiled.fullmatch(v) is not None for v in text.iloc[slow]]
        return pd.Series(result, index=values.index)

    return check


def _row_rule(rule: dict[str, Any]) -> Callable[[pd.DataFrame], pd.Series]:
    """A data-frame check: where ``if.field == if.equals``, ``then.field == then.equals``."""
    cond, then = rule["if"], rule["then"]

    def check(frame: pd.DataFrame) -> pd.Series:
        if cond["field"] not in frame or then["field"] not in frame:
            return pd.Series(True, index=frame.index)
        applies = (frame[cond["field"]] == cond["equals"]).fillna(False)
        holds = (frame[then["field"]] == then["equals"]).fillna(True)
        result: pd.Series = (~applies | holds).astype(bool)
        return result

    return check


@cache
def build_schema(table: str) -> BuiltSchema:
    """Build the pandera schema of ``table`` from ``data_schema/<table>.schema.json``.

    Each field becomes a column with its declared dtype, ``required`` becomes
    ``nullable=False``, and ``enum``/``minimum``/``maximum``/``pattern`` become checks.
    A field without ``x-crtstats-optional`` must be present as a column. The
    ``x-crtstats-row-rules`` become data-frame checks. ``primaryKey`` and ``unique``
    are kept on the result (``key``, ``fields``) and checked by
    :func:`crtstats.validate` so that rows with an empty key part are reported once, as
    ``required``, not also as duplicates.

    Parameters
    ----------
    table
        One of ``teams``, ``fidelity``, ``admissions``, ``service_use``,
        ``user_questionnaires``, ``staff_questionnaires``.

    Returns
    -------
    BuiltSchema
        The pandera ``DataFrameSchema`` with the meaning of each of its checks.

    Raises
    ------
    ValueError
        If the schema file uses a constraint crtstats does not implement.

    Notes
    -----
    Row rules are declared as ``{"if": {"field": f, "equals": a}, "then": {"field": g,
    "equals": b}}``: a row fails when ``f == a`` and ``g != b`` (missing values pass,
    they are reported by ``required`` where required).

    References
    ----------
    pandera, https://pandera.readthedocs.io; Frictionless Table Schema,
    https://specs.frictionlessdata.io/table-schema/

    Examples
    --------
    The counterpart of a ``pointblank::create_agent()`` plan in R:

    >>> built = build_schema("teams")
    >>> list(built.schema.columns)
    ['team_id', 'arm', 'stratum', 'pair_id', 'randomised_on']
    >>> built.key
    ('team_id',)
    """
    spec = load_schema(table)
    key = tuple(spec.get("primaryKey", []))
    columns: dict[str, pa.Column] = {}
    column_checks: dict[str, list[CheckInfo]] = {}
    for field in spec["fields"]:
        name = field["name"]
        checks, infos = _field_checks(field)
        constraints = field.get("constraints", {})
        columns[name] = pa.Column(
            declared_dtype(field),
            checks=checks,
            nullable=not constraints.get("required", False),
            required=not field.get("x-crtstats-optional", False),
            coerce=False,
        )
        column_checks[name] = infos
    rules = spec.get("x-crtstats-row-rules", [])
    frame_checks = [CheckInfo(ReasonCode(r["name"]), r["description"], r["then"]["field"])
                    for r in rules]
    schema = pa.DataFrameSchema(
        columns,
        checks=[pa.Check(_row_rule(r)) for r in rules],
        strict=False,
        name=table,
    )
    return BuiltSchema(
        table=table,
        schema=schema,
        fields={f["name"]: f for f in spec["fields"]},
        column_checks=column_checks,
        frame_checks=frame_checks,
        key=key,
        missing_values=tuple(spec.get("missingValues", [""])),
        extra_columns=bool(spec.get("x-crtstats-extra-columns", False)),
        table_rules=tuple(spec.get("x-crtstats-table-rules", [])),
        item_columns=spec.get("x-crtstats-item-columns"),
    )
