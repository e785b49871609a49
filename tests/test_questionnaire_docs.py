"""The example of docs/questionnaire-outcomes.md runs as written."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "docs" / "questionnaire-outcomes.md"


def test_questionnaire_page_example_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"),
                        flags=re.DOTALL)
    assert len(blocks) == 1
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(blocks[0], str(PAGE.name), "exec"), {})
    printed = out.getvalue()
    assert "LMM follow-up, team baseline mean (KR)" in printed
    assert "efficiency-weighted" in printed and "cluster-average" in printed
    assert "follow_up intervention: 242 sampled, 228 responded, 225 scored" in printed
