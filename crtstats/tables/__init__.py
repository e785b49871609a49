"""Publication tables: the :class:`Table` type, its renderers and the standard trial tables.

Tables are tidy DataFrames first (``table.data``, full precision), rendered to
Markdown, HTML, LaTeX, CSV and Word from the same formatted cells
(:meth:`Table.render`); tables never write files (:func:`crtstats.write_table` does). The builders
make the standard set for a cluster-randomised trial; those that count service
users take ``suppress_below=`` for small-number suppression. The input checks and
labels the builders share (``collect_effects``, ``domain_keys``, ``join_arm``,
``outcome_label``, ``present_reviews``, ``require_columns``, ``scale_labels``, and for
questionnaires ``DEFAULT_INSTRUMENTS``, ``instrument_title``, ``questionnaire_label``,
``questionnaire_waves``, ``total_range``) are exported for :mod:`crtstats.plots`.
"""

from crtstats.tables._common import (
    join_arm,
    outcome_label,
    present_reviews,
    require_columns,
    scale_labels,
)
from crtstats.tables._effects import collect_effects, effects
from crtstats.tables._fidelity import domain_keys, fidelity_by_arm, item_change
from crtstats.tables._layout import PAPERS, Paper
from crtstats.tables._people import baseline, consort_flow
from crtstats.tables._questionnaire import (
    DEFAULT_INSTRUMENTS,
    QUESTIONNAIRE_TABLES,
    instrument_title,
    questionnaire_label,
    total_range,
)
from crtstats.tables._questionnaire import waves as questionnaire_waves
from crtstats.tables._table import FORMATS, STYLES, Column, Style, Table, TableFormat

__all__ = [
    "DEFAULT_INSTRUMENTS",
    "FORMATS",
    "PAPERS",
    "QUESTIONNAIRE_TABLES",
    "STYLES",
    "Column",
    "Paper",
    "Style",
    "Table",
    "TableFormat",
    "baseline",
    "collect_effects",
    "consort_flow",
    "domain_keys",
    "effects",
    "fidelity_by_arm",
    "instrument_title",
    "item_change",
    "join_arm",
    "outcome_label",
    "present_reviews",
    "questionnaire_label",
    "questionnaire_waves",
    "require_columns",
    "scale_labels",
    "total_range",
]
