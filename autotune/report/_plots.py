"""Report figures over plain data (the report's HTML page is in ``_html``).

Every ``*_plot``/``*_histogram`` function writes a matplotlib PNG to ``path`` (creating its
folder) and returns the matching plotly ``go.Figure``, ready for
``optuna_dashboard.save_plotly_graph_object``. Empty inputs never raise: the PNG says
"no data" and the returned figure has no traces, only a "no data" annotation. Matplotlib
draws on a bare ``Figure`` with the Agg canvas, never pyplot's global state, so rendering
works headless in worker processes.

optuna-dashboard draws each saved figure in a card of fixed height (``DASHBOARD_HEIGHT``,
half the page wide) that clips what does not fit, so a plotly figure never asks for more:
the boundary plot's panels are split over several figures of at most ``PANELS_PER_FIGURE``.
The PNGs (the report and the note) grow with their content instead, one row at a time.
"""

from __future__ import annotations

from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
import math
from pathlib import Path
import statistics

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from matplotlib.ticker import NullFormatter
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from autotune.analysis import EARLY_FRACTION
from autotune.analysis import LATE_FRACTION
from autotune.analysis import BoundarySide

NO_DATA = "no data"
"""What the PNG and the figure of an empty input say."""
UNSTABLE = "levelled off on a worse loss (not stable)"
"""Legend name of the sweep's rates the plateau rule left out (docs/method.md §3)."""
DID_NOT_FIT = "did not fit"
"""Legend name of the sweep's learning rates that never fitted, drawn at the top."""
OUTPACED = "stopped: another rate fitted sooner"
"""Legend name of the sweep's rates stopped unfitted at the steps a faster rate fitted in."""
BOUND_COLOR = "grey"
"""A search bound the best trial is not on."""
HIT_COLOR = "red"
"""A search bound the best trial sits on, and the chosen sweep learning rate."""
BEST_COLOR = "orange"
"""The best trial's marker."""

DASHBOARD_HEIGHT = 450
"""Pixels: the height of optuna-dashboard's card for a saved figure (it clips the rest)."""
PANELS_PER_FIGURE = 4
"""Boundary panels in one dashboard figure: 2 x 2 fit a card legibly."""
OFF_AXIS = "off the axis"
"""How a plot says that it left far outliers (diverged runs) out of its y-range."""

_DPI = 100
_MAX_COLUMNS = 3
_DASHBOARD_COLUMNS = 2
_HIST_BINS = 20
_SERIES = ("started", "pruned", "complete")
SWEEP_Y_RANGE = 100.0  # the sweep curves' y axis: up to this many times their median
_SERIES_COLORS = ("tab:blue", "tab:orange", "tab:green")


@dataclass(frozen=True)
class ParamPoints:
    """One search-space parameter of one stage study: its trials' values and objectives.

    `low`/`high` are the search bounds, both None for a categorical. `hit_side` is the bound
    the best trial sits on (drawn in red); a plain "none"/"low"/"high" is converted.
    `best_objective` places the best trial's star; without it the best value is marked by a
    dotted vertical line.
    """

    name: str
    values: tuple[float | str, ...]
    objectives: tuple[float, ...]
    low: float | None = None
    high: float | None = None
    log: bool = False
    best_value: float | str | None = None
    hit_side: BoundarySide = BoundarySide.NONE
    best_objective: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(self.values))
        object.__setattr__(self, "objectives", tuple(self.objectives))
        object.__setattr__(self, "hit_side", _boundary_side(self.hit_side))
        if len(self.values) != len(self.objectives):
            raise ValueError(
                f"ParamPoints {self.name!r} has {len(self.values)} values and "
                f"{len(self.objectives)} objectives; allowed: the same number of each"
            )
        self._check_bounds()

    @property
    def categorical(self) -> bool:
        """Whether the parameter has no bounds, its values drawn as categories."""
        return self.low is None

    def _check_bounds(self) -> None:
        low, high, name = self.low, self.high, self.name
        if (low is None) != (high is None):
            raise ValueError(
                f"ParamPoints {name!r} bounds low={low!r}, high={high!r} are invalid; "
                "allowed: both None (categorical) or both numbers"
            )
        if low is not None and not low <= high:  # type: ignore[operator]
            raise ValueError(
                f"ParamPoints {name!r} bounds low={low!r}, high={high!r} are invalid; "
                "allowed: low <= high"
            )
        if self.log and (low is None or low <= 0):
            raise ValueError(
                f"ParamPoints {name!r} log=True with low={low!r} is invalid; allowed: low > 0"
            )
        if self.hit_side is not BoundarySide.NONE and low is None:
            raise ValueError(
                f"ParamPoints {name!r} hit_side={self.hit_side.value!r} is invalid for a "
                "categorical; allowed: 'none'"
            )
        if low is not None and any(isinstance(v, str) for v in self.values):
            raise ValueError(
                f"ParamPoints {name!r} has string values with numeric bounds; allowed: "
                "numbers, or low=high=None for a categorical"
            )


@dataclass(frozen=True)
class _Panel:
    """What one boundary-plot panel draws: finite points, categories, the best's position."""

    x: tuple[float | str, ...]
    y: tuple[float, ...]
    categories: tuple[str, ...]
    best_x: float | str | None


def boundary_plot(
    points: Sequence[ParamPoints], metric: str, title: str, path: Path
) -> tuple[go.Figure, ...]:
    """The tuning playbook's boundary plot: `metric` against each parameter, one panel each.

    Bounds are vertical lines (the one the best sits on in red), log parameters get a log
    x-axis, categoricals their categories; the best trial is a star. Points with a
    non-finite objective (or a non-positive value on a log axis) are left out; far outliers
    are left off the y-axis, counted in the panel's corner. The PNG has every panel, 3.2
    inches per row of three; the plotly figures have at most ``PANELS_PER_FIGURE`` each,
    titled "(1/3)", "(2/3)", ... when there are several.
    """
    if not points:
        return (_no_data(path, title),)
    panels = [_panel(p) for p in points]
    rows, cols = _grid(len(points))
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows), layout="constrained")
    fig.suptitle(title)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, p, panel in zip(axes, points, panels, strict=False):
        _draw_panel(ax, p, panel, metric)
    for ax in axes[len(points) :]:
        ax.set_visible(False)
    _save(fig, path)
    pages = range(0, len(points), PANELS_PER_FIGURE)
    return tuple(
        _boundary_figure(
            points[start : start + PANELS_PER_FIGURE],
            panels[start : start + PANELS_PER_FIGURE],
            metric,
            title if len(pages) == 1 else f"{title} ({number}/{len(pages)})",
        )
        for number, start in enumerate(pages, start=1)
    )


def funnel_plot(
    rows: Sequence[tuple[str, int, int, int]], path: Path, title: str = "trial funnel"
) -> go.Figure:
    """Trials started, pruned and complete per stage/round label, as horizontal bars."""
    rows = [_funnel_row(row) for row in rows]
    if not rows:
        return _no_data(path, title)
    labels = [row[0] for row in rows]
    fig = Figure(figsize=(7, 1.2 + 0.7 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    height = 0.8 / len(_SERIES)
    for k, (series, color) in enumerate(zip(_SERIES, _SERIES_COLORS, strict=True)):
        ys = [i + (k - 1) * height for i in range(len(rows))]
        bars = ax.barh(ys, [row[k + 1] for row in rows], height, label=series, color=color)
        ax.bar_label(bars, fontsize=8, padding=2)
    ax.set_yticks(range(len(rows)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("trials")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)  # clear of the bars
    _save(fig, path)
    plotly = go.Figure(layout={"title": title, "barmode": "group", "xaxis_title": "trials"})
    for k, series in enumerate(_SERIES):
        counts = [row[k + 1] for row in rows]
        plotly.add_trace(go.Bar(name=series, y=labels, x=counts, orientation="h", text=counts))
    plotly.update_yaxes(autorange="reversed", type="category")
    return plotly


def learning_curves_plot(
    curves: Mapping[str, Mapping[int, float]],
    metric: str,
    path: Path,
    reference: float | None = None,
    title: str = "learning curves",
    reference_name: str = "reference",
    highlight: Collection[str] = (),
) -> go.Figure:
    """`metric` against step per finalist (non-finite values and empty curves left out).

    `reference` (e.g. the baseline) is a dashed horizontal line named `reference_name`.
    Far outliers (a run that diverged) are left off the y-axis, and the plot says how many.
    Beyond `MAX_LABELLED_CURVES` curves only those in `highlight` (the finalists) keep a
    colour and a legend entry; the others are drawn faint under one entry (160 labelled
    curves pushed the axes out of the figure).
    """
    lines = {name: _finite_curve(curve) for name, curve in curves.items()}
    lines = {name: line for name, line in lines.items() if line}
    if not lines:
        return _no_data(path, title)
    values = [value for line in lines.values() for _, value in line]
    focus = focus_range(values, reference)
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    _draw_curves(ax, lines, highlight)
    if reference is not None:
        ax.axhline(reference, color="black", linestyle="--", label=reference_name)
    _label(ax, "step", metric, title)
    _focus_axes(ax, values, focus)
    ax.legend(fontsize=8)
    _save(fig, path)
    plotly = go.Figure(layout={"title": title, "xaxis_title": "step", "yaxis_title": metric})
    for name, line in lines.items():
        steps, points = zip(*line, strict=True)
        plotly.add_trace(go.Scatter(x=steps, y=points, mode="lines+markers", name=name))
    if reference is not None:
        plotly.add_hline(
            y=reference,
            line={"color": "black", "dash": "dash"},
            name=reference_name,
            annotation_text=reference_name,
            annotation_position="top left",
        )
    _focus_plotly(plotly, values, focus)
    return plotly


def _draw_curves(
    ax: Axes, lines: Mapping[str, list[tuple[int, float]]], highlight: Collection[str]
) -> None:
    if len(lines) <= MAX_LABELLED_CURVES:
        for name, line in lines.items():
            ax.plot(*zip(*line, strict=True), marker=".", label=name)
        return
    faint = [name for name in lines if name not in highlight]
    for index, name in enumerate(faint):
        label = f"{len(faint)} other trials" if index == 0 else None
        ax.plot(*zip(*lines[name], strict=True), color="grey", alpha=0.3, lw=0.8, label=label)
    for name in (name for name in lines if name in highlight):
        ax.plot(*zip(*lines[name], strict=True), marker=".", lw=1.8, label=name)


def period_comparison_plot(
    results: Mapping[str, Mapping[str, float]],
    metric: str,
    path: Path,
    title: str = "finalists by period",
    reference: Mapping[str, float] | None = None,
) -> go.Figure:
    """`metric` per finalist across periods, one line each, so a paired ranking shows;
    ``reference`` (the trivial predictor's value per period) dashed, for scale.

    Periods keep their first-seen order; a finalist missing a period (or with a
    non-finite value there) has a gap.
    """
    periods = list(dict.fromkeys(p for by_period in results.values() for p in by_period))
    if not periods:
        return _no_data(path, title)
    series = {
        name: [_finite_or_none(by_period.get(p)) for p in periods]
        for name, by_period in results.items()
    }
    width = min(MAX_PERIODS_WIDTH, max(6.0, 0.6 * len(periods)))
    fig = Figure(figsize=(width, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for name, values in series.items():
        ys = [math.nan if v is None else v for v in values]
        ax.plot(range(len(periods)), ys, marker="o", label=name)
    trivial = [_finite_or_none((reference or {}).get(p)) for p in periods]
    if any(v is not None for v in trivial):
        ys = [math.nan if v is None else v for v in trivial]
        ax.plot(range(len(periods)), ys, "--", color="grey", label=TRIVIAL_LABEL)
    ticks = [period_tick(p) for p in periods]
    ax.set_xticks(range(len(periods)), ticks, rotation=30, ha="right", fontsize=8)
    _label(ax, "period", metric, title)
    ax.legend(fontsize=8)
    _save(fig, path)
    plotly = go.Figure(layout={"title": title, "xaxis_title": "period", "yaxis_title": metric})
    for name, values in series.items():
        plotly.add_trace(go.Scatter(x=periods, y=values, mode="lines+markers", name=name))
    if any(v is not None for v in trivial):
        dashed = {"dash": "dash", "color": "grey"}
        trace = go.Scatter(x=periods, y=trivial, mode="lines", name=TRIVIAL_LABEL, line=dashed)
        plotly.add_trace(trace)
    plotly.update_xaxes(type="category", categoryorder="array", categoryarray=periods)
    return plotly


def best_step_histogram(fractions: Sequence[float], path: Path, title: str) -> go.Figure:
    """Histogram of best step / budget with the 10% and 75% lines (each fraction in [0, 1])."""
    fractions = [_fraction(f) for f in fractions]
    if not fractions:
        return _no_data(path, title)
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.hist(fractions, bins=_HIST_BINS, range=(0.0, 1.0), color="tab:blue", edgecolor="white")
    for at in (EARLY_FRACTION, LATE_FRACTION):
        ax.axvline(at, color=HIT_COLOR, linestyle="--", label=f"{at:.0%}")
    _label(ax, "best step / budget", "trials", title)
    ax.set_xlim(0.0, 1.0)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8)
    _save(fig, path)
    width = 1 / _HIST_BINS
    counts = histogram_counts(fractions, _HIST_BINS)
    plotly = go.Figure(
        go.Bar(
            x=[(i + 0.5) * width for i in range(_HIST_BINS)], y=counts, width=width, name="trials"
        ),
        layout={"title": title, "xaxis_title": "best step / budget", "yaxis_title": "trials"},
    )
    for at in (EARLY_FRACTION, LATE_FRACTION):
        plotly.add_vline(x=at, line={"color": HIT_COLOR, "dash": "dash"}, name=f"{at:.0%}")
    plotly.update_xaxes(range=[0.0, 1.0])
    return plotly


def histogram_counts(fractions: Sequence[float], bins: int) -> list[int]:
    """Counts of fractions in [0, 1] over equal bins, the last one closed as matplotlib's:
    a trial whose best step is its last (fraction 1.0) counts (plotly's own histogram left
    it out, and a round whose trials all peaked at the end showed an empty plot)."""
    counts = [0] * bins
    for fraction in fractions:
        counts[min(int(fraction * bins), bins - 1)] += 1
    return counts


def sweep_plot(
    points: Sequence[tuple[float, int | None]],
    max_steps: int,
    chosen: float | None,
    path: Path,
    title: str = "max_train_steps sweep",
    outpaced: Sequence[tuple[float, int]] = (),
    unstable: Collection[float] = (),
) -> go.Figure:
    """Steps to fit against learning rate (log x); unfitted rates sit at `max_steps`, rates
    stopped because another fitted sooner (`outpaced`: rate, step) at their stop, marked as
    needing more; rates that levelled off on a worse loss (`unstable`) hollow, apart from
    the fitted ones (drawn as fitted, the chosen rate read as the slowest).

    The `chosen` learning rate is a red star on its point, or a red vertical line when no
    point has that rate.
    """
    points = _sweep_points(points, max_steps, chosen)
    stopped = sorted(_sweep_points(outpaced, max_steps, None))
    if not points and not stopped:
        return _no_data(path, title)
    shaky = sorted((lr, s) for lr, s in points if s is not None and lr in unstable)
    fitted = sorted((lr, s) for lr, s in points if s is not None and lr not in unstable)
    unfitted = sorted(lr for lr, s in points if s is None)
    star = _chosen_point(points, max_steps, chosen)
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.set_xscale("log")
    if fitted:
        ax.plot(*zip(*fitted, strict=True), marker="o", label="fitted")
    if stopped:
        ax.plot(*zip(*stopped, strict=True), "^", color="grey", label=OUTPACED)
    if shaky:
        ax.plot(*zip(*shaky, strict=True), "o", mfc="none", color="grey", label=UNSTABLE)
    if unfitted:
        ax.plot(unfitted, [max_steps] * len(unfitted), "x", color="grey", label=DID_NOT_FIT)
    ax.axhline(max_steps, color="grey", linestyle=":", label=f"sweep budget {max_steps}")
    if star is not None:
        ax.plot(*star, "*", color=HIT_COLOR, markersize=16, label=f"chosen {chosen:g}")
    elif chosen is not None:
        ax.axvline(chosen, color=HIT_COLOR, label=f"chosen {chosen:g}")
    _label(ax, "learning rate", "steps to fit", title)
    ax.legend(fontsize=8)
    _save(fig, path)
    figure = _sweep_figure(fitted, unfitted, max_steps, chosen, star, title)
    if stopped:
        xs, ys = zip(*stopped, strict=True)
        figure.add_trace(_markers(xs, ys, OUTPACED, "triangle-up", 10, BOUND_COLOR))
    if shaky:
        xs, ys = zip(*shaky, strict=True)
        figure.add_trace(_markers(xs, ys, UNSTABLE, "circle-open", 10, BOUND_COLOR))
    return figure


def sweep_curves_plot(
    curves: Mapping[str, Mapping[int, float]],
    measured: int | None,
    path: Path,
    title: str = "max_train_steps sweep: training loss by learning rate",
    runs: int | None = None,
    runs_why: str = "the budget",
) -> go.Figure:
    """Each sweep trial's training loss against step (log y), the measured steps a red
    vertical line (where a fit threshold was reached or the loss stopped improving) and,
    where the runs' length differs (``runs_why``: a budget, the eval grid), a dashed one.
    The y axis stops at 100x the median loss: a rate that diverged at its first evaluation
    (795,275) flattened every other curve at the bottom."""
    lines = {name: _finite_curve(curve) for name, curve in curves.items()}
    lines = {name: line for name, line in lines.items() if line}
    if not lines:
        return _no_data(path, title)
    values = [value for line in lines.values() for _, value in line]
    positive = all(value > 0 for value in values)
    top = SWEEP_Y_RANGE * statistics.median(values) if positive else None
    top = top if top is not None and max(values) > top else None
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for name, line in lines.items():
        ax.plot(*zip(*line, strict=True), label=name)
    if positive:
        ax.set_yscale("log")
    if top is not None:
        ax.set_ylim(top=top)
    if measured is not None:
        ax.axvline(measured, color=HIT_COLOR, label=f"measured: {measured} steps")
    if runs is not None and runs != measured:
        label = f"runs: {runs} steps ({runs_why})"
        ax.axvline(runs, color=HIT_COLOR, linestyle="--", label=label)
    _label(ax, "step", "training loss", title)
    ax.legend(fontsize=8)
    _save(fig, path)
    plotly = go.Figure(layout={"title": title, "xaxis_title": "step", "yaxis_title": "loss"})
    for name, line in lines.items():
        steps, ys = zip(*line, strict=True)
        plotly.add_trace(go.Scatter(x=steps, y=ys, mode="lines", name=name))
    if positive:
        plotly.update_yaxes(type="log")
    if top is not None:
        plotly.update_yaxes(range=[math.log10(min(values)), math.log10(top)])
    if measured is not None:
        plotly.add_vline(x=measured, line={"color": HIT_COLOR}, name="measured")
    if runs is not None and runs != measured:
        plotly.add_vline(x=runs, line={"color": HIT_COLOR, "dash": "dash"}, name="runs")
    return plotly


def table_figure(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> go.Figure:
    """A table as a plotly figure, for a dashboard page whose own panels cannot show it
    (the re-evaluation's finalists, whose hyperparameters are no Optuna params)."""
    if not rows:
        return _no_data_figure(title)
    columns = [[str(row[i]) for row in rows] for i in range(len(header))]
    table = go.Table(
        header={"values": list(header), "align": "left", "font": {"size": 11}},
        cells={"values": columns, "align": "left", "font": {"size": 11}},
    )
    return go.Figure(
        table,
        layout={"title": title, "height": DASHBOARD_HEIGHT, "margin": {"l": 10, "r": 10}},
    )


# --- boundary plot ------------------------------------------------------------------------


def _boundary_side(side: BoundarySide | str) -> BoundarySide:
    if isinstance(side, BoundarySide):
        return side
    try:
        return BoundarySide(side)
    except ValueError:
        allowed = ", ".join(repr(s.value) for s in BoundarySide)
        raise ValueError(f"hit_side={side!r} is invalid; allowed: {allowed}") from None


def _panel(p: ParamPoints) -> _Panel:
    pairs = [(v, y) for v, y in zip(p.values, p.objectives, strict=True) if math.isfinite(y)]
    if p.categorical:
        categories = _categories(p.values)
        best = None if p.best_value is None else str(p.best_value)
        return _Panel(tuple(str(v) for v, _ in pairs), _ys(pairs), categories, best)
    pairs = [(float(v), y) for v, y in pairs if _plottable(float(v), p.log)]
    best = p.best_value
    best = float(best) if best is not None and _plottable(float(best), p.log) else None
    return _Panel(tuple(v for v, _ in pairs), _ys(pairs), (), best)


def _categories(values: Sequence[float | str]) -> tuple[str, ...]:
    """Distinct values as labels: sorted when all numbers or all strings, else first-seen."""
    distinct = list(dict.fromkeys(values))
    if all(isinstance(v, int | float) for v in distinct) or all(
        isinstance(v, str) for v in distinct
    ):
        distinct.sort()
    return tuple(dict.fromkeys(str(v) for v in distinct))


def _ys(pairs: Sequence[tuple[float | str, float]]) -> tuple[float, ...]:
    return tuple(float(y) for _, y in pairs)


def _plottable(value: float, log: bool) -> bool:
    return math.isfinite(value) and (value > 0 or not log)


def _grid(count: int) -> tuple[int, int]:
    cols = min(_MAX_COLUMNS, count)
    return math.ceil(count / cols), cols


def _bounds(p: ParamPoints) -> list[tuple[str, float, bool]]:
    """(name, position, hit) of each search bound of a numeric parameter."""
    if p.categorical:
        return []
    return [
        ("low bound", float(p.low), p.hit_side is BoundarySide.LOW),  # type: ignore[arg-type]
        ("high bound", float(p.high), p.hit_side is BoundarySide.HIGH),  # type: ignore[arg-type]
    ]


def _draw_panel(ax: Axes, p: ParamPoints, panel: _Panel, metric: str) -> None:
    index = {c: i for i, c in enumerate(panel.categories)}
    xs = [index[x] for x in panel.x] if p.categorical else list(panel.x)
    ax.plot(xs, panel.y, "o", markersize=3, alpha=0.5, color="tab:blue")
    if p.categorical:
        ax.set_xticks(range(len(panel.categories)), panel.categories, rotation=30, ha="right")
    elif p.log:
        ax.set_xscale("log")
    for _, at, hit in _bounds(p):
        style = {"color": HIT_COLOR, "linewidth": 2} if hit else {"color": BOUND_COLOR}
        ax.axvline(at, linestyle="-" if hit else "--", **style)
    best_x = index.get(panel.best_x) if p.categorical else panel.best_x  # type: ignore[arg-type]
    if best_x is not None and p.best_objective is not None:
        ax.plot(best_x, p.best_objective, "*", color=BEST_COLOR, markersize=14, mec="black")
    elif best_x is not None:
        ax.axvline(best_x, color=BEST_COLOR, linestyle=":")
    if p.log and not p.categorical:
        ax.xaxis.set_minor_formatter(NullFormatter())  # 2x10^1, 3x10^1, ... overlap
    _focus_axes(ax, panel.y, focus_range(panel.y, p.best_objective))
    hit = "" if p.hit_side is BoundarySide.NONE else f" (best on {p.hit_side.value} bound)"
    ax.set_title(p.name + hit, color=HIT_COLOR if hit else "black", fontsize=10)
    ax.set_ylabel(metric)


def _focus_axes(ax: Axes, ys: Sequence[float], focus: tuple[float, float] | None) -> None:
    """Limit the y-axis to `focus` (if any), saying in the corner what it left out."""
    if focus is None:
        return
    ax.set_ylim(*focus)
    text = off_axis_text(ys, focus)
    if text:
        style = {"ha": "right", "va": "top", "fontsize": 8, "color": "gray"}
        ax.annotate(text, (0.99, 0.98), xycoords="axes fraction", **style)


def _focus_plotly(
    fig: go.Figure, ys: Sequence[float], focus: tuple[float, float] | None, suffix: str = ""
) -> None:
    """The plotly twin of `_focus_axes` for the axes numbered `suffix` ("" is the first)."""
    if focus is None:
        return
    fig.update_layout({f"yaxis{suffix}": {"range": list(focus)}})
    text = off_axis_text(ys, focus)
    if text:
        fig.add_annotation(
            text=text,
            x=1,
            y=1,
            xref=f"x{suffix} domain",
            yref=f"y{suffix} domain",
            xanchor="right",
            yanchor="top",
            showarrow=False,
            font={"size": 10, "color": "gray"},
            name=OFF_AXIS,
        )


def off_axis_text(ys: Sequence[float], focus: tuple[float, float]) -> str:
    """E.g. "2 off the axis (e.g. 80.1)": the points a focused y-range leaves out, if any."""
    outside = [y for y in ys if not focus[0] <= y <= focus[1]]
    if not outside:
        return ""
    middle = (focus[0] + focus[1]) / 2
    farthest = max(outside, key=lambda y: abs(y - middle))
    return f"{len(outside)} {OFF_AXIS} (e.g. {farthest:.3g})"


def focus_range(ys: Sequence[float], keep: float | None = None) -> tuple[float, float] | None:
    """A y-range that leaves far outliers (diverged runs) off the plot, or None if none.

    Outliers lie beyond Tukey's far fences (quartiles -/+ 3 IQR); the range spans the points
    within them and ``keep`` (the best trial's value), with a 5% margin.
    """
    if len(ys) < 4:
        return None
    ordered = sorted(ys)
    q1, q3 = ordered[len(ordered) // 4], ordered[(3 * len(ordered)) // 4]
    low_fence, high_fence = q1 - 3 * (q3 - q1), q3 + 3 * (q3 - q1)
    inside = [y for y in ordered if low_fence <= y <= high_fence]
    if len(inside) == len(ordered):
        return None
    kept = inside if keep is None else [*inside, keep]
    low, high = min(kept), max(kept)
    margin = 0.05 * ((high - low) or abs(high) or 1.0)
    return low - margin, high + margin


def _boundary_figure(
    points: Sequence[ParamPoints], panels: Sequence[_Panel], metric: str, title: str
) -> go.Figure:
    """One dashboard card's panels, 2 per row: each x-axis titled with its parameter (red
    when the best sits on a bound), the metric named once per row, the height the card's."""
    cols = min(_DASHBOARD_COLUMNS, len(points))
    rows = math.ceil(len(points) / cols)
    fig = make_subplots(
        rows=rows, cols=cols, horizontal_spacing=0.14, vertical_spacing=0.3 if rows > 1 else 0.1
    )
    fig.update_layout(
        title={"text": title, "font": {"size": 14}},
        showlegend=False,
        height=DASHBOARD_HEIGHT,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
    )
    for i, (p, panel) in enumerate(zip(points, panels, strict=True)):
        row, col = divmod(i, cols)
        cell = {"row": row + 1, "col": col + 1}
        fig.add_trace(_trials_trace(p, panel), **cell)
        if panel.best_x is not None and p.best_objective is not None:
            best = _markers([panel.best_x], [p.best_objective], f"{p.name} best", "star", 14)
            fig.add_trace(best, **cell)
        _add_bound_shapes(fig, i, p, panel)
        hit = p.hit_side is not BoundarySide.NONE
        fig.update_xaxes(
            title={
                "text": p.name + (f" (best on {p.hit_side.value} bound)" if hit else ""),
                "font": {"size": 11, "color": HIT_COLOR if hit else "black"},
                "standoff": 4,
            },
            tickfont={"size": 9},
            **_plotly_axis(p, panel),
            **cell,
        )
        fig.update_yaxes(
            title={"text": metric if col == 0 else "", "font": {"size": 11}},
            tickfont={"size": 9},
            **cell,
        )
        suffix = "" if i == 0 else str(i + 1)
        _focus_plotly(fig, panel.y, focus_range(panel.y, p.best_objective), suffix)
    return fig


def _trials_trace(p: ParamPoints, panel: _Panel) -> go.Scatter:
    return go.Scatter(
        x=list(panel.x),
        y=list(panel.y),
        mode="markers",
        name=p.name,
        marker={"size": 5, "opacity": 0.5, "color": "#1f77b4"},
    )


def _plotly_axis(p: ParamPoints, panel: _Panel) -> dict[str, object]:
    if p.categorical:
        return {"type": "category", "categoryorder": "array", "categoryarray": panel.categories}
    return {"type": "log" if p.log else "linear"}


def _add_bound_shapes(fig: go.Figure, index: int, p: ParamPoints, panel: _Panel) -> None:
    """Vertical lines spanning panel `index` (subplot axes are numbered row-major)."""
    suffix = "" if index == 0 else str(index + 1)
    lines = [(name, at, HIT_COLOR if hit else BOUND_COLOR) for name, at, hit in _bounds(p)]
    if panel.best_x is not None and p.best_objective is None:
        lines.append(("best", panel.best_x, BEST_COLOR))
    for name, at, color in lines:
        fig.add_shape(
            type="line",
            name=name,
            x0=at,
            x1=at,
            y0=0,
            y1=1,
            xref=f"x{suffix}",
            yref=f"y{suffix} domain",
            line={"color": color, "width": 2 if color == HIT_COLOR else 1, "dash": "solid"},
        )


# --- other plots ----------------------------------------------------------------------------


def _funnel_row(row: tuple[str, int, int, int]) -> tuple[str, int, int, int]:
    if len(row) != 4:
        raise ValueError(
            f"funnel row {row!r} has {len(row)} fields; allowed: "
            "(label, started, pruned, complete)"
        )
    label, *counts = row
    for count in counts:
        if not _is_int(count) or count < 0:
            raise ValueError(f"funnel row {row!r} has count {count!r}; allowed: an int >= 0")
    return (str(label), *counts)  # type: ignore[return-value]


def _finite_curve(curve: Mapping[int, float]) -> list[tuple[int, float]]:
    return sorted((step, value) for step, value in curve.items() if math.isfinite(value))


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _fraction(value: float) -> float:
    if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
        raise ValueError(f"best-step fraction {value!r} is invalid; allowed: a number in [0, 1]")
    return float(value)


def _sweep_points(
    points: Sequence[tuple[float, int | None]], max_steps: int, chosen: float | None
) -> list[tuple[float, int | None]]:
    if not _is_int(max_steps) or max_steps < 1:
        raise ValueError(f"sweep max_steps={max_steps!r} is invalid; allowed: an int >= 1")
    if chosen is not None and not (math.isfinite(chosen) and chosen > 0):
        raise ValueError(f"sweep chosen={chosen!r} is invalid; allowed: None or a rate > 0")
    checked = []
    for point in points:
        if len(point) != 2:
            raise ValueError(
                f"sweep point {point!r} has {len(point)} fields; allowed: "
                "(learning_rate, steps_to_fit or None)"
            )
        lr, steps = point
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"sweep learning rate {lr!r} is invalid; allowed: > 0")
        if steps is not None and not (_is_int(steps) and 1 <= steps <= max_steps):
            raise ValueError(
                f"sweep steps_to_fit={steps!r} is invalid; allowed: None or an int in "
                f"[1, max_steps={max_steps}]"
            )
        checked.append((float(lr), steps))
    return checked


def _chosen_point(
    points: Sequence[tuple[float, int | None]], max_steps: int, chosen: float | None
) -> tuple[float, int] | None:
    """Where the chosen rate's star goes: its point (unfitted at `max_steps`), if any."""
    if chosen is None:
        return None
    for lr, steps in points:
        if math.isclose(lr, chosen, rel_tol=1e-9):
            return lr, max_steps if steps is None else steps
    return None


def _sweep_figure(
    fitted: Sequence[tuple[float, int]],
    unfitted: Sequence[float],
    max_steps: int,
    chosen: float | None,
    star: tuple[float, int] | None,
    title: str,
) -> go.Figure:
    fig = go.Figure(
        layout={"title": title, "xaxis_title": "learning rate", "yaxis_title": "steps to fit"}
    )
    if fitted:
        xs, ys = zip(*fitted, strict=True)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name="fitted"))
    if unfitted:
        ys = [max_steps] * len(unfitted)
        fig.add_trace(_markers(unfitted, ys, DID_NOT_FIT, "x", 10, BOUND_COLOR))
    fig.add_hline(y=max_steps, line={"color": BOUND_COLOR, "dash": "dot"}, name="sweep budget")
    if star is not None:
        fig.add_trace(_markers([star[0]], [star[1]], f"chosen {chosen:g}", "star", 16, HIT_COLOR))
    elif chosen is not None:
        fig.add_vline(x=chosen, line={"color": HIT_COLOR}, name=f"chosen {chosen:g}")
    fig.update_xaxes(type="log")
    return fig


# --- shared helpers --------------------------------------------------------------------------

TRIVIAL_LABEL = "trivial predictor"
MAX_LABELLED_CURVES = 10  # beyond, only highlighted curves get a colour and a legend entry
MAX_PERIODS_WIDTH = 14.0  # inches: 20 periods of 60-character names collapsed the axes
MAX_TICK_CHARS = 28  # "tuning period (its own run)" whole


def period_tick(name: str) -> str:
    """A period's name short enough for a tick: a date range's validation part (what
    differs between periods), cut to ``MAX_TICK_CHARS``."""
    _, validate, validation = name.partition(" validate ")
    short = validation if validate else name
    return short if len(short) <= MAX_TICK_CHARS else short[: MAX_TICK_CHARS - 1] + "…"


def _markers(
    x: Sequence[float | str],
    y: Sequence[float],
    name: str,
    symbol: str,
    size: int,
    color: str = BEST_COLOR,
) -> go.Scatter:
    marker = {"symbol": symbol, "size": size, "color": color}
    return go.Scatter(x=list(x), y=list(y), mode="markers", name=name, marker=marker)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _label(ax: Axes, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)


def _save(fig: Figure, path: Path) -> None:
    """Render `fig` to a PNG at `path` with the Agg canvas (no pyplot, no display)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, format="png", dpi=_DPI)


def _no_data(path: Path, title: str) -> go.Figure:
    """A small PNG saying "no data", and a trace-less figure with the same annotation."""
    fig = Figure(figsize=(4, 2))
    fig.text(0.5, 0.5, NO_DATA, ha="center", va="center", fontsize=16, color="grey")
    fig.suptitle(title)
    _save(fig, path)
    return _no_data_figure(title)


def _no_data_figure(title: str) -> go.Figure:
    plotly = go.Figure(layout={"title": title})
    plotly.add_annotation(text=NO_DATA, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False)
    return plotly
