"""``crtstats score``: validate, score, write; problems listed, no traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import crtstats
from crtstats.cli import main
from crtstats.datasets import example_paths

DEMO_KEY = Path(__file__).resolve().parent / "scales" / "demo_scale_v1.yaml"


def test_scores_the_example_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "scores.csv"
    assert main(["score", "--fidelity", str(example_paths()["fidelity"]), "--out", str(out)]) == 0
    assert "scored 74 review(s)" in capsys.readouterr().out
    written = pd.read_csv(out, keep_default_na=False, na_values=[""])
    expected = crtstats.score_fidelity(crtstats.datasets.load_example().fidelity)
    assert list(written.columns) == list(expected.columns)
    assert written["team_id"].tolist() == expected["team_id"].tolist()
    np.testing.assert_array_equal(written["total"], expected["total"])  # full precision
    np.testing.assert_array_equal(written["content_delivery_mean"],
                                  expected["content_delivery_mean"])
    assert written["band"].fillna("").tolist() == expected["band"].fillna("").tolist()


def test_existing_output_needs_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "scores.csv"
    out.write_text("keep me")
    args = ["score", "--fidelity", str(example_paths()["fidelity"]), "--out", str(out)]
    assert main(args) == 1
    assert "--force" in capsys.readouterr().err and out.read_text() == "keep me"
    assert main([*args, "--force", "--max-missing", "2"]) == 0
    captured = capsys.readouterr()
    assert "crtstats: warning:" in captured.err and "prorated" in captured.err
    assert pd.read_csv(out)["prorated"].sum() == 4


def test_bad_file_lists_every_problem_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = pd.read_csv(example_paths()["fidelity"], dtype=str, keep_default_na=False)
    data.loc[0, "item_03"] = "7"
    data.loc[5, "item_12"] = "2.5"
    data.loc[9, "item_20"] = "x"
    bad = tmp_path / "fidelity.csv"
    data.to_csv(bad, index=False)
    out = tmp_path / "scores.csv"
    # in-process: tests/test_cli.py already checks that a subprocess shows no traceback
    assert main(["score", "--fidelity", str(bad), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("crtstats: error:") and "Traceback" not in err
    assert "3 problem(s)" in err
    for column in ("item_03", "item_12", "item_20"):
        assert column in err
    assert not out.exists()


def test_schema_validation_runs_before_scoring(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    data = pd.read_csv(example_paths()["fidelity"], dtype=str, keep_default_na=False)
    data.loc[1, "review"] = "month 6"  # not an item problem: only the table schema sees it
    bad = tmp_path / "fidelity.csv"
    data.to_csv(bad, index=False)
    assert main(["score", "--fidelity", str(bad), "--out", str(tmp_path / "s.csv")]) == 1
    err = capsys.readouterr().err
    assert "review" in err and "month 6" in err


def test_another_scale_by_key_file(tmp_path: Path) -> None:
    path = tmp_path / "demo.csv"
    path.write_text("team_id,review,q1,q2,q3,q4,q5,q6\nA,pre,4,4,4,4,2,4\nB,pre,0,1,2,3,,1\n")
    out = tmp_path / "scores.csv"
    assert main(["score", "--fidelity", str(path), "--out", str(out),
                 "--scale", str(DEMO_KEY)]) == 0
    written = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert written["total"].tolist()[0] == 22.0 and np.isnan(written["total"][1])
    assert written["band"].tolist()[0] == "good" and "access_sum" in written.columns


def test_unknown_scale_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["score", "--fidelity", str(example_paths()["fidelity"]),
                 "--out", str(tmp_path / "s.csv"), "--scale", "core_v9"])
    assert code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown scale 'core_v9'" in err


def test_long_format_is_pivoted_and_an_absent_item_reported(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "long.csv"
    path.write_text("team_id,review,item,score\nT1,baseline,item_01,3\n")
    assert main(["score", "--fidelity", str(path), "--out", str(tmp_path / "s.csv")]) == 1
    err = capsys.readouterr().err
    # an item with no row in long format is a problem, as an absent column is in wide
    assert "no item row names item_02 (long format)" in err and "Traceback" not in err
