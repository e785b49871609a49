"""Team fixed-effects difference-in-differences of the fidelity panel (linearmodels).

``y_ir = alpha_i + gamma_r + sum_{r' > baseline} delta_r' A_i [r = r'] + e_ir``: team
effects ``alpha_i`` absorb every team-level difference (arm, stratum, the team's own
level), review effects ``gamma_r`` the common change over time, and ``delta_r`` is the
arm x review effect at follow-up review ``r``, the difference-in-differences from
baseline. Fitted by :class:`linearmodels.PanelOLS` with entity and time effects and
the covariance clustered by team.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from linearmodels import PanelOLS
from linearmodels.shared.exceptions import MissingValueWarning

from crtstats.exceptions import ModelSpecificationError
from crtstats.models import CRTResult, ModelSpec, PanelDetails

__all__ = ["DID_COV_TYPE", "DID_DF_METHOD", "did_fit", "did_term"]

#: The covariance: cluster-robust by team, scaled as R's ``sandwich::vcovCL(type =
#: "HC1")`` of the dummy-variable regression (and Stata's ``regress ... i.team,
#: vce(cluster team)``): ``G / (G - 1) * (n - 1) / (n - k)``, k counting the team and
#: review effects.
DID_COV_TYPE = "cluster HC1"
#: Tests are t with G - 1 df (G teams), the usual reference for a one-way clustered
#: covariance.
DID_DF_METHOD = "clusters - 1"


def did_term(review: str) -> str:
    """The coefficient name of the arm x review effect at ``review``."""
    return f"arm[T.intervention]:review[T.{review}]"


def _interactions(used: pd.DataFrame, reviews: Sequence[str], treated: str,
                  outcome: str) -> dict[str, np.ndarray]:
    """One 0/1 column per follow-up review present; refuses one without both arms."""
    columns: dict[str, np.ndarray] = {}
    is_treated = (used["arm"].astype(str) == treated).to_numpy()
    for review in reviews[1:]:
        at = (used["review"].astype(str) == review).to_numpy()
        if not at.any():
            continue
        arms = {bool(v) for v in is_treated[at]}
        if arms != {True, False}:
            raise ModelSpecificationError(
                f"{outcome}: the difference-in-differences needs teams of both arms at "
                f"review {review!r}; only {sorted(map(str, used.loc[at, 'arm'].unique()))} "
                "have a value there. Leave that review out of the scores."
            )
        columns[did_term(review)] = (is_treated & at).astype(float)
    if not columns:
        raise ModelSpecificationError(
            f"{outcome}: the difference-in-differences needs a follow-up review besides "
            f"{reviews[0]!r}; the scores have none with a value."
        )
    return columns


def did_fit(frame: pd.DataFrame, outcome: str, *, reviews: Sequence[str],
            treated: str) -> CRTResult:
    """Fit the team fixed-effects DiD of ``outcome`` on a checked long frame.

    ``frame`` has ``team_id``, ``review``, ``arm`` and ``outcome`` (as built by
    :func:`crtstats.analyse_fidelity`'s checks); rows without a value are left out.
    ``reviews`` are in time order, baseline first; ``treated`` is the intervention arm.
    """
    used = frame[frame[outcome].notna()]
    per_arm = used.drop_duplicates("team_id")["arm"].astype(str).value_counts()
    if len(per_arm) < 2 or int(per_arm.min()) < 2:
        raise ModelSpecificationError(
            f"{outcome}: the difference-in-differences needs at least two teams per arm "
            f"with a value; found {per_arm.to_dict()}."
        )
    columns = _interactions(used, reviews, treated, outcome)
    time = used["review"].astype(str).map({r: i for i, r in enumerate(reviews)})
    index = pd.MultiIndex.from_arrays([used["team_id"].astype(str).to_numpy(),
                                       time.to_numpy(dtype=np.int64)], names=["team", "review"])
    y = pd.Series(used[outcome].to_numpy(dtype=float), index=index, name=outcome)
    exog = pd.DataFrame({"const": 1.0, **columns}, index=index)
    with warnings.catch_warnings():
        # an unbalanced panel (a team without a review) is stored with missing cells,
        # which linearmodels drops with a warning; no observed row is dropped
        warnings.filterwarnings("ignore", category=MissingValueWarning)
        model = PanelOLS(y, exog, entity_effects=True, time_effects=True)
        res = model.fit(cov_type="clustered", cluster_entity=True, debiased=True,
                        group_debias=True, auto_df=False, count_effects=True)
    names = list(columns)
    n_clusters = int(used["team_id"].nunique())
    cov = np.asarray(res.cov.loc[names, names], dtype=float)
    return CRTResult(
        model="panel_ols",
        formula=f"{outcome} ~ arm:review + EntityEffects(team_id) + TimeEffects(review)",
        param_names=tuple(names), param_values=np.asarray(res.params[names], dtype=float),
        cov_values=cov, df_values=np.full(len(names), float(n_clusters - 1)),
        df_method=DID_DF_METHOD, cov_type=DID_COV_TYPE, nobs=int(res.nobs),
        n_clusters=n_clusters,
        details=PanelDetails(
            n_excluded=int(len(frame) - len(used)), n_reviews=int(time.nunique()),
            df_model=int(res.df_model), df_resid=int(res.df_resid),
        ),
        spec=ModelSpec(fitter="panel_ols", formula=f"{outcome} ~ arm:review",
                       cluster="team_id",
                       options={"entity_effects": True, "time_effects": True,
                                "cov_type": DID_COV_TYPE}),
    )
