"""The immutable result that every crtstats fitter returns.

The vocabulary follows linearmodels: ``params``, ``std_errors``, ``df``, ``tstats``,
``pvalues``, ``conf_int(level)``, ``cov``. Every number is kept at full precision;
rounding happens only when a table is rendered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from crtstats.exceptions import InvalidParameterError, ModelSpecificationError
from crtstats.models._contrast import ContrastDf, ContrastResult, check_level, t_pvalue, t_quantile
from crtstats.models._details import FitDetails, FrozenMap, ModelSpec
from crtstats.models._estimand import Estimand, estimand_of
from crtstats.models._predict import Predictor, PredictScale
from crtstats.models._wald import (
    Hypothesis,
    WaldMethod,
    WaldTestResult,
    f_pvalue,
    hypothesis_matrix,
    plain_wald,
    rhs_vector,
)

__all__ = ["CRTResult"]


def _readonly(values: Any, *, ndim: int) -> np.ndarray:
    arr = np.array(values, dtype=float, copy=True)
    if arr.ndim != ndim:
        raise ValueError(f"expected a {ndim}-dimensional array, got shape {arr.shape}")
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, kw_only=True, eq=False)
class CRTResult:
    """Fitted cluster-randomised-trial model.

    Instances are immutable in fact: every array is read-only, every mapping a
    read-only view, and the pandas objects returned by the properties are fresh copies.
    ``docs/results.md`` lists what every result has and what each fitter adds.

    Attributes
    ----------
    model
        Name of the fitter (``"lmm"``, ``"glmm"``, ``"gee"``, ``"ols"``...).
    formula
        The model formula as given.
    df_method
        How the denominator degrees of freedom were obtained (``"kenward-roger"``,
        ``"satterthwaite"``, ``"between-within"``, ``"residual"``,
        ``"bell-mccaffrey"``, ``"z"``...).
    cov_type
        The covariance estimator behind ``cov``.
    nobs, n_clusters
        Observations and clusters used in the fit.
    converged
        Whether the optimiser met its criteria.
    warnings
        The messages of every warning issued during the fit.
    loglik
        Maximised (restricted) log-likelihood, where the model has one.
    icc
        Intra-cluster correlation implied by the variance components (mixed models).
    family, link
        Error distribution and link; used by ``exponentiate=True``.
    details
        The fitter's own quantities as a typed, frozen record (:class:`LmmDetails`,
        :class:`GlmmDetails`, :class:`GeeDetails`, :class:`OlsDetails`,
        :class:`ClusterLevelDetails`, :class:`NegativeBinomialDetails`), with one
        glossary of names across fitters.
    spec
        The model specification (:class:`ModelSpec`): fitter, formula, cluster,
        family, link, offset, exposure, trials and the options used.
    wald_method
        The fitter's joint test (a :class:`WaldMethod`); used by :meth:`wald_test`.
    predictor
        What :attr:`fitted_values`, :attr:`resid` and :meth:`predict` need (None for
        cluster-level analyses).
    estimand_record
        The estimand, when the fitter states it; otherwise :attr:`estimand` derives it
        from the fitter and its options.
    """

    model: str
    formula: str
    param_names: tuple[str, ...]
    param_values: np.ndarray
    cov_values: np.ndarray
    df_values: np.ndarray
    df_method: str
    cov_type: str
    nobs: int
    n_clusters: int | None
    converged: bool = True
    family: str = "gaussian"
    link: str = "identity"
    warnings: tuple[str, ...] = ()
    loglik: float | None = None
    icc: float | None = None
    variance_components_values: Mapping[str, float] = field(default_factory=dict)
    random_effects_frame: pd.DataFrame | None = None
    contrast_df: ContrastDf | None = field(default=None, repr=False)
    details: FitDetails | None = field(default=None, repr=False)
    spec: ModelSpec | None = field(default=None, repr=False)
    wald_method: WaldMethod | None = field(default=None, repr=False)
    predictor: Predictor | None = field(default=None, repr=False)
    estimand_record: Estimand | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        p = len(self.param_names)
        object.__setattr__(self, "param_names", tuple(str(n) for n in self.param_names))
        object.__setattr__(self, "param_values", _readonly(self.param_values, ndim=1))
        object.__setattr__(self, "cov_values", _readonly(self.cov_values, ndim=2))
        df = np.broadcast_to(np.asarray(self.df_values, dtype=float), (p,))
        object.__setattr__(self, "df_values", _readonly(df, ndim=1))
        if self.param_values.shape != (p,) or self.cov_values.shape != (p, p):
            raise ValueError("params, cov and param_names disagree in length")
        object.__setattr__(self, "warnings", tuple(self.warnings))
        object.__setattr__(
            self,
            "variance_components_values",
            FrozenMap({str(k): float(v) for k, v in self.variance_components_values.items()}),
        )
        if self.random_effects_frame is not None:
            object.__setattr__(self, "random_effects_frame", self.random_effects_frame.copy())

    # -- the linearmodels vocabulary -------------------------------------------------
    @property
    def params(self) -> pd.Series:
        """Estimated coefficients."""
        return pd.Series(self.param_values, index=list(self.param_names), name="params")

    @property
    def cov(self) -> pd.DataFrame:
        """Covariance of the estimates used for inference (e.g. Kenward-Roger adjusted)."""
        names = list(self.param_names)
        return pd.DataFrame(self.cov_values, index=names, columns=names)

    @property
    def std_errors(self) -> pd.Series:
        """Standard errors: square roots of the diagonal of ``cov``."""
        se = np.sqrt(np.diag(self.cov_values))
        return pd.Series(se, index=list(self.param_names), name="std_errors")

    @property
    def df(self) -> pd.Series:
        """Denominator degrees of freedom per coefficient (``inf`` for z tests)."""
        return pd.Series(self.df_values, index=list(self.param_names), name="df")

    @property
    def tstats(self) -> pd.Series:
        """Estimates divided by their standard errors."""
        return pd.Series(
            self.param_values / np.sqrt(np.diag(self.cov_values)),
            index=list(self.param_names),
            name="tstats",
        )

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values from t with ``df`` (normal where ``df`` is infinite)."""
        p = t_pvalue(self.tstats.to_numpy(), self.df_values)
        return pd.Series(p, index=list(self.param_names), name="pvalues")

    @property
    def estimand(self) -> Estimand:
        """What the arm effect estimates: population, measure, conditioning (and why)."""
        return self.estimand_record if self.estimand_record is not None else estimand_of(self)

    @property
    def variance_components(self) -> pd.Series:
        """Variance components (e.g. ``cluster`` and ``residual``); empty if none."""
        return pd.Series(dict(self.variance_components_values), dtype=float, name="variance")

    @property
    def random_effects(self) -> pd.DataFrame | None:
        """Predicted cluster effects with their conditional standard errors, if any."""
        if self.random_effects_frame is None:
            return None
        return self.random_effects_frame.copy()

    @property
    def info(self) -> Mapping[str, Any]:
        """Deprecated: a read-only view of :attr:`details` under the older names.

        ``info["theta"]`` (lmm: ``details.relative_sd``; negative binomial:
        ``details.nb_shape``), ``info["sigma"]`` (glmm: ``details.cluster_sd``; ols:
        ``details.residual_sd``), ``info["alpha"]`` and ``info["scale"]`` (gee:
        ``working_correlation`` and ``dispersion``) meant different things in different
        fitters; use the attributes of :attr:`details`, whose names mean one thing
        everywhere. This view will be removed in a future release.
        """
        if self.details is None:
            return FrozenMap({})
        legacy = self.details.legacy_info()
        if self.spec is not None and self.model in ("lmm", "ols"):
            legacy["cluster"] = self.spec.cluster
        return FrozenMap(legacy)

    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        """Confidence intervals with columns ``lower`` and ``upper``."""
        check_level(level)
        q = t_quantile(level, self.df_values)
        se = np.sqrt(np.diag(self.cov_values))
        return pd.DataFrame(
            {"lower": self.param_values - q * se, "upper": self.param_values + q * se},
            index=list(self.param_names),
        )

    # -- linear combinations ---------------------------------------------------------
    def _weights_vector(self, weights: Mapping[str, float] | Sequence[float]) -> np.ndarray:
        p = len(self.param_names)
        if isinstance(weights, Mapping):
            unknown = [k for k in weights if k not in self.param_names]
            if unknown:
                raise ModelSpecificationError(
                    f"contrast names unknown term(s) {unknown}; the model's terms are "
                    f"{list(self.param_names)}."
                )
            return np.array([float(weights.get(n, 0.0)) for n in self.param_names])
        vec = np.asarray(weights, dtype=float)
        if vec.shape != (p,):
            raise ModelSpecificationError(
                f"contrast weights must have one value per coefficient ({p}); got shape "
                f"{vec.shape}."
            )
        return vec

    def contrast(
        self,
        weights: Mapping[str, float] | Sequence[float],
        *,
        name: str | None = None,
    ) -> ContrastResult:
        """Estimate the linear combination ``sum(w * params)`` with its own df.

        Parameters
        ----------
        weights
            A mapping from term name to weight (terms left out weigh 0), or one weight
            per coefficient in the order of ``params``.
        name
            Label for the contrast, used in tables.

        Returns
        -------
        ContrastResult
            Estimate, standard error, df (Kenward-Roger or Satterthwaite for that
            combination where the model uses them), t, p and confidence interval.

        Examples
        --------
        The arm effect at 12 months in a model of ``total ~ arm * review``::

            res.contrast({"arm[T.intervention]": 1,
                          "arm[T.intervention]:review[T.12m]": 1}, name="arm at 12m")

        In R: ``emmeans::contrast()`` or ``multcomp::glht()`` on the same model.
        """
        vec = self._weights_vector(weights)
        if not np.any(vec):
            raise ModelSpecificationError("contrast weights are all zero.")
        # only the terms the contrast uses enter, so a covariance that is undefined
        # (NaN) between other terms cannot leak into this one
        used = np.flatnonzero(vec)
        w = vec[used]
        estimate = float(w @ self.param_values[used])
        se = float(np.sqrt(w @ self.cov_values[np.ix_(used, used)] @ w))
        if self.contrast_df is not None:
            df = float(self.contrast_df(vec))
        else:
            dfs = self.df_values[used]
            if not np.allclose(dfs, dfs[0]):
                raise ModelSpecificationError(
                    f"the {self.df_method} df differ between the terms of this contrast and "
                    "the model provides no df for combinations."
                )
            df = float(dfs[0])
        label = name if name is not None else " + ".join(
            f"{w:g}*{n}" for n, w in zip(self.param_names, vec, strict=True) if w != 0
        )
        return ContrastResult(
            name=label,
            weights={n: float(w) for n, w in zip(self.param_names, vec, strict=True) if w != 0},
            estimate=estimate,
            std_error=se,
            df=df,
            df_method=self.df_method,
        )

    def wald_test(
        self, hypothesis: Hypothesis, rhs: float | Sequence[float] = 0.0
    ) -> WaldTestResult:
        """Joint F test of the q linear constraints ``L beta = rhs``.

        Parameters
        ----------
        hypothesis
            A q x p matrix ``L`` (one column per coefficient, in the order of
            ``params``); or named contrasts, ``{name: {term: weight}}``, one row each;
            or a list of term names, meaning each of them is 0.
        rhs
            The right-hand side: one value for every row, or one per row.

        Returns
        -------
        WaldTestResult
            ``statistic`` (F), ``num_df``, ``den_df``, ``pvalue``, ``df_method``, the
            hypothesis matrix and ``to_frame()``.

        Raises
        ------
        ModelSpecificationError
            If the hypothesis names unknown terms, has the wrong number of columns, an
            all-zero row, linearly dependent rows, or involves a covariance the fit does
            not estimate; or ``rhs`` has the wrong length.

        Notes
        -----
        With ``d = L b - rhs`` and ``W = d' (L V L')^{-1} d``:

        * ``lmm``, Kenward-Roger: ``F = lambda W / q`` with ``V`` the adjusted
          covariance ``Phi_A`` and ``lambda`` and ``df`` of Kenward and Roger (1997),
          as ``pbkrtest::KRmodcomp``;
        * ``lmm``, Satterthwaite: ``L Phi L' = P D P'``, ``F = sum_m t_m^2 / q``
          with ``t_m = P_m' d / sqrt(D_m)`` and ``df = 2E / (E - q)``,
          ``E = sum nu_m / (nu_m - 2)``, as ``lmerTest::contestMD``;
        * ``ols`` with CR2: the Hotelling T-squared approximation (HTZ) of
          Pustejovsky and Tipton (2018), ``F = (nu - q + 1) / nu * W / q`` on
          ``(q, nu - q + 1)``, as ``clubSandwich::Wald_test(test = "HTZ")``;
        * otherwise ``F = W / q`` on ``q`` and the smallest df of the rows of ``L``
          (between-within, ``G - q``, residual or cluster-level t).

        References
        ----------
        Kenward MG, Roger JH (1997). Biometrics 53, 983-997.
        Kuznetsova A, Brockhoff PB, Christensen RHB (2017). J Stat Softw 82(13).
        Pustejovsky JE, Tipton E (2018). J Bus Econ Stat 36, 672-683.

        Examples
        --------
        The arm x review interaction (2 df) of the example trial's fidelity model; in R
        ``pbkrtest::KRmodcomp(fit, L)`` or ``anova(fit, ddf = "Kenward-Roger")`` (and
        ``lmerTest::contestMD(fit, L)`` for ``ddf="satterthwaite"``).

        >>> import pandas as pd
        >>> import crtstats
        >>> trial = crtstats.datasets.load_example()
        >>> fid = trial.fidelity.merge(trial.teams, on="team_id")
        >>> fid["total"] = fid.filter(like="item_").astype(float).sum(axis=1, min_count=39)
        >>> fid["review"] = pd.Categorical(fid["review"], ["baseline", "6m", "12m"])
        >>> fid = fid.dropna(subset=["total"])  # reviews with a missing item have no total
        >>> res = crtstats.lmm("total ~ arm * review + stratum", fid, cluster="team_id")
        >>> test = res.wald_test(["arm[T.intervention]:review[T.6m]",
        ...                       "arm[T.intervention]:review[T.12m]"])
        >>> test.num_df, test.df_method, bool(test.den_df > 0)
        (2, 'kenward-roger', True)
        """
        lmat, labels = hypothesis_matrix(hypothesis, self.param_names)
        target = rhs_vector(rhs, lmat.shape[0])
        method = self.wald_method
        if method is None:
            method = plain_wald(self.cov_values, self._row_df)
        used = np.flatnonzero(np.any(lmat != 0.0, axis=0))  # NaN elsewhere cannot leak
        stat = method(lmat, lmat[:, used] @ self.param_values[used] - target)
        return WaldTestResult(
            statistic=stat.statistic,
            num_df=stat.num_df,
            den_df=stat.den_df,
            pvalue=f_pvalue(stat.statistic, stat.num_df, stat.den_df),
            df_method=stat.method or self.df_method,
            scaling=stat.scaling,
            hypothesis=lmat,
            rhs=target,
            term_names=self.param_names,
            row_names=labels,
        )

    def _row_df(self, vec: np.ndarray) -> float:
        """The df of one contrast row, as :meth:`contrast` uses it."""
        if self.contrast_df is not None:
            return float(self.contrast_df(vec))
        dfs = self.df_values[np.flatnonzero(vec)]
        return float(np.min(dfs))

    # -- rows of the fit and new data ------------------------------------------------
    def _need_predictor(self, what: str) -> Predictor:
        if self.predictor is None:
            raise ModelSpecificationError(
                f"{what} is not available for a {self.model!r} result: it has no "
                "row-level model (a cluster-level analysis compares cluster summaries)."
            )
        return self.predictor

    @property
    def fitted_values(self) -> pd.Series:
        """Fitted means of the rows used, indexed by their input labels.

        Mixed models include the predicted cluster effects (as lme4's ``fitted()``);
        GEE and the other fitters give the population-average (fixed-part) means.
        """
        return self._need_predictor("fitted_values").fitted_values()

    @property
    def resid(self) -> pd.Series:
        """Response residuals ``y - fitted_values`` of the rows used (R:
        ``residuals(fit, type = "response")``; for lmm and ols the default residuals)."""
        return self._need_predictor("resid").resid()

    def predict(
        self,
        newdata: pd.DataFrame,
        *,
        include_cluster_effects: bool = False,
        scale: PredictScale = "response",
    ) -> pd.Series:
        """Predict for ``newdata``, coded with the fit's factor levels and contrasts.

        Parameters
        ----------
        newdata
            The right-hand-side columns (and the offset / exposure columns of the fit,
            and the cluster column with ``include_cluster_effects=True``).
        include_cluster_effects
            Mixed models: add the predicted effect of each row's cluster; a cluster
            the fit did not see gets 0, the mean of the random-effect distribution
            (as ``allow.new.levels = TRUE`` in lme4).
        scale
            ``"response"`` (the mean, through the inverse link) or ``"link"``.

        Returns
        -------
        pandas.Series
            One prediction per row of ``newdata`` (NaN where a needed value is
            missing), indexed as ``newdata``.

        Raises
        ------
        ModelSpecificationError
            If a column is missing, a factor has a level the fit did not see, or the
            result has no row-level model (cluster-level analyses).
        InvalidParameterError
            If ``scale`` is not an allowed value, or cluster effects are asked of a
            model without them.

        Examples
        --------
        In R: ``predict(fit, newdata, re.form = NA)`` (fixed part) and
        ``predict(fit, newdata, allow.new.levels = TRUE)`` (with cluster effects).

        >>> import pandas as pd
        >>> import crtstats
        >>> teams = pd.DataFrame({
        ...     "arm": ["control", "intervention"] * 4,
        ...     "baseline": [100.0, 104, 98, 110, 95, 101, 107, 99],
        ...     "total_12m": [103.0, 118, 97, 125, 99, 116, 109, 114]})
        >>> res = crtstats.ols("total_12m ~ arm + baseline", teams)
        >>> new = pd.DataFrame({"arm": ["intervention", "control"], "baseline": [100.0] * 2})
        >>> pred = res.predict(new)
        >>> round(float(pred.iloc[0] - pred.iloc[1]), 3)  # the arm coefficient
        12.857
        """
        return self._need_predictor("predict").predict(
            newdata, include_cluster_effects=include_cluster_effects, scale=scale
        )

    # -- presentation ----------------------------------------------------------------
    def to_frame(self, level: float = 0.95, *, exponentiate: bool = False) -> pd.DataFrame:
        """Tidy coefficient table.

        Columns: ``term, estimate, std_error, df, statistic, pvalue, conf_low,
        conf_high``. With ``exponentiate=True`` (log or logit links) the estimate and
        interval are exponentiated (odds or rate ratios); standard error, statistic and
        p-value stay on the linear-predictor scale.
        """
        ci = self.conf_int(level)
        frame = pd.DataFrame(
            {
                "term": list(self.param_names),
                "estimate": self.param_values.copy(),
                "std_error": self.std_errors.to_numpy(),
                "df": self.df_values.copy(),
                "statistic": self.tstats.to_numpy(),
                "pvalue": self.pvalues.to_numpy(),
                "conf_low": ci["lower"].to_numpy(),
                "conf_high": ci["upper"].to_numpy(),
            }
        )
        if exponentiate:
            if self.link not in ("log", "logit"):
                raise InvalidParameterError(
                    f"exponentiate=True needs a log or logit link; this model's link is "
                    f"{self.link!r}."
                )
            for col in ("estimate", "conf_low", "conf_high"):
                frame[col] = np.exp(frame[col])
        return frame

    def summary(self) -> str:
        """A plain-text summary of the fit, in the spirit of R's ``summary()``."""
        lines = [
            f"crtstats {self.model}: {self.formula}",
            f"family: {self.family} ({self.link})   covariance: {self.cov_type}   "
            f"df: {self.df_method}",
            f"observations: {self.nobs}   clusters: {self.n_clusters}   "
            f"converged: {self.converged}",
        ]
        if self.loglik is not None:
            lines.append(f"log-likelihood: {self.loglik:.4f}")
        if self.variance_components_values:
            comps = ", ".join(f"{k} {v:.4g}" for k, v in self.variance_components_values.items())
            lines.append(f"variance components: {comps}")
        if self.icc is not None:
            lines.append(f"ICC: {self.icc:.4f}")
        table = self.to_frame().set_index("term")
        lines.append("")
        lines.append(table.to_string(float_format=lambda v: f"{v:.4g}"))
        for message in self.warnings:
            lines.append(f"warning: {message}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (
            f"CRTResult(model={self.model!r}, formula={self.formula!r}, nobs={self.nobs}, "
            f"n_clusters={self.n_clusters}, df_method={self.df_method!r})"
        )
