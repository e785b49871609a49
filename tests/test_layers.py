"""The package's layers: the import-linter contract, exports instead of private imports,
typed lookup tables in the runner, tables and plots that only render, labels read from
data_schema/, and one effects-row builder."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure

import crtstats
from crtstats import analysis, plots, schema, tables
from crtstats.analysis.fidelity import ARM_LEVELS, REVIEW_ORDER
from crtstats.io import load_schema
from crtstats.models import CRTResult, PermutationResult
from crtstats.runner import _plan, _registry

PACKAGE = Path(crtstats.__file__).resolve().parent
ROOT = PACKAGE.parent
SOURCES = sorted(PACKAGE.rglob("*.py"))


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _package_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else path.stem


# -- the contract ------------------------------------------------------------------------
def test_import_linter_contract_holds() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    command = str(lint) if lint.exists() else shutil.which("lint-imports")
    if command is None:
        pytest.skip("import-linter is not installed (it is in the test extra)")
    done = subprocess.run([command, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout


def test_no_module_imports_another_packages_private_module() -> None:
    offenders = []
    for path in SOURCES:
        home = _package_of(path)
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                if (parts[0] == "crtstats" and len(parts) > 2 and parts[2].startswith("_")
                        and parts[1] != home):
                    offenders.append(f"{path.relative_to(ROOT)}: {node.module}")
    assert offenders == []


# -- the runner's typed tables -----------------------------------------------------------
def test_runner_tables_cover_exactly_the_plan_lists() -> None:
    assert set(_registry.FITTER_FUNCTIONS) == set(typing.get_args(_plan.Fitter))
    assert set(_registry.NAMED_ANALYSES) == set(typing.get_args(_plan.Outcome))
    assert set(_registry.TABLE_BUILDERS) | {"data_summary"} == set(
        typing.get_args(_plan.TableName))
    assert set(_registry.FIGURE_FUNCTIONS) == set(typing.get_args(_plan.FigureName))


def test_runner_functions_return_what_their_table_says() -> None:
    returns = {
        **{f: typing.get_type_hints(fn)["return"]
           for f, fn in _registry.FITTER_FUNCTIONS.items()},
    }
    assert set(returns.values()) <= {CRTResult, PermutationResult}
    for fn in _registry.NAMED_ANALYSES.values():
        assert typing.get_type_hints(fn)["return"] is analysis.AnalysisResult
    for fn in _registry.TABLE_BUILDERS.values():
        assert typing.get_type_hints(fn)["return"] is tables.Table
    runner_source = "\n".join(p.read_text() for p in (PACKAGE / "runner").glob("*.py"))
    assert "import_module" not in runner_source


# -- tables and plots render, they never write -------------------------------------------
_WRITES = {"write_bytes", "write_text", "mkdir", "to_excel", "to_parquet", "touch"}


@pytest.mark.parametrize("package", ["tables", "plots"])
def test_tables_and_plots_never_write_files(package: str) -> None:
    found = []
    for path in sorted((PACKAGE / package).glob("*.py")):
        for node in ast.walk(_tree(path)):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Name) and func.id == "open":
                found.append(f"{path.name}: open()")
            if isinstance(func, ast.Attribute) and func.attr in _WRITES:
                found.append(f"{path.name}: .{func.attr}()")
    assert found == []
    assert not hasattr(tables, "write_table") and not hasattr(plots, "save_figure")


def test_one_table_dispatcher_renders_every_format() -> None:
    table = tables.Table(pd.DataFrame({"x": [1.25]}),
                         [tables.Column("x", ("x",), decimals=1)], title="T")
    assert not (PACKAGE / "tables" / "_write.py").exists()
    assert table.render("md").decode() == table.to_markdown()
    assert table.render("html").decode() == table.to_html()
    assert table.render("tex").decode() == table.to_latex()
    assert table.render("csv").decode() == table.to_csv()
    assert table.render("docx") == table.to_docx()
    with pytest.raises(crtstats.InvalidParameterError, match="fmt must be one of"):
        table.render("xlsx")  # type: ignore[arg-type]


def test_writing_goes_through_io(tmp_path: Path) -> None:
    table = tables.Table(pd.DataFrame({"x": [1.0]}), [tables.Column("x", ("x",))])
    written = crtstats.write_table(table, tmp_path, "t", formats=["csv", "md"])
    assert written["csv"].read_bytes() == table.render("csv")
    figure = Figure()
    figure.add_subplot().plot([0, 1], [1, 0])
    saved = crtstats.save_figure(figure, tmp_path / "f", formats=("svg",))
    assert saved["svg"].read_bytes() == plots.render_figure(figure, "svg")


# -- labels come from data_schema/ -------------------------------------------------------
def _enum(table: str, column: str) -> list[str]:
    field = next(f for f in load_schema(table)["fields"] if f["name"] == column)
    return list(field["constraints"]["enum"])


def test_labels_are_the_schema_enums() -> None:
    assert list(schema.REVIEWS) == _enum("fidelity", "review")
    assert list(schema.PERIODS) == _enum("admissions", "period") == _enum("service_use",
                                                                           "period")
    assert sorted(schema.ARMS) == sorted(_enum("teams", "arm"))
    assert schema.ARMS[0] == "control"  # the reference arm, first in sorted order
    assert REVIEW_ORDER == schema.REVIEWS and ARM_LEVELS == schema.ARMS
    from crtstats.tables import _common, _fidelity

    assert _common.ARMS is schema.ARMS and _common.REVIEWS is schema.REVIEWS
    assert typing.get_args(_fidelity.Review) == schema.REVIEWS
    with pytest.raises(crtstats.DataFileError, match="no enum constraint on 'team_id'"):
        schema.field_levels("teams", "team_id")


# -- one effects-row builder -------------------------------------------------------------
def test_only_the_analysis_layer_builds_effect_rows() -> None:
    builders = []
    for path in SOURCES:
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Dict):
                keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
                if {"estimate", "conf_low", "df_method"} <= keys:
                    builders.append(str(path.relative_to(PACKAGE)))
    assert sorted(set(builders)) == ["analysis/_effects.py"]
