"""Fidelity tables: scores by arm and review, and item-level change between reviews."""

from __future__ import annotations

from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from crtstats._options import check_option
from crtstats.exceptions import InvalidParameterError
from crtstats.tables._common import (
    ARMS,
    REVIEWS,
    arm_by_team,
    item_columns,
    join_arm,
    present_reviews,
    require_columns,
    scale_labels,
)
from crtstats.tables._summary import arm_columns, arm_groups, mean_row, percent_row
from crtstats.tables._table import Column, Table

__all__ = ["domain_keys", "fidelity_by_arm", "item_change"]

DomainStat = Literal["mean", "sum"]
Review = Literal["baseline", "6m", "12m"]
_SCORE_COLUMNS = ("team_id", "review", "total", "mean_item", "band")
_NOT_DOMAINS = {"mean_item", "total"}


def domain_keys(scores: pd.DataFrame) -> list[str]:
    """Domain keys of a scores frame (``<key>_sum``/``<key>_mean`` pairs), in key order.

    The scale key's order is used where it names the domain; others follow in column
    order.
    """
    found = [
        str(c)[: -len("_mean")] for c in scores.columns
        if str(c).endswith("_mean") and str(c) not in _NOT_DOMAINS
        and f"{str(c)[: -len('_mean')]}_sum" in scores.columns
    ]
    order = [k for k, _ in scale_labels().domains]
    return sorted(found, key=lambda k: (order.index(k) if k in order else len(order),
                                        found.index(k)))


def _review_rows(part: pd.DataFrame, arm: pd.Series, review: str, domains: list[str],
                 domain_stat: str, bands: list[str], decimals: int) -> list[dict[str, Any]]:
    labels = scale_labels()
    group = {"review": review, "decimals": decimals}

    def by_arm(column: str) -> dict[str, pd.Series]:
        return {a: part.loc[arm == a, column] for a in ARMS}

    fine = {**group, "decimals": decimals + 1}
    rows = [mean_row("Total", by_arm("total"), **group),
            mean_row("Mean item score", by_arm("mean_item"), **fine)]
    for key in domains:
        rows.append(mean_row(f"{labels.domain_label(key)} ({domain_stat})",
                             by_arm(f"{key}_{domain_stat}"),
                             **(fine if domain_stat == "mean" else group)))
    banded = part["band"].notna()
    totals = {a: float((banded & (arm == a)).sum()) for a in ARMS}
    for band in bands:
        hits = {a: float(((part["band"] == band) & (arm == a)).sum()) for a in ARMS}
        rows.append(percent_row(f"Band: {band}", hits, totals, **group))
    return rows


def _band_order(scores: pd.DataFrame) -> list[str]:
    """The scale key's bands (all of them, so empty bands show as 0), then any others."""
    seen = [str(b) for b in scores["band"].dropna().unique()]
    known = list(scale_labels().bands)
    return known + sorted(set(seen) - set(known))


def fidelity_by_arm(
    scores: pd.DataFrame,
    teams: pd.DataFrame,
    *,
    domain_stat: DomainStat = "mean",
    decimals: int = 1,
) -> Table:
    """Fidelity by arm and review: mean, SD and n of totals and domains; band counts.

    Parameters
    ----------
    scores
        Output of :func:`crtstats.scales.score_fidelity`: ``team_id, review, total,
        mean_item, band`` and ``<domain>_sum``/``<domain>_mean`` columns.
    teams
        The teams table (``team_id``, ``arm``).
    domain_stat
        Show domain mean item scores (``"mean"``, comparable across domains of
        different length) or domain sums (``"sum"``).
    decimals
        Decimal places of totals, domain sums and percentages; mean item scores
        (overall and by domain) get one more.

    Returns
    -------
    Table
        Rows grouped by review (baseline, 6m, 12m): total, mean item score, each
        domain, and the number (%) of teams in each band, with per arm ``<arm>_n``
        (teams with a value), ``<arm>_value`` and ``<arm>_spread``.

    Raises
    ------
    SchemaValidationError
        If ``scores`` or ``teams`` lacks a needed column.
    InvalidParameterError
        If ``domain_stat`` is not allowed, or a review, arm or team is unknown.

    Notes
    -----
    Means and SDs (``n - 1`` denominator) are over teams with a value at that review
    (a review without a total, e.g. with a missing item, does not count in ``n``);
    band percentages are of teams with a band. The table counts teams, not people,
    so nothing is withheld.

    References
    ----------
    Lloyd-Evans B, et al. Development of a fidelity scale for crisis resolution teams.
    BMC Psychiatry 2016;16:1-12.

    Examples
    --------
    >>> import pandas as pd
    >>> teams = pd.DataFrame({"team_id": ["A", "B", "C", "D"],
    ...                       "arm": ["control", "control", "intervention", "intervention"]})
    >>> scores = pd.DataFrame({"team_id": ["A", "B", "C", "D"], "review": "baseline",
    ...                        "total": [110.0, 120.0, 130.0, 150.0],
    ...                        "mean_item": [110 / 39, 120 / 39, 130 / 39, 150 / 39],
    ...                        "band": ["low", "moderate", "moderate", "moderate"]})
    >>> table = fidelity_by_arm(scores, teams)
    >>> table.formatted().iloc[0].tolist()
    ['Total', '2', '115.0 (7.1)', '2', '140.0 (14.1)']

    In R: ``aggregate(total ~ arm + review, scores, function(x) c(mean(x), sd(x)))``.
    """
    check_option("domain_stat", domain_stat, get_args(DomainStat))
    require_columns(scores, "scores", _SCORE_COLUMNS)
    arm = join_arm(scores, teams, "scores")
    reviews = present_reviews(scores["review"].tolist())
    domains = domain_keys(scores)
    bands = _band_order(scores)
    rows: list[dict[str, Any]] = []
    for review in reviews:
        here = (scores["review"].astype(str) == review).to_numpy()
        rows += _review_rows(scores[here], arm[here], review, domains, domain_stat, bands,
                             decimals)
    frame = pd.DataFrame(rows)
    counts = arm_by_team(teams).value_counts()
    headers = {a: f"{a.capitalize()} ({int(counts.get(a, 0))} teams)" for a in ARMS}
    columns = [Column("Measure", ("label",), "text"),
               *arm_columns(n_label="n", value_label="Mean (SD) or n (%)", decimals=decimals,
                            decimals_column="decimals")]
    notes = ["n: teams with a score at that review; band percentages are of teams with a band."]
    return Table(frame, columns, title="Fidelity by arm and review",
                 column_groups=arm_groups(headers), row_group="review",
                 row_group_label="Review", footnotes=notes)


def _item_rows(fidelity: pd.DataFrame, arm: pd.Series, items: list[str], from_review: str,
               to_review: str) -> list[dict[str, Any]]:
    labels = scale_labels()
    keyed = fidelity.assign(arm=arm.to_numpy(), team_id=fidelity["team_id"].astype(str))
    start = keyed[keyed["review"].astype(str) == from_review].set_index("team_id")
    end = keyed[keyed["review"].astype(str) == to_review].set_index("team_id")
    shared = start.index.intersection(end.index)
    rows = []
    for column in items:
        number, label = labels.item(column)
        domain = labels.domain_of(number)
        row: dict[str, Any] = {
            "item": number, "column": column,
            "label": f"{number}. {label}" if label else f"Item {number}",
            "domain": labels.domain_label(domain) if domain else "",
        }
        a = start.loc[shared, column].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        b = end.loc[shared, column].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        team_arm = start.loc[shared, "arm"].to_numpy()
        for arm_name in ARMS:
            both = (team_arm == arm_name) & ~np.isnan(a) & ~np.isnan(b)
            change = b[both] - a[both]
            row |= {
                f"{arm_name}_n": float(both.sum()),
                f"{arm_name}_from": float(a[both].mean()) if both.any() else np.nan,
                f"{arm_name}_to": float(b[both].mean()) if both.any() else np.nan,
                f"{arm_name}_change": float(change.mean()) if both.any() else np.nan,
                f"{arm_name}_change_sd": float(change.std(ddof=1)) if both.sum() > 1 else np.nan,
            }
        row["difference"] = row["intervention_change"] - row["control_change"]
        rows.append(row)
    return rows


def item_change(
    fidelity: pd.DataFrame,
    teams: pd.DataFrame,
    *,
    from_review: Review = "baseline",
    to_review: Review = "12m",
    decimals: int = 2,
) -> Table:
    """Mean change in each item score between two reviews, by arm.

    Parameters
    ----------
    fidelity
        The wide fidelity table: ``team_id``, ``review`` and ``item_01`` ...
        ``item_39`` (integers, missing allowed).
    teams
        The teams table (``team_id``, ``arm``).
    from_review, to_review
        The two reviews compared; ``to_review`` must come after ``from_review``.
    decimals
        Decimal places of the mean changes and SDs.

    Returns
    -------
    Table
        One row per item (grouped by domain when the scale key names it): ``item``,
        ``label``, ``domain`` and per arm ``<arm>_n`` (teams with the item scored at
        both reviews), ``<arm>_from``, ``<arm>_to`` (mean scores), ``<arm>_change``
        and ``<arm>_change_sd``; ``difference`` is intervention minus control mean
        change. Displayed: n and mean change (SD) per arm, and the difference.

    Raises
    ------
    SchemaValidationError
        If ``fidelity`` lacks ``team_id``, ``review`` or any item column.
    InvalidParameterError
        If a review option is not allowed or not in time order, or an arm or team is
        unknown.

    Notes
    -----
    For team ``j`` and item ``i`` scored at both reviews, the change is
    :math:`d_{ij} = x_{ij}^{(to)} - x_{ij}^{(from)}`; the arm's entry is the mean
    and SD (``n - 1``) of :math:`d_{ij}` over its teams. Teams missing the item at
    either review are left out of that item only (``n`` shows it). The difference is
    descriptive: no test is made here (fit a model for inference).

    References
    ----------
    Lloyd-Evans B, et al. Implementing a service improvement programme for crisis
    resolution teams: the CORE trial. 2019 (item-level change by arm).

    Examples
    --------
    >>> from crtstats.datasets import load_example
    >>> trial = load_example()
    >>> table = item_change(trial.fidelity, trial.teams)
    >>> table.formatted().iloc[0].tolist()
    ['1. quick response to new referrals', '10', '-0.10 (1.20)', '15', '0.40 (0.83)', '0.50']

    In R: ``aggregate(change ~ arm + item, long, function(d) c(mean(d), sd(d)))`` on
    the long-format differences.
    """
    check_option("from_review", from_review, REVIEWS)
    check_option("to_review", to_review, REVIEWS)
    if REVIEWS.index(to_review) <= REVIEWS.index(from_review):
        raise InvalidParameterError(
            f"to_review must come after from_review (order {list(REVIEWS)}); got "
            f"from_review={from_review!r}, to_review={to_review!r}."
        )
    require_columns(fidelity, "fidelity", ("team_id", "review"))
    items = item_columns(fidelity)
    if not items:
        raise InvalidParameterError(
            "fidelity has no item columns (item_01 ...); pass the wide fidelity table."
        )
    present_reviews(fidelity["review"].tolist())
    arm = join_arm(fidelity, teams, "fidelity")
    if fidelity.groupby([fidelity["team_id"].astype(str),
                         fidelity["review"].astype(str)]).size().max() > 1:
        raise InvalidParameterError(
            "fidelity has more than one row for a team and review; give one review each."
        )
    frame = pd.DataFrame(_item_rows(fidelity, arm, items, from_review, to_review))
    grouped = bool(frame["domain"].astype(bool).all())
    columns = [Column("Item", ("label",), "text")]
    for a in ARMS:
        columns += [Column("n", (f"{a}_n",), "integer", key=f"{a}_n"),
                    Column("Mean change (SD)", (f"{a}_change", f"{a}_change_sd"), "mean_sd",
                           decimals=decimals, key=f"{a}_change")]
    columns.append(Column("Difference", ("difference",), "number", decimals=decimals))
    groups = {a.capitalize(): [f"{a}_n", f"{a}_change"] for a in ARMS}
    notes = [f"Change from {from_review} to {to_review} in teams scored on the item at both "
             "reviews; difference: intervention minus control mean change (descriptive)."]
    return Table(frame, columns, title=f"Item scores: change from {from_review} to {to_review}",
                 column_groups=groups, row_group="domain" if grouped else None,
                 row_group_label="Domain", footnotes=notes)
