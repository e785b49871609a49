"""The command line: help, version, one-line errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from crtstats import __version__
from crtstats.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"crtstats {__version__}"
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "run" in capsys.readouterr().out


def test_bad_argument_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid choice" in err


def test_missing_file_is_one_line_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "out")])
    assert code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.toml" in err and "Traceback" not in err


def test_subprocess_has_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "crtstats", "run", str(tmp_path / "x.toml"), "--out", "o"],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("crtstats: error:")


def test_run_example_plan_writes_manifest(tmp_path: Path) -> None:
    out = tmp_path / "results"
    assert main(["run", str(ROOT / "analyses" / "core_trial.toml"), "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"]["teams"]["rows"] == 25
    assert len(manifest["inputs"]["teams"]["sha256"]) == 64
    # an existing folder is not replaced without --force
    assert main(["run", str(ROOT / "analyses" / "core_trial.toml"), "--out", str(out)]) == 1


def test_readme_commands_are_what_ci_runs() -> None:
    """.ci/run must install and test exactly as the README tells a user to."""
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    blocks = [b.split("```", 1)[0].strip() for b in readme.split("```bash\n")[1:3]]
    assert len(blocks) == 2
    for command in blocks:
        assert command in ci, command
