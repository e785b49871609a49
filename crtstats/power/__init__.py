"""Power and sample size: simulation of the planned analysis.

:func:`simulate` draws trials from a :class:`TrialDesign` (a plan's ``[design]``
table) through the data model and analyses each with the plan's own pre-specified
analyses, reporting power, type I error, mean estimate and coverage per analysis.
:func:`simulate_tables` draws one trial's tables; :func:`power_table` and
:func:`write_power` render and write the results.
"""

from crtstats.power._engine import RESULT_COLUMNS
from crtstats.power._output import power_table, write_power
from crtstats.power._simulate import PowerResult, default_plan, simulate
from crtstats.power._summary import SUMMARY_COLUMNS
from crtstats.power._trials import SimulatedTables, simulate_tables
from crtstats.runner import BinaryDesign, FidelityDesign, TrialDesign

__all__ = [
    "RESULT_COLUMNS",
    "SUMMARY_COLUMNS",
    "BinaryDesign",
    "FidelityDesign",
    "PowerResult",
    "SimulatedTables",
    "TrialDesign",
    "default_plan",
    "power_table",
    "simulate",
    "simulate_tables",
    "write_power",
]
