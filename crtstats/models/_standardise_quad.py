"""Per-row means of a random-intercept model and their derivatives, for standardisation.

For a row with linear predictor ``eta`` (offset included for the logit; without the
offset for the log link, whose exposure is a weight) the three kinds of mean are

* conditional, at ``b = 0``: ``h(eta)``;
* cluster-specific, at the cluster's predicted effect ``u_i``: ``h(eta + u_i)``;
* marginal, over ``u ~ N(0, sigma^2)``: ``H(eta, sigma) = int h(eta + sigma z) phi(z) dz``.

With the log link ``H = exp(eta + sigma^2 / 2)`` exactly. With the logit link ``H`` has
no closed form and is computed by adaptive Gauss-Hermite quadrature, per distinct
``eta``: the rule is centred at the mode ``z*`` of ``log expit(eta + sigma z) - z^2 / 2``
and scaled by ``s = (1 + sigma^2 p*(1 - p*))^(-1/2)``, and the number of nodes is
raised (8, 12, 16, 24, ... 256) until two successive rules agree to ``1e-12``
relative to ``H`` on the values and both derivatives (on up to 4,096 of the distinct
``eta``, extremes included), so the integral is exact to well below ``1e-10``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.polynomial import hermite_e
from scipy import special

__all__ = ["RowMeans", "inverse_link_terms", "marginal_logit", "marginal_means"]

_NODES = (8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
_AGREE = 1e-12
_CHECK_POINTS = 4096
_CHUNK = 1 << 15


@dataclass(frozen=True)
class RowMeans:
    """Per-row mean ``H`` and its derivatives in ``eta`` and ``sigma``; ``nodes`` is the
    quadrature rule's size (0: closed form), ``exact`` whether the rule settled."""

    value: np.ndarray
    d_eta: np.ndarray
    d_sigma: np.ndarray
    nodes: int = 0
    exact: bool = True


def inverse_link_terms(link: str, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``h(eta)`` and ``h'(eta)`` for the logit, log and identity links."""
    if link == "logit":
        p = special.expit(eta)
        return p, p * (1.0 - p)
    if link == "log":
        mu = np.exp(eta)
        return mu, mu
    return np.asarray(eta, dtype=float), np.ones_like(eta)


def _rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = hermite_e.hermegauss(n)
    return x, w / np.sqrt(2.0 * np.pi)


def _logit_rule(eta: np.ndarray, sigma: float, n: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Adaptive n-point values of ``H``, ``dH/deta`` and ``dH/dsigma`` at ``eta``."""
    z = np.zeros_like(eta)
    for _ in range(50):  # Newton on sigma (1 - p(z)) - z = 0; concave, from z = 0
        p = special.expit(eta + sigma * z)
        step = (sigma * (1.0 - p) - z) / (1.0 + sigma**2 * p * (1.0 - p))
        z = z + step
        if np.max(np.abs(step), initial=0.0) < 1e-14:
            break
    p = special.expit(eta + sigma * z)
    s = 1.0 / np.sqrt(1.0 + sigma**2 * p * (1.0 - p))
    x, w = _rule(n)
    zk = z[:, None] + s[:, None] * x[None, :]
    # int f(z) phi(z) dz = s sum_k w_k f(z_k) phi(z_k) / phi(x_k), z_k = z* + s x_k
    weight = s[:, None] * w[None, :] * np.exp(0.5 * x[None, :] ** 2 - 0.5 * zk**2)
    pk = special.expit(eta[:, None] + sigma * zk)
    vk = pk * (1.0 - pk)
    return (np.sum(weight * pk, axis=1), np.sum(weight * vk, axis=1),
            np.sum(weight * vk * zk, axis=1))


def _agree(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> bool:
    """Whether two rules agree to ``_AGREE`` relative to the mean ``H`` (risks and
    their derivatives are at most a few times ``H``, so this is also absolute)."""
    scale = np.abs(b[0])
    return all(bool(np.all(np.abs(u - v) <= _AGREE * scale)) for u, v in zip(a, b, strict=True))


def _choose_nodes(eta: np.ndarray, sigma: float) -> tuple[int, bool]:
    """The smallest rule of ``_NODES`` that agrees with the next one on a check set."""
    uniq = np.unique(eta)
    if uniq.size > _CHECK_POINTS:  # the spread of eta, extremes included
        uniq = uniq[np.unique(np.linspace(0, uniq.size - 1, _CHECK_POINTS).astype(int))]
    previous = _logit_rule(uniq, sigma, _NODES[0])
    for n_small, n_big in zip(_NODES, _NODES[1:], strict=False):
        current = _logit_rule(uniq, sigma, n_big)
        if _agree(previous, current):
            return n_small, True
        previous = current
    return _NODES[-1], False


def marginal_logit(eta: np.ndarray, sigma: float) -> RowMeans:
    """``int expit(eta + sigma z) phi(z) dz`` and its derivatives, per row of ``eta``.

    Computed once per distinct ``eta`` (a covariate pattern), in chunks so that memory
    stays bounded whatever the number of rows.
    """
    if sigma == 0.0:
        p, dp = inverse_link_terms("logit", eta)
        return RowMeans(p, dp, np.zeros_like(eta))
    uniq, inverse = np.unique(eta, return_inverse=True)
    n, exact = _choose_nodes(uniq, sigma)
    out = [np.empty(uniq.size) for _ in range(3)]
    for start in range(0, uniq.size, _CHUNK):
        block = slice(start, start + _CHUNK)
        for arr, values in zip(out, _logit_rule(uniq[block], sigma, n), strict=True):
            arr[block] = values
    return RowMeans(out[0][inverse], out[1][inverse], out[2][inverse], nodes=n, exact=exact)


def marginal_means(link: str, eta: np.ndarray, sigma: float) -> RowMeans:
    """Marginal means over ``N(0, sigma^2)`` for the logit, log or identity link."""
    if link == "logit":
        return marginal_logit(eta, sigma)
    if link == "log":
        mu = np.exp(eta + 0.5 * sigma**2)
        return RowMeans(mu, mu, sigma * mu)
    return RowMeans(np.asarray(eta, dtype=float), np.ones_like(eta), np.zeros_like(eta))
