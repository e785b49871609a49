"""``BatchedLMM``: one random-intercept LMM design, fitted to many outcome columns at once.

Built for simulation: the design matrix and every per-cluster quantity that does not
depend on the outcome are computed once; :meth:`BatchedLMM.fit` then runs REML
(:mod:`crtstats.models._batch_reml`) and the Kenward-Roger or Satterthwaite inference
of one contrast (:mod:`crtstats.models._batch_kr`) for all columns together.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Literal, get_args

import numpy as np
import pandas as pd

from crtstats._options import check_option
from crtstats.exceptions import CRTStatsError, InvalidParameterError, ModelSpecificationError
from crtstats.models._batch_kr import contrast_inference
from crtstats.models._batch_lowrank import LowRank, pencil
from crtstats.models._batch_reml import (
    GroupedStats,
    batched_cholesky,
    fit_batch,
    grouped_stats,
)
from crtstats.models._batch_result import BatchedFit, check_level, contrast_vector, make_fit
from crtstats.models._checks import check_fit_arguments
from crtstats.models._data_checks import check_finite, check_terms_vary, outcome_name
from crtstats.models._design import Design, build_design, warn_design
from crtstats.models._lmm import check_lmm_design, lmm
from crtstats.models._lmm_basis import _power_of_two, working_basis
from crtstats.models._lmm_checks import check_clusters
from crtstats.models._warn import WarningLog

__all__ = ["BatchedLMM", "BatchDdf"]

BatchDdf = Literal["kenward-roger", "satterthwaite"]
"""Denominator df available for :class:`BatchedLMM`."""

_CHUNK = 2048  # trials reduced and fitted together (bounds the memory used)
_PIVOT_SCREEN = 1e-8  # relative Cholesky pivot of X'X below this: the scalar fit decides
_EXACT_TOL = 1e-12  # as crtstats.models._lmm_checks


def placeholder_frame(fitter: str, formula: str, data: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """``data`` with the outcome column replaced by zeros (the outcomes come later).

    The outcome must be a bare column name left of ``~``.
    """
    response = outcome_name(formula)
    if not response.isidentifier():
        raise InvalidParameterError(
            f"{fitter}: the left of '~' must be a bare column name (the outcome "
            f"columns are given to fit()); got {response!r}."
        )
    frame = data.copy()
    frame[response] = 0.0
    return frame, response


def as_columns(values: np.ndarray, n_rows: int, what: str, dtype: type) -> np.ndarray:
    """``values`` as an ``(n_rows, n_sims)`` array (a vector is one column)."""
    out: np.ndarray = np.asarray(values, dtype=dtype)
    if out.ndim == 1:
        out = out[:, None]
    if out.ndim != 2 or out.shape[0] != n_rows or out.shape[1] == 0:
        raise InvalidParameterError(
            f"{what} must have one row per row of data ({n_rows}) and at least one "
            f"column; got shape {np.shape(values)}."
        )
    return out


def sub_design(design: Design, keep: np.ndarray) -> Design:
    """The design restricted to the clusters in ``keep`` (boolean per cluster)."""
    rows = keep[design.groups]
    used = design.used.copy()
    used[np.flatnonzero(design.used)[~rows]] = False
    codes = np.cumsum(keep) - 1
    return replace(
        design, y=design.y[rows], X=design.X[rows], groups=codes[design.groups[rows]],
        cluster_labels=tuple(c for c, k in zip(design.cluster_labels, keep, strict=True) if k),
        offset=design.offset[rows], used=used, n_excluded=int((~used).sum()),
    )


class BatchedLMM:
    """The random-intercept LMM of :func:`crtstats.lmm` for many outcome columns at once.

    Parameters
    ----------
    formula
        Fixed-effects formula with a bare outcome name, e.g.
        ``"total ~ arm * review + stratum"``; the outcome column's values in ``data``
        are ignored (they come from :meth:`fit`) and it need not exist.
    data
        One row per observation: the covariates and the cluster column.
    cluster
        Column identifying the clusters; one random intercept each.
    contrast
        The linear combination of coefficients to estimate, ``{term: weight}`` (terms
        left out weigh 0) or one weight per coefficient.
    ddf
        ``"kenward-roger"`` (default; the adjusted standard error, as
        ``pbkrtest::vcovAdj``) or ``"satterthwaite"`` (model-based standard error,
        lmerTest's df).

    Raises
    ------
    InvalidParameterError
        For arguments :func:`crtstats.lmm` refuses, an outcome that is not a bare
        column name, or another ``ddf``.
    ModelSpecificationError
        For a design :func:`crtstats.lmm` refuses (too few clusters, a cluster-level
        level with one cluster, rank deficiency, no residual df), or unknown contrast
        terms.

    Warns
    -----
    ExcludedRowsWarning
        When rows are left out for a missing covariate or cluster (also on
        ``warnings``).

    Notes
    -----
    ``fit(Y)[j]`` is ``lmm(formula, data_j, cluster=cluster, ddf=ddf).contrast(contrast)``
    with ``data_j`` the data whose outcome is column ``j`` of ``Y`` (missing where
    ``mask`` is False). The REML criterion, the search for its optimum (grid on the
    ICC, boundary at zero, root of the derivative) and the Kenward-Roger and
    Satterthwaite formulas are those of :func:`crtstats.lmm` (see its Notes), written
    with per-trial sums grouped by cluster size: the cost per trial is ``O(M p^2)`` per
    evaluation for ``M`` distinct cluster sizes, whatever the number of rows. The rare
    trials the vectorised search cannot settle (no sign change of the derivative around
    the grid minimum: an ICC near 1) and masked trials that a cheap screen flags (near
    rank deficiency, few rows per cluster) are fitted by :func:`crtstats.lmm` itself;
    a trial :func:`crtstats.lmm` refuses gives NaN with ``converged`` False.

    Examples
    --------
    Two hundred simulated outcomes on the example trial's fidelity design; in R, a loop
    of ``lmerTest::lmer(total ~ arm * review + stratum + (1 | team_id))`` and
    ``contest(fit, L, ddf = "Kenward-Roger")``.

    >>> import numpy as np
    >>> import pandas as pd
    >>> import crtstats
    >>> trial = crtstats.datasets.load_example()
    >>> fid = trial.fidelity.merge(trial.teams, on="team_id")
    >>> fid["review"] = pd.Categorical(fid["review"], ["baseline", "6m", "12m"])
    >>> batch = crtstats.models.BatchedLMM(
    ...     "total ~ arm * review + stratum", fid, cluster="team_id",
    ...     contrast={"arm[T.intervention]": 1, "arm[T.intervention]:review[T.12m]": 1})
    >>> rng = np.random.default_rng(1)
    >>> team = rng.normal(size=(25, 200))[pd.factorize(fid["team_id"])[0]]
    >>> fit = batch.fit(100 + 3 * team + 5 * rng.normal(size=(len(fid), 200)))
    >>> fit.n_sims, bool(np.all(fit.df > 0))
    (200, True)
    """

    def __init__(
        self,
        formula: str,
        data: pd.DataFrame,
        *,
        cluster: str,
        contrast: Mapping[str, float] | Sequence[float],
        ddf: BatchDdf = "kenward-roger",
    ) -> None:
        check_fit_arguments("BatchedLMM", formula, data, {"cluster": cluster})
        check_option("ddf", ddf, get_args(BatchDdf))
        frame, response = placeholder_frame("BatchedLMM", formula, data)
        design = build_design(formula, frame, cluster=cluster)
        log = WarningLog()
        warn_design(design, log)
        check_finite("lmm", formula, frame, design)
        check_lmm_design(formula, frame, design, cluster)
        basis = working_basis(np.zeros(design.nobs), design.X)
        self.formula, self.cluster, self.ddf = formula, cluster, ddf
        self.warnings = log.records
        self._frame, self._response, self._design = frame, response, design
        self._X = (design.X - basis.x_shift) / basis.x_scale
        self._intercept = basis.intercept
        self._vec = contrast_vector(contrast, design.names)
        self._work = self._vec @ basis.transform
        k = basis.intercept
        self._shift_weight = 0.0 if k is None else float(self._vec[k] / basis.x_scale[k])
        self._checked: dict[bytes, str] = {}  # pattern -> why lmm refuses it ("": fits)
        self._pencil = pencil(self._X, design.groups, design.n_clusters)

    @property
    def names(self) -> tuple[str, ...]:
        """The coefficient names (the order of a contrast given as a sequence)."""
        return self._design.names

    @property
    def n_rows(self) -> int:
        """Rows of ``data`` (the rows of ``Y`` and ``mask``)."""
        return int(self._design.used.shape[0])

    def fit(
        self, Y: np.ndarray, mask: np.ndarray | None = None, *, level: float = 0.95
    ) -> BatchedFit:
        """Fit every column of ``Y``.

        Parameters
        ----------
        Y
            ``(n_rows, n_sims)`` outcomes aligned with the rows of ``data`` (a vector is
            one column). Values in rows excluded for missing covariates, or masked, are
            ignored.
        mask
            Optional boolean ``(n_rows, n_sims)``: False where the row is missing in
            that column.
        level
            Confidence level of the intervals.

        Returns
        -------
        BatchedFit
            ``estimate, std_error, df, pvalue, conf_low, conf_high, converged,
            boundary``, each of length ``n_sims``.

        Raises
        ------
        InvalidParameterError
            If ``Y`` or ``mask`` has the wrong shape, or ``level`` is not in (0, 1).
        ModelSpecificationError
            If a used value of ``Y`` is not finite.
        """
        check_level(level)
        Yall = as_columns(Y, self.n_rows, "Y", float)
        used = self._design.used
        Yu = Yall[used]
        Mu = None
        if mask is not None:
            Mu = as_columns(mask, self.n_rows, "mask", bool)[used]
            if Mu.shape != Yu.shape:
                raise InvalidParameterError(
                    f"mask must have the shape of Y {Yall.shape}; got {np.shape(mask)}."
                )
            if Mu.all():
                Mu = None
        bad = ~np.isfinite(Yu) if Mu is None else Mu & ~np.isfinite(Yu)
        if bad.any():
            row, col = (int(v[0]) for v in np.nonzero(bad))
            raise ModelSpecificationError(
                f"BatchedLMM: Y is not finite in {int(bad.sum())} used value(s), the first "
                f"in column {col} (value {Yu[row, col]!r}); mark missing values in mask."
            )
        n_sims = Yu.shape[1]
        out = {k: np.full(n_sims, np.nan) for k in ("estimate", "std_error", "df")}
        converged = np.zeros(n_sims, dtype=bool)
        boundary = np.zeros(n_sims, dtype=bool)
        reason = self._refused_patterns(Mu, n_sims)
        todo = np.flatnonzero(reason == "")
        scalar: list[int] = []
        for start in range(0, todo.size, _CHUNK):
            cols = todo[start:start + _CHUNK]
            sub_mask = None if Mu is None else Mu[:, cols]
            left = self._fit_chunk(Yu[:, cols], sub_mask, cols, out, converged, boundary)
            scalar.extend(int(j) for j in left)
        for j in scalar:
            self._scalar_fit(j, Yall[:, j], None if Mu is None else Mu[:, j], out,
                             converged, boundary, reason)
        return make_fit(out["estimate"], out["std_error"], out["df"], converged, boundary,
                        level, reason)

    def _refused_patterns(self, Mu: np.ndarray | None, n_sims: int) -> np.ndarray:
        """Why :func:`crtstats.lmm` would refuse each trial's set of non-empty clusters
        (``""``: it would not)."""
        refused = np.full(n_sims, "", dtype=object)
        if Mu is None:
            return refused
        design = self._design
        counts = np.zeros((design.n_clusters, n_sims))
        np.add.at(counts, design.groups, Mu.astype(float))
        present = counts > 0
        partial = np.flatnonzero(~present.all(axis=0))
        if partial.size == 0:
            return refused
        packed = np.packbits(present[:, partial], axis=0)
        keys, inverse = np.unique(packed, axis=1, return_inverse=True)
        for u in range(keys.shape[1]):
            key = keys[:, u].tobytes()
            if key not in self._checked:
                self._checked[key] = self._pattern_ok(present[:, partial[inverse.ravel() == u][0]])
            if self._checked[key]:
                refused[partial[inverse.ravel() == u]] = self._checked[key]
        return refused

    def _pattern_ok(self, keep: np.ndarray) -> str:
        sub = sub_design(self._design, keep)
        try:
            check_clusters(self.formula, self._frame, sub, self.cluster)
            check_terms_vary("lmm", self.formula, self._frame, sub)
        except ModelSpecificationError as err:
            return f"{type(err).__name__}: {err}"
        return ""

    def _working_outcome(
        self, Y: np.ndarray, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(Y - m) / c`` per column with the shift ``m`` and power-of-two scale ``c``
        of :func:`crtstats.models._lmm_basis.working_basis`."""
        w = np.ones_like(Y) if mask is None else mask.astype(float)
        if mask is not None:
            Y = np.where(mask, Y, 0.0)  # masked values may be anything, NaN included
        n = w.sum(axis=0)
        if self._intercept is None:
            shift = np.zeros(Y.shape[1])
            spread = np.sqrt(np.sum(w * Y**2, axis=0) / n)
        else:
            shift = np.sum(w * Y, axis=0) / n
            spread = np.sqrt(np.sum(w * (Y - shift) ** 2, axis=0) / n)
        scale: np.ndarray = _power_of_two(spread)
        work: np.ndarray = (Y - shift) / scale * w
        return work, shift, scale

    def _screen(self, stats: GroupedStats, present: np.ndarray) -> np.ndarray:
        """Trials to leave to the scalar fit: near rank deficiency or little data."""
        p = stats.p
        nobs = stats.nobs
        few: np.ndarray = (nobs - p < 1) | (present < 2) | (nobs - present - p < 1)
        if stats.shared:
            return few
        xtx = stats.within[:, :p, :p] + np.einsum(
            "m,smij->sij", 1.0 / stats.sizes, stats.between[:, :, :p, :p])
        piv = batched_cholesky(xtx)
        diag = np.diagonal(xtx, axis1=1, axis2=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            weak = ~(np.min(piv / diag, axis=1) > _PIVOT_SCREEN)
        out: np.ndarray = few | weak
        return out

    def _fit_chunk(
        self, Y: np.ndarray, mask: np.ndarray | None, cols: np.ndarray,
        out: dict[str, np.ndarray], converged: np.ndarray, boundary: np.ndarray,
    ) -> np.ndarray:
        """Fit one chunk of trials in place; return the columns left to the scalar fit."""
        design = self._design
        yw, shift, scale = self._working_outcome(Y, mask)
        stats = grouped_stats(self._X, yw, design.groups, design.n_clusters, mask)
        present = stats.counts.sum(axis=1)
        screened = self._screen(stats, present)
        rows = np.flatnonzero(~screened)
        if rows.size == 0:
            return cols
        stats = stats.select(rows)
        search = None
        if mask is not None and self._pencil is not None:
            search = LowRank.of(stats, self._pencil, design.groups, mask[:, rows])
        fit = fit_batch(stats, search)
        total = (stats.within[:, -1, -1]
                 + np.sum(stats.between[:, :, -1, -1] / stats.sizes, axis=1)) / stats.nobs
        exact = ~(fit.sigma2 > _EXACT_TOL * total)
        inf = contrast_inference(stats, fit, self._work, self.ddf)
        ok = ~fit.scalar & ~exact
        j = cols[rows[ok]]
        sc = scale[rows[ok]]
        out["estimate"][j] = sc * (fit.beta[ok] @ self._work) + self._shift_weight * shift[
            rows[ok]]
        out["std_error"][j] = sc * np.sqrt(inf.variance[ok])
        out["df"][j] = inf.df[ok]
        converged[j] = True
        boundary[j] = fit.boundary[ok]
        left: np.ndarray = np.concatenate([cols[screened], cols[rows[~ok]]])
        return left

    def _scalar_fit(
        self, j: int, y: np.ndarray, mask: np.ndarray | None,
        out: dict[str, np.ndarray], converged: np.ndarray, boundary: np.ndarray,
        reason: np.ndarray,
    ) -> None:
        """Column ``j`` by :func:`crtstats.lmm` itself (NaN where it refuses the data, with
        its message in ``reason``)."""
        frame = self._frame.copy()
        values = y.copy()
        if mask is not None:
            used_rows = np.flatnonzero(self._design.used)
            values[used_rows[~mask]] = np.nan
        frame[self._response] = values
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = lmm(self.formula, frame, cluster=self.cluster, ddf=self.ddf)
                con = res.contrast([float(v) for v in self._vec])
        except CRTStatsError as err:
            reason[j] = f"{type(err).__name__}: {err}"
            return
        out["estimate"][j], out["std_error"][j], out["df"][j] = (
            con.estimate, con.std_error, con.df)
        converged[j] = res.converged
        details = res.details
        boundary[j] = bool(getattr(details, "boundary", False))
