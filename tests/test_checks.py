"""The checks every fitter shares (crtstats.models._checks)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import crtstats
from crtstats.exceptions import InvalidParameterError, MissingColumnError
from crtstats.models._checks import (
    aliased_columns,
    between_within,
    check_fit_arguments,
    cluster_level_columns,
    require_columns,
)

RNG = np.random.default_rng(11)


def test_cluster_level_columns() -> None:
    X = np.array([[1, 0, 1.0], [1, 0, 2.0], [1, 1, 3.0], [1, 1, 3.0]])
    groups = np.array([0, 0, 1, 1])
    assert list(cluster_level_columns(X, groups, 2)) == [True, True, False]


def test_cluster_level_columns_survive_a_huge_shift() -> None:
    X = np.array([[1, 1e8, 1.0], [1, 1e8, 2.0], [1, 1e8 + 1, 3.0], [1, 1e8 + 1, 3.0]])
    groups = np.array([0, 0, 1, 1])
    assert list(cluster_level_columns(X, groups, 2)) == [True, True, False]


def test_between_within_df_and_contrast_df() -> None:
    groups = np.repeat(np.arange(6), 4)
    arm = (groups % 2).astype(float)
    x = RNG.normal(size=24)
    X = np.column_stack([np.ones(24), arm, x])
    bw = between_within(X, groups, 6)
    assert (bw.df_between, bw.df_within) == (4, 24 - 6 - 1)
    assert list(bw.df) == [4.0, 4.0, 17.0]
    assert bw.contrast_df(np.array([0.0, 1.0, 1.0])) == 4.0
    assert bw.contrast_df(np.array([0.0, 0.0, 1.0])) == 17.0


def _design(n: int = 200) -> np.ndarray:
    x = RNG.normal(size=n)
    z = RNG.normal(size=n)
    return np.column_stack([np.ones(n), x, z])


def test_full_rank_design_has_no_aliased_columns_at_any_scale_or_shift() -> None:
    X = _design()
    assert aliased_columns(X) == []
    for scale in (1e-6, 1e6):
        Y = X.copy()
        Y[:, 1] *= scale
        assert aliased_columns(Y) == []
    for shift in (1e3, 1e6, 1e8):
        Y = X.copy()
        Y[:, 1] += shift
        assert aliased_columns(Y) == []


def test_aliased_column_is_found_whatever_the_number_of_rows() -> None:
    for n in (20, 2000, 200_000):
        X = _design(n)
        X = np.column_stack([X, 2.0 * X[:, 1] - X[:, 2]])
        assert aliased_columns(X) == [3]


def test_constant_and_zero_columns_are_aliased() -> None:
    X = _design()
    X = np.column_stack([X, np.zeros(len(X)), np.full(len(X), 3.0)])
    assert aliased_columns(X) == [3, 4]


def test_full_dummy_coding_without_intercept_is_full_rank() -> None:
    groups = RNG.integers(0, 3, size=90)
    X = np.column_stack([(groups == k).astype(float) for k in range(3)] +
                        [RNG.normal(size=90) + 1e8])
    assert aliased_columns(X) == []


def test_argument_checks_share_one_error_type() -> None:
    frame = pd.DataFrame({"y": [1.0, 2.0], "team": ["a", "b"]})
    for bad in (["team"], 3, None, ""):
        with pytest.raises(InvalidParameterError, match="cluster must be a column name"):
            check_fit_arguments("lmm", "y ~ 1", frame, {"cluster": bad})
    with pytest.raises(InvalidParameterError, match="formula must be a string"):
        check_fit_arguments("lmm", None, frame)
    with pytest.raises(InvalidParameterError, match="data must be a pandas DataFrame"):
        check_fit_arguments("lmm", "y ~ 1", {"y": [1]})
    check_fit_arguments("glmm", "y ~ 1", frame, {"cluster": "team", "offset": None},
                        optional=("offset",))


def test_missing_column_error_names_the_column_and_the_user() -> None:
    frame = pd.DataFrame({"y": [1.0]})
    with pytest.raises(MissingColumnError, match=r"no column\(s\) \['arm'\] used by 'y ~ arm'"):
        require_columns(frame, ["y", "arm"], used_by="'y ~ arm'")
    assert issubclass(MissingColumnError, crtstats.ModelSpecificationError)


def test_between_within_contrast_df_pickles() -> None:
    import pickle

    groups = np.repeat(np.arange(4), 3)
    X = np.column_stack([np.ones(12), (groups % 2).astype(float), RNG.normal(size=12)])
    df_of = pickle.loads(pickle.dumps(between_within(X, groups, 4).contrast_df))
    assert df_of(np.array([0.0, 1.0, 1.0])) == 2.0
