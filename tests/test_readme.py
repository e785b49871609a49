"""The README's script runs as written against the public API."""

from __future__ import annotations

import contextlib
import io
import json
import re
import warnings
from pathlib import Path

import pytest

import crtstats

ROOT = Path(__file__).resolve().parents[1]


def test_readme_script_runs() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 1
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings(record=True) as seen:
        # the example trial's admission GLMM and two negative binomial fits are genuinely
        # on the boundary, and one team has no follow-up readmission (0.5 added for the
        # cluster-level log ratio); those warnings are expected, nothing else
        expected = {crtstats.BoundaryFitWarning, crtstats.ContinuityCorrectionWarning}
        for category in expected:
            warnings.simplefilter("always", category)
        exec(compile(blocks[0], "README.md", "exec"), {})
    assert {type(w.message) for w in seen} <= expected
    printed = out.getvalue()
    assert "Estimated effects" in printed and "kenward-roger" in printed
    # the last line prints the arm effect at 12 months (estimate, CI, df, p); compare it
    # with lme4 + pbkrtest on the same data (tests/reference/lmm.R), to the tolerances of
    # tests/test_lmm_reference.py
    numbers = [float(v) for v in re.findall(r"-?\d+\.\d+", printed.strip().splitlines()[-1])]
    reference = json.loads((ROOT / "tests" / "reference" / "lmm.json").read_text())
    r = reference["fidelity"]["contrasts"]["arm_12m"]
    assert numbers[0] == pytest.approx(r["estimate"], rel=1e-6)
    assert numbers[3] == pytest.approx(r["kr_df"], rel=1e-4)
    assert numbers[4] == pytest.approx(r["kr_p"], abs=1e-6)
