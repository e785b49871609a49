"""The trust-export tutorial runs as written: its Python blocks (with their printed
output) and its commands (with their exit codes), in order, in a fresh folder."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import warnings
from pathlib import Path

import pytest

import crtstats
from crtstats.cli import main

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "tutorial-trust-export.md"

#: The exit code of each command on the page, in order: the export as it is fails, with
#: the mapping it is valid, and the plan runs.
EXIT_CODES = [1, 0, 0]


def blocks() -> list[tuple[str, str]]:
    text = PAGE.read_text(encoding="utf-8")
    return [(lang, body) for lang, body in re.findall(r"```(\w+)\n(.*?)```", text,
                                                      flags=re.DOTALL)]


def command(body: str) -> list[str]:
    line = body.replace("\\\n", " ").strip()
    assert line.startswith("$ crtstats ")
    return shlex.split(line[len("$ crtstats "):])


def test_tutorial_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    found = blocks()
    codes = []
    for i, (lang, body) in enumerate(found):
        if lang == "python":
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(body, str(PAGE), "exec"), namespace)
            following = found[i + 1] if i + 1 < len(found) else ("", "")
            if following[0] == "text":
                assert out.getvalue() == following[1]
        elif lang == "console":
            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()), \
                    warnings.catch_warnings():
                # the run's statistical warnings (boundary fits...) are recorded in its
                # report; this test checks the path from the export, not the models
                warnings.simplefilter("ignore", crtstats.CRTStatsWarning)
                codes.append(main(command(body)))
            printed = out.getvalue()
            if "--mapping" in body:
                shown = [b for lang2, b in found[i + 1:i + 2] if lang2 == "text"]
                for line in shown[0].splitlines() if shown else []:
                    assert line == "..." or line in printed.splitlines()
    assert codes == EXIT_CODES
    report = (tmp_path / "trust-results" / "report.html").read_text(encoding="utf-8")
    assert "Data mapping (every recoding applied, as declared in trust_export.mapping.toml, "\
        "sha256 " in report
    assert "teams.arm: &#39;Intervention&#39; recoded to &#39;intervention&#39; (15 rows)" in report
    assert "were skipped" in report
    assert os.path.isfile(tmp_path / "trust-results" / "tables" / "effects.docx")
