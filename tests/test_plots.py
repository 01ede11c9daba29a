"""Report figures (PNG + plotly) and their saving into optuna-dashboard."""

from __future__ import annotations

from collections.abc import Callable
import math
from pathlib import Path
import re
import time
import warnings

import numpy as np
import optuna
import optuna_dashboard
import plotly.graph_objects as go
import pytest

from autotune.analysis import BoundarySide
from autotune.report._plots import BEST_COLOR
from autotune.report._plots import DASHBOARD_HEIGHT
from autotune.report._plots import DID_NOT_FIT
from autotune.report._plots import HIT_COLOR
from autotune.report._plots import NO_DATA
from autotune.report._plots import OFF_AXIS
from autotune.report._plots import OUTPACED
from autotune.report._plots import PANELS_PER_FIGURE
from autotune.report._plots import UNSTABLE
from autotune.report._plots import ParamPoints
from autotune.report._plots import best_step_histogram
from autotune.report._plots import boundary_plot
from autotune.report._plots import focus_range
from autotune.report._plots import funnel_plot
from autotune.report._plots import learning_curves_plot
from autotune.report._plots import period_comparison_plot
from autotune.report._plots import period_tick
from autotune.report._plots import sweep_curves_plot
from autotune.report._plots import sweep_plot
from autotune.report._plots import table_figure

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _assert_png(path: Path, min_bytes: int = 1024) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > min_bytes


def _shapes(fig: go.Figure, name: str) -> list:
    return [s for s in fig.layout.shapes if s.name == name]


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height in pixels, from the PNG's IHDR chunk."""
    data = path.read_bytes()
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _off_axis(fig: go.Figure) -> list[str]:
    return [a.text for a in fig.layout.annotations if a.name == OFF_AXIS]


def _lr_points() -> ParamPoints:
    rng = np.random.default_rng(0)
    values = tuple(float(v) for v in 10 ** rng.uniform(-4, -1, 30))
    return ParamPoints(
        name="learning_rate",
        values=values,
        objectives=tuple(float(-math.log10(v)) for v in values),
        low=1e-4,
        high=1e-1,
        log=True,
        best_value=values[0],
        hit_side="low",
        best_objective=-math.log10(values[0]),
    )


def _optimizer_points() -> ParamPoints:
    return ParamPoints(
        name="optimizer",
        values=("adam", "sgd", "adam", "lion"),
        objectives=(0.5, 0.7, 0.4, float("nan")),
        best_value="adam",
        best_objective=0.4,
    )


def test_param_points_converts_hit_side_and_rejects_mismatched_lengths() -> None:
    assert _lr_points().hit_side is BoundarySide.LOW
    with pytest.raises(ValueError, match="3 values and 2 objectives"):
        ParamPoints("x", (1.0, 2.0, 3.0), (0.1, 0.2), low=0.0, high=4.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"low": 0.0, "high": None}, "both None"),
        ({"low": 2.0, "high": 1.0}, "low <= high"),
        ({"low": 0.0, "high": 1.0, "log": True}, "low > 0"),
        ({"hit_side": "high"}, "categorical"),
        ({"low": 0.0, "high": 1.0, "hit_side": "middle"}, "'none', 'low', 'high'"),
    ],
)
def test_param_points_rejects_invalid_bounds(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ParamPoints("x", (0.5,), (1.0,), **kwargs)


def test_boundary_plot_draws_bounds_log_axis_categories_and_best(tmp_path: Path) -> None:
    path = tmp_path / "plots" / "boundary.png"
    (fig,) = boundary_plot([_lr_points(), _optimizer_points()], "loss", "stage 1", path)
    _assert_png(path)
    trials = [t for t in fig.data if t.name in ("learning_rate", "optimizer")]
    assert [len(t.x) for t in trials] == [30, 3]  # the nan objective is left out
    stars = [t for t in fig.data if t.name.endswith(" best")]
    assert [t.marker.color for t in stars] == [BEST_COLOR, BEST_COLOR]
    (low,) = _shapes(fig, "low bound")
    (high,) = _shapes(fig, "high bound")
    assert (low.x0, low.line.color, high.x0, high.line.color) == (1e-4, HIT_COLOR, 1e-1, "grey")
    assert fig.layout.xaxis.type == "log"
    assert fig.layout.xaxis2.type == "category"
    assert list(fig.layout.xaxis2.categoryarray) == ["adam", "lion", "sgd"]


def test_the_y_axis_leaves_diverged_runs_off_but_keeps_the_best() -> None:
    losses = [0.06, 0.07, 0.08, 0.09, 0.1, 0.11, 0.3, 2.2, 2.3]
    low, high = focus_range(losses)  # type: ignore[misc]
    assert low < 0.06 and 0.3 < high < 2.2  # 0.3 is within the far fence, 2.2 beyond
    assert focus_range([0.1, 0.2, 0.3, 0.4]) is None  # no outlier: matplotlib's own range
    assert focus_range([1.0, 1.0, 1.0, 1.0, 9.0], keep=9.0)[1] > 9.0  # type: ignore[index]
    assert focus_range([0.5, 0.6]) is None  # too few points to call any an outlier


def test_boundary_plot_without_best_objective_marks_best_value_line(tmp_path: Path) -> None:
    points = ParamPoints("dropout", (0.1, 0.2, 0.3), (1.0, 0.9, 1.1), 0.0, 0.5, best_value=0.2)
    (fig,) = boundary_plot([points], "loss", "stage", tmp_path / "b.png")
    (best,) = _shapes(fig, "best")
    assert best.x0 == 0.2
    assert {s.line.color for s in _shapes(fig, "low bound") + _shapes(fig, "high bound")} == {
        "grey"
    }


def test_boundary_plot_renders_2000_trials_by_10_params_quickly(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    objectives = tuple(float(v) for v in rng.normal(size=2000))
    points = [
        ParamPoints(f"p{i}", tuple(float(v) for v in rng.uniform(1, 2, 2000)), objectives, 1, 2)
        for i in range(10)
    ]
    start = time.perf_counter()
    figures = boundary_plot(points, "loss", "large", tmp_path / "large.png")
    assert time.perf_counter() - start < 10
    _assert_png(tmp_path / "large.png")
    assert sum(len(t.x) for fig in figures for t in fig.data) == 20_000


def _numbered_points(count: int) -> list[ParamPoints]:
    rng = np.random.default_rng(2)
    objectives = tuple(float(v) for v in rng.uniform(0.1, 0.3, 20))
    return [
        ParamPoints(f"p{i}", tuple(float(v) for v in rng.uniform(1, 2, 20)), objectives, 1, 2)
        for i in range(count)
    ]


def test_the_boundary_plot_fits_the_dashboard_card_and_the_png_grows_with_its_rows(
    tmp_path: Path,
) -> None:
    """optuna-dashboard clips a figure at its card's height: 9 panels in one 960-pixel
    figure showed 5 of them. Each figure has at most 4 panels and asks for the card's
    height; the PNG (the note's image) is as tall as its rows need."""
    figures = boundary_plot(_numbered_points(9), "loss", "round 1", tmp_path / "nine.png")
    assert [f.layout.title.text for f in figures] == [
        "round 1 (1/3)",
        "round 1 (2/3)",
        "round 1 (3/3)",
    ]
    panels = [[t.name for t in f.data if not t.name.endswith(" best")] for f in figures]
    assert panels == [["p0", "p1", "p2", "p3"], ["p4", "p5", "p6", "p7"], ["p8"]]
    assert all(len(p) <= PANELS_PER_FIGURE for p in panels)
    assert all(f.layout.height <= DASHBOARD_HEIGHT for f in figures)
    boundary_plot(_numbered_points(3), "loss", "one row", tmp_path / "three.png")
    nine, three = _png_size(tmp_path / "nine.png"), _png_size(tmp_path / "three.png")
    assert nine[0] == three[0] and nine[1] == pytest.approx(3 * three[1], rel=0.05)


def test_a_diverged_run_is_left_off_the_axis_and_the_plot_says_so(tmp_path: Path) -> None:
    values = tuple(float(v) for v in np.linspace(1.0, 2.0, 12))
    objectives = (*np.linspace(0.1, 0.3, 11), 80.0)
    points = ParamPoints("x", values, tuple(float(o) for o in objectives), 1.0, 2.0)
    (fig,) = boundary_plot([points], "loss", "t", tmp_path / "b.png")
    low, high = fig.layout.yaxis.range
    assert low < 0.1 and 0.3 < high < 1.0
    assert _off_axis(fig) == ["1 off the axis (e.g. 80)"]

    curves = {"a": {10: 0.3, 20: 0.2, 30: 0.1}, "b": {10: 0.3, 20: 0.25, 30: 0.2, 40: 95.0}}
    fig = learning_curves_plot(curves, "loss", tmp_path / "c.png")
    assert fig.layout.yaxis.range[1] < 1.0
    assert _off_axis(fig) == ["1 off the axis (e.g. 95)"]
    no_outlier = learning_curves_plot({"a": {1: 0.3, 2: 0.2}}, "loss", tmp_path / "d.png")
    assert no_outlier.layout.yaxis.range is None and _off_axis(no_outlier) == []


def test_a_table_figure_has_one_column_per_header() -> None:
    fig = table_figure("finalists", ["hyperparameter", "#0", "#2"], [["lr", "0.1", "0.2"]])
    (table,) = fig.data
    assert list(table.header.values) == ["hyperparameter", "#0", "#2"]
    assert [list(c) for c in table.cells.values] == [["lr"], ["0.1"], ["0.2"]]
    assert fig.layout.height <= DASHBOARD_HEIGHT
    assert [a.text for a in table_figure("empty", ["a"], []).layout.annotations] == [NO_DATA]


def test_funnel_plot_has_one_bar_trace_per_count(tmp_path: Path) -> None:
    rows = [("stage 1", 100, 60, 38), ("stage 2 round 1", 20, 5, 15)]
    fig = funnel_plot(rows, tmp_path / "funnel.png")
    _assert_png(tmp_path / "funnel.png")
    assert [t.name for t in fig.data] == ["started", "pruned", "complete"]
    assert [list(t.x) for t in fig.data] == [[100, 20], [60, 5], [38, 15]]
    assert all(list(t.y) == ["stage 1", "stage 2 round 1"] for t in fig.data)


@pytest.mark.parametrize(
    ("row", "message"), [(("s", 1, 0), "3 fields"), (("s", 1, -1, 0), "count -1")]
)
def test_funnel_plot_rejects_bad_rows(tmp_path: Path, row: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        funnel_plot([row], tmp_path / "funnel.png")


def test_learning_curves_plot_sorts_steps_and_draws_reference(tmp_path: Path) -> None:
    curves = {"a": {200: 0.5, 100: 0.8, 300: float("nan")}, "b": {100: 0.9}, "empty": {}}
    fig = learning_curves_plot(curves, "loss", tmp_path / "curves.png", reference=0.7)
    _assert_png(tmp_path / "curves.png")
    assert [(t.name, list(t.x), list(t.y)) for t in fig.data] == [
        ("a", [100, 200], [0.8, 0.5]),
        ("b", [100], [0.9]),
    ]
    (reference,) = _shapes(fig, "reference")
    assert reference.y0 == reference.y1 == 0.7


def test_period_comparison_plot_pairs_finalists_across_periods(tmp_path: Path) -> None:
    results = {"A": {"2019": 1.0, "2020": 2.0}, "B": {"2020": 3.0, "2021": 4.0}}
    fig = period_comparison_plot(results, "mse", tmp_path / "periods.png")
    _assert_png(tmp_path / "periods.png")
    assert [(t.name, list(t.x), list(t.y)) for t in fig.data] == [
        ("A", ["2019", "2020", "2021"], [1.0, 2.0, None]),
        ("B", ["2019", "2020", "2021"], [None, 3.0, 4.0]),
    ]


def test_the_period_plot_draws_the_trivial_predictor_and_fits_long_period_names(
    tmp_path: Path,
) -> None:
    """20 date-range periods of 60 characters collapsed the axes (a matplotlib warning)."""
    names = [f"2004-08-19..2007-{m:02d}-01 validate 2007-{m:02d}-02..2007-{m:02d}-20" for m in
             range(1, 13)] + ["tuning"]  # fmt: skip
    results = {"A": {n: 1.0 + i for i, n in enumerate(names)}}
    reference = {n: 2.0 for n in names[:-1]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = period_comparison_plot(results, "mse", tmp_path / "p.png", reference=reference)
    _assert_png(tmp_path / "p.png")
    trivial = fig.data[-1]
    assert trivial.name == "trivial predictor" and trivial.line.dash == "dash"
    assert list(trivial.y) == [2.0] * 12 + [None]
    assert period_tick(names[0]) == "2007-01-02..2007-01-20" and period_tick("tuning") == "tuning"
    assert period_tick("x" * 40) == "x" * 27 + "…"


def test_many_learning_curves_keep_the_axes_and_colour_only_the_finalists(
    tmp_path: Path,
) -> None:
    """160 labelled curves pushed the axes out of the figure (a matplotlib warning)."""
    curves = {f"trial {k}": {s: 1.0 / (s + k) for s in range(10, 210, 10)} for k in range(160)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = learning_curves_plot(
            curves, "loss", tmp_path / "lc.png", 0.5, highlight={"trial 3", "trial 7"}
        )
    _assert_png(tmp_path / "lc.png")
    assert len(fig.data) == 160  # the interactive figure keeps every curve, each named


def test_best_step_histogram_bins_the_fractions_with_10_and_75_percent_lines(
    tmp_path: Path,
) -> None:
    fractions = [0.02, 0.12, 0.5, 0.8, 1.0, 1.0]
    fig = best_step_histogram(fractions, tmp_path / "hist.png", "best steps")
    _assert_png(tmp_path / "hist.png")
    (histogram,) = fig.data
    counts = dict(zip((round(x, 3) for x in histogram.x), histogram.y, strict=True))
    assert sum(counts.values()) == 6  # a best step at the budget's end counts too
    assert (counts[0.025], counts[0.125], counts[0.525], counts[0.825], counts[0.975]) == (
        1,
        1,
        1,
        1,
        2,
    )
    assert [s.x0 for s in fig.layout.shapes] == [0.1, 0.75]


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan")])
def test_best_step_histogram_rejects_fractions_outside_0_1(tmp_path: Path, bad: float) -> None:
    with pytest.raises(ValueError, match="allowed: a number in"):
        best_step_histogram([0.5, bad], tmp_path / "hist.png", "t")


def test_sweep_plot_marks_unfitted_at_the_top_and_the_chosen_rate(tmp_path: Path) -> None:
    points = [(1e-3, 800), (1e-2, 300), (1e-1, None), (1e-4, None), (3e-2, 500)]
    fig = sweep_plot(points, 1000, 1e-2, tmp_path / "sweep.png")
    _assert_png(tmp_path / "sweep.png")
    traces = {t.name: t for t in fig.data}
    assert list(traces["fitted"].x) == [1e-3, 1e-2, 3e-2]
    assert list(traces[DID_NOT_FIT].x) == [1e-4, 1e-1]
    assert list(traces[DID_NOT_FIT].y) == [1000, 1000]
    chosen = traces["chosen 0.01"]
    assert (list(chosen.x), list(chosen.y), chosen.marker.color) == ([1e-2], [300], HIT_COLOR)
    assert fig.layout.xaxis.type == "log"


def test_sweep_plot_draws_rates_stopped_by_a_faster_one_at_their_stop(tmp_path: Path) -> None:
    outpaced = [(1.0, 160), (1e-3, 160)]
    fig = sweep_plot([(5e-3, 160)], 1000, 5e-3, tmp_path / "sweep.png", outpaced=outpaced)
    _assert_png(tmp_path / "sweep.png")
    stopped = {t.name: t for t in fig.data}[OUTPACED]
    assert (list(stopped.x), list(stopped.y)) == ([1e-3, 1.0], [160, 160])
    assert stopped.marker.symbol == "triangle-up"
    with pytest.raises(ValueError, match="sweep steps_to_fit=2000 is invalid"):
        sweep_plot([], 1000, None, tmp_path / "bad.png", outpaced=[(1e-3, 2000)])


def test_sweep_plot_draws_a_chosen_rate_off_the_grid_as_a_line(tmp_path: Path) -> None:
    fig = sweep_plot([(1e-3, None)], 100, 5e-3, tmp_path / "sweep.png")
    (line,) = _shapes(fig, "chosen 0.005")
    assert line.x0 == 5e-3


@pytest.mark.parametrize(
    ("points", "max_steps", "chosen", "message"),
    [
        ([(1e-3, 101)], 100, None, "steps_to_fit=101"),
        ([(0.0, 5)], 100, None, "learning rate 0.0"),
        ([(1e-3, 5)], 0, None, "max_steps=0"),
        ([(1e-3, 5)], 100, -1.0, "chosen=-1.0"),
        ([(1e-3,)], 100, None, "1 fields"),
    ],
)
def test_sweep_plot_rejects_invalid_points(
    tmp_path: Path, points: list, max_steps: int, chosen: float | None, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        sweep_plot(points, max_steps, chosen, tmp_path / "sweep.png")


EMPTY_CALLS: dict[str, Callable[[Path], go.Figure]] = {
    "boundary": lambda p: boundary_plot([], "loss", "t", p)[0],
    "funnel": lambda p: funnel_plot([], p),
    "curves": lambda p: learning_curves_plot({"a": {}}, "loss", p, reference=1.0),
    "periods": lambda p: period_comparison_plot({"A": {}}, "loss", p),
    "histogram": lambda p: best_step_histogram([], p, "t"),
    "sweep": lambda p: sweep_plot([], 100, None, p),
}


@pytest.mark.parametrize("name", sorted(EMPTY_CALLS))
def test_empty_inputs_write_a_no_data_png(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    fig = EMPTY_CALLS[name](path)
    _assert_png(path, min_bytes=100)
    assert len(fig.data) == 0
    assert [a.text for a in fig.layout.annotations] == [NO_DATA]


def test_figures_and_notes_save_into_an_optuna_study(tmp_path: Path) -> None:
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage)
    fig = funnel_plot([("stage 1", 3, 1, 2)], tmp_path / "funnel.png")
    graph_id = optuna_dashboard.save_plotly_graph_object(study, fig, graph_object_id="funnel")
    optuna_dashboard.save_note(study, "# Report\n\n![funnel](funnel.png)")
    assert graph_id == "funnel"
    attrs = storage.get_study_system_attrs(storage.get_study_id_from_name(study.study_name))
    assert any(key.startswith("dashboard:plot_data:funnel:") for key in attrs)
    assert any("Report" in str(value) for value in attrs.values())


def test_the_sweep_curves_show_the_measure_and_the_runs_length_below_a_diverged_start(
    tmp_path: Path,
) -> None:
    """A rate at 795,275 at its first evaluation flattened the others on the log axis, and
    the red line read "max_train_steps 1000" under a caption calling it the measured 110."""
    curves = {
        "lr 1": {10: 795_275.0, 20: 40.0, 30: 17.0, 40: 9.0},
        "lr 0.1": {10: 1.2, 20: 0.9, 30: 0.8, 40: 0.79},
        "lr 0.01": {10: 1.3, 20: 1.1, 30: 1.0, 40: 0.95},
    }
    path = tmp_path / "curves.png"
    figure = sweep_curves_plot(curves, 30, path, runs=1000)
    assert path.stat().st_size > 0
    assert figure.layout.yaxis.type == "log"
    low, high = figure.layout.yaxis.range
    assert high < math.log10(795_275.0) and 10**high >= 40.0  # the spike off the top only
    lines = [shape for shape in figure.layout.shapes if shape.type == "line"]
    assert sorted(shape.x0 for shape in lines) == [30, 1000]
    unclipped = sweep_curves_plot({"lr 0.1": curves["lr 0.1"]}, 30, tmp_path / "b.png", runs=30)
    assert unclipped.layout.yaxis.range is None
    assert len([s for s in unclipped.layout.shapes if s.type == "line"]) == 1


def test_the_sweep_plot_draws_unstable_rates_apart_from_the_fitted_ones(tmp_path: Path) -> None:
    """Rates that levelled off sooner on a worse loss were drawn "fitted", the chosen rate
    then reading as the slowest."""
    points = [(0.001, None), (0.0056, 700), (0.0316, 550), (0.178, 220), (1.0, 130)]
    figure = sweep_plot(points, 1000, 0.0316, tmp_path / "s.png", unstable={0.178, 1.0})
    traces = {trace.name: trace for trace in figure.data}
    assert list(traces["fitted"].x) == [0.0056, 0.0316]
    assert list(traces[UNSTABLE].x) == [0.178, 1.0]
