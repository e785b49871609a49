"""Shared fixtures and hypothesis settings."""

from __future__ import annotations

import os
from pathlib import Path

# The suite runs on pytest-xdist, one worker process per core (``-n auto`` in
# pyproject.toml). A BLAS or OpenMP pool per worker as wide as the machine would put
# several threads on each core, so each worker gets one thread. This must be set before
# numpy is first imported, which is why it comes before every other import; a value
# already in the environment is kept.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_variable, "1")

from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "reference"

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=30, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
