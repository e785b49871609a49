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
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("crtstats: error:")


def _write_plan(folder: Path, body: str) -> Path:
    plan = folder / "plan.toml"
    plan.write_text("seed = 1\n" + body)
    return plan


_SUMMARY = '[output]\ntables = ["data_summary"]\nfigures = []\ntable_formats = ["csv"]\n'


def test_run_writes_results_and_needs_force_to_replace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _write_plan(tmp_path, "[data]\nexample = true\n" + _SUMMARY)
    out = tmp_path / "results"
    assert main(["run", str(plan), "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"crtstats: wrote {out}\n"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"]["teams"]["rows"] == 25
    assert len(manifest["inputs"]["teams"]["sha256"]) == 64
    assert (out / "report.html").is_file() and (out / "tables" / "data_summary.csv").is_file()
    # an existing folder is not replaced without --force
    assert main(["run", str(plan), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--force" in err
    assert main(["run", str(plan), "--out", str(out), "--force"]) == 0


def test_run_bad_plan_is_one_line_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _write_plan(tmp_path, "[data]\nexample = true\n[output]\ntables = [\"effect\"]\n")
    assert main(["run", str(plan), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Did you mean 'effects'" in err
    assert not (tmp_path / "o").exists()


def test_run_invalid_data_prints_the_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from crtstats.datasets import example_paths

    teams = example_paths()["teams"].read_text().replace("T02,control", "T02,placebo")
    (tmp_path / "teams.csv").write_text(teams)
    (tmp_path / "service_use.csv").write_bytes(example_paths()["service_use"].read_bytes())
    plan = _write_plan(tmp_path, '[data]\nteams = "teams.csv"\nservice_use = "service_use.csv"\n'
                       + _SUMMARY)
    assert main(["run", str(plan), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("crtstats: error: trial data failed validation")
    assert "placebo" in err and "reason_code" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_run_prints_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = _write_plan(tmp_path, """[data]
example = true
[[analysis]]
name = "age"
role = "primary"
fitter = "lmm"
data = "admissions"
formula = "age ~ arm + stratum"
where = { period = "follow_up" }
""" + _SUMMARY)
    assert main(["run", str(plan), "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    # the example's ages are drawn without a team effect: the team variance is zero
    assert "crtstats: warning: age: BoundaryFitWarning: " in err


def test_readme_commands_are_what_ci_runs() -> None:
    """.ci/run must install and test exactly as the README tells a user to."""
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    blocks = [b.split("```", 1)[0].strip() for b in readme.split("```bash\n")[1:3]]
    assert len(blocks) == 2
    for command in blocks:
        assert command in ci, command
