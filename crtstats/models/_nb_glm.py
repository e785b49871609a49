"""Negative binomial (NB2) regression of one count per cluster: :func:`negative_binomial_rate`.

The one NB2 GLM of the package (the team-level primary analysis of counts uses it);
the NB2 GLMM is :func:`crtstats.glmm` with ``family="negative_binomial"``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import optimize

from crtstats.exceptions import (
    BoundaryFitWarning,
    ConvergenceWarning,
    ModelSpecificationError,
)
from crtstats.models._checks import check_fit_arguments, check_rank
from crtstats.models._design import build_design, warn_design
from crtstats.models._details import ModelSpec, NegativeBinomialDetails
from crtstats.models._predict import predictor_from_design
from crtstats.models._result import CRTResult
from crtstats.models._warn import WarningLog

__all__ = ["negative_binomial_rate"]

_LOG_ALPHA_BOUNDS = (float(np.log(1e-8)), float(np.log(1e3)))


def negative_binomial_rate(
    formula: str,
    data: pd.DataFrame,
    *,
    cluster: str,
    exposure: str | None = None,
    offset: str | None = None,
) -> CRTResult:
    """Negative binomial (NB2) regression of one count per cluster, with exposure.

    Parameters
    ----------
    formula
        E.g. ``"admissions ~ arm + stratum + log_pre_admissions_rate"``; every term is
        cluster level (one row per cluster).
    data
        One row per cluster.
    cluster
        Column identifying the clusters (checked to be unique per row).
    exposure
        Column of a raw exposure (e.g. ``n_users``), positive and finite;
        ``log(exposure)`` is the offset.
    offset
        Column already on the log scale, added to the linear predictor (with
        ``exposure``, the two add). A column of whole numbers above 1 is warned about.

    Returns
    -------
    CRTResult
        ``model="negative_binomial"``, log link; ``details`` is a
        :class:`~crtstats.models.NegativeBinomialDetails` whose ``nb_shape`` is the NB2
        ``theta``.

    Raises
    ------
    InvalidParameterError
        If ``formula``, ``data`` or a column option is not of its type.
    MissingColumnError
        If a column is not in ``data``.
    ModelSpecificationError
        If a cluster has several rows, the counts are not non-negative whole numbers,
        the design is rank deficient or no residual df remain.

    Warns
    -----
    ExcludedRowsWarning
        Rows with a missing value were left out.
    ExposureWarning
        ``offset`` holds only whole numbers above 1 (a raw exposure?).
    BoundaryFitWarning
        When ``1 / theta`` is at its lower bound: no overdispersion, the Poisson limit.
    ConvergenceWarning
        When the fit did not converge cleanly.

    Notes
    -----
    ``y_i ~ NB2(mu_i, theta)``, ``log mu_i = log(exposure_i) + offset_i + x_i' beta``,
    ``Var(y_i) = mu_i + mu_i^2 / theta``, fitted by maximum likelihood (IRLS for
    ``beta`` within a bounded maximisation of the profile likelihood of
    ``log(1 / theta)`` over ``[log 1e-8, log 1e3]``). The covariance is the inverse
    expected information of ``beta``, ``(X' W X)^-1`` with
    ``W = diag(mu_i / (1 + mu_i / theta))``, as ``MASS::glm.nb``; tests are t with
    ``G - p`` df (all terms are cluster level).

    References
    ----------
    Venables WN, Ripley BD (2002). Modern Applied Statistics with S, 4th ed. Springer.

    Examples
    --------
    >>> import numpy as np, crtstats
    >>> from crtstats.models import negative_binomial_rate
    >>> su = crtstats.datasets.load_example().service_use
    >>> fu = su[su["period"] == "follow_up"].astype({"admissions": float})
    >>> res = negative_binomial_rate("admissions ~ 1", fu, exposure="n_users",
    ...                              cluster="team_id")
    >>> res.df_method, int(res.df.iloc[0])
    ('residual', 24)

    R: ``MASS::glm.nb(admissions ~ 1 + offset(log(n_users)), data = fu)``.
    """
    check_fit_arguments("negative_binomial_rate", formula, data,
                        {"cluster": cluster, "exposure": exposure, "offset": offset},
                        optional=("exposure", "offset"))
    log = WarningLog()
    design = build_design(formula, data, cluster=cluster, offset=offset, exposure=exposure)
    warn_design(design, log, offset=offset)
    if np.any(design.cluster_sizes > 1):
        raise ModelSpecificationError(
            f"negative_binomial_rate needs one row per {cluster}; some repeat "
            f"({int(np.sum(design.cluster_sizes > 1))} of {design.n_clusters}). Sum the "
            "counts and exposures per cluster first, or use glmm(family="
            "'negative_binomial')."
        )
    y = design.y
    if not np.all(np.isfinite(y) & (y >= 0) & (y == np.round(y))):
        raise ModelSpecificationError(
            f"the counts of {formula!r} must be non-negative whole numbers; got "
            f"{y[~(np.isfinite(y) & (y >= 0) & (y == np.round(y)))][0]!r}."
        )
    n, p = design.X.shape
    if n - p < 1:
        raise ModelSpecificationError(
            f"{n} clusters leave no df for {p} coefficients; use fewer terms."
        )
    check_rank(design.X, design.names, formula=formula)
    # with an intercept, fit with the offset centred and move its mean into the
    # intercept (the same model): a large offset then loses no digits
    ones = np.flatnonzero(np.all(design.X == 1.0, axis=0))
    shift = float(np.mean(design.offset)) if ones.size else 0.0
    beta, theta, converged = _fit_nb2(y, design.X, design.offset - shift, log, formula)
    if ones.size:
        beta[ones[0]] -= shift
    mu = np.exp(design.X @ beta + design.offset)
    weights = mu / (1.0 + mu / theta)
    cov = np.linalg.inv(design.X.T @ (weights[:, None] * design.X))
    return CRTResult(
        model="negative_binomial", formula=formula, param_names=design.names,
        param_values=beta, cov_values=cov, df_values=np.full(p, float(n - p)),
        df_method="residual", cov_type="model", nobs=n, n_clusters=n, converged=converged,
        family="negative_binomial", link="log", warnings=log.records,
        # one row per team: every column is constant within its cluster
        details=NegativeBinomialDetails(
            n_excluded=design.n_excluded, nb_shape=theta, n_cluster_level=p
        ),
        spec=ModelSpec(fitter="negative_binomial", formula=formula, cluster=cluster,
                       family="negative_binomial", link="log", offset=offset,
                       exposure=exposure),
        predictor=predictor_from_design(design, data, beta, link="log", offset=offset,
                                        exposure=exposure),
    )


def _fit_nb2(y: np.ndarray, X: np.ndarray, offset: np.ndarray, log: WarningLog,
             formula: str) -> tuple[np.ndarray, float, bool]:
    """ML estimates of NB2 ``beta`` and ``theta``: profile likelihood over ``log theta``.

    For each ``theta`` the ``beta`` maximising the likelihood is an IRLS fit; the
    profile is maximised over ``log(1 / theta)``. Below ``1 / theta = 1e-6`` there is no
    detectable overdispersion (the Poisson limit), which is warned about.
    """

    def fit(log_alpha: float) -> Any:
        family = sm.families.NegativeBinomial(alpha=float(np.exp(log_alpha)))
        return sm.GLM(y, X, family=family, offset=offset).fit(tol=1e-12, maxiter=200)

    bounds = _LOG_ALPHA_BOUNDS
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            opt = optimize.minimize_scalar(lambda la: -float(fit(la).llf), bounds=bounds,
                                           method="bounded", options={"xatol": 1e-10})
            final = fit(float(opt.x))
        except (ValueError, np.linalg.LinAlgError) as err:
            raise ModelSpecificationError(
                f"the negative binomial fit of {formula!r} failed numerically ({err}); the "
                "means overflow. Check the offset (a raw exposure must be passed as "
                "exposure=, not offset=) and the scale of the covariates."
            ) from None
    converged = bool(opt.success) and not caught
    if not converged:
        log.warn(
            f"{formula!r}: the negative binomial fit did not converge cleanly: "
            f"{'; '.join(str(w.message) for w in caught) or opt.message}.",
            ConvergenceWarning,
        )
    if opt.x < bounds[0] + np.log(100.0):
        log.warn(
            f"{formula!r}: the negative binomial dispersion 1/theta = {np.exp(opt.x):.2g} "
            "is at its lower bound (no overdispersion): the fit is the Poisson limit; "
            "report it as such.",
            BoundaryFitWarning,
        )
    return np.asarray(final.params, dtype=float), float(np.exp(-opt.x)), converged
