"""Fitting a plan's analyses: named trial analyses and models with formulas.

Each ``[[analysis]]`` entry becomes one :class:`AnalysisRun`: the rows it adds to the
effects table (columns :data:`crtstats.analysis.EFFECT_COLUMNS`), the fitted results
behind them, and the warnings raised while fitting. The functions called are the public
fitters and trial analyses of crtstats; nothing here estimates anything itself.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from crtstats.analysis import EFFECT_COLUMNS
from crtstats.exceptions import NotEstimableError, PlanError
from crtstats.models import CRTResult
from crtstats.runner._capability import check_keywords, naming_the_entry
from crtstats.runner._effects import effect_row
from crtstats.runner._estimand_plan import check_declared_estimand
from crtstats.runner._formula import formula_columns
from crtstats.runner._manifest import RecordedWarning, record_warnings
from crtstats.runner._plan import AnalysisSpec, Fitter, Outcome
from crtstats.runner._registry import FITTER_FUNCTIONS, NAMED_ANALYSES, Fit
from crtstats.trial import TrialData

#: What ``fit_analysis`` passes to the named trial analyses.
NamedInputs = Mapping[str, "TrialData | pd.DataFrame | None"]

__all__ = ["AnalysisRun", "fit_analysis"]

@dataclass(frozen=True)
class AnalysisRun:
    """What one ``[[analysis]]`` entry produced.

    Attributes
    ----------
    spec
        The plan entry.
    effects
        Its rows of the effects table (columns of ``EFFECT_COLUMNS``).
    fits
        The fitted results behind the rows, by name.
    notes
        Plain-language notes for the report (exclusions, boundary fits...).
    warnings
        Every warning raised while fitting.
    seed
        The seed passed to the fitter, if it takes one.
    options
        The options passed, as given in the plan (plus the seed).
    not_possible
        Why the analysis could not be fitted on these data (None when it was): the
        fitter's :class:`~crtstats.NotEstimableError` message, e.g. a 12-month contrast
        in an interim analysis before any 12-month review.
    """

    spec: AnalysisSpec
    effects: pd.DataFrame
    fits: Mapping[str, Fit]
    notes: tuple[str, ...]
    warnings: tuple[RecordedWarning, ...]
    seed: int | None
    options: Mapping[str, Any]
    not_possible: str | None = None


def _with_seed(
    function: Callable[..., Any], spec: AnalysisSpec, seed: int,
) -> tuple[dict[str, Any], int | None]:
    options = dict(spec.options)
    if "seed" in inspect.signature(function).parameters:
        options.setdefault("seed", seed)
    used = options.get("seed")
    return options, used if isinstance(used, int) and not isinstance(used, bool) else None


def _select_rows(frame: pd.DataFrame, spec: AnalysisSpec, wanted_by: str) -> pd.DataFrame:
    keep = pd.Series(True, index=frame.index)
    for column, wanted in spec.where.items():
        if column not in frame.columns:
            raise PlanError(f"{wanted_by}: where.{column} names a column that the "
                            f"{spec.source} data do not have; they have: "
                            f"{', '.join(map(str, frame.columns))}.")
        values = wanted if isinstance(wanted, list) else [wanted]
        match = frame[column].isin(values).fillna(False).astype(bool)
        if not match.any():
            seen = sorted(map(str, frame[column].dropna().unique()))[:10]
            raise PlanError(f"{wanted_by}: where.{column} = {wanted!r} matches no rows; the "
                            f"column holds {seen}.")
        keep &= match
    return frame.loc[keep]


def _check_columns(spec: AnalysisSpec, frame: pd.DataFrame, wanted_by: str) -> None:
    if spec.formula is not None:
        needed = [*formula_columns(spec.formula, where=wanted_by), spec.cluster]
    else:
        needed = [str(spec.options["outcome"]), spec.cluster]
    missing = [c for c in dict.fromkeys(needed) if c not in frame.columns]
    if missing:
        raise PlanError(f"{wanted_by}: the plan names column(s) {missing} that the "
                        f"{spec.source} data do not have; they have: "
                        f"{', '.join(map(str, frame.columns))}.")


def _run_model(
    spec: AnalysisSpec, fitter: Fitter, frames: Mapping[str, pd.DataFrame], seed: int,
    wanted_by: str,
) -> tuple[pd.DataFrame, dict[str, Fit], tuple[str, ...], dict[str, Any], int | None]:
    function = FITTER_FUNCTIONS[fitter]
    options, used_seed = _with_seed(function, spec, seed)
    if spec.formula is None:  # cluster_level, permutation_test: columns, not a formula
        options.setdefault("arm", "arm")
    check_keywords(function, options, wanted_by=wanted_by)
    if spec.source is None or spec.source not in frames:
        raise PlanError(f"{wanted_by}: data = {spec.source!r} is not available for this "
                        f"trial; available: {', '.join(frames)}.")
    frame = _select_rows(frames[spec.source], spec, wanted_by)
    _check_columns(spec, frame, wanted_by)
    if spec.formula is None:
        fit: Fit = function(frame, cluster=spec.cluster, **options)
    else:
        fit = function(spec.formula, frame, cluster=spec.cluster, **options)
    row = effect_row(spec, fit, frame, wanted_by)
    return row, {spec.name: fit}, _row_notes(spec, fit, frame), options, used_seed


def _row_notes(spec: AnalysisSpec, fit: Fit, frame: pd.DataFrame) -> tuple[str, ...]:
    """Which rows the fit used: those ``where`` selected, less any the fitter excluded."""
    notes = []
    if spec.where:
        chosen = ", ".join(f"{k} = {v!r}" for k, v in spec.where.items())
        notes.append(f"{len(frame)} row(s) of {spec.source} with {chosen}.")
    excluded = fit.details.n_excluded if isinstance(fit, CRTResult) and fit.details else None
    if isinstance(excluded, int) and excluded > 0:
        notes.append(f"{excluded} row(s) excluded by the fitter for missing values.")
    return tuple(notes)


def _run_named(
    spec: AnalysisSpec, outcome: Outcome, inputs: NamedInputs, seed: int, wanted_by: str,
) -> tuple[pd.DataFrame, dict[str, Fit], tuple[str, ...], dict[str, Any], int | None]:
    function = NAMED_ANALYSES[outcome]
    fixed: dict[str, Any] = {}
    if outcome == "fidelity":
        args: tuple[TrialData | pd.DataFrame | None, ...] = (inputs["scores"],
                                                             inputs["teams"])
    elif outcome == "questionnaire":
        args = (inputs["trial"],)
    else:
        args, fixed = (inputs["trial"],), {"outcome": outcome}
    options, used_seed = _with_seed(function, spec, seed)
    check_keywords(function, options, wanted_by=wanted_by)
    called = dict(options)
    if spec.instrument_file is not None:  # a key file beside the plan, by its full path
        called["instrument"] = str(spec.instrument_file)
    result = function(*args, **fixed, **called)
    effects = result.effects.reindex(columns=list(EFFECT_COLUMNS))
    return (effects, dict[str, Fit](result.results), tuple(result.notes), options,
            used_seed)


def fit_analysis(
    spec: AnalysisSpec, *, frames: Mapping[str, pd.DataFrame], inputs: NamedInputs,
    seed: int,
) -> AnalysisRun:
    """Fit one plan entry and collect its effects, fits, notes and warnings.

    Parameters
    ----------
    spec
        The ``[[analysis]]`` entry.
    frames
        The runner's analysis frames by ``data`` name (``scores``, ``admissions``...).
    inputs
        The objects the named trial analyses take: ``trial``, ``scores``, ``teams``.
    seed
        The plan's seed, passed to fitters that take one unless the entry sets its own.

    Raises
    ------
    PlanError
        If the entry gives an option the function does not take, names a column the
        data lack, or an estimand the model does not have.
    ModelSpecificationError, InvalidParameterError
        If the function refuses the model or an option value; the message is the
        function's, prefixed with the plan entry.

    Notes
    -----
    When the data cannot identify the model (:class:`~crtstats.NotEstimableError`: a
    review or arm with no rows in a partial trial), nothing is raised: the run records
    the analysis as not possible, with the fitter's reason, and goes on; the report and
    the manifest list it.
    """
    wanted_by = f"[[analysis]] {spec.name!r}"
    sink: list[RecordedWarning] = []
    try:
        with record_warnings(spec.name, sink), naming_the_entry(wanted_by):
            if spec.fitter is not None:
                parts = _run_model(spec, spec.fitter, frames, seed, wanted_by)
            elif spec.outcome is not None:
                parts = _run_named(spec, spec.outcome, inputs, seed, wanted_by)
            else:  # parse_plan requires exactly one of fitter and outcome
                raise PlanError(f"{wanted_by} names neither a fitter nor an outcome.")
            check_declared_estimand(spec.declared_estimand, spec.outcome, parts[0],
                                    parts[1], wanted_by)
    except NotEstimableError as err:
        reason = str(err).removeprefix(f"{wanted_by}: ")
        return AnalysisRun(spec=spec, effects=pd.DataFrame(columns=list(EFFECT_COLUMNS)),
                           fits={}, notes=(f"not possible on these data: {reason}",),
                           warnings=tuple(sink), seed=None, options=dict(spec.options),
                           not_possible=reason)
    effects, fits, notes, options, used_seed = parts
    return AnalysisRun(spec=spec, effects=effects, fits=fits, notes=notes,
                       warnings=tuple(sink), seed=used_seed, options=options)
