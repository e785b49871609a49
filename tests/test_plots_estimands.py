"""The informative-cluster-size figure."""

from __future__ import annotations

import pandas as pd
import pytest
from matplotlib.figure import Figure

import crtstats
from crtstats.exceptions import ModelSpecificationError, SchemaValidationError
from crtstats.plots import cluster_size, cluster_size_frame


def test_cluster_size_frame_and_plot() -> None:
    trial = crtstats.datasets.load_example()
    frame = cluster_size_frame(trial.admissions, trial.teams)
    assert len(frame) == 25 and set(frame.columns) == {"team_id", "arm", "size", "observed"}
    ax = Figure().add_subplot()
    assert cluster_size(frame, ax=ax) is ax
    # one point set per arm and two reference lines per arm
    assert len(ax.collections) == 2 and len(ax.lines) == 4
    heights = sorted(line.get_ydata()[0] for line in ax.lines)
    fu = trial.admissions[trial.admissions["period"] == "follow_up"].merge(
        trial.teams, on="team_id")
    pooled = fu.groupby("arm")["admitted"].mean()
    for value in pooled:
        assert min(abs(h - value) for h in heights) < 1e-12  # participant-average lines


def test_cluster_size_refuses_bad_frames() -> None:
    with pytest.raises(SchemaValidationError):
        cluster_size(pd.DataFrame({"arm": ["control"]}))
    with pytest.raises(ModelSpecificationError, match="no clusters"):
        cluster_size(pd.DataFrame({"arm": [], "size": [], "observed": []}))
