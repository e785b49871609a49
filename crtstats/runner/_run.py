"""Run an analysis plan and write its results folder atomically."""

from __future__ import annotations

import json
import shutil
import tempfile
import tomllib
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd

from crtstats.datasets import example_paths
from crtstats.exceptions import DataFileError, PlanError
from crtstats.io import TABLES, TableFile, read_table, write_csv

__all__ = ["RunResult", "run"]

_DEPENDENCIES = ("numpy", "scipy", "pandas", "statsmodels", "linearmodels", "pandera",
                 "formulaic", "matplotlib", "seaborn")


@dataclass(frozen=True)
class RunResult:
    """What a run produced: the results folder, its tables and its manifest."""

    out: Path
    tables: dict[str, pd.DataFrame]
    manifest: dict[str, Any]


def _read_plan(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataFileError(f"plan file not found: {path}")
    try:
        with path.open("rb") as fh:
            plan = tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise PlanError(f"{path.name} is not valid TOML: {err}") from None
    if "data" not in plan or not isinstance(plan["data"], dict):
        raise PlanError(f"{path.name} has no [data] table naming the trial's files.")
    return plan


def _data_paths(plan: dict[str, Any], base: Path) -> dict[str, Path]:
    data = plan["data"]
    if data.get("example") is True:
        return example_paths()
    unknown = sorted(set(data) - set(TABLES) - {"example"})
    if unknown:
        raise PlanError(f"[data] has unknown key(s) {unknown}; allowed: {list(TABLES)}.")
    if "teams" not in data:
        raise PlanError("[data] must name a teams file, or set example = true.")
    return {name: base / str(data[name]) for name in TABLES if name in data}


def _versions() -> dict[str, str]:
    out = {}
    for name in ("crtstats", *_DEPENDENCIES):
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover
            out[name] = "not installed"
    return out


def run(plan: str | Path, *, out: str | Path, force: bool = False) -> RunResult:
    """Run the analysis plan ``plan`` and write its results into the folder ``out``.

    The folder is built in a temporary location beside ``out`` and moved into place
    only when everything succeeded, so a failed run leaves nothing half-written.

    Raises
    ------
    PlanError
        If the plan is malformed.
    FileExistsError
        If ``out`` exists and ``force`` is false.
    """
    plan_path = Path(plan)
    out = Path(out)
    spec = _read_plan(plan_path)
    if out.exists() and not force:
        raise FileExistsError(f"results folder {out} exists; pass --force to replace it.")
    files: dict[str, TableFile] = {
        name: read_table(path, table=name)
        for name, path in _data_paths(spec, plan_path.parent).items()
    }
    summary = pd.DataFrame(
        {"table": list(files), "rows": [f.n_rows for f in files.values()],
         "columns": [f.data.shape[1] for f in files.values()]}
    )
    tables = {"data_summary": summary}
    manifest = {
        "plan": plan_path.name,
        "inputs": {
            name: {"file": f.path.name, "sha256": f.sha256, "rows": f.n_rows}
            for name, f in files.items()
        },
        "versions": _versions(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        for name, frame in tables.items():
            write_csv(frame, staging / "tables" / f"{name}.csv")
        (staging / "manifest.json").write_text(
            json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return RunResult(out=out, tables=tables, manifest=manifest)
