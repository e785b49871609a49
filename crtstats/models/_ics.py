"""A randomisation test for the informative-cluster-size check.

The statistic is the unadjusted cluster-average minus participant-average risk
difference: the mean of the cluster proportions minus the pooled proportion, difference
between arms. It is re-computed under every allocation the design allows
(:func:`crtstats.permutation_test`, strata or pairs kept).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from crtstats.models._cluster_data import check_arguments, treatment_indicator
from crtstats.models._permutation import PermutationResult, permutation_test

__all__ = ["informative_size_test"]


def _statistic(arm: str, label: Any, y: np.ndarray, n: np.ndarray) -> Any:
    """The gap as a function of the re-allocated cluster frame (rows in fixed order)."""
    p = y / n

    def gap(frame: pd.DataFrame) -> float:
        a = frame[arm].to_numpy() == label
        cluster_avg = p[a].mean() - p[~a].mean()
        participant_avg = y[a].sum() / n[a].sum() - y[~a].sum() / n[~a].sum()
        return float(cluster_avg - participant_avg)

    gap.__name__ = "cluster_minus_participant_rd"
    return gap


def informative_size_test(
    data: pd.DataFrame,
    *,
    outcome: str,
    arm: str,
    cluster: str,
    strata: str | None = None,
    pairs: str | None = None,
    n_resamples: int = 10000,
    seed: int | np.random.SeedSequence | None = None,
    treated: Any = None,
) -> PermutationResult:
    """Randomisation test of the gap between the cluster- and participant-average RD.

    Parameters
    ----------
    data
        One row per participant with a 0/1 ``outcome`` (rows with a missing outcome
        are left out).
    outcome, arm, cluster
        Columns of the outcome, the allocated arm and the clusters.
    strata, pairs
        The randomisation blocks, as :func:`crtstats.permutation_test`.
    n_resamples, seed
        Exact when the design allows at most ``n_resamples`` allocations; otherwise a
        seeded Monte Carlo sample.
    treated
        The arm value of the intervention; by default ``"intervention"`` (or 1).

    Returns
    -------
    PermutationResult
        ``observed`` is the gap (cluster-average minus participant-average risk
        difference, unadjusted); ``pvalue`` its two-sided randomisation p-value.

    Raises
    ------
    InvalidParameterError, MissingColumnError, ModelSpecificationError
        As :func:`crtstats.permutation_test`.

    Notes
    -----
    With cluster proportions ``p_i = y_i / n_i``, the statistic is
    ``(mean_{A=1} p_i - mean_{A=0} p_i) - (sum_{A=1} y_i / sum_{A=1} n_i -
    sum_{A=0} y_i / sum_{A=0} n_i)``. Re-randomising tests the sharp null that the
    intervention changes no participant's outcome; under it the two estimands are both
    zero, so the test has the right size for that null and power against an effect that
    varies with cluster size. It is not a test of "no informative cluster size" when
    the intervention has an effect, and with 25 clusters it has little power: a
    non-significant gap does not show that the two estimands agree.

    Examples
    --------
    >>> import crtstats
    >>> from crtstats.models import informative_size_test
    >>> trial = crtstats.datasets.load_example()
    >>> fu = trial.admissions[trial.admissions["period"] == "follow_up"].merge(
    ...     trial.teams, on="team_id")
    >>> res = informative_size_test(fu, outcome="admitted", arm="arm", cluster="team_id",
    ...                             strata="stratum", n_resamples=500, seed=1)
    >>> res.statistic, res.n_resamples
    ('cluster_minus_participant_rd', 500)

    R: ``ri2::conduct_ri()`` with this statistic as ``test_function``.
    """
    check_arguments("informative_size_test", data,
                    {"outcome": outcome, "arm": arm, "cluster": cluster,
                     "strata": strata, "pairs": pairs}, optional=("strata", "pairs"))
    used = data[data[outcome].notna()]
    blocks = [c for c in (strata, pairs) if c is not None]
    frame = used.groupby(cluster, sort=False).agg(
        **{arm: (arm, "first")}, **{c: (c, "first") for c in blocks},
        _events=(outcome, "sum"), _size=(outcome, "size")).reset_index()
    frame[arm] = frame[arm].astype(object)
    label = frame[arm][treatment_indicator(frame[arm], treated) > 0].iloc[0]
    y, n = frame["_events"].to_numpy(float), frame["_size"].to_numpy(float)
    return permutation_test(frame, statistic=_statistic(arm, label, y, n), arm=arm,
                            cluster=cluster, strata=strata, pairs=pairs,
                            n_resamples=n_resamples, seed=seed, treated=treated)
