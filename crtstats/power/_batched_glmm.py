"""The batched route for the admission GLMM: many simulated trials fitted at once.

A plan entry ``fitter = "glmm"`` on ``data = "admissions"`` with ``where = { period =
"follow_up" }`` and formula ``admitted ~ arm (+ stratum)`` (binomial, between-within
df, ``method`` maximum or restricted likelihood) is fitted to a block of simulated
trials with :class:`crtstats.models.BatchedGLMM`,
from the trials' draws (the follow-up ``admitted`` of each service user), without
building the tables. As for the LMM (:mod:`crtstats.power._batched`), the trials are
grouped by allocation pattern, teams sorted by (stratum, arm); each team's follow-up
users fill its rows, padded to the largest team of the group, and the padding is
masked. Every covariate is a team-level one, so the fit depends on each team's number
of users and of admissions only, which is what the masked rows give it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from crtstats.analysis import RATIO_SCALES
from crtstats.exceptions import CRTStatsError, InvalidParameterError
from crtstats.models import BatchedGLMM
from crtstats.power._batched import (
    Pattern,
    Row,
    allocation_order,
    cached_fitter,
    pattern_frame,
    result_row,
)
from crtstats.power._trials import TrialDraws
from crtstats.runner import AnalysisSpec

__all__ = ["fit_batched_glmm", "follow_up_outcomes"]

#: Rows per team are padded to a multiple of this, so that fitters can be reused.
_PAD = 32


def follow_up_outcomes(draws: TrialDraws, order: np.ndarray, width: int | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Follow-up ``admitted`` per team (teams in ``order`` x ``width``) and its mask.

    ``width`` defaults to the largest team's number of follow-up users.
    """
    if draws.admissions is None:
        raise InvalidParameterError("the batched GLMM route needs a design with admitted.")
    counts = draws.admissions.counts.ravel()
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    first, size = starts[1::2][order], counts[1::2][order]
    width = int(size.max()) if width is None else width
    columns = np.arange(width)
    valid = columns[None, :] < size[:, None]
    index = np.where(valid, first[:, None] + columns[None, :], 0)
    values: np.ndarray = np.where(valid, draws.admissions.admitted[index], 0)
    return values, valid


def fit_batched_glmm(spec: AnalysisSpec, draws: Sequence[TrialDraws],
                     labels: Row) -> list[Row | None]:
    """One effects row per trial (in order) for the admission GLMM entry ``spec``.

    Parameters
    ----------
    spec
        An entry of :func:`~crtstats.power._batched.batch_kind` ``"glmm"``.
    draws
        The block's simulated trials (their draws, at least up to ``admitted``).
    labels
        The label columns of the entry's row (outcome, analysis, role, estimand, scale).

    Returns
    -------
    list of dict or None
        As :func:`crtstats.power._batched.fit_batched`; on a ratio scale (odds ratio)
        the estimate and limits are exponentiated, as the effects table reports them.
        None where the batch did not converge or its design was refused: those trials
        are fitted on their own.

    Raises
    ------
    InvalidParameterError
        If the design has no admission outcome.
    """
    contrast = dict(spec.contrast) if spec.contrast else {str(spec.term): 1.0}
    method = str(spec.options.get("method", "laplace"))
    groups: dict[Pattern, list[tuple[int, TrialDraws, np.ndarray]]] = {}
    for k, trial in enumerate(draws):
        pattern, order = allocation_order(trial)
        groups.setdefault(pattern, []).append((k, trial, order))
    out: list[Row | None] = [None] * len(draws)
    ratio = labels.get("scale") in RATIO_SCALES
    for pattern, members in groups.items():
        largest = max(int(t.admissions.counts[:, 1].max())  # type: ignore[union-attr]
                      for _, t, _ in members)
        width = _PAD * -(-max(largest, 1) // _PAD)  # padded rows are masked: any width

        parts = [follow_up_outcomes(t, order, width) for _, t, order in members]
        y = np.column_stack([v.ravel() for v, _ in parts])
        mask = np.column_stack([m.ravel() for _, m in parts])
        def build(pattern: Pattern = pattern, width: int = width) -> BatchedGLMM:
            frame = pattern_frame(pattern, width, {"admitted": 0})
            return BatchedGLMM(str(spec.formula), frame, cluster="team_id",
                               contrast=contrast, method=method)  # type: ignore[arg-type]

        try:
            batch = cached_fitter(("glmm", spec.formula, tuple(contrast.items()), method,
                                   pattern, width), build)
            fit = batch.fit(y, mask=None if mask.all() else mask)
        except CRTStatsError:  # a design glmm refuses: the per-trial fits report it
            continue
        for j, (k, _, _) in enumerate(members):
            out[k] = result_row(labels, fit, j, ratio=ratio)
    return out
