"""crtstats.models.negative_binomial_rate against MASS::glm.nb run to convergence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crtstats.exceptions import (
    ExcludedRowsWarning,
    ExposureWarning,
    InvalidParameterError,
    ModelSpecificationError,
)
from crtstats.models import negative_binomial_rate

REFERENCE = Path(__file__).resolve().parent / "reference"
REF = json.loads((REFERENCE / "nb_glm.json").read_text())
TEAMS = pd.read_csv(REFERENCE / "data" / "nb_glm_teams.csv")
FORMULAS = {"adjusted": "admissions ~ arm + stratum + log_pre_rate",
            "unadjusted": "admissions ~ arm"}


@pytest.mark.parametrize("case", sorted(FORMULAS))
def test_matches_glm_nb(case: str) -> None:
    ref = REF[case]
    res = negative_binomial_rate(FORMULAS[case], TEAMS, cluster="team_id",
                                 exposure="n_users")
    # both sides are the maximum likelihood to ~1e-10 in log(theta) (the bounded profile
    # search's xatol here, theta.ml with eps 1e-13 in R); beta and its SE follow it
    np.testing.assert_allclose(res.params.to_numpy(), ref["coef"], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(res.std_errors.to_numpy(), ref["se"], rtol=1e-7)
    assert res.info["theta"] == pytest.approx(ref["theta"], rel=1e-7)
    assert res.df_method == "residual"
    assert int(res.df.iloc[0]) == len(TEAMS) - len(ref["coef"])


def test_exposure_and_log_offset_agree() -> None:
    logged = TEAMS.assign(log_users=np.log(TEAMS["n_users"]))
    a = negative_binomial_rate("admissions ~ arm", TEAMS, cluster="team_id",
                               exposure="n_users")
    b = negative_binomial_rate("admissions ~ arm", logged, cluster="team_id",
                               offset="log_users")
    np.testing.assert_allclose(a.params, b.params, rtol=1e-12)  # the same arithmetic


def test_raw_offset_and_exclusions_are_warned_and_recorded() -> None:
    with pytest.warns(ExposureWarning, match="'n_users' holds only whole numbers"), \
            pytest.raises(ModelSpecificationError, match="exposure=, not offset="):
        negative_binomial_rate("admissions ~ arm", TEAMS, cluster="team_id",
                               offset="n_users")
    with pytest.warns(ExposureWarning, match="'three' holds only whole numbers"):
        res = negative_binomial_rate("admissions ~ arm", TEAMS.assign(three=3),
                                     cluster="team_id", offset="three")
    assert [w.category for w in res.warnings] == [ExposureWarning]
    holes = TEAMS.assign(log_pre_rate=TEAMS["log_pre_rate"].where(TEAMS.index != 3))
    with pytest.warns(ExcludedRowsWarning, match="1 of 40 row"):
        res = negative_binomial_rate("admissions ~ arm + log_pre_rate", holes,
                                     cluster="team_id", exposure="n_users")
    assert res.nobs == 39 and [w.category for w in res.warnings] == [ExcludedRowsWarning]


def test_bad_input_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="negative_binomial_rate: cluster must"):
        negative_binomial_rate("admissions ~ arm", TEAMS, cluster=["team_id"],  # type: ignore[arg-type]
                               exposure="n_users")
    with pytest.raises(ModelSpecificationError, match="one row per team_id"):
        negative_binomial_rate("admissions ~ arm", pd.concat([TEAMS, TEAMS]),
                               cluster="team_id", exposure="n_users")
    with pytest.raises(ModelSpecificationError, match="non-negative whole numbers"):
        negative_binomial_rate("admissions ~ arm", TEAMS.assign(admissions=0.5),
                               cluster="team_id", exposure="n_users")
