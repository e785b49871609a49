"""Everything a run writes: the staging folder, its atomic move into place, and files.

A run builds its results in a hidden staging folder beside the destination and moves it
into place only when every stage has succeeded, so a failed or interrupted run never
leaves a half-written results folder. An existing folder is replaced only with
``force``, and only if it looks like a crtstats results folder (it holds
``manifest.json``) or is empty, so a mistyped ``--out`` cannot wipe unrelated files,
and never when it holds an input.

A symbolic link given as the destination is followed: the folder it points to is
replaced and the link is kept, pointing at the new results. A run holds a lock file
beside the destination (``.<name>.lock``) from before any work until the folder is in
place, so a second run into the same folder fails at once; staging folders that a
killed run left behind are removed by the next run. The results folder gets the
user's usual permissions (the umask), like any folder the user creates.
This is the only module of the runner that touches the file system for writing.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from matplotlib.figure import Figure

from crtstats.exceptions import OutputPathError
from crtstats.io import check_not_input
from crtstats.runner._files import save_figure, write_table
from crtstats.runner._manifest import RecordedWarning, record_warnings
from crtstats.runner._plan import FigureFormat, Plan
from crtstats.runner._products import FIGURE_TITLES, TABLE_TITLES
from crtstats.runner._report import ReportFigure, ReportTable, render_report
from crtstats.tables import Paper, Table, TableFormat

__all__ = ["ResultsLock", "Staging", "check_destination", "clean_leftovers", "dump_json",
           "results_folder", "write_results"]


def results_folder(out: str | os.PathLike[str]) -> Path:
    """The folder a run writes for ``out``: absolute, with symbolic links followed."""
    return Path(os.path.realpath(out))


def check_destination(out: Path, *, force: bool, inputs: Sequence[Path] = ()) -> None:
    """Refuse a destination that exists (without ``force``) or that is not ours to replace.

    Raises
    ------
    OutputPathError
        If ``out`` is or holds one of ``inputs`` (the plan and data files), which
        replacing it would delete.
    FileExistsError
        If ``out`` exists and ``force`` is false, or if it is a file, or a non-empty
        folder without ``manifest.json``.
    """
    check_not_input(out, inputs, option="--out", folder=True)
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


def _new_folder(out: Path, kind: str) -> Path:
    """A new empty folder ``.<name>-<kind>-<random>`` beside ``out``, created with the
    user's usual permissions (``mkdir`` applies the umask)."""
    while True:
        path = out.parent / f".{out.name}-{kind}-{secrets.token_hex(4)}"
        try:
            path.mkdir(mode=0o777)
        except FileExistsError:
            continue
        return path


def clean_leftovers(out: Path) -> list[str]:
    """Remove what a killed run left beside ``out``; returns a sentence for each.

    Staging folders (``.<name>-partial-*``) are removed. An old results folder set
    aside during a replacement (``.<name>-old-*``) is moved back when ``out`` is
    missing (the run died between the two renames), and removed otherwise. Call it
    only while holding the :class:`ResultsLock` of ``out``.
    """
    done: list[str] = []
    if not out.parent.is_dir():
        return done
    for path in sorted(out.parent.glob(f".{out.name}-partial-*")):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            done.append(f"removed {path.name}, the staging folder of an interrupted run")
    for path in sorted(out.parent.glob(f".{out.name}-old-*")):
        if not path.is_dir() or path.is_symlink():
            continue
        if not out.exists():
            path.rename(out)
            done.append(f"restored {out.name} from {path.name}, set aside by an interrupted run")
        else:
            shutil.rmtree(path, ignore_errors=True)
            done.append(f"removed {path.name}, an old results folder an interrupted run left")
    return done


def _try_lock(fd: int) -> None:
    """Take an exclusive lock on the open file ``fd`` without waiting (OSError if held)."""
    if sys.platform == "win32":
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


class ResultsLock:
    """An exclusive lock on the results folder ``out``, held by one run at a time.

    The lock is the file ``.<name>.lock`` beside ``out``, locked with ``flock``
    (``msvcrt.locking`` on Windows); the operating system releases it when the
    process ends, so a killed run never leaves a stale lock. Use as a context manager.

    Raises
    ------
    OutputPathError
        On entry, if another run holds the lock.
    """

    def __init__(self, out: Path) -> None:
        self.out = results_folder(out)
        self.path = self.out.parent / f".{self.out.name}.lock"
        self._fd: int | None = None

    def __enter__(self) -> ResultsLock:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        while self._fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                _try_lock(fd)
            except OSError as err:
                os.close(fd)
                raise OutputPathError(
                    f"another crtstats run is writing the results folder {str(self.out)!r} "
                    f"(it holds {self.path.name}); wait for it to finish or choose another "
                    "--out."
                ) from err
            try:  # the holder before us may have removed the file after we opened it
                current = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                current = False
            if current:
                self._fd = fd
            else:
                os.close(fd)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            try:
                self.path.unlink()
            except OSError:  # pragma: no cover - Windows cannot remove an open file
                pass
            os.close(self._fd)
            self._fd = None


class Staging:
    """A hidden folder beside ``out`` that becomes ``out`` on :meth:`commit`.

    Use as a context manager: leaving the block without committing (an exception, an
    interrupt) removes the staging folder and leaves ``out`` as it was.
    """

    def __init__(self, out: Path) -> None:
        self.out = results_folder(out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.root = _new_folder(self.out, "partial")
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
            old = _new_folder(self.out, "old")
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
