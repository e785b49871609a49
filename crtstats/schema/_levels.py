"""The allowed values of a coded column, read from its schema's ``enum`` constraint.

Arms, reviews and periods are specified once, in ``data_schema/``; code that needs the
labels (tables, figures, trial analyses, the runner's factors) reads them from here.
"""

from __future__ import annotations

from functools import cache

from crtstats.exceptions import DataFileError
from crtstats.io import load_schema

__all__ = ["ARMS", "PERIODS", "REVIEWS", "WAVES", "field_levels"]


@cache
def field_levels(table: str, column: str) -> tuple[str, ...]:
    """The values the schema of ``table`` allows in ``column``, in the schema's order.

    Parameters
    ----------
    table
        A table of the data model (``"teams"``, ``"fidelity"``...).
    column
        A field of that table with an ``enum`` constraint.

    Returns
    -------
    tuple of str
        The ``enum`` values as text, in the order the schema lists them.

    Raises
    ------
    DataFileError
        If the field does not exist or has no ``enum`` constraint.

    Examples
    --------
    >>> field_levels("fidelity", "review")
    ('baseline', '6m', '12m')
    """
    fields = {f["name"]: f for f in load_schema(table)["fields"]}
    values = fields.get(column, {}).get("constraints", {}).get("enum")
    if not values:
        raise DataFileError(
            f"the {table} schema has no enum constraint on {column!r}; its fields are "
            f"{list(fields)}. Declare the allowed values in data_schema/{table}.schema.json."
        )
    return tuple(str(v) for v in values)


#: Arms in reporting order: the reference arm first. The reference is the first arm in
#: sorted order, the level a formula's treatment coding takes as reference.
ARMS: tuple[str, ...] = tuple(sorted(field_levels("teams", "arm")))
#: Reviews in time order, as the fidelity schema lists them (baseline first).
REVIEWS: tuple[str, ...] = field_levels("fidelity", "review")
#: Periods of service use in time order, as the admissions schema lists them.
PERIODS: tuple[str, ...] = field_levels("admissions", "period")
#: Questionnaire waves in time order, as the questionnaire schemas list them.
WAVES: tuple[str, ...] = field_levels("user_questionnaires", "wave")
