"""Power and sample size for cluster-randomised trials.

Closed forms with t on the analysis's df (:func:`continuous`, :func:`binary`,
:func:`rates`, :func:`ancova`, :func:`cluster_size_needed`), and simulation of the
planned analysis: :func:`simulate` draws trials from a :class:`TrialDesign` (a plan's
``[design]`` table) through the data model and analyses each with the plan's own
pre-specified analyses, reporting power, type I error, mean estimate and coverage per
analysis; :func:`simulate_tables` draws one trial's tables; :func:`power_table` and
:func:`write_power` render and write the results.
"""

from crtstats.power._closed import (
    ClusterSizeResult,
    PowerResult,
    ancova,
    binary,
    cluster_size_needed,
    continuous,
    rates,
)
from crtstats.power._engine import RESULT_COLUMNS
from crtstats.power._output import power_table, write_power
from crtstats.power._simulate import SimulationResult, default_plan, simulate
from crtstats.power._summary import SUMMARY_COLUMNS
from crtstats.power._trials import SimulatedTables, simulate_tables
from crtstats.runner import BinaryDesign, FidelityDesign, TrialDesign

__all__ = [
    "RESULT_COLUMNS",
    "SUMMARY_COLUMNS",
    "BinaryDesign",
    "ClusterSizeResult",
    "FidelityDesign",
    "PowerResult",
    "SimulatedTables",
    "SimulationResult",
    "TrialDesign",
    "ancova",
    "binary",
    "cluster_size_needed",
    "continuous",
    "default_plan",
    "power_table",
    "rates",
    "simulate",
    "simulate_tables",
    "write_power",
]
