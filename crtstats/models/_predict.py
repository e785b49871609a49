"""Fitted values, residuals and predictions for new data, coded as the fit was.

A fitter gives its result a :class:`Predictor`: the formulaic model specification of
the right-hand side (so new data get the same factor levels and contrasts), the
coefficients, the offset and exposure columns, the link, the predicted cluster effects
of a mixed model, and the response and linear predictor of the rows used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Literal, get_args

import numpy as np
import pandas as pd

from crtstats._options import check_option, require_columns
from crtstats.exceptions import InvalidParameterError, ModelSpecificationError
from crtstats.models._design import Design, new_model_matrix
from crtstats.models._details import freeze, readonly_array

__all__ = ["PredictScale", "Predictor", "inverse_link", "predictor_from_design"]

PredictScale = Literal["response", "link"]
"""Scale of :meth:`CRTResult.predict`: the mean (``"response"``) or the linear
predictor (``"link"``)."""


def inverse_link(link: str, eta: np.ndarray) -> np.ndarray:
    """The mean from the linear predictor for the identity, log and logit links."""
    if link == "identity":
        return eta
    if link == "log":
        return np.asarray(np.exp(eta))
    if link == "logit":
        return np.asarray(1.0 / (1.0 + np.exp(-eta)))
    raise InvalidParameterError(f"no inverse for the link {link!r}.")


@dataclass(frozen=True, kw_only=True)
class Predictor:
    """Everything a result needs to give fitted values and to predict.

    Attributes
    ----------
    model_matrix
        Builds the right-hand side's columns on new data exactly as on the fitted data
        (the same factor levels, contrasts and transform state).
    columns
        The data columns the right-hand side uses.
    beta
        The coefficients (read-only).
    link
        ``"identity"``, ``"log"`` or ``"logit"``.
    offset, exposure
        The columns of the fit's offset (added) and exposure (logged, added).
    cluster
        The cluster column.
    cluster_effects
        Predicted cluster effects on the linear-predictor scale by cluster label
        (mixed models); None otherwise.
    index
        Index labels of the input rows used in the fit.
    response
        The response of those rows (read-only).
    linear_predictor
        Their fitted linear predictor, cluster effects included (read-only).
    """

    model_matrix: Callable[[pd.DataFrame], np.ndarray] = field(repr=False)
    columns: tuple[str, ...]
    beta: np.ndarray = field(repr=False)
    link: str
    offset: str | None = None
    exposure: str | None = None
    cluster: str | None = None
    cluster_effects: Mapping[str, float] | None = field(default=None, repr=False)
    index: pd.Index = field(repr=False)
    response: np.ndarray = field(repr=False)
    linear_predictor: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        for name in ("beta", "response", "linear_predictor"):
            object.__setattr__(self, name, readonly_array(getattr(self, name)))
        if self.cluster_effects is not None:
            object.__setattr__(self, "cluster_effects", freeze(dict(self.cluster_effects)))

    # -- the rows of the fit ---------------------------------------------------------
    def fitted_values(self) -> pd.Series:
        """Fitted means of the rows used (cluster effects included)."""
        mean = inverse_link(self.link, np.array(self.linear_predictor))
        return pd.Series(mean, index=self.index.copy(), name="fitted")

    def resid(self) -> pd.Series:
        """Response residuals ``y - fitted`` of the rows used."""
        mean = inverse_link(self.link, np.array(self.linear_predictor))
        return pd.Series(self.response - mean, index=self.index.copy(), name="resid")

    # -- new data --------------------------------------------------------------------
    def _coded(self, newdata: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """New data coded as the fit was: the model matrix of the complete rows and
        the mask of complete rows."""
        require_columns(newdata, list(self.columns), used_by="predict")
        frame = newdata[list(self.columns)]
        complete = ~frame.isna().any(axis=1).to_numpy()
        if not complete.any():
            return np.empty((0, self.beta.shape[0])), complete
        rows = frame.loc[complete]
        text = [c for c in rows.columns if pd.api.types.is_string_dtype(rows[c])
                and not isinstance(rows[c].dtype, pd.CategoricalDtype)]
        # text as plain objects, as build_design reads it (pandas' string dtype would
        # otherwise not be taken for a factor)
        return self.model_matrix(rows.astype({c: object for c in text})), complete

    def _offset(self, newdata: pd.DataFrame) -> np.ndarray:
        out = np.zeros(len(newdata))
        if self.exposure is not None:
            require_columns(newdata, [self.exposure], used_by="predict (exposure)")
            raw = newdata[self.exposure].to_numpy(dtype=float)
            with np.errstate(divide="ignore", invalid="ignore"):
                out += np.where(raw > 0, np.log(np.where(raw > 0, raw, 1.0)), np.nan)
        if self.offset is not None:
            require_columns(newdata, [self.offset], used_by="predict (offset)")
            out += newdata[self.offset].to_numpy(dtype=float)
        return out

    def predict(
        self,
        newdata: pd.DataFrame,
        *,
        include_cluster_effects: bool = False,
        scale: PredictScale = "response",
    ) -> pd.Series:
        """Predictions for ``newdata`` (see :meth:`CRTResult.predict`)."""
        check_option("scale", scale, get_args(PredictScale))
        if not isinstance(include_cluster_effects, bool):
            raise InvalidParameterError(
                f"include_cluster_effects must be True or False; got "
                f"{include_cluster_effects!r}."
            )
        if not isinstance(newdata, pd.DataFrame):
            raise ModelSpecificationError(
                f"newdata must be a pandas DataFrame; got {type(newdata)}."
            )
        X, complete = self._coded(newdata)
        eta = np.full(len(newdata), np.nan)
        eta[complete] = X @ self.beta
        eta += self._offset(newdata)
        if include_cluster_effects:
            if self.cluster_effects is None or self.cluster is None:
                raise InvalidParameterError(
                    "include_cluster_effects=True needs a mixed model (lmm or glmm); this "
                    "fit has no predicted cluster effects."
                )
            require_columns(newdata, [self.cluster], used_by="predict (cluster)")
            effects = self.cluster_effects
            eta += np.array(
                [effects.get(str(v), 0.0) for v in newdata[self.cluster]], dtype=float
            )
        values = eta if scale == "link" else inverse_link(self.link, eta)
        return pd.Series(values, index=newdata.index.copy(), name="predicted")


def predictor_from_design(
    design: Design,
    data: pd.DataFrame,
    beta: np.ndarray,
    *,
    link: str,
    offset: str | None = None,
    exposure: str | None = None,
    cluster: str | None = None,
    cluster_effects: np.ndarray | None = None,
    response: np.ndarray | None = None,
) -> Predictor:
    """The :class:`Predictor` of a fit on ``design`` (a ``Design`` of ``data``).

    ``cluster_effects`` (one per cluster code, linear-predictor scale) enter the fitted
    linear predictor and the conditional predictions of mixed models; ``response``
    replaces ``design.y`` (e.g. proportions for binomial data with trials).
    """
    eta = design.X @ np.asarray(beta, dtype=float) + design.offset
    effects = None
    if cluster_effects is not None:
        u = np.asarray(cluster_effects, dtype=float)
        eta = eta + u[design.groups]
        effects = dict(zip(design.cluster_labels, (float(v) for v in u), strict=True))
    return Predictor(
        model_matrix=partial(new_model_matrix, design),
        columns=tuple(design.columns),
        beta=beta,
        link=link,
        offset=offset,
        exposure=exposure,
        cluster=cluster,
        cluster_effects=effects,
        index=data.index[design.used],
        response=design.y if response is None else response,
        linear_predictor=eta,
    )
