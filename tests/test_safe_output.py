"""Safe files and terminals: no output over an input, no spreadsheet formulas in CSV,
no raw control characters on the terminal, and a results folder written safely."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import crtstats
from crtstats.cli import main
from crtstats.exceptions import OutputPathError
from crtstats.io import (
    check_not_input,
    neutralise_formula,
    neutralise_formulas,
    printable,
    write_csv,
)
from crtstats.runner import _output, parse_plan, run
from crtstats.runner import _run as run_module
from crtstats.tables import Column, Table

PATHS = crtstats.datasets.example_paths()


def _copy(folder: Path, *names: str) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return {n: Path(shutil.copy(PATHS[n], folder / f"{n}.csv")) for n in names}


def _tiny() -> Any:
    return parse_plan({"seed": 5, "data": {"example": True},
                       "output": {"tables": ["data_summary"], "figures": [],
                                  "table_formats": ["csv"]}}, name="tiny.toml")


# -- nothing overwrites an input -------------------------------------------------------


def test_validate_report_refuses_an_input(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    paths = _copy(tmp_path, "teams", "admissions")
    before = paths["teams"].read_bytes()
    code = main(["validate", "--teams", str(paths["teams"]), "--admissions",
                 str(paths["admissions"]), "--report", str(paths["teams"])])
    assert code == 1
    assert paths["teams"].read_bytes() == before
    err = capsys.readouterr().err
    assert "--report" in err and "is the input file" in err and "Traceback" not in err


def test_validate_report_refuses_an_input_through_a_link(tmp_path: Path) -> None:
    paths = _copy(tmp_path, "teams")
    link = tmp_path / "report.csv"
    link.symlink_to(paths["teams"])
    before = paths["teams"].read_bytes()
    assert main(["validate", "--teams", str(paths["teams"]), "--report", str(link)]) == 1
    assert paths["teams"].read_bytes() == before


def test_score_force_refuses_its_input(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    paths = _copy(tmp_path, "fidelity")
    before = paths["fidelity"].read_bytes()
    # a relative spelling of the same file is caught too
    other = tmp_path / "." / "fidelity.csv"
    assert main(["score", "--fidelity", str(paths["fidelity"]), "--out", str(other),
                 "--force"]) == 1
    assert paths["fidelity"].read_bytes() == before
    assert "--out" in capsys.readouterr().err


def test_run_out_refuses_an_input_file(tmp_path: Path) -> None:
    paths = _copy(tmp_path / "data", "teams", "admissions")
    plan = tmp_path / "plan.toml"
    plan.write_text('seed = 1\n[data]\nteams = "data/teams.csv"\n'
                    'admissions = "data/admissions.csv"\n[output]\n'
                    'tables = ["data_summary"]\nfigures = []\ntable_formats = ["csv"]\n')
    before = paths["teams"].read_bytes()
    with pytest.raises(OutputPathError, match="is the input file"):
        run(plan, out=paths["teams"], force=True)
    with pytest.raises(OutputPathError, match="is inside the results folder"):
        run(plan, out=tmp_path / "data", force=True)
    assert paths["teams"].read_bytes() == before


def test_check_not_input_accepts_other_paths(tmp_path: Path) -> None:
    paths = _copy(tmp_path, "teams")
    check_not_input(tmp_path / "report.csv", [paths["teams"], None], option="--report")
    with pytest.raises(OutputPathError):
        check_not_input(paths["teams"], [paths["teams"]], option="--report")


# -- formula injection -----------------------------------------------------------------


@pytest.mark.parametrize("cell", ["=HYPERLINK(\"x\")", "+1+2", "-1+cmd", "@SUM(A1)",
                                  "\tx", "\rx", "-", "-0.5 (-1.2 to 0.3)"])
def test_formula_starts_are_neutralised(cell: str) -> None:
    assert neutralise_formula(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["-0.5", "+3", "-1,234", "1e-05", "-5%", "-.25", "T01", ""])
def test_numbers_and_plain_text_stay(cell: str) -> None:
    assert neutralise_formula(cell) == cell


def test_write_csv_neutralises_text_and_keeps_numbers(tmp_path: Path) -> None:
    data = pd.DataFrame({"value": ["=1+2", "@x", "-0.5", None],
                         "number": [-0.5, 1.0, -2.0, 3.0],
                         "label": pd.array(["ok", "+cmd", pd.NA, "-1"], dtype="string")})
    text = write_csv(data, tmp_path / "r.csv").read_text("utf-8")
    assert text.splitlines() == ["value,number,label", "'=1+2,-0.5,ok", "'@x,1.0,'+cmd",
                                 "-0.5,-2.0,", ",3.0,-1"]
    back = pd.read_csv(tmp_path / "r.csv")
    assert back["number"].dtype.kind == "f" and back["number"].iloc[0] == -0.5
    assert data["value"].iloc[0] == "=1+2"  # the caller's frame is not changed


def test_neutralise_formulas_returns_the_frame_when_nothing_changes() -> None:
    data = pd.DataFrame({"a": ["x", "-1"], "b": [1, -2]})
    assert neutralise_formulas(data) is data


def test_table_csv_neutralises_cells() -> None:
    frame = pd.DataFrame({"team": ["=cmd|'/c calc'!A0", "T02"], "x": [-0.5, 1.25]})
    table = Table(frame, [Column("Team", ("team",), style="text"), Column("x", ("x",), decimals=2)])
    lines = table.to_csv().splitlines()
    assert lines[1:] == ["'=cmd|'/c calc'!A0,-0.50", "T02,1.25"]


# -- terminals ---------------------------------------------------------------------------


def test_printable_escapes_control_characters() -> None:
    assert printable("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert printable("x\r\n\x08\x7f\x9b\u202e\udc9b") == "x\\r\\n\\x08\\x7f\\x9b\\u202e\\udc9b"
    assert printable("a\nb", newlines=True) == "a\nb"
    assert printable("Trust É ✓") == "Trust É ✓"


def test_validate_problem_table_escapes_cells(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    teams = pd.read_csv(PATHS["teams"], dtype=str)
    teams.loc[0, "arm"] = "\x1b[2Jintervention"
    path = tmp_path / "teams.csv"
    teams.to_csv(path, index=False)
    assert main(["validate", "--teams", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err
    assert "\\x1b[2Jintervention" in out


def test_errors_escape_control_characters(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no\x1b[2Jfile.csv"
    assert main(["validate", "--teams", str(missing)]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "no\\x1b[2Jfile.csv" in err


def test_interrupt_is_one_line_and_exit_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "load_inputs", interrupted)
    plan = tmp_path / "plan.toml"
    plan.write_text('seed = 1\n[data]\nexample = true\n[output]\ntables = ["data_summary"]\n'
                    'figures = []\n')
    assert main(["run", str(plan), "--out", str(tmp_path / "res")]) == 130
    err = capsys.readouterr().err
    assert err == "crtstats: interrupted (Ctrl-C)\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.toml"]


# -- the results folder ------------------------------------------------------------------


def test_results_folder_has_the_users_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        run(_tiny(), out=tmp_path / "res")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "res").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "res" / "tables").stat().st_mode) == 0o755


def test_symlink_out_is_followed_and_kept(tmp_path: Path) -> None:
    real = tmp_path / "store" / "res"
    run(_tiny(), out=real)
    link = tmp_path / "res"
    link.symlink_to(real, target_is_directory=True)
    result = run(_tiny(), out=link, force=True)
    assert link.is_symlink() and Path(os.readlink(link)) == real
    assert (real / "manifest.json").is_file() and result.out == link
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res", "store"]
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["res"]


def test_a_second_run_into_the_same_folder_fails_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "res"
    calls: list[Any] = []
    monkeypatch.setattr(run_module, "load_inputs", lambda plan: calls.append(plan))
    with _output.ResultsLock(out), pytest.raises(OutputPathError, match="another crtstats run"):
        run(_tiny(), out=out)
    assert calls == []  # refused before reading any data
    assert list(tmp_path.iterdir()) == []  # the lock file goes with its holder


def test_lock_is_released_after_a_failed_run(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(**kwargs: Any) -> str:
        raise RuntimeError("disk full")

    monkeypatch.setattr(_output, "render_report", boom)
    with pytest.raises(RuntimeError):
        run(_tiny(), out=tmp_path / "res")
    monkeypatch.undo()
    run(_tiny(), out=tmp_path / "res")
    assert (tmp_path / "res" / "manifest.json").is_file()


def test_leftovers_of_a_killed_run_are_cleaned(tmp_path: Path) -> None:
    out = tmp_path / "res"
    (tmp_path / ".res-partial-dead1").mkdir()
    (tmp_path / ".res-partial-dead1" / "tables").mkdir()
    (tmp_path / ".other-partial-keep").mkdir()
    seen: list[str] = []
    run(_tiny(), out=out, progress=seen.append)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other-partial-keep", "res"]
    assert any("removed .res-partial-dead1" in m for m in seen)


def test_results_set_aside_by_a_killed_run_are_restored(tmp_path: Path) -> None:
    out = tmp_path / "res"
    run(_tiny(), out=out)
    out.rename(tmp_path / ".res-old-dead1")  # killed between the two renames
    assert _output.clean_leftovers(out) == [
        "restored res from .res-old-dead1, set aside by an interrupted run"]
    assert (out / "manifest.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["res"]
