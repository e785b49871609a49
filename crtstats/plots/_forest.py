"""Forest plots of many effects: one panel per outcome and scale, sized for a journal page."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from crtstats.analysis import RATIO_SCALES
from crtstats.exceptions import InvalidParameterError
from crtstats.tables import collect_effects, outcome_label

__all__ = ["FOREST_MAX_HEIGHT", "FOREST_WIDTH", "forest_panels", "readable_terms"]

#: Width and greatest height of a forest figure, in inches: a journal's full page width
#: (about 17.8 cm) and a page's height less its caption.
FOREST_WIDTH = 7.0
FOREST_MAX_HEIGHT = 9.0
#: Heights in inches: a line of row label, the space between rows, what a panel needs
#: besides its rows (title, x axis) and the figure's title; labels wrap at ``_WRAP``.
_LINE = 0.18
_GAP = 0.1
_PANEL = 0.5
_HEAD = 0.25
_WRAP = 50
_TITLE_WRAP = 52
#: Rows are spaced at least this fraction of their natural spacing (labels must not
#: touch); a figure with more rows than fit is taller than ``max_height``.
_MIN_SHRINK = 0.85

_TERM = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\[T\.([^\]]+)\]")


def readable_terms(text: str) -> str:
    """Model term names written for readers: ``arm[T.intervention]`` -> ``arm
    intervention``, and ``:`` between terms -> ``x`` (an interaction).

    Examples
    --------
    >>> readable_terms("arm[T.intervention] + arm[T.intervention]:review[T.12m]")
    'arm intervention + arm intervention x review 12m'
    """
    out = _TERM.sub(lambda m: f"{m.group(1)} {m.group(2)}", text)
    return re.sub(r"(?<=\S):(?=\S)", " x ", out)


@dataclass(frozen=True)
class _Panel:
    """The rows of one outcome on one scale, and their labels."""

    outcome: str
    scale: str
    frame: pd.DataFrame
    shared: str | None  # the estimand, when every row has the same one
    labels: tuple[str, ...]

    @classmethod
    def of(cls, frame: pd.DataFrame, outcome: str, scale: str) -> _Panel:
        part = frame[(frame["outcome"].astype(str) == outcome)
                     & (frame["scale"].astype(str) == scale)]
        estimands = part["estimand"].astype(str).tolist()
        shared = estimands[0] if len(set(estimands)) == 1 else None
        labels = tuple(
            textwrap.fill(a if shared is not None else f"{a} ({readable_terms(e)})",
                          width=_WRAP)
            for a, e in zip(part["analysis"].astype(str), estimands, strict=True))
        return cls(outcome, scale, part, shared, labels)

    @property
    def lines(self) -> int:
        return sum(label.count("\n") + 1 for label in self.labels)

    def height(self, shrink: float) -> float:
        titles = _LINE * self.title.count("\n")
        return shrink * (_LINE * self.lines + _GAP * len(self.frame)) + _PANEL + titles

    def draw(self, ax: Axes) -> None:
        from crtstats.plots._figures import forest

        forest(self.frame, ax=ax, show_outcome=False)
        ax.set_yticks(ax.get_yticks(), self.labels, fontsize="small")
        for tick, role in zip(ax.get_yticklabels(), self.frame["role"].astype(str),
                              strict=True):
            tick.set_fontweight("bold" if role == "primary" else "normal")
        ax.tick_params(axis="x", which="both", labelsize="small")
        ax.set_xlabel("")
        ax.set_title(self.title, loc="left", fontsize="small", fontweight="bold")

    @property
    def title(self) -> str:
        """Outcome, scale and shared estimand, wrapped to the width of the plot area."""
        log = " (log scale)" if self.scale in RATIO_SCALES else ""
        about = f"; {readable_terms(self.shared)}" if self.shared is not None else ""
        return textwrap.fill(f"{outcome_label(self.outcome)}: {self.scale}{log}{about}",
                             width=_TITLE_WRAP)


def _panels(frame: pd.DataFrame) -> list[_Panel]:
    pairs = zip(frame["outcome"].astype(str), frame["scale"].astype(str), strict=True)
    return [_Panel.of(frame, o, s) for o, s in dict.fromkeys(pairs)]


def forest_panels(effects: Any, figure: Figure | None = None, *,
                  width: float = FOREST_WIDTH, max_height: float = FOREST_MAX_HEIGHT
                  ) -> Figure:
    """A forest plot with one panel per outcome and scale, stacked, sized for a page.

    Parameters
    ----------
    effects
        An effects frame with the columns of :data:`crtstats.analysis.EFFECT_COLUMNS`,
        an :class:`crtstats.analysis.AnalysisResult`, or a list of them. Rows without
        an interval (randomisation tests) are left out.
    figure
        The figure to draw on (it is resized); a new one when ``None``.
    width, max_height
        Figure width and greatest height in inches (default 7 x 9, a journal page).

    Returns
    -------
    matplotlib.figure.Figure
        One panel per (outcome, scale) in order of first appearance, titled with the
        outcome's label, the scale and (when all its rows share it) the estimand, so
        effects of different size (a fidelity total and its domains) or kind
        (differences and ratios) never share an axis. Rows are labelled with the
        analysis, and the estimand where rows differ in it, term names made readable
        (:func:`readable_terms`); primary rows are in bold.

    Raises
    ------
    InvalidParameterError
        If no row has a confidence interval, or a size is not positive.

    Notes
    -----
    Panel heights follow their rows: a panel of :math:`r` rows with :math:`l` label
    lines takes :math:`0.18 l + 0.1 r + 0.5` inches; the figure, with 0.25 inches for
    its title, is at most ``max_height`` high, the rows closing up (to 85% of their
    spacing at most) to fit. A figure of more rows than that allows is taller than
    ``max_height``: plot fewer outcomes per figure (select rows of ``effects``).

    References
    ----------
    Lewis S, Clarke M. Forest plots: trying to see the wood and the trees. BMJ
    2001;322:1479-80.

    Examples
    --------
    >>> import pandas as pd
    >>> from crtstats.analysis import EFFECT_COLUMNS
    >>> rows = [dict(zip(EFFECT_COLUMNS, ["total", "LMM", "primary", "arm at 12m",
    ...     "difference", 7.0, -6.0, 20.0, 0.27, 19.8, "kenward-roger", "REML", 0.8,
    ...     float("nan"), float("nan"), 25, 70])),
    ...     dict(zip(EFFECT_COLUMNS, ["admitted", "GLMM", "primary", "follow-up",
    ...     "odds ratio", 0.57, 0.41, 0.78, 0.002, 15.0, "between-within", "Laplace",
    ...     0.0, float("nan"), float("nan"), 25, 1388]))]
    >>> figure = forest_panels(pd.DataFrame(rows))
    >>> [ax.get_title(loc="left").replace("\\n", " ") for ax in figure.axes]
    ['Fidelity total: difference; arm at 12m', 'admitted: odds ratio (log scale); follow-up']

    In R: one ``forestplot::forestplot()`` per outcome, or ``ggplot() +
    geom_pointrange() + facet_wrap(~ outcome + scale, scales = "free_x", ncol = 1)``.
    """
    if not (width > 0 and max_height > 0):
        raise InvalidParameterError(
            f"width and max_height must be positive inches; got {width!r}, {max_height!r}.")
    items = effects if isinstance(effects, list | tuple) else [effects]
    frame = collect_effects(*items).dropna(subset=["conf_low", "conf_high"])
    if frame.empty:
        raise InvalidParameterError(
            "forest_panels needs at least one effect with a confidence interval "
            "(randomisation tests have none).")
    panels = _panels(frame)
    fixed = sum(p.height(0.0) for p in panels) + _HEAD
    rows = sum(p.height(1.0) - p.height(0.0) for p in panels)
    shrink = min(1.0, max(_MIN_SHRINK, (max_height - fixed) / rows))
    figure = figure if figure is not None else Figure(layout="constrained")
    figure.set_size_inches(width, fixed + shrink * rows)
    axes = figure.subplots(len(panels), 1, squeeze=False,
                           gridspec_kw={"height_ratios": [p.height(shrink) for p in panels]})
    for panel, ax in zip(panels, axes[:, 0], strict=True):
        panel.draw(ax)
    figure.suptitle("Estimates with 95% confidence intervals (bold: primary analysis)",
                    fontsize="medium")
    return figure
