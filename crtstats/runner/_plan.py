"""Analysis plans: the TOML format, its schema and its loader.

A plan is data. It names the trial's files (or the shipped example), how their columns
map onto the data model, how fidelity is scored, the pre-specified analyses (a fitter
with a formula, or a named trial analysis) and the tables and figures wanted. Every key
is checked here, before any data are read, and every problem is a
:class:`~crtstats.exceptions.PlanError` that says where in the plan it is, what was
found and what is allowed. ``docs/plans.md`` documents the format.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args

from crtstats.exceptions import DataFileError, PlanError
from crtstats.runner._data_plan import DataSpec, parse_data
from crtstats.runner._design_plan import TrialDesign, parse_design
from crtstats.runner._estimand_plan import parse_estimand
from crtstats.runner._formula import check_formula
from crtstats.runner._plan_checks import OptionValue
from crtstats.runner._plan_checks import choice as _choice
from crtstats.runner._plan_checks import choices as _choices
from crtstats.runner._plan_checks import get_value as _get
from crtstats.runner._plan_checks import option_value as _option_value
from crtstats.runner._plan_checks import unknown_keys as _unknown_keys
from crtstats.runner._questionnaire_plan import check_questionnaire_options
from crtstats.tables import FORMATS, PAPERS, Paper, TableFormat

__all__ = [
    "FIGURES",
    "FIGURE_FORMATS",
    "FITTERS",
    "OUTCOMES",
    "SOURCES",
    "TABLES_WANTED",
    "TABLE_FORMATS",
    "AnalysisSpec",
    "DataSpec",
    "OutputSpec",
    "Plan",
    "load_plan",
    "parse_plan",
]

Fitter = Literal["lmm", "ols", "glmm", "gee", "cluster_level", "permutation_test"]
Outcome = Literal["fidelity", "admitted", "readmitted", "questionnaire"]
Source = Literal["scores", "change", "admissions", "service_use", "teams"]
Role = Literal["primary", "sensitivity"]
TableName = Literal[
    "data_summary", "consort_flow", "baseline", "fidelity_by_arm", "effects", "item_change"
]
FigureName = Literal["trajectories", "domain_profile", "forest", "caterpillar", "cluster_size",
                     "questionnaire_means"]
FigureFormat = Literal["png", "svg"]  # those the report can embed

FITTERS: tuple[str, ...] = get_args(Fitter)
OUTCOMES: tuple[str, ...] = get_args(Outcome)
SOURCES: tuple[str, ...] = get_args(Source)
ROLES: tuple[str, ...] = get_args(Role)
TABLES_WANTED: tuple[TableName, ...] = get_args(TableName)
FIGURES: tuple[FigureName, ...] = get_args(FigureName)
#: Figures drawn when ``[output]`` names none (cluster_size needs admissions data; a
#: default the trial cannot support, such as questionnaire_means without questionnaires,
#: is left out and the report says why).
DEFAULT_FIGURES: tuple[FigureName, ...] = ("trajectories", "domain_profile", "forest",
                                          "caterpillar", "questionnaire_means")
TABLE_FORMATS: tuple[TableFormat, ...] = FORMATS
FIGURE_FORMATS: tuple[FigureFormat, ...] = get_args(FigureFormat)

#: Fitters that take column names (``options.outcome``) instead of a formula.
FORMULA_FREE = ("cluster_level", "permutation_test")

#: Option names the runner supplies itself; a plan cannot set them in ``options``.
RESERVED_OPTIONS = ("formula", "data", "cluster", "trial", "scores", "teams", "fidelity")

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


@dataclass(frozen=True)
class AnalysisSpec:
    """One ``[[analysis]]`` entry: a pre-specified primary or sensitivity analysis.

    Exactly one of ``outcome`` (a named trial analysis) and ``fitter`` (a model with a
    formula on one of the runner's data frames) is set. ``role`` is set for a model
    entry; a named analysis labels its own rows (its ``method`` option picks the
    primary one).

    Attributes
    ----------
    name, label
        The entry's unique name (manifest key) and its name in tables.
    role
        ``"primary"`` or ``"sensitivity"``; None for a named analysis.
    outcome
        The named analysis: ``"fidelity"``, ``"admitted"``, ``"readmitted"`` or
        ``"questionnaire"`` (its options name the table and instrument).
    fitter, formula, source, cluster, where
        The model: fitter name, formula (None for ``cluster_level`` and
        ``permutation_test``), the ``data`` frame, the cluster column and the row filter.
    estimand, term, contrast
        The effect's label, and the coefficient or linear combination reported.
    declared_estimand
        The estimand's attributes the plan declares (``population``, ``measure``,
        ``conditioning``; see :mod:`crtstats.runner._estimand_plan`), checked after
        the fit.
    options
        Keyword options passed to the function called.
    instrument_file
        For a questionnaire analysis whose ``instrument`` option names a key file: that
        file, resolved against the plan's folder (passed in place of the option's text).
    """

    name: str
    role: str | None
    label: str
    outcome: Outcome | None = None
    fitter: Fitter | None = None
    formula: str | None = None
    source: str | None = None
    cluster: str = "team_id"
    where: Mapping[str, OptionValue] = field(default_factory=dict)
    estimand: str | None = None
    term: str | None = None
    contrast: Mapping[str, float] = field(default_factory=dict)
    options: Mapping[str, OptionValue] = field(default_factory=dict)
    declared_estimand: Mapping[str, str] = field(default_factory=dict)
    instrument_file: Path | None = None


@dataclass(frozen=True)
class OutputSpec:
    """The ``[output]`` table: tables and figures wanted, formats, suppression.

    Attributes
    ----------
    tables, figures
        Names of the tables and figures to write, in order.
    table_formats, figure_formats
        File formats of each table and figure.
    suppress_below
        Counts of service users from 1 to ``suppress_below - 1`` are withheld (0: none).
    paper
        The page the Word and LaTeX tables are laid out for: ``"a4"`` or ``"letter"``.
    chosen
        The tables and figures the plan lists by name. The others are defaults: a
        default that the trial's data cannot support (fidelity tables of an
        admissions-only trial) is left out and the report says why, whereas a table or
        figure the plan asks for by name is an error when it cannot be built.
    """

    tables: tuple[TableName, ...] = TABLES_WANTED
    figures: tuple[FigureName, ...] = DEFAULT_FIGURES
    table_formats: tuple[TableFormat, ...] = TABLE_FORMATS
    figure_formats: tuple[FigureFormat, ...] = FIGURE_FORMATS
    suppress_below: int = 0
    paper: Paper = "a4"
    chosen: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Plan:
    """A checked analysis plan.

    Attributes
    ----------
    name
        The plan's file name (or the name given to :func:`parse_plan`).
    sha256
        Hash of the plan's bytes as read (of its canonical JSON when built from a dict).
    title
        The report's title.
    seed
        The seed passed to every fitter that takes one (unless an entry sets its own).
    data
        The ``[data]`` table.
    scale, max_missing
        The ``[scoring]`` table: the scale key and the most missing items prorated.
    analyses
        The ``[[analysis]]`` entries, in plan order.
    output
        The ``[output]`` table.
    path, text
        The plan file and its text, when read by :func:`load_plan` (the report shows
        the text).
    design
        The ``[design]`` table (how ``crtstats power`` simulates the trial), or None.
    primary
        The name of the analysis whose outcome is the trial's primary outcome (the
        plan's top-level ``primary``), or None. Effects rows then carry
        ``outcome_role``: ``"primary"`` for that outcome, ``"secondary"`` for others.
    """

    name: str
    sha256: str
    title: str
    seed: int
    data: DataSpec
    scale: str = "core_crt_v2"
    max_missing: int = 0
    analyses: tuple[AnalysisSpec, ...] = ()
    output: OutputSpec = field(default_factory=OutputSpec)
    path: Path | None = None
    text: str | None = field(default=None, repr=False)
    design: TrialDesign | None = None
    primary: str | None = None


# -- sections ------------------------------------------------------------------------------


def _formula_for(fitter: str, raw: dict[str, Any], where: str) -> str | None:
    if fitter not in FORMULA_FREE:
        return check_formula(_get(raw, "formula", str, where, required=True), where=where)
    if "formula" in raw:
        raise PlanError(f"{where}: {fitter} takes no formula; name the outcome column in "
                        "options (options = { outcome = \"admitted\" }).")
    if not isinstance(raw.get("options", {}).get("outcome"), str):
        raise PlanError(f"{where}: {fitter} needs the outcome column in options "
                        "(options = { outcome = \"admitted\" }).")
    if fitter == "permutation_test" and ("term" in raw or "contrast" in raw):
        raise PlanError(f"{where}: a permutation test reports its statistic; it takes no "
                        "term or contrast.")
    return None


def _parse_model_analysis(raw: dict[str, Any], where: str) -> dict[str, Any]:
    fitter = _choice(raw["fitter"], FITTERS, "fitter", where)
    formula = _formula_for(fitter, raw, where)
    source = _choice(_get(raw, "data", str, where, required=True), SOURCES, "data", where)
    where_rows = _get(raw, "where", dict, where, default={})
    rows = {str(k): _option_value(v, f"where.{k}", where) for k, v in where_rows.items()}
    contrast = _get(raw, "contrast", dict, where, default={})
    for term, weight in contrast.items():
        if (isinstance(weight, bool) or not isinstance(weight, int | float)
                or not math.isfinite(weight)):
            raise PlanError(f"{where}: contrast.{term} must be a number (the weight of that "
                            f"coefficient); got {weight!r}.")
    if contrast and "term" in raw:
        raise PlanError(f"{where} sets both term and contrast; the estimand is one "
                        "coefficient (term) or one linear combination (contrast).")
    return {
        "fitter": fitter, "formula": formula, "source": source, "where": rows,
        "cluster": _get(raw, "cluster", str, where, default="team_id"),
        "term": _get(raw, "term", str, where),
        "contrast": {str(k): float(v) for k, v in contrast.items()},
    }


def _parse_analysis(raw: Any, index: int, base: Path) -> AnalysisSpec:
    where = f"[[analysis]] {index + 1}"
    if not isinstance(raw, dict):
        raise PlanError(f"{where} must be a table.")
    name = _get(raw, "name", str, where, required=True)
    where = f"[[analysis]] {name!r}"
    if not _NAME.match(name):
        raise PlanError(f"{where}: name must be 1-40 lower-case letters, digits, '-' or '_', "
                        "starting with a letter (it names files and manifest entries).")
    has_outcome, has_fitter = "outcome" in raw, "fitter" in raw
    if has_outcome == has_fitter:
        raise PlanError(f"{where} needs exactly one of outcome (a named trial analysis: "
                        f"{', '.join(OUTCOMES)}) and fitter (a model: {', '.join(FITTERS)}).")
    model_keys = ("fitter", "formula", "data", "where", "cluster", "estimand", "term",
                  "contrast", "role")
    if not has_fitter and "role" in raw:
        raise PlanError(f"{where}: a named trial analysis (outcome = ...) labels its own rows "
                        "primary and sensitivity (see its method option); remove role.")
    _unknown_keys(raw, ("name", "label", "options") + (model_keys if has_fitter else
                                                        ("outcome", "estimand")), where)
    estimand_label, declared = parse_estimand(raw.get("estimand"), where)
    role = (_choice(_get(raw, "role", str, where, required=True), ROLES, "role", where)
            if has_fitter else None)
    options = _get(raw, "options", dict, where, default={})
    for key in options:
        if key in RESERVED_OPTIONS or (has_outcome and key == "outcome"):
            raise PlanError(f"{where}: options.{key} is set by the runner from the plan; "
                            "remove it from options.")
    parsed_options = {str(k): _option_value(v, f"options.{k}", where) for k, v in options.items()}
    extra: dict[str, Any] = (
        _parse_model_analysis(raw, where) if has_fitter
        else {"outcome": _choice(_get(raw, "outcome", str, where), OUTCOMES, "outcome", where)}
    )
    label = _get(raw, "label", str, where, default=name)
    if has_fitter:
        extra["estimand"] = estimand_label
    elif extra["outcome"] == "questionnaire":
        extra["instrument_file"] = check_questionnaire_options(parsed_options, base, where)
    return AnalysisSpec(name=name, role=role, label=label, options=parsed_options,
                        declared_estimand=declared, **extra)


def _parse_output(raw: Any) -> OutputSpec:
    where = "[output]"
    if not isinstance(raw, dict):
        raise PlanError(f"{where} must be a table.")
    _unknown_keys(raw, ("tables", "figures", "table_formats", "figure_formats",
                        "suppress_below", "paper"), where)
    suppress = _get(raw, "suppress_below", int, where, default=0)
    if suppress < 0:
        raise PlanError(f"{where}: suppress_below must be 0 (no suppression) or a positive "
                        f"count; got {suppress}.")
    formats = _choices(raw, "table_formats", TABLE_FORMATS, where)
    figure_formats = _choices(raw, "figure_formats", FIGURE_FORMATS, where)
    if not formats or not figure_formats:
        raise PlanError(f"{where}: table_formats and figure_formats need at least one format.")
    return OutputSpec(
        tables=_choices(raw, "tables", TABLES_WANTED, where),
        figures=_choices(raw, "figures", FIGURES, where, default=DEFAULT_FIGURES),
        table_formats=formats, figure_formats=figure_formats, suppress_below=suppress,
        paper=_choice(_get(raw, "paper", str, where, default="a4"), PAPERS, "paper", where),
        chosen=frozenset({*raw.get("tables", ()), *raw.get("figures", ())}),
    )


def _without_effects(
    output: OutputSpec, raw: Any, analyses: tuple[AnalysisSpec, ...],
) -> OutputSpec:
    """Leave effects out of the defaults of a plan without analyses; refuse them if asked."""
    if analyses:
        return output
    needs = {"effects", "forest", "caterpillar"}
    asked = sorted(needs & {*raw.get("tables", ()), *raw.get("figures", ())})
    if asked:
        raise PlanError(f"[output] asks for {', '.join(asked)}, which show the results of "
                        "analyses, but the plan has no [[analysis]] entry.")
    return replace(output, tables=tuple(t for t in output.tables if t not in needs),
                   figures=tuple(f for f in output.figures if f not in needs))


def _parse_scoring(raw: Any) -> tuple[str, int]:
    where = "[scoring]"
    if not isinstance(raw, dict):
        raise PlanError(f"{where} must be a table.")
    _unknown_keys(raw, ("scale", "max_missing"), where)
    scale = _get(raw, "scale", str, where, default="core_crt_v2")
    max_missing = _get(raw, "max_missing", int, where, default=0)
    if max_missing < 0:
        raise PlanError(f"{where}: max_missing must be 0 or more; got {max_missing}.")
    return scale, max_missing


def _parse_primary(spec: Mapping[str, Any], analyses: tuple[AnalysisSpec, ...]) -> str | None:
    """The top-level ``primary``: the name of one ``[[analysis]]`` entry."""
    primary = _get(spec, "primary", str, "the plan")
    if primary is None:
        return None
    names = [a.name for a in analyses]
    if primary not in names:
        listed = ", ".join(map(repr, names)) if names else "none"
        raise PlanError(f"the plan's primary = {primary!r} must name one of its "
                        f"[[analysis]] entries, whose outcome is the trial's primary "
                        f"outcome; the plan's analyses: {listed}.")
    return str(primary)


# -- entry points --------------------------------------------------------------------------


def parse_plan(
    spec: Mapping[str, Any], *, base: str | Path = ".", name: str = "plan",
    sha256: str | None = None,
) -> Plan:
    """Check a plan given as a mapping (the parsed TOML) and return it as a :class:`Plan`.

    Parameters
    ----------
    spec
        The plan's tables and keys, as ``tomllib.load`` returns them.
    base
        The folder that relative data paths are resolved against.
    name
        The plan's name, recorded in the manifest.
    sha256
        The hash of the plan's bytes; by default the hash of its canonical JSON.

    Returns
    -------
    Plan
        The checked plan.

    Raises
    ------
    PlanError
        If a key is unknown, missing or has a value of the wrong type or outside the
        allowed values, if two analyses share a name, if ``primary`` names no
        analysis, or if a formula does not follow the plan grammar.

    Notes
    -----
    The checks are those of the plan format documented in ``docs/plans.md``; a plan
    that passes them can still fail against the data (an unknown column, a ``where``
    that matches no rows), which :func:`crtstats.run` reports before writing anything.

    Examples
    --------
    R has no plan format; the nearest is a ``targets`` pipeline or an R Markdown file
    whose parameters are read with ``yaml::read_yaml()``.

    >>> plan = parse_plan({"seed": 1, "data": {"example": True},
    ...                    "output": {"tables": ["data_summary"], "figures": []}})
    >>> plan.data.example, plan.output.tables
    (True, ('data_summary',))
    """
    top = ("title", "seed", "primary", "data", "scoring", "analysis", "output", "design")
    _unknown_keys(spec, top, "the plan")
    seed = _get(spec, "seed", int, "the plan", required=True)
    if not 0 <= seed < 2**32:
        raise PlanError(f"the plan's seed must be a whole number from 0 to 2**32 - 1; got {seed}.")
    raw_analyses = _get(spec, "analysis", list, "the plan", default=[])
    analyses = tuple(_parse_analysis(a, i, Path(base)) for i, a in enumerate(raw_analyses))
    names = [a.name for a in analyses]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise PlanError(f"analysis names must be unique; repeated: {', '.join(dupes)}.")
    scale, max_missing = _parse_scoring(spec.get("scoring", {}))
    digest = sha256 or hashlib.sha256(
        json.dumps(spec, sort_keys=True, default=str).encode("utf-8")
    ).hexdigest()
    return Plan(
        name=name, sha256=digest,
        title=_get(spec, "title", str, "the plan", default=name),
        seed=seed, data=parse_data(spec.get("data"), Path(base)),
        scale=scale, max_missing=max_missing, analyses=analyses,
        output=_without_effects(_parse_output(spec.get("output", {})),
                                spec.get("output", {}), analyses),
        design=parse_design(spec["design"]) if "design" in spec else None,
        primary=_parse_primary(spec, analyses),
    )


def load_plan(path: str | Path) -> Plan:
    """Read and check the analysis plan in the TOML file ``path``.

    Parameters
    ----------
    path
        The plan file. Data paths in it are relative to its folder.

    Returns
    -------
    Plan
        The checked plan, with the sha256 of the file's bytes.

    Raises
    ------
    DataFileError
        If the file does not exist.
    PlanError
        If it is not valid TOML or not a valid plan (see :func:`parse_plan`).

    Notes
    -----
    The plan's hash is the sha256 of the file's bytes, so any edit, even to a comment,
    changes the hash recorded in the manifest.

    Examples
    --------
    Like ``RcppTOML::parseTOML()`` followed by checks of every key:

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "plan.toml").write_text("seed = 7\\n[data]\\nexample = true\\n")
    >>> load_plan(folder / "plan.toml").seed
    7
    """
    path = Path(str(path))
    if not path.is_file():
        raise DataFileError(f"plan file not found: {path}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")  # tolerate a byte-order mark
        spec = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise PlanError(f"{path.name} is not a valid TOML file: {err}") from None
    plan = parse_plan(spec, base=path.parent, name=path.name,
                      sha256=hashlib.sha256(raw).hexdigest())
    return replace(plan, path=path, text=text)
