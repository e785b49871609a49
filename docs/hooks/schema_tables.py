"""MkDocs hook: render the Frictionless Table Schemas in data_schema/ into the docs.

A page line of the form ``<!-- schema: teams -->`` is replaced by a description of
that table (key, foreign keys, whether other columns are allowed, the table's rules,
its long layout or derivation, and one row per field), so the data-model page is
generated from the single source of truth and cannot drift from it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

_MARKER = re.compile(r"^<!-- schema: (\w+) -->$", re.MULTILINE)
_ROOT = Path(__file__).resolve().parents[2] / "data_schema"


def _constraints(field: dict[str, Any]) -> str:
    parts = []
    c = field.get("constraints", {})
    codes = field.get("x-crtstats-reason-codes", {})
    if c.get("required"):
        parts.append("required")
    if c.get("unique"):
        parts.append("unique")
    if "enum" in c:
        parts.append("one of " + ", ".join(f"`{v}`" for v in c["enum"]))
    if "minimum" in c:
        parts.append(f">= {c['minimum']}")
    if "maximum" in c:
        parts.append(f"<= {c['maximum']}")
    if "pattern" in c:
        what = field.get("x-crtstats-pattern-description", "matches")
        parts.append(f"{what} (pattern `{c['pattern']}`)")
    for check, code in codes.items():
        parts.append(f"{check} reported as `{code}`")
    if field.get("x-crtstats-optional"):
        parts.append("column optional")
    return "; ".join(parts).replace("|", "\\|")


def _rules(schema: dict[str, Any]) -> list[str]:
    lines = []
    if schema.get("x-crtstats-extra-columns"):
        lines.append("Other columns (e.g. covariates) are allowed and kept.")
    items = schema.get("x-crtstats-item-columns")
    if items:
        lines.append(f"Item columns (names matching `{items['pattern']}`): "
                     f"{items['description']}")
    for rule in schema.get("x-crtstats-row-rules", []):
        lines.append(f"Row rule `{rule['name']}`: {rule['description']}.")
    for rule in schema.get("x-crtstats-table-rules", []):
        lines.append(f"Table rule `{rule['name']}`: {rule['description']}.")
    long = schema.get("x-crtstats-long-format")
    if long:
        lines.append(f"Long layout accepted (columns `{long['key']}`, `{long['value']}`): "
                     f"{long['description']}.")
    derived = schema.get("x-crtstats-derived-from")
    if derived:
        lines.append(f"Derived from `{derived['resource']}` when not supplied: "
                     f"{derived['description']}, by "
                     + ", ".join(f"`{c}`" for c in derived["groupBy"]) + ".")
    return lines


def _render(table: str) -> str:
    schema = json.loads((_ROOT / f"{table}.schema.json").read_text(encoding="utf-8"))
    lines = [schema.get("description", ""), ""]
    lines.append("Key: " + ", ".join(f"`{k}`" for k in schema.get("primaryKey", [])) + ".")
    for fk in schema.get("foreignKeys", []):
        ref = fk["reference"]
        lines.append(
            f"`{', '.join(fk['fields'])}` must appear in `{ref['resource']}`"
            f" (`{', '.join(ref['fields'])}`)."
        )
    lines += _rules(schema)
    missing = ", ".join(f"`{v}`" if v else "an empty cell" for v in schema.get(
        "missingValues", [""]))
    lines.append(f"Missing values: {missing}.")
    lines = [line + "\n" if line else line for line in lines]
    lines += ["", "| column | type | rules | description |", "|---|---|---|---|"]
    for field in schema["fields"]:
        lines.append(
            f"| `{field['name']}` | {field['type']} | {_constraints(field)} | "
            f"{field.get('description', '')} |"
        )
    return "\n".join(lines)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Replace each schema marker with the rendered schema."""
    return _MARKER.sub(lambda m: _render(m.group(1)), markdown)
