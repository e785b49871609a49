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
        and ``fits`` (the manifest records of its fitted models).
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
        plan=plan, manifest=manifest, analyses=analyses, tables=tables,
        figures=figure_items, warnings=[w.to_dict() for w in warnings],
        timestamp_field=TIMESTAMP_FIELD,
        methods_intro=_METHODS_INTRO.format(scale=plan.scale, missing=_missing_rule(plan))
        + " " + _estimand_text(analyses),
    )
