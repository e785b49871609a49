"""Closed-form power: documented values of clusterPower and CRTSize to their printed
digits, the packages' own functions (sourced from their CRAN sources by
tests/reference/power_closed.R) to full precision, and the formulas of the papers."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, stats

from crtstats import power
from crtstats.exceptions import InfeasibleDesignError, InvalidParameterError
from tests.conftest import REFERENCE

REF = json.loads((REFERENCE / "power_closed.json").read_text())

# Both sides evaluate the same closed form; the noncentral t distribution function is
# computed by different algorithms (R: AS 243, errmax 1e-12; SciPy: Boost), so powers
# agree to about 1e-11. Cluster counts solved with tol = 1e-12 on both sides agree to
# that error divided by the slope of the power curve: 1e-8 is ample.
POWER_TOL = 1e-9
CLUSTERS_TOL = 1e-7


# ---- documented examples, to the printed digits --------------------------------------


def test_cpa_normal_documented_power_16_clusters() -> None:
    # clusterPower 0.7.0, ?cpa.normal: cpa.normal(power = NA, nclusters = 16,
    # nsubjects = 10, d = 1, sigma_b_sq = .5, vart = 5): "the power is 0.801766".
    res = power.continuous(clusters_per_arm=16, cluster_size=10, effect=1, icc=0.5 / 5,
                           sd=math.sqrt(5))
    assert round(res.power, 6) == 0.801766
    assert res.df == 30


def test_cpa_normal_documented_power_unequal_sizes() -> None:
    # ?cpa.normal: cpa.normal(alpha = .05, power = NA, nclusters = 20, nsubjects = 100,
    # CV = .5, d = .2, ICC = .1, sigma_b_sq = .1): "the power is 0.4559881" (Taylor RE).
    res = power.continuous(clusters_per_arm=20, cluster_size=100, cv=0.5, effect=0.2,
                           icc=0.1, sd=1.0)
    assert round(res.power, 7) == 0.4559881


def test_cpa_normal_documented_clusters() -> None:
    # ?cpa.normal: cpa.normal(nsubjects = 10, d = 1, ICC = .1, vart = 5) (power 0.8):
    # "nclusters of greater than 15, suggests 16 clusters per condition".
    res = power.continuous(cluster_size=10, effect=1, icc=0.1, sd=math.sqrt(5), power=0.8)
    assert 15 < res.clusters_per_arm[0] < 16
    assert res.clusters_rounded == (16, 16)
    assert res.power_rounded >= 0.8


def test_cpa_binary_documented_clusters() -> None:
    # ?cpa.binary: power 0.8 (the call prints "power = 0.08", its comment says 0.8),
    # nsubjects = 10, p1 = 0.1, p2 = 0.2, ICC = 0.1: "greater than 37 ... 38 clusters".
    # That text comes from the z version of the formula (clusterPower 0.6 crtpwr.2prop):
    res = power.binary(cluster_size=10, p1=0.1, p2=0.2, icc=0.1, power=0.8, test="normal")
    assert 37 < res.clusters_per_arm[0] < 38
    assert res.clusters_rounded == (38, 38)
    # cpa.binary 0.7.0 itself uses t on 2(G - 1) df and gives 38.27 (reference JSON; the
    # full-precision test below), so 39 clusters per arm with the t test.
    t_res = power.binary(cluster_size=10, p1=0.1, p2=0.2, icc=0.1, power=0.8)
    assert t_res.clusters_rounded == (39, 39)


def test_cpa_binary_documented_detectable_p2() -> None:
    # ?cpa.binary: 38 clusters of 10, ICC 0.1, p1 = 0.1, power 0.8: "p2 greater than
    # 0.198922 can be detected". The value comes from the z version of the formula
    # (clusterPower 0.6 crtpwr.2prop, text carried into cpa.binary); the t version gives
    # 0.2004. uniroot's default tol (eps^0.25 = 1.2e-4) bounds the printed digits.
    def gap(p2: float) -> float:
        return power.binary(clusters_per_arm=38, cluster_size=10, p1=0.1, p2=p2, icc=0.1,
                            test="normal").power - 0.8

    p2 = optimize.brentq(gap, 0.1 + 1e-7, 0.5, xtol=1e-12)
    assert abs(p2 - 0.198922) < 1.3e-4


def test_cpa_count_documented_clusters_and_cvb() -> None:
    # ?cpa.count: cpa.count(nsubjects = 10, r1 = 0.10, r2 = 0.20, CVB = 0.10): "greater
    # than 24 ... 25 clusters"; and with 25 clusters "CVB as high as 0.107".
    res = power.rates(rate1=0.1, rate2=0.2, person_time=10, cv_between=0.1, power=0.8,
                      test="normal")
    assert 24 < res.clusters_per_arm[0] < 25
    assert res.clusters_rounded == (25, 25)

    def gap(k: float) -> float:
        return power.rates(clusters_per_arm=25, rate1=0.1, rate2=0.2, person_time=10,
                           cv_between=k, test="normal").power - 0.8

    assert round(optimize.brentq(gap, 0.01, 1.0, xtol=1e-12), 3) == 0.107


def test_n4props_documented_example() -> None:
    # CRTSize ?n4props: n4props(pe = 0.03, pc = 0.10, m = 25, ICC = 0.20): its print
    # method gives "a minimum of 45 clusters" per group (z formula, n >= 30).
    assert power.binary(cluster_size=25, p1=0.03, p2=0.10, icc=0.2, power=0.8,
                        test="normal").clusters_rounded == (45, 45)
    # With t on 2(G - 1) df the answer is one more cluster.
    assert power.binary(cluster_size=25, p1=0.03, p2=0.10, icc=0.2,
                        power=0.8).clusters_rounded == (46, 46)


def test_hayes_bennett_hiv_example_via_n4incidence() -> None:
    # CRTSize ?n4incidence: n4incidence(le = 0.01, lc = 0.005, m = 1000, t = 2,
    # CV = 0.25) prints "a minimum of 6 clusters" per group (the HIV incidence design of
    # Hayes and Bennett 1999). Their formula (z, G - 1), the t version, and CRTSize's
    # iterated t approximation (5.83, reference JSON) all round up to 6.
    for test in ("normal", "t"):
        res = power.rates(rate1=0.01, rate2=0.005, person_time=2000, cv_between=0.25,
                          power=0.8, test=test)  # type: ignore[arg-type]
        assert res.clusters_rounded == (6, 6)
    assert math.ceil(REF["n4incidence"][0]["nE"]) == 6


# ---- the packages' functions, to full precision ----------------------------------------


@pytest.mark.parametrize("case", REF["cpa_normal"])
def test_cpa_normal_reference(case: dict[str, float | str]) -> None:
    kw = dict(cluster_size=case["nsubjects"], effect=case["d"], icc=case["ICC"],
              sd=math.sqrt(float(case["vart"])), cv=case["CV"],
              cv_method="taylor" if case["method"] == "taylor" else "eldridge")
    res = power.continuous(clusters_per_arm=case["nclusters"], **kw)  # type: ignore[arg-type]
    assert res.power == pytest.approx(case["power"], abs=POWER_TOL)
    solved = power.continuous(power=0.8, **kw)  # type: ignore[arg-type]
    assert solved.clusters_per_arm[0] == pytest.approx(case["nclusters_for_08"],
                                                       abs=CLUSTERS_TOL)


@pytest.mark.parametrize("case", REF["cpa_binary"])
def test_cpa_binary_reference(case: dict[str, float | bool]) -> None:
    kw = dict(cluster_size=case["nsubjects"], p1=case["p1"], p2=case["p2"], icc=case["ICC"],
              cv=case["CV"], cv_method="eldridge",  # cpa.binary's inflation for CV > 0
              test="t" if case["tdist"] else "normal")
    res = power.binary(clusters_per_arm=case["nclusters"], **kw)  # type: ignore[arg-type]
    assert res.power == pytest.approx(case["power"], abs=POWER_TOL)
    solved = power.binary(power=0.8, **kw)  # type: ignore[arg-type]
    assert solved.clusters_per_arm[0] == pytest.approx(case["nclusters_for_08"],
                                                       abs=CLUSTERS_TOL)


@pytest.mark.parametrize("case", REF["cpa_count"])
def test_cpa_count_reference(case: dict[str, float]) -> None:
    kw = dict(rate1=case["r1"], rate2=case["r2"], person_time=case["nsubjects"],
              cv_between=case["CVB"], test="normal")
    res = power.rates(clusters_per_arm=case["nclusters"], **kw)  # type: ignore[arg-type]
    assert res.power == pytest.approx(case["power"], abs=POWER_TOL)
    solved = power.rates(power=0.8, **kw)  # type: ignore[arg-type]
    assert solved.clusters_per_arm[0] == pytest.approx(case["nclusters_for_08"],
                                                       abs=CLUSTERS_TOL)


@pytest.mark.parametrize("case", REF["n4means"])
def test_n4means_reference(case: dict[str, float]) -> None:
    # CRTSize's AR is control clusters per intervention cluster; its z formula is exact
    # closed form, so agreement is to rounding error.
    res = power.continuous(cluster_size=case["m"], effect=case["delta"], icc=case["ICC"],
                           sd=case["sigma"], power=0.8, test="normal",
                           allocation_ratio=1 / case["AR"])
    assert res.clusters_per_arm[0] == pytest.approx(case["nE"], rel=1e-10)
    assert res.clusters_per_arm[1] == pytest.approx(case["nC"], rel=1e-10)


@pytest.mark.parametrize("case", REF["n4props"])
def test_n4props_reference(case: dict[str, float]) -> None:
    res = power.binary(cluster_size=case["m"], p1=case["pe"], p2=case["pc"],
                       icc=case["ICC"], power=0.8, test="normal")
    assert res.clusters_per_arm[0] == pytest.approx(case["nE"], rel=1e-10)


def test_n4incidence_reference_is_hayes_bennett_without_the_extra_cluster() -> None:
    # n4incidence's z branch (n >= 30) omits Hayes and Bennett's "1 +": c = n + 1.
    case = REF["n4incidence"][1]
    assert case["n"] >= 30
    res = power.rates(rate1=case["le"], rate2=case["lc"], person_time=case["m"] * case["t"],
                      cv_between=case["CV"], power=0.8, test="normal")
    assert res.clusters_per_arm[0] == pytest.approx(case["n"] + 1, rel=1e-10)
    assert res.design_effect == pytest.approx(
        1 + case["CV"] ** 2 * (case["le"] ** 2 + case["lc"] ** 2) * case["m"] * case["t"]
        / (case["le"] + case["lc"]), rel=1e-14)


# ---- the papers' formulas --------------------------------------------------------------


def test_issue_example_12_per_arm() -> None:
    # 12 teams per arm of 20, ICC 0.05, effect 0.3 SD: 0.614 on 22 df (cpa.normal agrees,
    # reference case 4).
    res = power.continuous(clusters_per_arm=12, cluster_size=20, effect=0.3, icc=0.05)
    assert res.df == 22
    assert res.power == pytest.approx(REF["cpa_normal"][3]["power"], abs=POWER_TOL)


def test_unequal_allocation_core_15_10() -> None:
    # 15:10 teams: variance sd^2 DE / m (1/15 + 1/10), t on 23 df.
    res = power.continuous(clusters_per_arm=(15, 10), cluster_size=15, effect=0.5, icc=0.05)
    se = math.sqrt(1.7 / 15 * (1 / 15 + 1 / 10))
    crit = stats.t.isf(0.025, 23)
    assert res.df == 23
    assert res.power == pytest.approx(stats.nct.sf(crit, 23, 0.5 / se), abs=1e-14)
    solved = power.continuous(cluster_size=15, effect=0.5, icc=0.05, power=0.9,
                              allocation_ratio=1.5)
    g1, g0 = solved.clusters_per_arm
    assert g1 == pytest.approx(1.5 * g0, rel=1e-14)
    again = power.continuous(clusters_per_arm=(g1, g0), cluster_size=15, effect=0.5,
                             icc=0.05)
    assert again.power == pytest.approx(0.9, abs=1e-10)
    assert solved.power_rounded >= 0.9


def test_list_of_sizes_exact_efficiency() -> None:
    # Equal sizes given as a list equal the scalar; unequal sizes lose power (the exact
    # efficiency sum_j m_j / (1 + (m_j - 1) ICC)), close to the Taylor approximation.
    # ?cpa.normal's "0.13315" for sizes (100, 50, 25, 100, 100) cannot be run in
    # clusterPower 0.7.0 and multiplies the design effect by the relative efficiency
    # (< 1) instead of dividing by it, so it is not reproduced.
    same = power.continuous(clusters_per_arm=5, cluster_size=[75.0] * 5, effect=0.2, icc=0.1)
    scalar = power.continuous(clusters_per_arm=5, cluster_size=75, effect=0.2, icc=0.1)
    assert same.power == pytest.approx(scalar.power, abs=1e-14)
    sizes = [100.0, 50.0, 25.0, 100.0, 100.0]
    exact = power.continuous(clusters_per_arm=5, cluster_size=sizes, effect=0.2, icc=0.1)
    info = sum(m / (1 + (m - 1) * 0.1) for m in sizes)
    ncp = 0.2 / math.sqrt(2 / info)
    assert exact.power == pytest.approx(stats.nct.sf(stats.t.isf(0.025, 8), 8, ncp),
                                        abs=1e-14)
    assert exact.power < scalar.power
    cv = stats.tstd(sizes) / 75.0
    taylor = power.continuous(clusters_per_arm=5, cluster_size=75, cv=cv, effect=0.2,
                              icc=0.1)
    # the Taylor CV formula approximates the exact efficiency of these sizes to second
    # order in the CV; at this CV (0.47) the two powers differ by 7e-4
    assert taylor.power == pytest.approx(exact.power, abs=1e-3)


def test_strict_adds_the_lower_tail() -> None:
    base = power.continuous(clusters_per_arm=4, cluster_size=5, effect=0.1, icc=0.1)
    strict = power.continuous(clusters_per_arm=4, cluster_size=5, effect=0.1, icc=0.1,
                              strict=True)
    assert strict.power > base.power
    null = power.continuous(clusters_per_arm=4, cluster_size=5, effect=0.0, icc=0.1,
                            strict=True)
    assert null.power == pytest.approx(0.05, abs=1e-12)


def test_ancova_teerenstra_design_effect() -> None:
    # Teerenstra et al. 2012: r = (m ICC rho_c + (1 - ICC) rho_s) / (1 + (m - 1) ICC),
    # DE_ancova = DE (1 - r^2), DE_change = DE 2 (1 - r).
    m, icc, rho_c, rho_s = 15.0, 0.05, 0.6, 0.4
    deff = 1 + (m - 1) * icc
    r = (m * icc * rho_c + (1 - icc) * rho_s) / deff
    common = dict(clusters_per_arm=(15, 10), cluster_size=m, effect=0.4, icc=icc,
                  cluster_autocorrelation=rho_c)
    cohort = power.ancova(individual_autocorrelation=rho_s, **common)  # type: ignore[arg-type]
    assert cohort.design_effect == pytest.approx(deff * (1 - r**2), rel=1e-14)
    assert cohort.df == 22  # one df for the baseline mean
    change = power.ancova(individual_autocorrelation=rho_s, analysis="change",
                          **common)  # type: ignore[arg-type]
    assert change.design_effect == pytest.approx(deff * 2 * (1 - r), rel=1e-14)
    assert change.df == 23
    cross = power.ancova(**common)  # type: ignore[arg-type]
    r0 = m * icc * rho_c / deff
    assert cross.design_effect == pytest.approx(deff * (1 - r0**2), rel=1e-14)
    assert "repeated cross-section" in cross.assumptions
    # With no correlation across waves ANCOVA is the follow-up analysis minus one df.
    flat = power.ancova(clusters_per_arm=12, cluster_size=20, effect=0.3, icc=0.05,
                        cluster_autocorrelation=0.0)
    plain = power.continuous(clusters_per_arm=12, cluster_size=20, effect=0.3, icc=0.05)
    assert flat.design_effect == pytest.approx(plain.design_effect, rel=1e-14)
    assert flat.df == plain.df - 1 and flat.power < plain.power


def test_hemming_cluster_size() -> None:
    # Hemming et al. 2011: m = n_I (1 - ICC) / (k - n_I ICC) solves k m = n_I DE(m).
    res = power.cluster_size_needed(clusters_per_arm=12, n_individual=100, icc=0.05)
    m = res.cluster_size
    assert 12 * m == pytest.approx(100 * (1 + (m - 1) * 0.05), rel=1e-14)
    assert res.cluster_size_rounded == math.ceil(m)
    # n_I from the z formula for effect 0.4 SD at 80% power; the cluster design with the
    # unrounded m then has exactly 80% power on the z scale.
    z = stats.norm.isf(0.025) + stats.norm.isf(0.2)
    n_i = 2 * z**2 / 0.4**2
    res = power.cluster_size_needed(clusters_per_arm=15, n_individual=n_i, icc=0.05)
    check = power.continuous(clusters_per_arm=15, cluster_size=res.cluster_size, effect=0.4,
                             icc=0.05, test="normal")
    assert check.power == pytest.approx(0.8, abs=1e-12)


@pytest.mark.parametrize("k", [5.0, 4.0])
def test_hemming_infeasible(k: float) -> None:
    with pytest.raises(InfeasibleDesignError, match=r"n_individual x ICC = 5"):
        power.cluster_size_needed(clusters_per_arm=k, n_individual=100, icc=0.05)


# ---- checks ----------------------------------------------------------------------------


@pytest.mark.parametrize("icc", [1.0, -0.01, 1.5])
def test_bad_icc(icc: float) -> None:
    with pytest.raises(InvalidParameterError, match=r"icc must lie in \[0, 1\)"):
        power.continuous(clusters_per_arm=10, cluster_size=10, effect=0.3, icc=icc)


@pytest.mark.parametrize("p", [0.0, 1.0, 1.2])
def test_bad_proportion(p: float) -> None:
    with pytest.raises(InvalidParameterError, match=r"p1 must lie in \(0, 1\)"):
        power.binary(clusters_per_arm=10, cluster_size=10, p1=p, p2=0.2, icc=0.05)


@pytest.mark.parametrize("target", [0.05, 0.01, 1.0])
def test_bad_power(target: float) -> None:
    with pytest.raises(InvalidParameterError, match=r"power must lie in \(alpha, 1\)"):
        power.continuous(cluster_size=10, effect=0.3, icc=0.05, power=target)


def test_exactly_one_unknown() -> None:
    with pytest.raises(InvalidParameterError, match="exactly one of clusters_per_arm"):
        power.continuous(clusters_per_arm=10, cluster_size=10, effect=0.3, icc=0.05,
                         power=0.8)
    with pytest.raises(InvalidParameterError, match="exactly one of clusters_per_arm"):
        power.continuous(cluster_size=10, effect=0.3, icc=0.05)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: power.continuous(clusters_per_arm=9, cluster_size=9, effect=1, icc=0.1,
                                  cv_method="weighted"), "cv_method must be one of"),
        (lambda: power.continuous(clusters_per_arm=9, cluster_size=9, effect=1, icc=0.1,
                                  test="z"), "test must be one of"),
        (lambda: power.ancova(clusters_per_arm=9, cluster_size=9, effect=1, icc=0.1,
                              cluster_autocorrelation=0.5, analysis="anova"),
         "analysis must be one of"),
        (lambda: power.continuous(clusters_per_arm=9, cluster_size=[5.0, 9.0], cv=0.3,
                                  effect=1, icc=0.1), "not both"),
        (lambda: power.continuous(clusters_per_arm=1, cluster_size=9, effect=1, icc=0.1),
         "more than 2 in all"),
        (lambda: power.continuous(clusters_per_arm=(9, 8), cluster_size=9, effect=1,
                                  icc=0.1, allocation_ratio=2), "allocation_ratio"),
        (lambda: power.continuous(cluster_size=9, effect=0, icc=0.1, power=0.8),
         "effect is 0"),
        (lambda: power.ancova(clusters_per_arm=9, cluster_size=9, effect=1, icc=0.1,
                              cluster_autocorrelation=1.2), "cluster_autocorrelation"),
        (lambda: power.rates(clusters_per_arm=9, rate1=0, rate2=0.1, person_time=10,
                             cv_between=0.2), "rate1"),
    ],
)
def test_bad_arguments(call: object, match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        call()  # type: ignore[operator]


def test_result_is_frozen() -> None:
    res = power.continuous(clusters_per_arm=10, cluster_size=10, effect=0.3, icc=0.05)
    with pytest.raises(AttributeError):
        res.power = 0.5  # type: ignore[misc]
    assert res.total_clusters == 20 and res.solved_for == "power"


# ---- invariants ------------------------------------------------------------------------


@settings(max_examples=25)  # each example solves by root finding
@given(
    m=st.floats(2, 200),
    icc=st.floats(0, 0.5),
    effect=st.floats(0.1, 1.5),
    target=st.floats(0.5, 0.95),
    ratio=st.sampled_from([1.0, 1.5, 0.5]),
)
def test_solving_inverts_the_power(
    m: float, icc: float, effect: float, target: float, ratio: float
) -> None:
    solved = power.continuous(cluster_size=m, effect=effect, icc=icc, power=target,
                              allocation_ratio=ratio)
    g1, g0 = solved.clusters_per_arm
    assert g1 == pytest.approx(ratio * g0, rel=1e-12)
    assert solved.power_rounded >= target - 1e-12
    if min(g1, g0) > 1 and g1 + g0 > 3:  # an interior solution, not the smallest design
        back = power.continuous(clusters_per_arm=(g1, g0), cluster_size=m, effect=effect,
                                icc=icc)
        # brentq at xtol 1e-12 on the cluster count; the power curve's slope is < 1.
        assert back.power == pytest.approx(target, abs=1e-9)


@settings(max_examples=25)
@given(g=st.integers(2, 60), icc=st.floats(0, 0.5), m=st.floats(1, 100))
def test_power_increases_with_clusters_and_t_is_below_z(g: int, icc: float, m: float) -> None:
    kw = dict(cluster_size=m, effect=0.3, icc=icc)
    now = power.continuous(clusters_per_arm=g, **kw)  # type: ignore[arg-type]
    more = power.continuous(clusters_per_arm=g + 1, **kw)  # type: ignore[arg-type]
    z = power.continuous(clusters_per_arm=g, test="normal", **kw)  # type: ignore[arg-type]
    assert more.power >= now.power and z.power >= now.power  # z overstates the power
    if now.power < 1 - 1e-9:  # strictly, until both round to 1 in double precision
        assert more.power > now.power and z.power > now.power
