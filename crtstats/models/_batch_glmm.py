"""``BatchedGLMM``: one random-intercept logistic GLMM design, fitted to many 0/1 columns.

The design, its checks, the pooling of rows that share cluster and covariates and the
between-within df are prepared once; :meth:`BatchedGLMM.fit` then maximises the Laplace
likelihood of every column together (:mod:`crtstats.models._batch_laplace`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Literal, get_args

import numpy as np
import pandas as pd
from scipy import sparse

from crtstats._options import check_option
from crtstats.exceptions import CRTStatsError, InvalidParameterError, ModelSpecificationError
from crtstats.models._batch_laplace import Pooled, glm_start, hessian, newton
from crtstats.models._batch_lmm import as_columns, placeholder_frame
from crtstats.models._batch_result import BatchedFit, check_level, contrast_vector, make_fit
from crtstats.models._checks import between_within, check_fit_arguments
from crtstats.models._design import build_design, warn_design
from crtstats.models._glmm import GLMMDdf, GLMMMethod, _check_bw, _check_structure, glmm
from crtstats.models._glmm_checks import separated_columns, unique_rows
from crtstats.models._glmm_reml import RemlData, fit_reml
from crtstats.models._warn import WarningLog

__all__ = ["BatchedGLMM"]

BatchFamily = Literal["binomial"]

_CHUNK = 1024
_BOUNDARY_SIGMA = 1e-4  # as crtstats.glmm (lme4's isSingular() tolerance)
_CONVERGED = 1e-6  # Newton decrement below which crtstats.glmm calls a fit converged


def _cluster_sums(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.add.reduceat(values, starts, axis=0)
    return out


class BatchedGLMM:
    """The Laplace random-intercept logistic GLMM of :func:`crtstats.glmm` for many 0/1
    outcome columns at once.

    Parameters
    ----------
    formula
        Fixed effects with a bare outcome name, e.g. ``"admitted ~ arm + stratum"``;
        the outcome's values in ``data`` are ignored (they come from :meth:`fit`).
    data
        One row per observation (service user): covariates and the cluster column.
    cluster
        Column identifying the clusters (teams).
    contrast
        The linear combination of coefficients (log odds) to estimate, ``{term:
        weight}`` or one weight per coefficient.
    family
        ``"binomial"`` (logit link), the only family batched.
    df
        ``"between-within"`` (default, as :func:`crtstats.glmm`) or ``"z"``.
    method
        ``"laplace"`` (maximum likelihood, default, as :func:`crtstats.glmm`) or
        ``"laplace-reml"`` (the Laplace-approximated restricted likelihood, glmmTMB's
        ``REML = TRUE``; see :func:`crtstats.glmm`).

    Raises
    ------
    InvalidParameterError
        For arguments :func:`crtstats.glmm` refuses, an outcome that is not a bare
        column name, or another ``family`` or ``df``.
    ModelSpecificationError
        For a design :func:`crtstats.glmm` refuses, or unknown contrast terms.

    Warns
    -----
    ExcludedRowsWarning
        When rows are left out for a missing covariate or cluster.

    Notes
    -----
    ``fit(Y)[j]`` is ``glmm(formula, data_j, cluster=cluster, ddf=df).contrast(contrast)``
    with ``data_j`` holding column ``j`` of ``Y`` (missing where ``mask`` is False):
    the same Laplace likelihood (see :func:`crtstats.glmm`), maximised to a Newton
    decrement below ``1e-10``, with the covariance from the same central-difference
    Hessian (the ``beta`` block alone at the boundary ``sigma < 1e-4``) and the
    between-within df of the rows used. Rows sharing cluster and covariates are pooled
    into binomial counts, so with cluster-level covariates (arm, stratum) each trial
    costs ``O(G p)`` per evaluation whatever the number of service users. Columns with
    separation (a certificate-or-LP check on the pooled counts, as
    :func:`crtstats.glmm`), with no convergence or a Hessian that is not positive
    definite are fitted by :func:`crtstats.glmm` itself, so their flags and values
    are its own; columns it refuses (all 0 or all 1) give NaN with ``converged`` False.

    Examples
    --------
    A hundred simulated admission outcomes on the example trial's follow-up design; in
    R, a loop of ``lme4::glmer(admitted ~ arm + stratum + (1 | team_id), family =
    binomial)``.

    >>> import numpy as np
    >>> import crtstats
    >>> trial = crtstats.datasets.load_example()
    >>> adm = trial.admissions.merge(trial.teams[["team_id", "arm", "stratum"]])
    >>> users = adm[adm["period"] == "follow_up"].reset_index(drop=True)
    >>> batch = crtstats.models.BatchedGLMM("admitted ~ arm + stratum", users,
    ...                                     cluster="team_id",
    ...                                     contrast={"arm[T.intervention]": 1})
    >>> rng = np.random.default_rng(2)
    >>> fit = batch.fit(rng.random((len(users), 100)) < 0.3)
    >>> fit.n_sims, float(fit.df[0])  # 25 teams - 9 team-level coefficients
    (100, 16.0)
    """

    def __init__(
        self,
        formula: str,
        data: pd.DataFrame,
        *,
        cluster: str,
        contrast: Mapping[str, float] | Sequence[float],
        family: BatchFamily = "binomial",
        df: GLMMDdf = "between-within",
        method: GLMMMethod = "laplace",
    ) -> None:
        check_fit_arguments("BatchedGLMM", formula, data, {"cluster": cluster})
        check_option("family", family, get_args(BatchFamily))
        check_option("df", df, get_args(GLMMDdf))
        check_option("method", method, get_args(GLMMMethod))
        frame, response = placeholder_frame("BatchedGLMM", formula, data)
        design = build_design(formula, frame, cluster=cluster)
        log = WarningLog()
        warn_design(design, log)
        _check_structure(design, formula, frame)
        bw = between_within(design.X, design.groups, design.n_clusters)
        if df == "between-within":
            _check_bw(bw, design)
        # unique_rows sorts lexicographically, so the pooled rows are sorted by cluster
        first, inverse = unique_rows(np.column_stack([design.groups, design.X]))
        k = first.shape[0]
        self._pool = sparse.csr_matrix(
            (np.ones(design.nobs), (inverse, np.arange(design.nobs))), shape=(k, design.nobs))
        groups = design.groups[first]
        self._X, self._groups = design.X[first], groups
        self._starts = np.searchsorted(groups, np.arange(design.n_clusters))
        self.formula, self.cluster, self.family, self.df = formula, cluster, family, df
        self.method = method
        self.warnings = log.records
        self._frame, self._response, self._design = frame, response, design
        self._vec = contrast_vector(contrast, design.names)
        self._df = bw.contrast_df(self._vec) if df == "between-within" else np.inf

    @property
    def names(self) -> tuple[str, ...]:
        """The coefficient names (the order of a contrast given as a sequence)."""
        return self._design.names

    def fit(
        self, Y: np.ndarray, mask: np.ndarray | None = None, *, level: float = 0.95
    ) -> BatchedFit:
        """Fit every column of ``Y`` (0/1 outcomes, ``(n_rows, n_sims)``).

        Parameters
        ----------
        Y
            Outcomes aligned with the rows of ``data`` (0/1, or booleans); values in
            rows excluded for missing covariates, or masked, are ignored.
        mask
            Optional boolean ``(n_rows, n_sims)``: False where the row is missing.
        level
            Confidence level of the intervals.

        Returns
        -------
        BatchedFit
            ``estimate, std_error, df, pvalue, conf_low, conf_high, converged,
            boundary`` per column (``boundary``: cluster SD below 1e-4).

        Raises
        ------
        InvalidParameterError
            If ``Y`` or ``mask`` has the wrong shape, or ``level`` is not in (0, 1).
        ModelSpecificationError
            If a used value of ``Y`` is not 0 or 1.
        """
        check_level(level)
        n_rows = int(self._design.used.shape[0])
        used = self._design.used
        Yu = as_columns(Y, n_rows, "Y", float)[used]
        Mu = None if mask is None else as_columns(mask, n_rows, "mask", bool)[used]
        if Mu is not None and Mu.shape != Yu.shape:
            raise InvalidParameterError(
                f"mask must have the shape of Y; got {Mu.shape} and {Yu.shape} (rows used).")
        weights = np.ones_like(Yu) if Mu is None else Mu.astype(float)
        bad = (weights > 0) & ~np.isin(Yu, (0.0, 1.0))
        if bad.any():
            row, col = (int(v[0]) for v in np.nonzero(bad))
            raise ModelSpecificationError(
                f"BatchedGLMM: the binomial outcome must be 0 or 1; column {col} has "
                f"{Yu[row, col]!r} ({int(bad.sum())} such value(s)). Mark missing values "
                "in mask."
            )
        y = np.asarray(self._pool @ np.where(weights > 0, Yu, 0.0))
        m = np.asarray(self._pool @ weights)
        n_sims = Yu.shape[1]
        out = {key: np.full(n_sims, np.nan) for key in ("estimate", "std_error", "df")}
        flags = {key: np.zeros(n_sims, dtype=bool) for key in ("converged", "boundary")}
        refused, scalar = self._screen(y, m, Mu)
        todo = np.flatnonzero(~refused & ~scalar)
        left: list[int] = [int(j) for j in np.flatnonzero(scalar & ~refused)]
        for start in range(0, todo.size, _CHUNK):
            cols = todo[start:start + _CHUNK]
            left.extend(self._fit_chunk(y[:, cols], m[:, cols], cols, Mu, out, flags))
        for j in left:
            self._scalar_fit(j, Yu[:, j], None if Mu is None else Mu[:, j], out, flags)
        return make_fit(out["estimate"], out["std_error"], out["df"], flags["converged"],
                        flags["boundary"], level)

    def _screen(
        self, y: np.ndarray, m: np.ndarray, Mu: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Columns :func:`crtstats.glmm` refuses, and columns left to it (separation,
        clusters lost to the mask)."""
        total, trials = y.sum(axis=0), m.sum(axis=0)
        refused = (total <= 0) | (total >= trials)
        if Mu is not None:  # binary data with one row per cluster: glmm refuses them
            refused |= np.all(_cluster_sums(m, self._starts) <= 1.0, axis=0)
        scalar = np.zeros(y.shape[1], dtype=bool)
        if Mu is not None:
            scalar |= np.any(_cluster_sums(m, self._starts) == 0, axis=0)
        bounded = np.any((m > 0) & ((y == 0) | (y == m)), axis=0)
        for j in np.flatnonzero(bounded & ~refused & ~scalar):
            keep = m[:, j] > 0
            if separated_columns(self._X[keep], y[keep, j], m[keep, j]):
                scalar[j] = True
        return refused, scalar

    def _column_df(self, mask: np.ndarray | None) -> float:
        """Between-within df of the contrast on the rows used in one column."""
        if mask is None or self.df != "between-within":
            return float(self._df)
        design = self._design
        keep = np.bincount(design.groups[mask], minlength=design.n_clusters) > 0
        codes = np.cumsum(keep) - 1
        bw = between_within(design.X[mask], codes[design.groups[mask]], int(keep.sum()))
        return float(bw.contrast_df(self._vec))

    def _fit_chunk(
        self, y: np.ndarray, m: np.ndarray, cols: np.ndarray, Mu: np.ndarray | None,
        out: dict[str, np.ndarray], flags: dict[str, np.ndarray],
    ) -> list[int]:
        """Fit one chunk in place; return the columns left to the scalar fit."""
        data = Pooled(self._X, self._groups, self._starts, y, m)
        p = self._X.shape[1]
        if self.method == "laplace-reml":
            phi, edge, ok, cov = self._reml_chunk(data)
            good = np.flatnonzero(ok)
            cov = cov[good]
        else:
            res = newton(data, glm_start(data))
            phi = res.phi
            hess = hessian(data, phi, res.evaluation.modes)
            edge = np.abs(phi[:, p]) < _BOUNDARY_SIGMA
            reduced = hess.copy()
            reduced[edge, p, :] = 0.0
            reduced[edge, :, p] = 0.0
            reduced[edge, p, p] = 1.0  # sigma held fixed: only the beta block is inverted
            with np.errstate(invalid="ignore"):
                pos_def = np.all(np.linalg.eigvalsh(reduced) > 0.0, axis=1)
            ok = (pos_def & (res.decrement < _CONVERGED) & res.evaluation.inner_ok
                  & np.all(np.isfinite(phi), axis=1))
            good = np.flatnonzero(ok)
            cov = np.linalg.inv(reduced[good])[:, :p, :p]
            cov = 0.5 * (cov + cov.transpose(0, 2, 1))
        used = np.flatnonzero(self._vec)
        w = self._vec[used]
        j = cols[good]
        out["estimate"][j] = phi[good][:, used] @ w
        out["std_error"][j] = np.sqrt(np.einsum("i,sij,j->s", w, cov[:, used][:, :, used], w))
        out["df"][j] = [self._column_df(None if Mu is None else Mu[:, c]) for c in j]
        flags["converged"][j] = True
        flags["boundary"][j] = edge[good]
        return [int(c) for c in cols[~ok]]

    def _reml_chunk(self, data: Pooled
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(beta, sigma)``, boundary and convergence flags and the covariance of
        ``beta`` of each column by the restricted likelihood (as :func:`crtstats.glmm`)."""
        n_cols = data.y.shape[1]
        reml = RemlData("binomial", data.X, np.zeros(data.X.shape[0]), data.groups,
                        data.starts, data.y, data.m, np.zeros(n_cols))
        beta0 = glm_start(data)[:, :-1]
        res = fit_reml(reml, beta0, np.ones(n_cols))
        edge = res.sigma < _BOUNDARY_SIGMA
        cov = np.where(edge[:, None, None], res.cov_fixed, res.cov)
        with np.errstate(invalid="ignore"):
            pos_def = np.all(np.linalg.eigvalsh(cov) > 0.0, axis=1)
        return np.column_stack([res.beta, res.sigma]), edge, res.converged & pos_def, cov

    def _scalar_fit(
        self, j: int, y: np.ndarray, mask: np.ndarray | None,
        out: dict[str, np.ndarray], flags: dict[str, np.ndarray],
    ) -> None:
        """Column ``j`` by :func:`crtstats.glmm` itself (NaN where it refuses the data)."""
        frame = self._frame.copy()
        values = np.full(frame.shape[0], np.nan)
        rows = np.flatnonzero(self._design.used)
        values[rows] = y if mask is None else np.where(mask, y, np.nan)
        frame[self._response] = values
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = glmm(self.formula, frame, cluster=self.cluster, family=self.family,
                           ddf=self.df, method=self.method)
                con = res.contrast([float(v) for v in self._vec])
        except CRTStatsError:
            return
        out["estimate"][j], out["std_error"][j], out["df"][j] = (
            con.estimate, con.std_error, con.df)
        flags["converged"][j] = res.converged
        sigma2 = res.variance_components["cluster"]
        flags["boundary"][j] = bool(np.sqrt(sigma2) < _BOUNDARY_SIGMA)

