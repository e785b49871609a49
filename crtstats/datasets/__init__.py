"""Example data: a simulated CORE-like trial and a shipped copy of it.

The shipped example (:func:`load_example`) was written once by
``simulate_trial(seed=EXAMPLE_SEED)`` and is what the README's main command analyses;
``tests/test_datasets.py`` checks that the shipped copy still equals that call.
:func:`write_messy_example` writes the same trial as a trust would export it (own
column names and labels, an Excel workbook, dd/mm/yyyy dates) with its mapping and plan.
"""

from __future__ import annotations

from crtstats.datasets._example import EXAMPLE_SEED, example_paths, load_example
from crtstats.datasets._messy import MESSY_FILES, messy_tables, write_messy_example
from crtstats.datasets._simulate import TRUE_EFFECTS, SimulatedTrial, simulate_trial

__all__ = [
    "EXAMPLE_SEED",
    "MESSY_FILES",
    "TRUE_EFFECTS",
    "SimulatedTrial",
    "example_paths",
    "load_example",
    "messy_tables",
    "simulate_trial",
    "write_messy_example",
]
