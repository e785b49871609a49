"""Figures: they render headless without warnings, draw what they claim, save reproducibly."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from crtstats import CRTResult, save_figure
from crtstats.analysis import EFFECT_COLUMNS
from crtstats.datasets import load_example
from crtstats.exceptions import DataFileError, InvalidParameterError, ModelSpecificationError
from crtstats.plots import caterpillar, domain_profile, forest, render_figure, trajectories
from crtstats.scales import score_fidelity

TRIAL = load_example()
SCORES = score_fidelity(TRIAL.fidelity)


@pytest.fixture(autouse=True)
def _headless() -> Iterator[None]:
    """Draw with the Agg backend whatever the environment says."""
    backend = mpl.get_backend()
    mpl.use("Agg")
    yield
    mpl.use(backend)


def _render(ax: Axes) -> bytes:
    """Draw the figure to PNG in memory (this is where rendering problems surface)."""
    buffer = io.BytesIO()
    ax.figure.savefig(buffer, format="png", dpi=60)
    return buffer.getvalue()


def effects_frame() -> pd.DataFrame:
    nan = float("nan")
    rows = [
        ["fidelity total", "LMM", "primary", "arm at 12m", "difference", 9.8, 2.1, 17.5,
         0.015, 21.7, "kenward-roger", "REML", 0.41, 0.12, 0.68, 25, 74,
         "efficiency-weighted", "mean difference", "conditional"],
        ["fidelity total", "ANCOVA", "sensitivity", "arm at 12m", "difference", 8.8, 1.1,
         16.5, 0.03, 20.1, "bell-mccaffrey", "CR2", nan, nan, nan, 25, 25,
         "cluster-average", "mean difference", "marginal"],
    ]
    # every column but the optional boundary and ICC-source flags
    given = [c for c in EFFECT_COLUMNS if c not in ("boundary", "icc_source")]
    return pd.DataFrame(rows, columns=given)


def mixed_result(n: int = 25) -> CRTResult:
    rng = np.random.default_rng(7)
    effects = pd.DataFrame({"cluster": [f"T{i:02d}" for i in range(1, n + 1)],
                            "estimate": rng.normal(0, 3, n), "std_error": rng.uniform(1, 2, n)})
    return CRTResult(model="lmm", formula="total ~ arm", param_names=("Intercept",),
                     param_values=[120.0], cov_values=[[4.0]], df_values=[23.0],
                     df_method="kenward-roger", cov_type="REML", nobs=74, n_clusters=n,
                     random_effects_frame=effects)


# -- each figure ------------------------------------------------------------------------
def test_trajectories_draws_a_line_per_team_and_per_arm() -> None:
    ax = trajectories(SCORES, TRIAL.teams)
    assert _render(ax).startswith(b"\x89PNG")
    drawn = [line for line in ax.lines if len(line.get_xdata())  # not legend handles
             and line.get_gid() != "fidelity-band"]  # nor the band boundaries
    teams = [line for line in drawn if line.get_linewidth() < 1]
    means = [line for line in drawn if line.get_linewidth() > 2]
    assert len(teams) == 25 and len(means) == 2
    for line, arm in zip(means, ("control", "intervention"), strict=True):
        expected = SCORES.assign(arm=SCORES["team_id"].map(
            TRIAL.teams.set_index("team_id")["arm"]))
        expected = expected[expected["arm"] == arm].groupby("review")["total"].mean()
        np.testing.assert_allclose(line.get_ydata(),
                                   expected[["baseline", "6m", "12m"]].to_numpy(), rtol=1e-12)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["baseline", "6m", "12m"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["control", "intervention"]


def test_domain_profile_uses_scale_labels_and_draws_arm_by_review() -> None:
    ax = domain_profile(SCORES, TRIAL.teams)
    _render(ax)
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "Referrals and access", "Content and delivery of care",
        "Staffing and team procedures", "Location and timing of care"]
    data_lines = [line for line in ax.lines if len(line.get_xdata()) == 4]
    assert len(data_lines) == 2 * 3  # arm x review
    arm = SCORES["team_id"].map(TRIAL.teams.set_index("team_id")["arm"])
    here = SCORES[(arm == "control").to_numpy() & (SCORES["review"] == "baseline").to_numpy()]
    expected = here[["referrals_access_mean", "content_delivery_mean",
                     "staffing_procedures_mean", "location_timing_mean"]].mean().to_numpy()
    assert any(np.allclose(line.get_ydata(), expected, rtol=1e-12) for line in data_lines)


def test_forest_difference_and_ratio_scales() -> None:
    ax = forest(effects_frame())
    _render(ax)
    assert ax.get_xscale() == "linear"
    assert ax.lines[0].get_xdata()[0] == 0.0  # reference line at no difference
    by_height = sorted(zip(ax.get_yticks(), (t.get_text() for t in ax.get_yticklabels()),
                           strict=True), reverse=True)
    assert [label for _, label in by_height] == [  # first row on top
        "fidelity total: LMM (arm at 12m)", "fidelity total: ANCOVA (arm at 12m)"]
    ratio = effects_frame().assign(scale="odds ratio", estimate=[0.7, 0.8],
                                   conf_low=[0.5, 0.6], conf_high=[0.98, 1.1])
    ax = forest(ratio)
    _render(ax)
    assert ax.get_xscale() == "log" and ax.lines[0].get_xdata()[0] == 1.0
    ticks = {t.get_text() for t in ax.get_xticklabels() + ax.get_xticklabels(minor=True)}
    assert {"0.5", "1"} <= ticks  # plain numbers, not powers of ten
    assert not any("e" in t or "10^" in t for t in ticks if t)


def test_forest_wraps_long_labels_to_fit_a_constrained_figure() -> None:
    long = effects_frame().assign(
        analysis="Bed days per service user: GLMM (negative binomial)",
        estimand="bed days per service user, intervention vs control")
    figure = Figure(figsize=(7.0, 4.5), layout="constrained")
    ax = forest(long, ax=figure.subplots())
    _render(ax)  # a label too wide for the figure would warn here, an error in tests
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert all(max(len(part) for part in label.split("\n")) <= 40 for label in labels)
    assert labels[0].replace("\n", " ") == (
        "fidelity total: Bed days per service user: GLMM (negative binomial) (bed days per "
        "service user, intervention vs control)")


def test_forest_takes_analysis_results_and_lists() -> None:
    from crtstats.analysis import AnalysisResult

    frame = effects_frame()
    ax = forest([AnalysisResult(effects=frame.iloc[:1]), frame.iloc[1:]])
    assert len(ax.get_yticklabels()) == 2


def test_trajectories_when_controls_have_no_6m_review() -> None:
    control = SCORES["team_id"].map(TRIAL.teams.set_index("team_id")["arm"]) == "control"
    scores = SCORES[~(control & (SCORES["review"] == "6m")).to_numpy()]
    ax = trajectories(scores, TRIAL.teams)
    _render(ax)
    means = [line for line in ax.lines if line.get_linewidth() > 2 and len(line.get_xdata())]
    assert [list(line.get_xdata()) for line in means] == [[0.0, 2.0], [0.0, 1.0, 2.0]]


def test_forest_refuses_mixed_scales() -> None:
    mixed = effects_frame()
    mixed.loc[1, ["scale", "estimate", "conf_low", "conf_high"]] = ["odds ratio", 0.7, 0.5, 1.0]
    with pytest.raises(InvalidParameterError, match="mix ratio and difference"):
        forest(mixed)


def test_caterpillar_sorts_teams_with_intervals() -> None:
    result = mixed_result()
    ax = caterpillar(result, level=0.9)
    _render(ax)
    effects = result.random_effects
    assert effects is not None
    ordered = effects.sort_values("estimate")
    assert [t.get_text() for t in ax.get_yticklabels()] == ordered["cluster"].tolist()
    (bars,) = [c for c in ax.collections if len(c.get_segments()) == 25]
    widths = [seg[1, 0] - seg[0, 0] for seg in bars.get_segments()]
    np.testing.assert_allclose(widths, 2 * 1.6448536269514722 * ordered["std_error"],
                               rtol=1e-12)


def test_caterpillar_needs_random_effects() -> None:
    fixed = CRTResult(model="ols", formula="y ~ 1", param_names=("Intercept",),
                      param_values=[0.0], cov_values=[[1.0]], df_values=[10.0],
                      df_method="residual", cov_type="classical", nobs=12, n_clusters=None)
    with pytest.raises(ModelSpecificationError, match="random effects"):
        caterpillar(fixed)
    with pytest.raises(InvalidParameterError, match="level"):
        caterpillar(mixed_result(), level=1.5)


def test_figures_draw_on_a_given_axes() -> None:
    figure = Figure(figsize=(12, 8))
    axes = figure.subplots(2, 2).ravel()
    returned = [trajectories(SCORES, TRIAL.teams, axes[0]),
                domain_profile(SCORES, TRIAL.teams, axes[1]),
                forest(effects_frame(), axes[2]), caterpillar(mixed_result(), axes[3])]
    assert all(r is a for r, a in zip(returned, axes, strict=True))
    with pytest.raises(InvalidParameterError, match="ax must be a matplotlib Axes"):
        forest(effects_frame(), ax="left")  # type: ignore[arg-type]


def test_plots_never_register_figures_with_pyplot() -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    trajectories(SCORES, TRIAL.teams)
    forest(effects_frame())
    assert plt.get_fignums() == before


# -- saving -----------------------------------------------------------------------------
def test_save_figure_is_byte_reproducible(tmp_path: Path) -> None:
    first = save_figure(forest(effects_frame()), tmp_path / "a", formats=("png", "svg", "pdf"))
    second = save_figure(forest(effects_frame()), tmp_path / "b", formats=("png", "svg", "pdf"))
    for fmt in ("png", "svg", "pdf"):
        assert first[fmt].read_bytes() == second[fmt].read_bytes(), fmt
    svg = first["svg"].read_text(encoding="utf-8")
    assert "<dc:date>" not in svg
    assert b"CreationDate" not in first["pdf"].read_bytes()


def test_save_figure_rejects_bad_arguments(tmp_path: Path) -> None:
    ax = forest(effects_frame())
    with pytest.raises(InvalidParameterError, match="formats must be one of"):
        save_figure(ax, tmp_path / "f", formats=("jpg",))  # type: ignore[arg-type]
    with pytest.raises(DataFileError, match="does not exist"):
        save_figure(ax, tmp_path / "absent" / "f")
    with pytest.raises(InvalidParameterError, match="Figure or Axes"):
        save_figure("figure", tmp_path / "f")  # type: ignore[arg-type]


def test_trajectories_shade_the_scale_bands_read_from_the_key() -> None:
    from crtstats.scales import load_scale

    ax = trajectories(SCORES, TRIAL.teams)
    _render(ax)
    key = load_scale("core_crt_v2")
    edges = sorted(float(line.get_ydata()[0]) for line in ax.lines
                   if line.get_gid() == "fidelity-band")
    assert edges == [low for _, low in key.bands[1:]] == [117.0, 156.0]
    low, high = ax.get_ylim()
    assert low < 117.0 and high > 156.0  # both boundaries are in view
    names = {t.get_text().strip() for t in ax.texts}
    assert names == set(key.band_names)
    assert len(ax.patches) == 3  # one shaded span per band
    plain = trajectories(SCORES, TRIAL.teams, bands=False)
    assert not plain.patches and not plain.texts
    means = trajectories(SCORES, TRIAL.teams, value="mean_item")
    edges = sorted(float(line.get_ydata()[0]) for line in means.lines
                   if line.get_gid() == "fidelity-band")
    assert edges == pytest.approx([117.0 / 39, 156.0 / 39])


def test_forest_panels_split_outcomes_and_scales_and_fit_a_page() -> None:
    from crtstats.plots import forest_panels

    frame = effects_frame()
    domain = frame.iloc[[0]].assign(outcome="referrals_access_mean", estimate=0.4,
                                    conf_low=0.1, conf_high=0.7)
    ratio = frame.iloc[[0]].assign(outcome="admitted", scale="odds ratio", estimate=0.7,
                                   conf_low=0.5, conf_high=0.98,
                                   estimand="arm[T.intervention]")
    figure = forest_panels([frame, domain, ratio])
    titles = [ax.get_title(loc="left").replace("\n", " ") for ax in figure.axes]
    assert titles[0].startswith("fidelity total: difference")
    assert titles[1].startswith("Referrals and access (mean item score): difference")
    assert titles[2] == "admitted: odds ratio (log scale); arm intervention"
    # the domain effect (0.4) is not drawn on the total's axis (about 10)
    assert figure.axes[1].get_xlim()[1] < 1.0 < figure.axes[0].get_xlim()[1]
    labels = [t.get_text() for ax in figure.axes for t in ax.get_yticklabels()]
    assert not any("[T." in label for label in labels)
    bold = [t.get_fontweight() for t in figure.axes[0].get_yticklabels()]
    assert bold == ["bold", "normal"]  # the primary row first, in bold
    width, height = figure.get_size_inches()
    assert width == 7.0 and height <= 9.0
    assert render_figure(figure, "png", dpi=300).startswith(b"\x89PNG")


def test_svg_clip_ids_do_not_depend_on_float_noise() -> None:
    # matplotlib hashes a clip rectangle's float bounds into its id; the same figure in
    # another process (another PYTHONHASHSEED) gave bounds differing in the last bits,
    # hence other ids. Two such files must become byte-identical, uses matching defs.
    from crtstats.plots._render import _stable_clip_ids

    def svg(clip: str) -> bytes:
        return (f'<path d="M 0 0" clip-path="url(#{clip})"/>\n<defs><clipPath id="{clip}">'
                f'<rect x="1"/></clipPath><clipPath id="pffffffffff"/></defs>').encode()

    one, other = _stable_clip_ids(svg("pb2a579ba4c")), _stable_clip_ids(svg("pb2c2f20843"))
    assert one == other
    assert b'url(#clip0)' in one and b'<clipPath id="clip0">' in one
    assert b'<clipPath id="clip1"/>' in one
    fig = Figure()
    fig.add_subplot().plot([0, 1], [0, 1])
    rendered = render_figure(fig, "svg")
    assert b'clip-path="url(#clip0)"' in rendered and b'<clipPath id="clip0">' in rendered
