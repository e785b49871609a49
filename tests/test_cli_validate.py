"""``crtstats validate``: summary, report file, exit codes, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from crtstats.cli import main
from crtstats.datasets import example_paths
from crtstats.exceptions import FAILURE_COLUMNS

PATHS = example_paths()


def bad_teams(tmp_path: Path) -> Path:
    text = PATHS["teams"].read_text(encoding="utf-8")
    text = text.replace("T03,intervention", "T03,Intervention").replace("T05,", "T05 ,")
    path = tmp_path / "teams.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_clean_data_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "problems.csv"
    code = main(["validate", "--teams", str(PATHS["teams"]), "--fidelity",
                 str(PATHS["fidelity"]), "--admissions", str(PATHS["admissions"]),
                 "--service-use", str(PATHS["service_use"]), "--report", str(report)])
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("crtstats: valid:") and "fidelity (74 rows)" in out
    assert pd.read_csv(report).columns.tolist() == [*FAILURE_COLUMNS, "file", "line"]
    assert len(pd.read_csv(report)) == 0


def test_teams_alone_is_checked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--teams", str(PATHS["teams"])]) == 0
    assert "teams (25 rows)" in capsys.readouterr().out


def test_problems_summarised_and_all_written(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "out" / "problems.csv"
    code = main(["validate", "--teams", str(bad_teams(tmp_path)), "--admissions",
                 str(PATHS["admissions"]), "--report", str(report)])
    assert code == 1
    out = capsys.readouterr().out
    assert "problem(s) in 2 table(s)" in out and "unknown_team" in out
    assert "Traceback" not in out
    written = pd.read_csv(report, dtype=str, keep_default_na=False)
    assert list(written.columns) == [*FAILURE_COLUMNS, "file", "line"]
    teams_rows = written[written["table"] == "teams"]
    assert teams_rows[["row", "column", "reason_code"]].values.tolist() == [
        ["2", "arm", "enum"], ["4", "team_id", "pattern"]]
    assert teams_rows["value"].tolist() == ["Intervention", "T05 "]
    # the file's lines (header = line 1) beside the 0-based rows
    assert teams_rows["line"].tolist() == ["4", "6"]
    assert teams_rows["file"].tolist() == ["teams.csv", "teams.csv"]
    # every admissions row of team T05 is reported, not just the first
    n_t05 = (pd.read_csv(PATHS["admissions"], dtype=str)["team_id"] == "T05").sum()
    assert (written["reason_code"] == "unknown_team").sum() == n_t05


def test_subprocess_exit_code_and_no_traceback(tmp_path: Path) -> None:
    bad = bad_teams(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "crtstats", "validate", "--teams", str(bad), "--fidelity",
         str(PATHS["fidelity"])], capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "enum" in proc.stdout


def test_missing_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--teams", str(tmp_path / "no.csv")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("crtstats: error:") and err.count("\n") == 1 and "no.csv" in err


def test_unreadable_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "teams.csv"
    broken.write_text("team_id,arm,stratum\nT1,control\n", encoding="utf-8")
    assert main(["validate", "--teams", str(broken)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "teams.csv" in err


def test_teams_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["validate", "--fidelity", str(PATHS["fidelity"])])
    assert exc.value.code == 2
    assert "--teams" in capsys.readouterr().err
