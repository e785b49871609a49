"""Runs: atomic output, --force, manifest, determinism, report, progress, capabilities."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

import crtstats
from crtstats.cli._run import progress_printer
from crtstats.exceptions import PlanError
from crtstats.runner import TIMESTAMP_FIELD, _output, parse_plan, run
from crtstats.runner._capability import capability, check_keywords

ROOT = Path(__file__).resolve().parents[1]
PLAN = ROOT / "analyses" / "core_trial.toml"


def _small_plan(**output: Any) -> crtstats.runner.Plan:
    return parse_plan({"seed": 5, "data": {"example": True},
                       "output": {"tables": ["data_summary"], "figures": [], **output}},
                      name="small.toml")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The shipped plan run twice into two folders."""
    base = tmp_path_factory.mktemp("runs")
    run(PLAN, out=base / "a")
    run(PLAN, out=base / "b")
    return base / "a", base / "b"


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_results_folder_layout(two_runs: tuple[Path, Path]) -> None:
    out, _ = two_runs
    assert (out / "manifest.json").is_file() and (out / "report.html").is_file()
    assert (out / "tables" / "data_summary.csv").is_file()
    assert not list(out.parent.glob(".*partial*")), "staging folders are cleaned up"


def test_two_runs_give_identical_tables_and_manifest(two_runs: tuple[Path, Path]) -> None:
    a, b = two_runs
    tables_a, tables_b = _files(a / "tables"), _files(b / "tables")
    assert tables_a and tables_a == tables_b
    manifest_a = json.loads((a / "manifest.json").read_text())
    manifest_b = json.loads((b / "manifest.json").read_text())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", manifest_a.pop(TIMESTAMP_FIELD))
    manifest_b.pop(TIMESTAMP_FIELD)
    assert manifest_a == manifest_b
    # and byte-identical once the timestamp line is removed
    def strip(text: str) -> str:
        return re.sub(rf'\n  "{TIMESTAMP_FIELD}": "[^"]*",', "", text)
    assert strip((a / "manifest.json").read_text()) == strip((b / "manifest.json").read_text())


def test_manifest_contents(two_runs: tuple[Path, Path]) -> None:
    manifest = json.loads((two_runs[0] / "manifest.json").read_text())
    assert manifest["plan"]["file"] == "core_trial.toml"
    assert manifest["plan"]["sha256"] == crtstats.runner.load_plan(PLAN).sha256
    assert manifest["inputs"]["teams"] == {
        "file": "example_teams.csv", "rows": 25,
        "sha256": crtstats.read_table(
            crtstats.datasets.example_paths()["teams"], table="teams").sha256,
    }
    assert manifest["seeds"]["plan"] == 20140301
    assert manifest["versions"]["crtstats"] == crtstats.__version__
    assert {"numpy", "scipy", "pandas", "python"} <= set(manifest["versions"])
    for name, record in manifest["analyses"].items():
        for fit in record["fits"]:
            assert "df_method" in fit and "cov_type" in fit, (name, fit)
    assert "/" not in json.dumps(manifest["inputs"]).replace("\\/", ""), "no machine paths"


def test_report_is_self_contained(two_runs: tuple[Path, Path]) -> None:
    html = (two_runs[0] / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "</html>" in html
    assert 'src="http' not in html and 'href="http' not in html and "<link" not in html
    assert "core_trial.toml" in html and "Methods" in html


def test_existing_folder_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "res"
    run(_small_plan(), out=out)
    (out / "stale.txt").write_text("old")
    with pytest.raises(FileExistsError, match="pass --force"):
        run(_small_plan(), out=out)
    assert (out / "stale.txt").is_file()
    run(_small_plan(), out=out, force=True)
    assert not (out / "stale.txt").exists() and (out / "manifest.json").is_file()


def test_force_refuses_folders_that_are_not_results(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(FileExistsError, match="does not look like a crtstats results folder"):
        run(_small_plan(), out=tmp_path / "mine", force=True)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="is a file"):
        run(_small_plan(), out=tmp_path / "file", force=True)
    (tmp_path / "empty").mkdir()
    run(_small_plan(), out=tmp_path / "empty", force=True)


def _boom(**kwargs: Any) -> str:
    raise RuntimeError("disk full")


def test_failed_run_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_output, "render_report", _boom)
    with pytest.raises(RuntimeError, match="disk full"):
        run(_small_plan(), out=tmp_path / "res")
    assert list(tmp_path.iterdir()) == []


def test_failed_forced_run_keeps_the_old_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "res"
    run(_small_plan(), out=out)
    before = _files(out)
    monkeypatch.setattr(_output, "render_report", _boom)
    with pytest.raises(RuntimeError):
        run(_small_plan(), out=out, force=True)
    assert _files(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["res"]


def test_failed_commit_restores_the_old_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "res"
    run(_small_plan(), out=out)
    before = _files(out)
    real_rename = Path.rename

    def rename(self: Path, target: Any) -> Any:
        if ".res-partial-" in self.name:
            raise OSError("rename failed")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(OSError, match="rename failed"):
        run(_small_plan(), out=out, force=True)
    assert _files(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["res"]


def test_table_formats_are_the_plans(tmp_path: Path) -> None:
    result = run(_small_plan(table_formats=["csv"]), out=tmp_path / "r")
    assert sorted(p.name for p in (tmp_path / "r" / "tables").iterdir()) == ["data_summary.csv"]
    assert result.manifest["outputs"]["table_formats"] == ["csv"]


def test_missing_capability_is_a_plan_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(crtstats, "gee", raising=False)
    plan = parse_plan({"seed": 1, "data": {"example": True}, "analysis": [
        {"name": "gee", "role": "sensitivity", "fitter": "gee", "data": "admissions",
         "formula": "admitted ~ arm"}]})
    with pytest.raises(PlanError, match=r"'gee'.* needs crtstats.gee, which this version"):
        run(plan, out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_capability_helpers() -> None:
    with pytest.raises(PlanError, match="x needs crtstats.nothing_here"):
        capability("crtstats", "nothing_here", wanted_by="x")
    with pytest.raises(PlanError, match="x needs no_such_module.f"):
        capability("no_such_module", "f", wanted_by="x")

    def fitter(formula: str, data: Any, *, cluster: str, ddf: str = "kr") -> None:
        """A stand-in signature."""

    check_keywords(fitter, {"ddf": "kr"}, wanted_by="x")
    with pytest.raises(PlanError, match=r"options \['dff'\] are not options.*takes: .*ddf"):
        check_keywords(fitter, {"dff": "kr"}, wanted_by="x")


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_progress_only_on_a_terminal_outside_ci() -> None:
    assert progress_printer(_Stream(tty=False), {}) is None
    assert progress_printer(_Stream(tty=True), {"CI": "true"}) is None
    stream = _Stream(tty=True)
    show = progress_printer(stream, {})
    assert show is not None
    show("fitting lmm")
    assert stream.getvalue() == "crtstats: fitting lmm ...\n"


def test_progress_messages_name_the_stages(tmp_path: Path) -> None:
    seen: list[str] = []
    run(_small_plan(), out=tmp_path / "r", progress=seen.append)
    assert seen[0] == "reading and validating the data"
    assert seen[-1].startswith("writing ")


def test_run_is_exported() -> None:
    assert crtstats.run is run
