"""The effects-table row of a plan's model entry: which estimand, then the one builder.

A plan entry says its estimand with ``term``, ``contrast`` or neither (the single arm
coefficient, or a cluster-level ``difference``; without an ``estimand`` label the terms
are named for readers, ``arm intervention x review 12m``); this module resolves that
against the fitted model and hands the row to :func:`crtstats.analysis.effect_row` (or
:func:`crtstats.analysis.randomisation_row` for a randomisation test), the builder every
trial analysis uses too.

A plan that names its primary analysis (top-level ``primary``) also gets each row's
``outcome_role`` (:func:`with_outcome_roles`): ``"primary"`` for the outcome of that
analysis, ``"secondary"`` for every other outcome; it is distinct from ``role``, which
says whether a row is the primary or a sensitivity analysis of its own outcome.
"""

from __future__ import annotations

import pandas as pd

from crtstats.analysis import effect_row as build_row
from crtstats.analysis import effects_frame, randomisation_row
from crtstats.exceptions import PlanError
from crtstats.models import CRTResult, PermutationResult
from crtstats.plots import readable_terms
from crtstats.runner._plan import AnalysisSpec

__all__ = ["OUTCOME_ROLES", "effect_row", "primary_outcomes", "with_outcome_roles"]

#: The values of the ``outcome_role`` column.
OUTCOME_ROLES = ("primary", "secondary")


def _weights(spec: AnalysisSpec, names: list[str], wanted_by: str) -> tuple[dict[str, float],
                                                                           str | None]:
    """The estimand's weights and, when chosen by default, its label."""
    if spec.contrast:
        return dict(spec.contrast), None
    if spec.term is not None:
        plain = spec.term in ("difference", "log_ratio") or spec.term.startswith("arm[")
        return {spec.term: 1.0}, "intervention vs control" if plain else None
    arm = [n for n in names if n.startswith("arm")]
    if len(arm) == 1:
        return {arm[0]: 1.0}, "intervention vs control"
    if len(names) == 1 and names[0] in ("difference", "log_ratio"):  # cluster-level
        return {names[0]: 1.0}, "intervention vs control"
    raise PlanError(f"{wanted_by}: say which coefficient is the estimand with term = \"...\" "
                    f"or contrast = {{...}}; the model has: {', '.join(names)}.")


def _role(spec: AnalysisSpec, wanted_by: str) -> str:
    if spec.role is None:  # parse_plan requires a role of every model entry
        raise PlanError(f"{wanted_by} needs role = \"primary\" or \"sensitivity\".")
    return spec.role


def _model_row(spec: AnalysisSpec, fit: CRTResult, outcome: str, wanted_by: str
               ) -> pd.DataFrame:
    names = list(fit.param_names)
    weights, default_label = _weights(spec, names, wanted_by)
    unknown = [t for t in weights if t not in names]
    if unknown:
        raise PlanError(f"{wanted_by}: the estimand names coefficient(s) {unknown} that the "
                        f"model does not have; it has: {', '.join(names)}.")
    label = spec.estimand or default_label or readable_terms(" + ".join(
        t if w == 1 else f"{w:g} * {t}" for t, w in weights.items()
    ))
    return effects_frame([build_row(fit, weights, outcome=outcome, analysis=spec.label,
                                    role=_role(spec, wanted_by), estimand=label)])


def _permutation_row(
    spec: AnalysisSpec, test: PermutationResult, frame: pd.DataFrame, wanted_by: str,
) -> pd.DataFrame:
    outcome = frame[str(spec.options["outcome"])]
    binary = bool(outcome.dropna().isin([0, 1]).all())
    if test.statistic == "mean_difference":
        scale = "risk difference" if binary else "difference"
    elif test.statistic == "log_ratio":
        scale = "risk ratio" if binary else "rate ratio"
    else:
        raise PlanError(f"{wanted_by}: the effects table reports permutation tests of "
                        "statistic = \"mean_difference\" or \"log_ratio\"; got "
                        f"{test.statistic!r}.")
    return effects_frame([randomisation_row(
        test, outcome=str(spec.options["outcome"]), analysis=spec.label,
        role=_role(spec, wanted_by),
        estimand=spec.estimand or "intervention vs control", scale=scale,
        n_clusters=int(frame[spec.cluster].nunique()), nobs=int(outcome.notna().sum()),
    )])


def effect_row(
    spec: AnalysisSpec, fit: CRTResult | PermutationResult, frame: pd.DataFrame,
    wanted_by: str,
) -> pd.DataFrame:
    """The effects-table row of one model entry of a plan.

    Parameters
    ----------
    spec
        The ``[[analysis]]`` entry (its ``term``, ``contrast`` and ``estimand``).
    fit
        What the fitter returned: a ``CRTResult`` or a ``PermutationResult``.
    frame
        The rows the fitter was given.
    wanted_by
        The plan entry, for error messages.

    Returns
    -------
    pandas.DataFrame
        One row with the columns of ``EFFECT_COLUMNS``.

    Raises
    ------
    PlanError
        If the estimand names a coefficient the model lacks, or none is given and the
        model has no single arm coefficient.
    """
    if isinstance(fit, PermutationResult):
        return _permutation_row(spec, fit, frame, wanted_by)
    outcome = (str(spec.formula).split("~", 1)[0].strip() if spec.formula
               else str(spec.options.get("outcome")))
    return _model_row(spec, fit, outcome, wanted_by)


def primary_outcomes(effects: pd.DataFrame) -> tuple[str, ...]:
    """The outcomes of the primary analysis's rows: those of its primary rows.

    ``effects`` are the rows of the analysis the plan names as ``primary``. A named
    trial analysis reports several outcomes and analyses; the trial's primary outcome
    is the one (or ones) of its rows with ``role`` primary. An entry without a primary
    row (a plan's sensitivity model named as primary) gives all its outcomes.
    """
    chosen = effects.loc[effects["role"] == "primary", "outcome"]
    if chosen.empty:
        chosen = effects["outcome"]
    return tuple(dict.fromkeys(str(o) for o in chosen))


def with_outcome_roles(effects: pd.DataFrame, primary: tuple[str, ...]) -> pd.DataFrame:
    """``effects`` with an ``outcome_role`` column after ``role``, primary outcome first.

    Parameters
    ----------
    effects
        Effects rows (columns of ``EFFECT_COLUMNS``).
    primary
        The primary outcome(s) (:func:`primary_outcomes`).

    Returns
    -------
    pandas.DataFrame
        A copy with ``outcome_role`` ``"primary"`` where ``outcome`` is in ``primary``
        and ``"secondary"`` elsewhere; the primary outcome's rows first, each group in
        its given order.
    """
    out = effects.drop(columns="outcome_role", errors="ignore").copy()
    is_primary = out["outcome"].astype(str).isin(primary).to_numpy()
    role = pd.Series(["primary" if p else "secondary" for p in is_primary], index=out.index,
                     dtype=object)
    out.insert(list(out.columns).index("role") + 1, "outcome_role", role)
    order = sorted(range(len(out)), key=lambda k: not is_primary[k])
    return out.iloc[order].reset_index(drop=True)
