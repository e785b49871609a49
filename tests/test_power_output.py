"""``crtstats power`` writes its folder as safely as ``crtstats run`` writes its own.

The folder is locked and checked before the simulation starts, so a second run into the
same folder, or an output folder that holds the plan, fails at once and not after all
the work; and its CSV files are neutralised against spreadsheet formulas.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import crtstats.power._simulate as simulate_module
from crtstats.cli import main
from crtstats.runner import ResultsLock, results_folder

PLAN = (
    'seed = 3\n[data]\nexample = true\n'
    '[[analysis]]\nname = "fidelity"\noutcome = "fidelity"\n'
    'options = { method = "lmm", outcomes = ["total"], did = false }\n'
    '[output]\ntable_formats = ["csv"]\nfigure_formats = ["png"]\n'
    '[design]\nintervention = 4\ncontrol = 4\n[design.fidelity]\n'
    'effect = { "12m" = 10 }\n'
)


@pytest.fixture
def no_simulation(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record any call of the simulation instead of running it."""
    calls: list[Any] = []
    monkeypatch.setattr(simulate_module, "_execute",
                        lambda *args, **kwargs: calls.append(args) or iter(()))
    return calls


def test_a_locked_folder_fails_before_the_simulation(
    tmp_path: Path, no_simulation: list[Any], capsys: pytest.CaptureFixture[str],
) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN, encoding="utf-8")
    out = tmp_path / "power"
    with ResultsLock(results_folder(out)):
        code = main(["power", str(plan), "--sims", "2", "--out", str(out)])
    assert code == 1
    assert "another crtstats run" in capsys.readouterr().err
    assert no_simulation == []
    assert not out.exists()


def test_an_output_folder_holding_the_plan_is_refused_at_once(
    tmp_path: Path, no_simulation: list[Any], capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "study"
    folder.mkdir()
    plan = folder / "plan.toml"
    plan.write_text(PLAN, encoding="utf-8")
    code = main(["power", str(plan), "--sims", "2", "--out", str(folder), "--force"])
    assert code == 1
    assert "--out" in capsys.readouterr().err
    assert no_simulation == []
    assert plan.read_text(encoding="utf-8") == PLAN  # the plan is untouched
