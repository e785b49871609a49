"""``report.html``: one self-contained page with every table, figure and the methods.

The page has no external references: tables are inlined as HTML, figures as base64 PNG
(or inline SVG when only SVG was asked for), and the style sheet is in the page.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import jinja2

from crtstats.analysis import ics_limits
from crtstats.runner._manifest import TIMESTAMP_FIELD, RecordedWarning
from crtstats.runner._plan import Plan

__all__ = ["ReportFigure", "ReportTable", "render_report"]


@dataclass(frozen=True)
class ReportTable:
    """A table as it appears in the report."""

    name: str
    title: str
    html: str


@dataclass(frozen=True)
class ReportFigure:
    """A figure as it appears in the report: PNG bytes and/or SVG text."""

    name: str
    title: str
    png: bytes | None = None
    svg: str | None = None


_METHODS_INTRO = (
    "The data were validated against the crtstats data schemas and fidelity reviews "
    "scored with the {scale} scale key ({missing}). Each pre-specified analysis below "
    "was fitted as listed; the degrees-of-freedom method and covariance estimator are "
    "those reported by the fitted model. Input file "
    "hashes, software versions and seeds are in manifest.json beside this page."
)


_ESTIMANDS = (
    "Every effect states its estimand: the population (participant-average, each "
    "service user counting once; cluster-average, each team counting once; or "
    "efficiency-weighted, teams weighted by the precision of their mean as a mixed model "
    "or exchangeable GEE does, which matches neither when team size is informative), the "
    "summary measure, and whether it is conditional on the team (cluster-specific) or "
    "marginal."
)


def _estimand_text(analyses: Sequence[Mapping[str, Any]]) -> str:
    """The estimand paragraph, with the informative-size limits when the check ran."""
    sizes = [int(fit["n_clusters"]) for item in analyses for fit in item.get("fits", ())
             if fit.get("model") == "estimands" and "n_clusters" in fit]
    if not sizes:
        return _ESTIMANDS
    return (f"{_ESTIMANDS} The informative-cluster-size check compares the cluster- and "
            f"participant-average effects of the admissions outcome. {ics_limits(max(sizes))}")


_WHO = {"user_questionnaires": "service users' questionnaires",
        "staff_questionnaires": "staff questionnaires"}

_QUESTIONNAIRE_ANALYSIS = (
    "Each questionnaire analysis compares the arms at follow-up: an individual-level "
    "linear mixed model of the follow-up score with a random team intercept, arm, "
    "stratum and the team's baseline mean score as a cluster-level covariate "
    "(Kenward-Roger df), since people are sampled afresh at each wave; for people "
    "linked across waves, an analysis adjusted for their own baseline score; as "
    "sensitivity analyses, the ANCOVA of team means on the team baseline mean (CR2) "
    "and the randomisation test; for a caseness outcome, the binary analyses used for "
    "admissions. Each reports the ICC of its outcome with its confidence interval."
)


def _questionnaire_text(manifest: Mapping[str, Any], analyses: Sequence[Mapping[str, Any]]
                        ) -> str:
    """How the questionnaires were scored (and analysed), from the manifest's records."""
    scored = manifest.get("scoring", {}).get("questionnaires") or {}
    parts = []
    for table, q in scored.items():
        low, high = q["total_range"]
        case = ("" if q["caseness_threshold"] is None
                else f", a case at a total of {q['caseness_threshold']:g} or more")
        rule = ("no total where any item was missing" if not q["prorate"] else
                f"totals with up to {q['max_missing']} missing item(s) prorated (the mean "
                "of the answered items times the number of items) and flagged")
        parts.append(f"the {_WHO.get(table, table)} with the {q['title']} key "
                     f"{q['instrument']}, scoring {q['scoring']} (total {low:g}-{high:g}"
                     f"{case}; {rule})")
    if not parts:
        return ""
    text = ("Questionnaires were scored with their instrument keys: " + "; ".join(parts)
            + ". A sampled person who did not respond is counted in the flow of "
            "respondents and has no score. Respondent and staff identifiers were used "
            "only to link a person's answers across waves and appear in no output.")
    if any(item.get("outcome") == "questionnaire" for item in analyses):
        text += " " + _QUESTIONNAIRE_ANALYSIS
    return text


def _primary_text(manifest: Mapping[str, Any]) -> str:
    """Which analysis the plan names as primary, and its outcome."""
    primary = manifest.get("primary")
    if not primary:
        return ""
    outcomes = ", ".join(primary["outcomes"])
    if not outcomes:
        return (f"The plan names the analysis {primary['label']!r} as primary; it could "
                "not be fitted on these data (see below), so no outcome is reported as "
                "primary. Every other outcome is secondary.")
    return (f"The plan names the analysis {primary['label']!r} as primary: its outcome "
            f"({outcomes}) is the trial's primary outcome and is reported first. Every "
            "other outcome is secondary (as the effects table's outcome headings say).")


def _primary_first(analyses: Sequence[Mapping[str, Any]], name: str | None
                   ) -> list[Mapping[str, Any]]:
    return sorted(analyses, key=lambda item: item.get("name") != name)


def _missing_rule(plan: Plan) -> str:
    if plan.max_missing == 0:
        return "a review with any missing item has no total"
    return (f"totals of reviews with up to {plan.max_missing} missing item(s) were prorated "
            "and flagged")


def _inline_svg(svg: str) -> str:
    """The ``<svg>`` element of an SVG document (no XML declaration or doctype)."""
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


def _environment() -> jinja2.Environment:
    loader = jinja2.FunctionLoader(
        lambda name: (files("crtstats.runner") / "templates" / name).read_text("utf-8")
    )
    return jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True)


def render_report(
    *,
    plan: Plan,
    manifest: Mapping[str, Any],
    analyses: Sequence[Mapping[str, Any]],
    tables: Sequence[ReportTable],
    figures: Sequence[ReportFigure],
    warnings: Sequence[RecordedWarning],
) -> str:
    """Render the report page.

    Parameters
    ----------
    plan
        The plan that was run.
    manifest
        The run's manifest (inputs, versions, timestamp).
    analyses
        One mapping per plan analysis with ``label``, ``role``, ``options``, ``notes``
        and ``fits`` (the manifest records of its fitted models); the plan's primary
        analysis is shown first.
    tables, figures
        What to show, in order.
    warnings
        Every warning the run recorded.

    Returns
    -------
    str
        The HTML page.
    """
    figure_items = [
        {"name": f.name, "title": f.title,
         "png": base64.b64encode(f.png).decode("ascii") if f.png is not None else None,
         "svg": _inline_svg(f.svg) if f.svg is not None else None}
        for f in figures
    ]
    template = _environment().get_template("report.html.j2")
    return template.render(
        plan=plan, manifest=manifest, analyses=_primary_first(analyses, plan.primary),
        tables=tables, primary_text=_primary_text(manifest),
        questionnaire_text=_questionnaire_text(manifest, analyses),
        figures=figure_items, warnings=[w.to_dict() for w in warnings],
        timestamp_field=TIMESTAMP_FIELD,
        methods_intro=_METHODS_INTRO.format(scale=plan.scale, missing=_missing_rule(plan))
        + " " + _estimand_text(analyses),
    )
