"""crtstats.gee on degenerate data: an error that says what and why, or a recorded warning.

No number here is compared with R: each case is one where no finite, trustworthy answer
exists (or where the answer needs a warning beside it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import crtstats
from crtstats.exceptions import (
    ConvergenceWarning,
    ExcludedRowsWarning,
    ModelSpecificationError,
    SeparationWarning,
)
from crtstats.models import _gee_fit

DATA = pd.read_csv(Path(__file__).resolve().parent / "reference" / "data"
                   / "gee_admissions.csv")
BIN: dict[str, Any] = dict(cluster="team_id", family="binomial")


def _categories(res: crtstats.CRTResult) -> list[type]:
    return [w.category for w in res.warnings]


def test_no_event_in_one_arm_warns_and_gives_no_se() -> None:
    data = DATA.copy()
    data.loc[data.arm == "intervention", "admitted"] = 0
    with pytest.warns(SeparationWarning, match=r"arm\[T.intervention\]"):
        res = crtstats.gee("admitted ~ arm + pre_prop", data, **BIN)
    assert _categories(res) == [SeparationWarning]
    # the arm effect is not finite: no confident odds ratio or p-value
    assert np.isnan(res.std_errors["arm[T.intervention]"])
    assert np.isnan(res.pvalues["arm[T.intervention]"])
    assert np.isfinite(res.std_errors["pre_prop"])
    assert not res.converged


def test_perfect_prediction_warns() -> None:
    data = DATA.assign(admitted=(DATA.age > 50).astype(int))
    with pytest.warns(SeparationWarning, match="age"):
        res = crtstats.gee("admitted ~ arm + age", data, **BIN)
    assert SeparationWarning in _categories(res)
    assert np.isnan(res.std_errors["age"])


@pytest.mark.parametrize("family,value", [("binomial", 0), ("binomial", 1),
                                          ("gaussian", 3.5), ("poisson", 0)])
def test_all_outcomes_equal_raise(family: str, value: float) -> None:
    with pytest.raises(ModelSpecificationError, match="is the same .* in all 1388 rows"):
        crtstats.gee("admitted ~ arm", DATA.assign(admitted=value), cluster="team_id",
                     family=family)  # type: ignore[arg-type]


def test_single_cluster_raises() -> None:
    with pytest.raises(ModelSpecificationError, match="come from 1 cluster"):
        crtstats.gee("admitted ~ age", DATA[DATA.team_id == "T01"], ddf="z", **BIN)


def test_empty_arm_raises() -> None:
    with pytest.raises(ModelSpecificationError, match="'arm' .*single value 'control'"):
        crtstats.gee("admitted ~ arm", DATA[DATA.arm == "control"], **BIN)


@pytest.mark.parametrize("ddf", ["between", "z"])
def test_one_cluster_per_arm_raises(ddf: str) -> None:
    two = [DATA[DATA.arm == arm].team_id.iloc[0] for arm in ("control", "intervention")]
    with pytest.raises(ModelSpecificationError, match="leave 0 df .* one cluster per arm"):
        crtstats.gee("admitted ~ arm", DATA[DATA.team_id.isin(two)], ddf=ddf, **BIN)  # type: ignore[arg-type]


def test_cluster_of_leverage_one_raises() -> None:
    # one team alone in its stratum: it fixes its stratum coefficient by itself
    data = DATA.copy()
    data.loc[data.team_id == "T01", "stratum"] = "Trust Z"
    with pytest.raises(ModelSpecificationError, match="'T01' has leverage 1"):
        crtstats.gee("age ~ arm + stratum", data, cluster="team_id", family="gaussian",
                     cov_struct="independence", cov_type="mancl-derouen")


def test_infinite_values_raise() -> None:
    data = DATA.copy()
    data.loc[3, "pre_prop"] = np.inf
    with pytest.raises(ModelSpecificationError, match=r"column 'pre_prop' of .* is not finite"):
        crtstats.gee("admitted ~ arm + pre_prop", data, **BIN)
    data = DATA.assign(age=DATA.age.astype(float))
    data.loc[5, "age"] = -np.inf
    with pytest.raises(ModelSpecificationError, match=r"outcome .* is not finite in 1 row"):
        crtstats.gee("age ~ arm", data, cluster="team_id", family="gaussian")


def test_missing_values_are_excluded_with_a_recorded_warning() -> None:
    data = DATA.copy()
    data.loc[:9, "admitted"] = np.nan
    with pytest.warns(ExcludedRowsWarning, match="10 of 1388 row"):
        res = crtstats.gee("admitted ~ arm", data, cov_struct="independence", **BIN)
    assert res.nobs == len(DATA) - 10 and res.info["n_excluded"] == 10
    assert _categories(res) == [ExcludedRowsWarning]


def test_clusters_of_one_row() -> None:
    # every cluster of one row: no within-cluster pair, no exchangeable correlation
    one = DATA.groupby("team_id").head(1)
    with pytest.raises(ModelSpecificationError, match="0 within-cluster pair"):
        crtstats.gee("age ~ arm", one, cluster="team_id", family="gaussian")
    # with independence the model is an ordinary GLM with a sandwich: no hazard
    res = crtstats.gee("age ~ arm", one, cluster="team_id", family="gaussian",
                       cov_struct="independence", cov_type="mancl-derouen")
    assert np.all(np.isfinite(res.std_errors)) and res.warnings == ()
    # one cluster of one row among larger ones adds no pair but is used for beta
    mixed = pd.concat([DATA[DATA.team_id != "T02"], DATA[DATA.team_id == "T02"].head(1)])
    res = crtstats.gee("age ~ arm", mixed, cluster="team_id", family="gaussian")
    assert res.nobs == len(mixed) and res.n_clusters == 25 and res.converged


def test_non_convergence_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_gee_fit, "MAX_ITER", 2)
    with pytest.warns(ConvergenceWarning, match="did not converge in 2"):
        res = crtstats.gee("bed_days ~ arm + pre_prop + sex", DATA, cluster="team_id",
                           family="poisson")
    assert not res.converged and _categories(res) == [ConvergenceWarning]


def test_correlation_out_of_range_raises() -> None:
    # two rows per cluster with opposite residuals: the moment estimate of alpha is -1
    n = 40
    data = pd.DataFrame({
        "team_id": np.repeat(np.arange(n // 2), 2),
        "arm": np.repeat(np.arange(n // 2) % 2, 2).astype(str),
        "y": np.tile([-1.0, 1.0], n // 2) + np.repeat(np.arange(n // 2) % 2, 2),
    })
    with pytest.raises(ModelSpecificationError, match="outside .* not positive definite"):
        crtstats.gee("y ~ arm", data, cluster="team_id", family="gaussian")
