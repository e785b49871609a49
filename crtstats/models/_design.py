"""From a formula, a DataFrame and a cluster column to the arrays a fitter needs.

Every fitter builds its design here so that formula handling, factor coding and the
accounting of excluded rows are the same everywhere. Factor levels follow pandas
``Categorical`` order when the column is categorical, otherwise sorted order (as R
does for character columns); the first level is the reference.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from formulaic import Formula, ModelSpec
from formulaic.errors import DataMismatchWarning
from formulaic.transforms import TRANSFORMS

from crtstats.exceptions import ExcludedRowsWarning, ExposureWarning, ModelSpecificationError
from crtstats.models._checks import require_columns
from crtstats.models._fast_design import cache_key, lookup, make_plan, remember
from crtstats.models._formula_text import FormulaText, clean_message, scan_formula
from crtstats.models._warn import WarningLog

__all__ = ["Design", "build_design", "exposure_message", "warn_design", "new_model_matrix"]


@dataclass(frozen=True)
class Design:
    """Response, model matrix and cluster codes for the rows used in a fit.

    Attributes
    ----------
    y
        Response, float, length n.
    X
        Fixed-effects model matrix, n x p.
    names
        Column names of ``X`` (formulaic/R style, e.g. ``arm[T.intervention]``).
    groups
        Integer cluster code per row, 0..G-1, in order of first appearance.
    cluster_labels
        The cluster labels, indexed by code.
    offset
        Offset per row on the linear-predictor scale (zeros when none was given):
        ``log(exposure) + offset`` when both are given.
    used
        Boolean mask over the rows of the input frame: True for rows in the fit.
    n_excluded
        Rows left out because a variable the model uses (or the cluster) is missing.
    offset_looks_raw
        True when the offset holds only whole numbers above 1 (a raw exposure?).
    response
        The response column's name when the left of ``~`` is a bare column, else None.
    response_levels
        For a two-level text or categorical response coded 0/1 (``binary_response``):
        the level coded 0 and the level coded 1; None otherwise.
    model_spec
        formulaic's ``ModelSpec`` of the right-hand side (levels, contrasts and
        transform state), to build the same columns on new data; None when absent.
    columns
        The data columns the right-hand side uses (what new data must hold).
    """

    y: np.ndarray
    X: np.ndarray
    names: tuple[str, ...]
    groups: np.ndarray
    cluster_labels: tuple[str, ...]
    offset: np.ndarray
    used: np.ndarray
    n_excluded: int
    offset_looks_raw: bool = False
    response: str | None = None
    response_levels: tuple[str, str] | None = None
    model_spec: ModelSpec | None = None
    columns: tuple[str, ...] = ()

    @property
    def nobs(self) -> int:
        """Rows in the fit."""
        return int(self.y.shape[0])

    @property
    def n_clusters(self) -> int:
        """Clusters in the fit."""
        return len(self.cluster_labels)

    @property
    def cluster_sizes(self) -> np.ndarray:
        """Rows per cluster, indexed by code."""
        return np.bincount(self.groups, minlength=self.n_clusters)

    @property
    def exclusion_message(self) -> str | None:
        """What was left out and why, for an :class:`~crtstats.ExcludedRowsWarning`;
        None when every row was used."""
        if not self.n_excluded:
            return None
        return (
            f"{self.n_excluded} of {self.n_excluded + self.nobs} row(s) excluded because "
            "the response, a covariate, the cluster, the offset or the exposure was "
            "missing; the fit uses the remaining rows (an available-case analysis)."
        )


    @property
    def response_note(self) -> str | None:
        """How a text or categorical response was coded 0/1; None when it was not."""
        if self.response_levels is None:
            return None
        low, high = self.response_levels
        return (
            f"the response {self.response!r} has the levels {low!r} and {high!r}; {high!r} "
            f"is coded 1 and {low!r} 0 (as glmer codes a two-level factor)."
        )


def warn_design(design: Design, log: WarningLog, *, offset: str | None = None) -> None:
    """Issue (through ``log``) the warnings every fitter owes its design: rows excluded
    for missing values, and an ``offset=`` column that looks like a raw exposure."""
    if design.exclusion_message is not None:
        log.warn(design.exclusion_message, ExcludedRowsWarning)
    if offset is not None and design.offset_looks_raw:
        log.warn(exposure_message(offset), ExposureWarning)


def exposure_message(offset: str) -> str:
    """The :class:`~crtstats.ExposureWarning` text for an offset that looks raw."""
    return (
        f"the offset column {offset!r} holds only whole numbers above 1, which looks like a "
        "raw exposure (service users, person-time) rather than its logarithm; offset= is "
        f"added to the linear predictor as it is. Pass exposure={offset!r} to have it "
        "logged, or offset=<a column of log values>."
    )


def _plain_dtypes(frame: pd.DataFrame, variables: Sequence[str]) -> pd.DataFrame:
    """Text columns become sorted categoricals, nullable numbers become float64.

    ``frame`` holds only the columns the model uses; the result is a new frame.
    """
    columns: dict[str, object] = {}
    for name in frame.columns:
        col = frame[name]
        if name not in variables or isinstance(col.dtype, pd.CategoricalDtype) or (
            pd.api.types.is_bool_dtype(col)
        ):
            columns[name] = col.array
        elif pd.api.types.is_numeric_dtype(col):
            columns[name] = col.to_numpy(dtype="float64")
        else:
            if col.dtype == object:  # mixed Python objects are compared as their text
                col = col.astype(str)
            codes, levels = pd.factorize(col, sort=True)  # hash-based: fast on 1e5+ rows
            categories = pd.Index(levels.astype(str))
            columns[name] = pd.Categorical.from_codes(codes, categories=categories)
    return pd.DataFrame(columns, index=frame.index)


def build_design(
    formula: str,
    data: pd.DataFrame,
    *,
    cluster: str | None,
    offset: str | None = None,
    exposure: str | None = None,
    binary_response: bool = False,
) -> Design:
    """Build the design of ``formula`` on ``data`` with clusters from ``cluster``.

    Rows with a missing value in any variable the formula uses, in the cluster column
    or in the offset or exposure column are excluded and counted in ``n_excluded``;
    nothing else is dropped, and row order is kept. ``exposure`` (raw, e.g. service
    users) enters the linear predictor as ``log(exposure)``, ``offset`` as it is.

    A name written bare (``y ~ center + arm``) is the column of that name, whatever
    the name; a name called (``log(x)``, ``center(x)``, ``C(x)``) is formulaic's
    transform. ``^`` inside a call is R's power (``I(age^2)`` is ``I(age**2)``); at the
    top level it is R's crossing operator (``(a + b)^2``). With ``binary_response``
    (binomial fitters), a two-level text or categorical response is coded 0/1 as
    glmer codes a factor: the second level (a ``Categorical``'s second category, or
    the second of the sorted values of text) is 1.

    Raises
    ------
    ModelSpecificationError
        If the formula has no response, names unknown columns, holds an lme4
        random-effect term such as ``(1 | team)``, calls a transform whose name is also
        a column it uses, leaves no rows, has a binary response with other than two
        levels, or an exposure is not positive and finite or an offset not finite.

    Examples
    --------
    A column named like a transform, and R's power inside ``I()`` (R:
    ``model.matrix(y ~ center + I(age^2), d)``):

    >>> import pandas as pd
    >>> d = pd.DataFrame({"y": [1.0, 2.0, 4.0, 3.0], "center": ["a", "b", "a", "b"],
    ...                   "age": [20.0, 30.0, 40.0, 50.0], "team": [1, 1, 2, 2]})
    >>> build_design("y ~ center + I(age^2)", d, cluster="team").names
    ('Intercept', 'center[T.b]', 'I(age ** 2)')
    """
    if not isinstance(data, pd.DataFrame):
        raise ModelSpecificationError(f"data must be a pandas DataFrame; got {type(data)}.")
    if not isinstance(formula, str):
        raise ModelSpecificationError(f"formula must be a string; got {formula!r}.")
    parsed = _parse_formula(formula)
    variables = _variables(parsed.required, parsed.text, data)
    extra = [c for c in (cluster, offset, exposure) if c is not None]
    require_columns(data, [*variables, *extra], used_by=repr(formula))
    _check_shadowing(formula, parsed.text, variables)
    subset = data[[*dict.fromkeys([*variables, *extra])]]
    used = ~subset.isna().any(axis=1).to_numpy()
    if not used.any():
        raise ModelSpecificationError(f"no complete rows for {formula!r}.")
    frame = subset if used.all() else subset.loc[used]
    levels: tuple[str, str] | None = None
    response = parsed.response if parsed.response in frame.columns else None
    if binary_response and response is not None:
        frame, levels = _code_binary(frame, response, formula)
    frame = _plain_dtypes(frame, variables)
    y, X, names, spec = _model_matrices(parsed.formula, parsed.text.python, frame, formula)
    if cluster is not None:
        codes, labels = pd.factorize(frame[cluster], sort=False)
        groups = codes.astype(np.intp)
        cluster_labels = tuple(str(v) for v in labels)
    else:
        groups = np.arange(len(frame), dtype=np.intp)
        cluster_labels = tuple(str(i) for i in range(len(frame)))
    off, looks_raw = _offset(frame, offset, exposure)
    return Design(
        y=y,
        X=X,
        names=names,
        groups=groups,
        cluster_labels=cluster_labels,
        offset=off,
        used=used,
        n_excluded=int((~used).sum()),
        offset_looks_raw=looks_raw,
        response=response,
        response_levels=levels,
        model_spec=spec,
        columns=tuple(_variables(parsed.rhs_required, parsed.rhs_text, data)),
    )


#: formulaic's transforms that a bare name might mean by mistake (contrast names and
#: the ``np`` module are left out: ``C(x, Poly)`` uses ``Poly`` bare on purpose).
_TRANSFORM_NAMES = frozenset(TRANSFORMS) - {
    "np", "contr", "Treatment", "Poly", "Sum", "Helmert", "Diff",
}


@dataclass(frozen=True)
class _ParsedFormula:
    """What a formula's text gives, independent of the data (cached per formula)."""

    text: FormulaText
    formula: Formula
    required: frozenset[str]
    rhs_text: FormulaText
    rhs_required: frozenset[str]
    response: str


@functools.lru_cache(maxsize=256)
def _parse_formula(formula: str) -> _ParsedFormula:
    text = _read_formula(formula)
    try:
        parsed = Formula(text.python)
    except Exception as err:  # formulaic raises several types for syntax errors
        raise ModelSpecificationError(
            f"cannot parse formula {formula!r}: {clean_message(err)}"
        ) from None
    if not hasattr(parsed, "lhs"):
        raise ModelSpecificationError(f"formula {formula!r} has no response (left of '~').")
    return _ParsedFormula(
        text=text,
        formula=parsed,
        required=frozenset(str(v) for v in parsed.required_variables),
        rhs_text=scan_formula(text.python.split("~", 1)[1]),
        rhs_required=frozenset(str(v) for v in parsed.rhs.required_variables),
        response=str(parsed.lhs).strip("`"),
    )


def _read_formula(formula: str) -> FormulaText:
    """Scan the formula; refuse lme4's random-effect syntax in one line."""
    text = scan_formula(formula)
    for bar in dict.fromkeys(text.bars):
        if bar.startswith("("):
            group = bar.strip("() ").split("|")[-1].strip()
            raise ModelSpecificationError(
                f"formula {formula!r} has the lme4 random-effect term {bar!r}: crtstats "
                "fits one random intercept per cluster, given by cluster= (random slopes "
                f"are not supported); drop the term and pass cluster={group!r}."
            )
        raise ModelSpecificationError(
            f"formula {formula!r} uses '|', which crtstats formulas do not have: the "
            "random intercept per cluster comes from cluster=; remove '|' and what follows."
        )
    return text


def _variables(required: frozenset[str], text: FormulaText, data: pd.DataFrame
               ) -> list[str]:
    """The columns the formula uses: formulaic's list, plus columns written bare whose
    names formulaic takes for transforms (``center``, ``C``, ``log``...)."""
    names = set(required)
    names |= {n for n in text.bare_names if n in data.columns or n in _TRANSFORM_NAMES}
    return sorted(names)


def _check_shadowing(formula: str, text: FormulaText, variables: Sequence[str]) -> None:
    clash = sorted(text.called.intersection(variables))
    if clash:
        name = clash[0]
        raise ModelSpecificationError(
            f"formula {formula!r} calls {name}(...) and also uses the column {name!r}; the "
            "column would hide the transform. Rename the column, e.g. "
            f"data.rename(columns={{{name!r}: {name + '_col'!r}}})."
        )


def _code_binary(frame: pd.DataFrame, response: str, formula: str
                 ) -> tuple[pd.DataFrame, tuple[str, str] | None]:
    """A two-level text or categorical response as 0/1 (second level 1), with its
    levels; a numeric or boolean response is returned as it is."""
    col = frame[response]
    if isinstance(col.dtype, pd.CategoricalDtype):
        levels = [str(v) for v in col.cat.categories]
        ones = np.asarray(col.cat.codes == 1)
        kind = "categorical (levels in category order)"
    elif pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return frame, None
    else:
        text = col.astype(str)
        levels = sorted(text.unique())
        ones = np.asarray(text == levels[-1])
        kind = "text (levels in sorted order)"
    if len(levels) != 2:
        shown = ", ".join(repr(v) for v in levels[:10]) + (", ..." if len(levels) > 10 else "")
        raise ModelSpecificationError(
            f"the binomial response {response!r} of {formula!r} is {kind} with "
            f"{len(levels)} level(s) ({shown}); it needs exactly two (the second is coded "
            "1) or 0/1 values: recode it, e.g. (data[col] == 'event').astype(int)."
        )
    out = frame.copy()
    out[response] = ones.astype(float)
    return out, (levels[0], levels[1])


def _model_matrices(parsed: Formula, python: str, frame: pd.DataFrame, formula: str
                    ) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], ModelSpec | None]:
    """``y``, ``X``, the column names and the right-hand side's ModelSpec: from the
    fast path when this formula and these column types have a checked plan, else
    from formulaic (and a plan is made for next time)."""
    key = cache_key(python, frame)
    known, plan = lookup(key)
    if plan is not None:
        y, X = plan.matrices(frame)
        return y, X, plan.names, plan.spec
    try:
        lhs, rhs = parsed.get_model_matrix(frame, na_action="raise", output="pandas")
    except Exception as err:
        raise ModelSpecificationError(
            f"cannot build the design of {formula!r}: {clean_message(err)}"
        ) from None
    if lhs.shape[1] != 1:
        raise ModelSpecificationError(
            f"the response of {formula!r} must be one numeric column; got {list(lhs.columns)}."
        )
    y = np.asarray(lhs, dtype=float)[:, 0]
    X = np.asarray(rhs, dtype=float)
    names = tuple(str(c) for c in rhs.columns)
    spec = getattr(rhs, "model_spec", None)
    if not known:
        lhs_spec = getattr(lhs, "model_spec", None)
        ok = spec is not None and lhs_spec is not None
        remember(key, make_plan(lhs_spec, spec, frame, names, y, X) if ok else None)
    return y, X, names, spec


def new_model_matrix(design: Design, newdata: pd.DataFrame) -> np.ndarray:
    """The model matrix of ``design``'s right-hand side on ``newdata``.

    Factor levels, contrasts and transform state (the mean that ``center(x)``
    subtracts, spline knots) are those of the data the design was built on.

    Raises
    ------
    MissingColumnError
        If ``newdata`` lacks a column the right-hand side uses.
    ModelSpecificationError
        If the design has no ModelSpec, a value is missing, or a factor has a level the
        fitted data did not have.

    Examples
    --------
    The columns of a fit on new rows (R: ``model.matrix(delete.response(terms(fit)),
    newdata)``):

    >>> import pandas as pd
    >>> d = pd.DataFrame({"y": [1.0, 2.0, 4.0, 3.0], "arm": ["c", "i", "c", "i"],
    ...                   "team": [1, 2, 3, 4]})
    >>> design = build_design("y ~ arm", d, cluster="team")
    >>> new_model_matrix(design, pd.DataFrame({"arm": ["i"]}))
    array([[1., 1.]])
    """
    if design.model_spec is None:
        raise ModelSpecificationError("this design keeps no ModelSpec to rebuild it from.")
    require_columns(newdata, list(design.columns), used_by="the fitted model")
    frame = newdata[list(design.columns)]
    if frame.isna().to_numpy().any():
        raise ModelSpecificationError(
            "new data have missing values in the columns the model uses "
            f"({list(design.columns)}); drop or fill those rows first."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DataMismatchWarning)
            matrix = design.model_spec.get_model_matrix(frame, na_action="raise")
    except DataMismatchWarning as err:
        seen = re.search(r"\{.*\}", str(err))
        raise ModelSpecificationError(
            "new data have factor level(s) the fitted data did not have: "
            f"{seen.group() if seen else clean_message(err)}; a fit says nothing about "
            "them. Keep only rows with known levels."
        ) from None
    except Exception as err:
        raise ModelSpecificationError(
            f"cannot build the model's columns on the new data: {clean_message(err)}"
        ) from None
    return np.asarray(matrix, dtype=float)


def _numeric(frame: pd.DataFrame, column: str, option: str) -> np.ndarray:
    col = frame[column]
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        raise ModelSpecificationError(
            f"{option} column {column!r} must be numeric; it has dtype {col.dtype}."
        )
    return np.asarray(col, dtype=float)


def _offset(frame: pd.DataFrame, offset: str | None, exposure: str | None
            ) -> tuple[np.ndarray, bool]:
    """The offset on the linear-predictor scale, and whether ``offset`` looks raw."""
    out = np.zeros(len(frame))
    looks_raw = False
    if exposure is not None:
        raw = _numeric(frame, exposure, "exposure")
        bad = ~(np.isfinite(raw) & (raw > 0))
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ModelSpecificationError(
                f"exposure column {exposure!r} must be positive and finite in every row the "
                f"model uses; row {frame.index[k]!r} has {raw[k]!r} ({int(bad.sum())} such "
                "row(s)). An exposure of zero contributes nothing: drop those rows "
                "explicitly, or check the data."
            )
        out += np.log(raw)
    if offset is not None:
        values = _numeric(frame, offset, "offset")
        bad = ~np.isfinite(values)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ModelSpecificationError(
                f"offset column {offset!r} must be finite; row {frame.index[k]!r} has "
                f"{values[k]!r} (the log of a zero exposure?). The offset is on the "
                "linear-predictor scale: pass the raw exposure as exposure= instead."
            )
        looks_raw = bool(np.all(values > 1.0) and np.all(values == np.round(values)))
        out += values
    return out, looks_raw
