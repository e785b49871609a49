"""The plan's declared estimands: parse ``estimand = {...}`` and check each analysis.

An ``[[analysis]]`` entry may write ``estimand`` as a label (``"arm effect at 12m"``,
as before) or as a table::

    estimand = { label = "arm effect at 12m", population = "cluster-average",
                 measure = "mean difference", conditioning = "marginal" }

with any of ``population`` (``participant-average``, ``cluster-average``), ``measure``
(``mean difference``, ``risk difference``, ``risk ratio``, ``odds ratio``, ``rate
ratio``, ``rate difference``) and ``conditioning`` (``conditional``, ``marginal``).
After the fit, each declared attribute is compared with the effects row (for a named
trial analysis, its primary rows of that outcome); a mismatch issues an
:class:`~crtstats.EstimandWarning` that says why the analysis estimates something else.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import pandas as pd

from crtstats.exceptions import EstimandWarning, PlanError
from crtstats.models import CONDITIONINGS, MEASURES, CRTResult

__all__ = ["ESTIMAND_KEYS", "check_declared_estimand", "parse_estimand"]

#: The attributes a plan may declare, with their allowed values.
ESTIMAND_KEYS: Mapping[str, tuple[str, ...]] = {
    "population": ("participant-average", "cluster-average"),
    "measure": MEASURES,
    "conditioning": CONDITIONINGS,
}

_REMEDY = ("for a participant-average effect use gee(cov_struct=\"independence\") or "
           "cluster_level(weights=\"weighted\"); for a cluster-average one "
           "cluster_level() or gee(cov_struct=\"independence\", weights=\"inverse-size\")")


def parse_estimand(raw: Any, where: str) -> tuple[str | None, dict[str, str]]:
    """The label and the declared attributes of an ``estimand`` plan value.

    Raises
    ------
    PlanError
        If the value is neither a string nor a table, or a key or value is unknown.
    """
    if raw is None or isinstance(raw, str):
        return raw, {}
    if not isinstance(raw, dict):
        raise PlanError(f"{where}: estimand must be a label (a string) or a table such as "
                        "{ population = \"cluster-average\", measure = \"risk ratio\", "
                        f"conditioning = \"marginal\" }}; got {raw!r}.")
    unknown = sorted(set(raw) - {"label", *ESTIMAND_KEYS})
    if unknown:
        raise PlanError(f"{where}: estimand has unknown key(s) {unknown}; allowed: label, "
                        f"{', '.join(ESTIMAND_KEYS)}.")
    label = raw.get("label")
    if label is not None and not isinstance(label, str):
        raise PlanError(f"{where}: estimand.label must be a string; got {label!r}.")
    declared: dict[str, str] = {}
    for key, allowed in ESTIMAND_KEYS.items():
        if key in raw:
            if raw[key] not in allowed:
                raise PlanError(f"{where}: estimand.{key} must be one of "
                                f"{', '.join(repr(a) for a in allowed)}; got {raw[key]!r}.")
            declared[key] = str(raw[key])
    if not declared:
        raise PlanError(f"{where}: estimand as a table needs at least one of "
                        f"{', '.join(ESTIMAND_KEYS)}.")
    return label, declared


def _population_mismatch(declared: str, found: str) -> bool:
    # an efficiency-weighted effect equals the cluster-average when every cluster has
    # the same number of observations (team-level outcomes), so only a participant-
    # average asked of it, or a plain swap of the two, is flagged
    if declared == found:
        return False
    return declared == "participant-average" or found == "participant-average"


def _why(fit: Any) -> str:
    return f" ({fit.estimand.note})" if isinstance(fit, CRTResult) else ""


def _mismatches(declared: Mapping[str, str], row: pd.Series) -> list[str]:
    out = []
    if "population" in declared and _population_mismatch(declared["population"],
                                                          str(row["population"])):
        out.append(f"population {declared['population']!r} but the analysis estimates a "
                   f"{row['population']} effect")
    if "measure" in declared and declared["measure"] != row["measure"]:
        out.append(f"measure {declared['measure']!r} but the analysis reports a "
                   f"{row['measure']}")
    # only the odds ratio differs between the conditional and the marginal effect of a
    # random-intercept model (identity and log links are collapsible)
    if ("conditioning" in declared and declared["conditioning"] != row["conditioning"]
            and row["measure"] == "odds ratio"):
        out.append(f"a {declared['conditioning']} odds ratio but the analysis estimates "
                   f"a {row['conditioning']} one")
    return out


def check_declared_estimand(declared: Mapping[str, str], outcome: str | None,
                            effects: pd.DataFrame, fits: Mapping[str, Any],
                            wanted_by: str) -> None:
    """Warn (:class:`~crtstats.EstimandWarning`) where the analysis misses the estimand.

    ``effects`` are the entry's rows; for a named analysis (``outcome`` given) only its
    primary rows of that outcome are compared (all its primary rows if none match).
    """
    if not declared or effects.empty or "population" not in effects.columns:
        return
    rows = effects
    if outcome is not None:
        primary = effects[effects["role"] == "primary"]
        own = primary[primary["outcome"] == outcome]
        rows = own if not own.empty else primary
    fit = next(iter(fits.values()), None) if len(fits) == 1 else None
    for _, row in rows.iterrows():
        problems = _mismatches(declared, row)
        if problems:
            warnings.warn(
                f"{wanted_by}: the plan declares {'; and '.join(problems)}: "
                f"{row['analysis']} ({row['measure']}){_why(fit)}. Report it as what it "
                f"estimates, or change the analysis: {_REMEDY}.",
                EstimandWarning, stacklevel=2)
