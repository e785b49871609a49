"""Everything a run writes: the staging folder, its atomic move into place, and files.

A run builds its results in a hidden staging folder beside the destination and moves it
into place only when every stage has succeeded, so a failed or interrupted run never
leaves a half-written results folder. An existing folder is replaced only with
``force``, and only if it looks like a crtstats results folder (it holds
``manifest.json``) or is empty, so a mistyped ``--out`` cannot wipe unrelated files.
This is the only module of the runner that touches the file system for writing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from matplotlib.figure import Figure

from crtstats.runner._files import save_figure, write_table
from crtstats.runner._manifest import RecordedWarning, record_warnings
from crtstats.runner._plan import FigureFormat, Plan
from crtstats.runner._products import FIGURE_TITLES, TABLE_TITLES
from crtstats.runner._report import ReportFigure, ReportTable, render_report
from crtstats.tables import Paper, Table, TableFormat

__all__ = ["Staging", "check_destination", "dump_json", "write_results"]


def check_destination(out: Path, *, force: bool, inputs: Sequence[Path] = ()) -> None:
    """Refuse a destination that exists (without ``force``) or that is not ours to replace.

    Raises
    ------
    FileExistsError
        If ``out`` exists and ``force`` is false, or if it is a file, or a non-empty
        folder without ``manifest.json``, or if it holds one of ``inputs`` (the plan
        and data files), which replacing it would delete.
    """
    inside = [p for p in inputs if p.resolve().is_relative_to(out.resolve())]
    if inside:
        raise FileExistsError(f"{inside[0]} is inside the results folder {out}, which a run "
                              "replaces; choose an --out that holds no input.")
    if not out.exists():
        return
    if not out.is_dir():
        raise FileExistsError(f"{out} exists and is a file, not a results folder; choose "
                              "another --out.")
    if not force:
        raise FileExistsError(f"results folder {out} exists; pass --force to replace it "
                              "(or choose another --out).")
    if any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise FileExistsError(
            f"{out} is not empty and has no manifest.json, so it does not look like a crtstats "
            "results folder; --force replaces only results folders. Choose another --out."
        )


def dump_json(data: Any) -> str:
    """JSON text with sorted keys, two-space indents and a final newline (stable bytes).

    NaN and infinity are not JSON; the plan loader refuses them, so none can appear.
    """
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


class Staging:
    """A hidden folder beside ``out`` that becomes ``out`` on :meth:`commit`.

    Use as a context manager: leaving the block without committing (an exception, an
    interrupt) removes the staging folder and leaves ``out`` as it was.
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        out.parent.mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix=f".{out.name}-partial-", dir=out.parent))
        self.committed = False

    def __enter__(self) -> Staging:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.committed:
            shutil.rmtree(self.root, ignore_errors=True)

    def path(self, relative: str) -> Path:
        """The staging path of ``relative`` (a path inside the results folder)."""
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def write_text(self, relative: str, text: str) -> Path:
        """Write UTF-8 text with ``\\n`` line endings."""
        target = self.path(relative)
        with target.open("w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        return target

    def write_bytes(self, relative: str, data: bytes) -> Path:
        """Write bytes."""
        target = self.path(relative)
        target.write_bytes(data)
        return target

    def folder(self, relative: str) -> Path:
        """A folder inside the staging folder, created if needed."""
        target = self.root / relative
        target.mkdir(parents=True, exist_ok=True)
        return target

    def hashes(self, folders: Sequence[str]) -> dict[str, str]:
        """sha256 of every file under ``folders``, by path relative to the results folder."""
        found = sorted(p for folder in folders if (self.root / folder).is_dir()
                       for p in (self.root / folder).rglob("*") if p.is_file())
        return {p.relative_to(self.root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in found}

    def commit(self, *, force: bool) -> None:
        """Move the staging folder into place, replacing an old results folder.

        The destination is checked again (it may have appeared while the run was
        computing); see :func:`check_destination`.
        """
        check_destination(self.out, force=force)
        old: Path | None = None
        if self.out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{self.out.name}-old-", dir=self.out.parent))
            old.rmdir()
            self.out.rename(old)
        try:
            self.root.rename(self.out)
        except BaseException:
            if old is not None:
                old.rename(self.out)
            raise
        self.committed = True
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _write_table(staging: Staging, name: str, table: Table,
                 formats: Sequence[TableFormat], paper: Paper = "a4") -> str:
    """Write one table into ``tables/``; returns its HTML for the report."""
    write_table(table, staging.folder("tables"), name, formats=tuple(formats), paper=paper)
    return table.to_html()


def _write_figure(staging: Staging, name: str, figure: Figure,
                  formats: Sequence[FigureFormat]) -> ReportFigure:
    """Write one figure into ``figures/`` and return it as the report shows it."""
    folder = staging.folder("figures")
    save_figure(figure, folder / name, formats=tuple(formats))
    png = folder / f"{name}.png"
    svg = folder / f"{name}.svg"
    return ReportFigure(
        name=name, title=FIGURE_TITLES.get(name, name),
        png=png.read_bytes() if png.is_file() else None,
        svg=svg.read_text("utf-8") if svg.is_file() and not png.is_file() else None,
    )


def _effects_without_fit(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Effects of a named analysis that no fitted model stands behind (randomisation tests).

    They are listed in the report's methods table with their df method too.
    """
    if "fitter" in record:
        return []
    fitted = [str(f["fit"]) for f in record["fits"]]
    seen: list[dict[str, Any]] = []
    for effect in record["effects"]:
        key = f"{effect['outcome']}: {effect['analysis']}"
        if any(name.startswith(key) for name in fitted):
            continue
        row = {"fit": key, "role": effect["role"], "df_method": effect["df_method"],
               "cov_type": effect["cov_type"]}
        if row not in seen:
            seen.append(row)
    return seen


def write_results(
    out: Path, *, plan: Plan, tables: Mapping[str, Table], figures: Mapping[str, Figure],
    warnings: list[RecordedWarning], force: bool,
    manifest: Callable[[Mapping[str, str]], dict[str, Any]],
) -> dict[str, Any]:
    """Write the whole results folder through a staging folder, then move it into place.

    Tables and figures are written first (their warnings join ``warnings``), then the
    manifest (built by calling ``manifest`` with the sha256 of every table and figure
    file, so it lists every warning and output) and the report. Returns the manifest.

    Raises
    ------
    DataFileError
        If a table or figure file cannot be written.
    OSError
        If the folder cannot be written; nothing is left behind.
    """
    with Staging(out) as staging:
        report_tables = []
        report_figures = []
        with record_warnings("writing", warnings):
            for name, table in tables.items():
                html = _write_table(staging, name, table, plan.output.table_formats,
                                    plan.output.paper)
                title = table.title or TABLE_TITLES.get(name, name)
                report_tables.append(ReportTable(name, title, html))
            for name, figure in figures.items():
                report_figures.append(
                    _write_figure(staging, name, figure, plan.output.figure_formats))
        written = manifest(staging.hashes(("tables", "figures")))
        staging.write_text("manifest.json", dump_json(written))
        analyses = [{**record, "name": name, "unfitted": _effects_without_fit(record)}
                    for name, record in written["analyses"].items()]
        staging.write_text("report.html", render_report(
            plan=plan, manifest=written, analyses=analyses, tables=report_tables,
            figures=report_figures, warnings=warnings,
        ))
        staging.commit(force=force)
    return written
