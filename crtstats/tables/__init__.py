"""Publication tables: the :class:`Table` type, its renderers and the standard trial tables.

Tables are tidy DataFrames first (``table.data``, full precision), rendered to
Markdown, HTML, LaTeX, CSV and Word from the same formatted cells. The builders
make the standard set for a cluster-randomised trial; those that count service
users take ``suppress_below=`` for small-number suppression.
"""

from crtstats.tables._effects import effects
from crtstats.tables._fidelity import fidelity_by_arm, item_change
from crtstats.tables._people import baseline, consort_flow
from crtstats.tables._table import STYLES, Column, Style, Table
from crtstats.tables._write import TableFormat, write_table

__all__ = [
    "STYLES",
    "Column",
    "Style",
    "Table",
    "TableFormat",
    "baseline",
    "consort_flow",
    "effects",
    "fidelity_by_arm",
    "item_change",
    "write_table",
]
