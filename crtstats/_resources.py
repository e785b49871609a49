"""Locate the specification files in ``data_schema/`` (table schemas and scale keys)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

__all__ = ["schema_dir"]


@cache
def schema_dir() -> Path:
    """The ``data_schema`` folder: inside the installed package, or in a source checkout.

    A wheel carries the folder as ``crtstats/data_schema``; an editable install or a
    source checkout reads the project's top-level ``data_schema/`` directly.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here / "data_schema", here.parent / "data_schema"):
        if (candidate / "teams.schema.json").is_file():
            return candidate
    raise FileNotFoundError(
        "crtstats cannot find its data_schema folder; reinstall the package."
    )
