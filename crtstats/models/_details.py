"""Typed, frozen records of what each fitter adds to :class:`~crtstats.models.CRTResult`.

``CRTResult.details`` holds one of these records, so every extra quantity has a name
that means the same thing in every fitter (the glossary in ``docs/results.md``):

* ``cluster_variance`` / ``cluster_sd``: variance / SD of the random intercept per
  cluster, on the linear-predictor scale (lme4's ``VarCorr``);
* ``residual_variance`` / ``residual_sd``: the residual (within-cluster) variance / SD of
  a Gaussian model (lme4's and lm's ``sigma()``);
* ``relative_sd``: ``cluster_sd / residual_sd`` (lme4's ``theta``);
* ``nb_shape``: the NB2 shape ``theta`` with ``Var(y) = mu + mu^2 / theta`` (MASS's
  ``theta``, glmmTMB's ``sigma()``);
* ``working_correlation``: the GEE exchangeable correlation ``alpha``;
* ``dispersion``: the GEE scale parameter ``phi``;
* ``n_excluded`` and ``note``: rows left out for missing values, and what that means.

Every array is read-only, every mapping a read-only view, and frames are returned as
copies. ``legacy_info()`` gives the older ``CRTResult.info`` names, kept as a read-only
view for existing code.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

import numpy as np
import pandas as pd

__all__ = [
    "ClusterLevelDetails",
    "FitDetails",
    "FrozenMap",
    "GeeDetails",
    "GlmmDetails",
    "LmmDetails",
    "ModelSpec",
    "NegativeBinomialDetails",
    "OlsDetails",
    "PanelDetails",
    "exclusion_note",
    "freeze",
    "readonly_array",
]


K = TypeVar("K")
V = TypeVar("V")


class FrozenMap(Mapping[K, V]):
    """A read-only mapping (assignment raises ``TypeError``) that can be pickled.

    Examples
    --------
    >>> m = FrozenMap({"cluster": 1.5})
    >>> m["cluster"]
    1.5
    >>> m["cluster"] = 2.0
    Traceback (most recent call last):
    ...
    TypeError: 'FrozenMap' object does not support item assignment
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[K, V] | None = None) -> None:
        self._data: dict[K, V] = dict(data or {})

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"

    def __reduce__(self) -> tuple[type[FrozenMap[K, V]], tuple[dict[K, V]]]:
        return (FrozenMap, (self._data,))


def readonly_array(values: Any) -> np.ndarray:
    """A read-only float copy of ``values``."""
    arr = np.array(values, dtype=float, copy=True)
    arr.flags.writeable = False
    return arr


def freeze(value: Any) -> Any:
    """A read-only copy of ``value``: arrays read-only, mappings read-only views,
    lists tuples, frames and series copies (applied recursively)."""
    if isinstance(value, np.ndarray):
        arr = value.copy()
        arr.flags.writeable = False
        return arr
    if isinstance(value, (pd.DataFrame, pd.Series)):
        return value.copy()
    if isinstance(value, Mapping):
        return FrozenMap({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def exclusion_note(n_excluded: int) -> str:
    """The plain note about rows left out for missing values."""
    if not n_excluded:
        return "no rows excluded."
    return (
        f"{n_excluded} row(s) excluded because the response, a covariate or the cluster "
        "was missing."
    )


def _freeze_fields(record: Any) -> None:
    for f in fields(record):
        value = getattr(record, f.name)
        if isinstance(value, (np.ndarray, Mapping, list)):
            object.__setattr__(record, f.name, freeze(value))


@dataclass(frozen=True, kw_only=True)
class FitDetails:
    """What every fitter records beyond the coefficient table.

    Attributes
    ----------
    n_excluded
        Rows of the input left out because a variable the model uses was missing.
    note
        A plain sentence about those rows.
    """

    n_excluded: int
    note: str = ""

    def __post_init__(self) -> None:
        if not self.note:
            object.__setattr__(self, "note", exclusion_note(self.n_excluded))
        _freeze_fields(self)

    def legacy_info(self) -> dict[str, Any]:
        """The older ``CRTResult.info`` keys (deprecated; use the attributes)."""
        return {"n_excluded": self.n_excluded, "note": self.note}


@dataclass(frozen=True, kw_only=True)
class LmmDetails(FitDetails):
    """Details of an :func:`~crtstats.lmm` fit.

    Attributes
    ----------
    reml
        Whether the fit is REML (True) or maximum likelihood.
    boundary
        Whether the cluster variance is estimated as zero.
    cluster_variance, cluster_sd
        Random-intercept variance ``tau`` and SD (lme4: ``VarCorr(fit)``).
    residual_variance, residual_sd
        Residual variance ``sigma2`` and SD (lme4: ``sigma(fit)``).
    relative_sd
        ``cluster_sd / residual_sd`` (lme4: ``getME(fit, "theta")``).
    deviance
        ``-2`` times the maximised (restricted) log-likelihood (lme4: ``REMLcrit``
        for REML, ``deviance`` for ML).
    """

    reml: bool
    boundary: bool
    cluster_variance: float
    residual_variance: float
    deviance: float

    @property
    def cluster_sd(self) -> float:
        """Random-intercept SD."""
        return float(np.sqrt(self.cluster_variance))

    @property
    def residual_sd(self) -> float:
        """Residual SD."""
        return float(np.sqrt(self.residual_variance))

    @property
    def relative_sd(self) -> float:
        """Cluster SD relative to the residual SD (lme4's ``theta``)."""
        return float(np.sqrt(self.cluster_variance / self.residual_variance))

    def legacy_info(self) -> dict[str, Any]:
        return {**super().legacy_info(), "reml": self.reml, "boundary": self.boundary,
                "theta": self.relative_sd, "deviance": self.deviance}


@dataclass(frozen=True, kw_only=True)
class GlmmDetails(FitDetails):
    """Details of a :func:`~crtstats.glmm` fit.

    Attributes
    ----------
    nagq
        Quadrature points (1 = Laplace).
    cluster_variance, cluster_sd
        Random-intercept variance and SD on the linear-predictor scale (lme4:
        ``VarCorr(fit)``).
    nb_shape
        NB2 shape ``theta`` (glmmTMB: ``sigma(fit)``); None for other families.
    df_between, df_within
        Between-within df for cluster-level and within-cluster terms.
    term_level
        ``"cluster"`` or ``"within"`` per coefficient.
    loglik_saturated
        The log-likelihood constant of the saturated terms that crtstats includes and
        lme4 drops with ``nAGQ > 1``.
    iterations, newton_decrement
        Optimiser iterations and the final Newton decrement.
    response_coding
        How a two-level text response was coded 0/1, where it was; None otherwise.
    """

    nagq: int
    cluster_variance: float
    nb_shape: float | None
    df_between: float
    df_within: float
    term_level: Mapping[str, str]
    loglik_saturated: float
    iterations: int
    newton_decrement: float
    response_coding: str | None = None

    @property
    def cluster_sd(self) -> float:
        """Random-intercept SD on the linear-predictor scale."""
        return float(np.sqrt(self.cluster_variance))

    def legacy_info(self) -> dict[str, Any]:
        return {**super().legacy_info(), "nagq": self.nagq, "sigma": self.cluster_sd,
                "df_between": self.df_between, "df_within": self.df_within,
                "term_level": self.term_level, "loglik_saturated": self.loglik_saturated,
                "iterations": self.iterations, "newton_decrement": self.newton_decrement,
                "response_coding": self.response_coding}


@dataclass(frozen=True, kw_only=True)
class GeeDetails(FitDetails):
    """Details of a :func:`~crtstats.gee` fit.

    Attributes
    ----------
    cov_struct
        The working correlation structure.
    working_correlation
        The exchangeable correlation ``alpha`` (0 under independence).
    dispersion
        The scale parameter ``phi``.
    n_cluster_level
        Coefficients constant within every cluster (intercept included).
    covariances
        Every sandwich computed, by name (``"robust"``, ``"mancl-derouen"``...), each a
        read-only p x p array.
    naive_covariance
        The model-based covariance ``phi (sum_i D_i' V_i^{-1} D_i)^{-1}``.
    moments
        The moment estimators of ``alpha`` and ``phi`` (``"geepack"`` or ``"sas"``).
    iterations
        Fisher-scoring iterations, where recorded.
    response_coding
        How a two-level text response was coded 0/1, where it was; None otherwise.
    """

    cov_struct: str
    working_correlation: float
    dispersion: float
    n_cluster_level: int
    covariances: Mapping[str, np.ndarray]
    naive_covariance: np.ndarray
    moments: str = "geepack"
    iterations: int | None = None
    response_coding: str | None = None

    def legacy_info(self) -> dict[str, Any]:
        out = {**super().legacy_info(), "cov_struct": self.cov_struct,
               "alpha": self.working_correlation, "scale": self.dispersion,
               "n_cluster_level": self.n_cluster_level, "covariances": self.covariances,
               "naive_cov": self.naive_covariance, "moments": self.moments,
               "response_coding": self.response_coding}
        if self.iterations is not None:
            out["iterations"] = self.iterations
        return out


@dataclass(frozen=True, kw_only=True)
class OlsDetails(FitDetails):
    """Details of an :func:`~crtstats.ols` fit.

    Attributes
    ----------
    df_resid
        Residual df ``n - p``.
    residual_sd
        ``sqrt(e'e / (n - p))`` (R: ``sigma(lm_fit)``).
    """

    df_resid: float
    residual_sd: float

    def legacy_info(self) -> dict[str, Any]:
        return {**super().legacy_info(), "df_resid": self.df_resid,
                "sigma": self.residual_sd}


@dataclass(frozen=True, kw_only=True)
class ClusterLevelDetails(FitDetails):
    """Details of a :func:`~crtstats.cluster_level` analysis.

    Attributes
    ----------
    kind
        ``"proportion"``, ``"rate"`` or ``"mean"``.
    adjusted_for
        The covariates of the two-stage adjustment.
    n_cluster_covariates
        Cluster-level covariate columns (they cost between-cluster df).
    clusters
        The cluster summaries (a fresh copy on every access).
    estimand, outcome_type, effect_scale
        What the effect estimates, the declared outcome type and the scale of the
        effect (``"difference"``, ``"ratio"``), where the analysis records them.
    """

    kind: str
    adjusted_for: tuple[str, ...]
    n_cluster_covariates: int
    clusters_frame: pd.DataFrame = field(repr=False)
    estimand: str | None = None
    outcome_type: str | None = None
    effect_scale: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "adjusted_for", tuple(self.adjusted_for))
        object.__setattr__(self, "clusters_frame", self.clusters_frame.copy())

    @property
    def clusters(self) -> pd.DataFrame:
        """Per-cluster summaries: ``observed``, ``size``, ``summary``, residuals..."""
        return self.clusters_frame.copy()

    def legacy_info(self) -> dict[str, Any]:
        out = {**super().legacy_info(), "kind": self.kind,
               "adjusted_for": self.adjusted_for,
               "n_cluster_covariates": self.n_cluster_covariates,
               "clusters": self.clusters}
        for key, value in (("estimand", self.estimand), ("outcome_type", self.outcome_type),
                           ("scale", self.effect_scale)):
            if value is not None:
                out[key] = value
        return out


@dataclass(frozen=True, kw_only=True)
class NegativeBinomialDetails(FitDetails):
    """Details of the team-level negative binomial rate model.

    Attributes
    ----------
    nb_shape
        NB2 shape ``theta``, ``Var(y) = mu + mu^2 / theta`` (MASS: ``fit$theta``).
    n_cluster_level
        Coefficients (all cluster level: one row per cluster).
    """

    nb_shape: float
    n_cluster_level: int

    def legacy_info(self) -> dict[str, Any]:
        return {**super().legacy_info(), "theta": self.nb_shape,
                "n_cluster_level": self.n_cluster_level}


@dataclass(frozen=True, kw_only=True)
class PanelDetails(FitDetails):
    """Details of the team fixed-effects difference-in-differences (linearmodels
    ``PanelOLS`` with entity and time effects).

    Attributes
    ----------
    n_reviews
        Time points (reviews) in the panel.
    df_model, df_resid
        Model and residual df as linearmodels counts them (effects included).
    """

    n_reviews: int
    df_model: int
    df_resid: int

    def legacy_info(self) -> dict[str, Any]:
        return {**super().legacy_info(), "n_reviews": self.n_reviews,
                "df_model": self.df_model, "df_resid": self.df_resid}


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """How a model was specified: enough to state it, or to fit it again.

    Attributes
    ----------
    fitter
        The fitter's name (``"lmm"``, ``"glmm"``...).
    formula
        The model formula as given (cluster-level analyses: ``outcome ~ arm + ...``).
    cluster
        The cluster column, or None.
    family, link
        Error distribution and link.
    offset, exposure, trials
        The columns given for these options, or None.
    options
        Every other option the fit used, by name (read-only).
    """

    fitter: str
    formula: str
    cluster: str | None
    family: str = "gaussian"
    link: str = "identity"
    offset: str | None = None
    exposure: str | None = None
    trials: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", freeze(dict(self.options)))
