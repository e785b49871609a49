"""Conditional log-likelihoods of the GLMM families and their derivatives.

Each family gives, for a response ``y`` (with ``m`` binomial trials) and a linear
predictor ``eta``, the log-density ``l(eta)`` without its ``eta``-free constant and the
first three derivatives in ``eta``. The negative binomial (NB2) also gives the
derivatives in ``alpha = log(theta)``. Every function is vectorised: ``eta`` may be an
``(n,)`` array or an ``(n, K)`` array of quadrature nodes, and ``y``, ``m`` broadcast
against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special

__all__ = [
    "FamilyName",
    "ModeTerms",
    "family_terms",
    "log_density",
    "mode_terms",
    "newton_terms",
    "row_constant",
    "saturated_loglik",
]

FamilyName = Literal["binomial", "poisson", "negative_binomial"]


@dataclass(frozen=True)
class ModeTerms:
    """Derivatives in ``eta`` at the conditional mode (per row).

    ``l1a`` and ``l2a`` are the derivatives of ``l1`` and ``l2`` in ``alpha = log
    theta`` (zeros for families without a dispersion parameter).
    """

    l1: np.ndarray
    l2: np.ndarray
    l3: np.ndarray
    l1a: np.ndarray
    l2a: np.ndarray


def family_terms(
    family: FamilyName, eta: np.ndarray, y: np.ndarray, m: np.ndarray, theta: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Log-density without constants, its first ``eta``-derivative and ``d l / d alpha``.

    ``d l / d alpha`` is ``None`` for the families without a dispersion parameter.

    Notes
    -----
    binomial (logit): ``l = y eta - m log(1 + e^eta)``, ``l' = y - m p``.
    Poisson (log): ``l = y eta - e^eta``, ``l' = y - mu``.
    NB2 (log, ``Var = mu + mu^2 / theta``): ``l = y eta - (y + theta) log(theta + mu)``
    plus the ``eta``-free part in :func:`row_constant`; ``l' = theta (y - mu) /
    (theta + mu)``.
    """
    if family == "binomial":
        # one exp and one log1p: log(1 + e^eta) = max(eta, 0) + log1p(e^-|eta|)
        e = np.exp(-np.abs(eta))
        l0 = y * eta - m * (np.maximum(eta, 0.0) + np.log1p(e))
        l1 = y - m * np.where(eta >= 0.0, 1.0, e) / (1.0 + e)
        return l0, l1, None
    if family == "poisson":
        mu = np.exp(eta)
        return y * eta - mu, y - mu, None
    log_theta = np.log(theta)
    log_tm = np.logaddexp(log_theta, eta)  # log(theta + mu)
    q = special.expit(eta - log_theta)  # mu / (theta + mu)
    l0 = y * eta - (y + theta) * log_tm
    l1 = y - (y + theta) * q
    # d l0 / d alpha (eta-dependent part): theta * (-log(theta + mu) - (y + theta) / (theta + mu))
    la = theta * (-log_tm - (y + theta) * np.exp(-log_tm))
    return l0, l1, la


def log_density(
    family: FamilyName, eta: np.ndarray, y: np.ndarray, m: np.ndarray, theta: float
) -> np.ndarray:
    """The log-density of :func:`family_terms` alone (no derivatives), for line searches.

    binomial: ``y eta - m log(1 + e^eta)`` with ``log(1 + e^eta)`` as ``logaddexp(0,
    eta)``; the other families as in :func:`family_terms`.
    """
    if family == "binomial":
        out: np.ndarray = y * eta - m * np.logaddexp(0.0, eta)
        return out
    return family_terms(family, eta, y, m, theta)[0]


def newton_terms(
    family: FamilyName, eta: np.ndarray, y: np.ndarray, m: np.ndarray, theta: float
) -> tuple[np.ndarray, np.ndarray]:
    """``l'`` and ``l''`` alone (as in :func:`mode_terms`), for the inner Newton steps."""
    if family == "binomial":
        p = special.expit(eta)
        mp = m * p
        return y - mp, mp * (p - 1.0)
    if family == "poisson":
        mu = np.exp(eta)
        return y - mu, -mu
    terms = mode_terms(family, eta, y, m, theta)
    return terms.l1, terms.l2


def mode_terms(
    family: FamilyName, eta: np.ndarray, y: np.ndarray, m: np.ndarray, theta: float
) -> ModeTerms:
    """Second and third ``eta``-derivatives and the ``alpha``-derivatives at the mode.

    Notes
    -----
    binomial: ``l'' = -m p (1 - p)``, ``l''' = -m p (1 - p)(1 - 2p)``.
    Poisson: ``l'' = l''' = -mu``.
    NB2: ``l'' = -(y + theta) theta mu / (theta + mu)^2``,
    ``l''' = -(y + theta) theta mu (theta - mu) / (theta + mu)^3``; with
    ``alpha = log theta``, ``d l' / d alpha = theta mu (y - mu) / (theta + mu)^2`` and
    ``d l'' / d alpha = -theta mu (2 theta mu + y mu - theta y) / (theta + mu)^3``.
    """
    zeros = np.zeros_like(eta)
    if family == "binomial":
        p = special.expit(eta)
        v = p * (1.0 - p)
        l1 = y - m * p
        return ModeTerms(l1, -m * v, -m * v * (1.0 - 2.0 * p), zeros, zeros)
    if family == "poisson":
        mu = np.exp(eta)
        return ModeTerms(y - mu, -mu, -mu, zeros, zeros)
    mu = np.exp(eta)
    tm = theta + mu
    l1 = theta * (y - mu) / tm
    l2 = -(y + theta) * theta * mu / tm**2
    l3 = -(y + theta) * theta * mu * (theta - mu) / tm**3
    l1a = theta * mu * (y - mu) / tm**2
    l2a = -theta * mu * (2.0 * theta * mu + y * mu - theta * y) / tm**3
    return ModeTerms(l1, l2, l3, l1a, l2a)


def row_constant(
    family: FamilyName, y: np.ndarray, m: np.ndarray, theta: float
) -> tuple[np.ndarray, np.ndarray]:
    """The ``eta``-free part of each row's log-density and its ``alpha``-derivative.

    Notes
    -----
    binomial: ``log C(m, y)``; Poisson: ``-log y!``; NB2: ``log Gamma(y + theta) -
    log Gamma(theta) - log y! + theta log theta``, whose ``alpha``-derivative is
    ``theta (psi(y + theta) - psi(theta) + log theta + 1)``. These make the
    log-likelihood equal to R's ``logLik`` for ``glmer`` (Laplace) and ``glmmTMB``.
    """
    if family == "binomial":
        c = special.gammaln(m + 1.0) - special.gammaln(y + 1.0) - special.gammaln(m - y + 1.0)
        return c, np.zeros_like(c)
    if family == "poisson":
        c = -special.gammaln(y + 1.0)
        return c, np.zeros_like(c)
    c = (
        special.gammaln(y + theta)
        - special.gammaln(theta)
        - special.gammaln(y + 1.0)
        + theta * np.log(theta)
    )
    ca = theta * (special.digamma(y + theta) - special.digamma(theta) + np.log(theta) + 1.0)
    return c, ca


def saturated_loglik(family: FamilyName, y: np.ndarray, m: np.ndarray, theta: float) -> float:
    """Log-likelihood of the saturated model (``mu = y``), constants included.

    lme4 reports ``logLik`` for ``nAGQ > 1`` from deviance residuals, that is the
    log-likelihood minus this value; it is zero for 0/1 binomial data.
    """
    if family == "binomial":
        p = np.divide(y, m, out=np.zeros_like(y), where=m > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ll = special.xlogy(y, p) + special.xlogy(m - y, 1.0 - p)
    elif family == "poisson":
        ll = special.xlogy(y, y) - y
    else:
        ll = special.xlogy(y, y) - (y + theta) * np.log(y + theta)
    const, _ = row_constant(family, y, m, theta)
    return float(np.sum(ll + const))
