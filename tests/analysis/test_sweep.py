from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from autotune.analysis import BoundarySide
from autotune.analysis import SweepDecision
from autotune.analysis import SweepPoint
from autotune.analysis import choose_max_train_steps
from autotune.analysis import outpaced_by
from autotune.analysis import plateau_step
from autotune.analysis import stable_points
from autotune.analysis import steps_to_fit
from autotune.analysis import sweep_learning_rates


def test_learning_rate_grid_is_log_spaced_and_inclusive() -> None:
    rates = sweep_learning_rates(1e-4, 1e-1, 4)
    assert rates == pytest.approx((1e-4, 1e-3, 1e-2, 1e-1))
    assert rates[0] == 1e-4 and rates[-1] == 1e-1
    assert all(isinstance(r, float) for r in rates)
    ratios = np.diff(np.log(sweep_learning_rates(3e-4, 0.3, 7)))
    assert ratios == pytest.approx([ratios[0]] * 6)
    assert sweep_learning_rates(0.01, 0.02, 2) == (0.01, 0.02)


@pytest.mark.parametrize(
    ("low", "high", "count"),
    [(0.0, 1.0, 3), (-1.0, 1.0, 3), (0.1, 0.1, 3), (0.2, 0.1, 3), (0.1, math.inf, 3)],
)
def test_invalid_learning_rate_range(low: float, high: float, count: int) -> None:
    with pytest.raises(ValueError, match=r"sweep range .* is invalid; allowed: 0 < low < high"):
        sweep_learning_rates(low, high, count)


@pytest.mark.parametrize("count", [1, 0, 2.0, True])
def test_invalid_learning_rate_count(count: int) -> None:
    with pytest.raises(ValueError, match=r"sweep count=.* is invalid; allowed: an int >= 2"):
        sweep_learning_rates(1e-3, 1e-1, count)


def synthetic_train_curve(rate: float, steps: int, interval: int) -> list[tuple[int, float]]:
    """Train loss decaying at a speed that peaks at rate 1e-2 (slower on either side)."""
    speed = math.exp(-((math.log10(rate) + 2.0) ** 2)) * 0.02
    return [(s, 2.3 * math.exp(-speed * s)) for s in range(interval, steps + 1, interval)]


def test_steps_to_fit() -> None:
    curve = [(10, 2.0), (20, 0.5), (30, 0.05), (40, 0.01), (50, 0.04)]
    assert steps_to_fit(curve, 0.05) == 30
    assert steps_to_fit(curve, 0.01) == 40
    assert steps_to_fit(curve, 0.001) is None
    assert steps_to_fit([], 0.1) is None
    assert steps_to_fit([(10, math.nan), (20, 0.0)], 0.1) == 20
    assert steps_to_fit([(30, 0.0), (20, 0.0)], 0.1) == 20


def test_steps_to_fit_needs_a_finite_threshold() -> None:
    with pytest.raises(ValueError, match=r"fit threshold=nan is invalid"):
        steps_to_fit([(10, 0.0)], math.nan)


def sweep(rates: tuple[float, ...], steps: int = 1000, threshold: float = 0.05) -> list:
    return [
        SweepPoint(r, steps_to_fit(synthetic_train_curve(r, steps, 10), threshold), steps)
        for r in rates
    ]


def test_fastest_interior_learning_rate_sets_max_train_steps() -> None:
    results = sweep(sweep_learning_rates(1e-4, 1.0, 9))
    decision = choose_max_train_steps(results, round_to=50)
    fastest = min(p.steps_to_fit for p in results if p.steps_to_fit is not None)
    assert decision.fastest_learning_rate == pytest.approx(1e-2)
    assert decision.on_boundary is BoundarySide.NONE
    assert decision.max_train_steps == math.ceil(fastest / 50) * 50
    assert decision.max_train_steps % 50 == 0 and decision.max_train_steps >= fastest
    assert "widen" not in decision.reason and str(decision.max_train_steps) in decision.reason


def test_fastest_on_the_high_boundary() -> None:
    decision = choose_max_train_steps(sweep(sweep_learning_rates(1e-5, 1e-3, 5)), round_to=10)
    assert decision.on_boundary is BoundarySide.HIGH
    assert decision.fastest_learning_rate == 1e-3 and decision.max_train_steps is not None
    assert "highest learning rate" in decision.reason
    assert "widen the grid to higher learning rates" in decision.reason


def test_fastest_on_the_low_boundary() -> None:
    decision = choose_max_train_steps(sweep(sweep_learning_rates(0.1, 10.0, 5)), round_to=10)
    assert decision.on_boundary is BoundarySide.LOW
    assert decision.fastest_learning_rate == 0.1
    assert "widen the grid to lower learning rates" in decision.reason


def test_no_trial_fits() -> None:
    results = sweep(sweep_learning_rates(1e-6, 1e-5, 3), steps=200)
    decision = choose_max_train_steps(results, round_to=10)
    assert decision == SweepDecision(None, None, BoundarySide.NONE, decision.reason)
    assert "raise the sweep's N" in decision.reason and "N=200" in decision.reason


def test_ties_prefer_an_interior_then_the_lower_learning_rate() -> None:
    tie_with_boundary = [SweepPoint(0.001, 300, 1000), SweepPoint(0.01, 300, 1000)]
    tie_with_boundary.append(SweepPoint(0.1, 300, 1000))
    decision = choose_max_train_steps(tie_with_boundary, round_to=100)
    assert decision.fastest_learning_rate == 0.01 and decision.on_boundary is BoundarySide.NONE
    interior_tie = [SweepPoint(r, 400, 1000) for r in (0.02, 0.03)]
    interior_tie += [SweepPoint(0.01, None, 1000), SweepPoint(0.1, 900, 1000)]
    assert choose_max_train_steps(interior_tie, round_to=100).fastest_learning_rate == 0.02
    boundary_only = [SweepPoint(0.001, 300, 1000), SweepPoint(0.1, 300, 1000)]
    decision = choose_max_train_steps(boundary_only, round_to=100)
    assert decision.fastest_learning_rate == 0.001 and decision.on_boundary is BoundarySide.LOW


def test_rounding_is_up() -> None:
    points = [SweepPoint(0.01, 301, 1000), SweepPoint(0.02, 500, 1000)]
    points.append(SweepPoint(0.005, 600, 1000))
    assert choose_max_train_steps(points, round_to=100).max_train_steps == 400
    assert choose_max_train_steps(points, round_to=1).max_train_steps == 301


@pytest.mark.parametrize(
    "points",
    [[], [SweepPoint(0.01, 10, 100)], [SweepPoint(0.01, 10, 100), SweepPoint(0.01, 20, 100)]],
)
def test_needs_two_distinct_learning_rates(points: list[SweepPoint]) -> None:
    with pytest.raises(ValueError, match=r"at least 2 distinct learning rates"):
        choose_max_train_steps(points, round_to=10)


def test_invalid_round_to() -> None:
    points = [SweepPoint(0.01, 10, 100), SweepPoint(0.1, 20, 100)]
    with pytest.raises(ValueError, match=r"round_to=0 is invalid"):
        choose_max_train_steps(points, round_to=0)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((0.0, 10, 100), "learning_rate"),
        ((math.nan, 10, 100), "learning_rate"),
        ((0.1, 0, 100), "steps_to_fit"),
        ((0.1, 101, 100), "steps_to_fit"),
        ((0.1, 10, 0), "sweep_steps"),
        ((0.1, 10, 100, None, 20), "outpaced_at"),  # a fitted rate was not stopped
        ((0.1, None, 100, None, 101), "outpaced_at"),
    ],
)
def test_invalid_sweep_point(args: tuple, field: str) -> None:
    with pytest.raises(ValueError, match=rf"SweepPoint.{field}=.* is invalid"):
        SweepPoint(*args)


def test_a_rate_unfitted_at_the_steps_another_fitted_in_is_outpaced() -> None:
    assert outpaced_by(60, [80, 120]) is None  # it may still fit sooner than 80
    assert outpaced_by(80, [80, 120]) == 80  # unfitted at 80 (fit checked first): slower
    assert outpaced_by(500, []) is None  # no rate has fitted: it may be the only one


def test_outpaced_rates_stop_nothing_the_decision_needs() -> None:
    """Stopped rates count as unfitted: the fastest and the grid's ends are as before."""
    points = [SweepPoint(0.1, 200, 1000), SweepPoint(1.0, None, 1000, outpaced_at=200)]
    points.append(SweepPoint(0.01, None, 1000, outpaced_at=200))
    decision = choose_max_train_steps(points, 10)
    assert decision.max_train_steps == 200 and decision.on_boundary is BoundarySide.NONE


# --- the plateau rule: automatic mode without a fit threshold -------------------------------


def levelling_curve(floor: float, rate: float, evals: int = 60, every: int = 10) -> list:
    """A training loss falling geometrically by ``rate`` per eval onto ``floor``, with a
    deterministic +-5% wobble of the size minibatch averages have."""
    return [
        (every * (k + 1), (floor + 1.0 * rate**k) * (1 + 0.05 * (-1) ** k)) for k in range(evals)
    ]


def test_the_plateau_is_where_the_loss_stops_improving() -> None:
    step = plateau_step(levelling_curve(0.1, 0.7))
    assert step is not None and 150 <= step <= 250  # 0.7**15 = 0.5% of the start: levelled
    faster = plateau_step(levelling_curve(0.1, 0.4))
    assert faster is not None and faster < step


@pytest.mark.parametrize("seed", range(20))
def test_the_first_prefix_with_a_plateau_has_the_whole_curves(seed: int) -> None:
    """A sweep trial stops at the first evaluation whose curve shows a plateau: a longer
    curve would not move it (steps, 10 evaluations later, and a noisy loss)."""
    rng = np.random.default_rng(seed)
    losses = (0.1 + rng.uniform(0.3, 0.9) ** np.arange(80)) * rng.uniform(0.9, 1.1, 80)
    curve = [(10 * (k + 1), float(loss)) for k, loss in enumerate(losses)]
    whole = plateau_step(curve)
    first = next((n for n in range(1, 81) if plateau_step(curve[:n]) is not None), None)
    assert whole is not None and first is not None
    assert plateau_step(curve[:first]) == whole and first == whole // 10 + 10


def test_no_plateau_while_improving_or_diverged_or_too_short() -> None:
    falling = [(10 * (k + 1), 1.0 - 0.01 * k) for k in range(60)]  # 1% of 1.0 and growing
    assert plateau_step(falling) is None
    assert plateau_step([*levelling_curve(0.1, 0.5)[:-1], (600, math.nan)]) is None
    assert plateau_step(levelling_curve(0.1, 0.5, evals=19)) is None  # under 2 windows


def test_a_loss_falling_to_zero_levels_off_too() -> None:
    step = plateau_step([(10 * (k + 1), 2.0 * 0.5**k) for k in range(60)])
    # the first 10 evals' median is 0.047: the averages improve by under 1e-3 of it by eval 13
    assert step is not None and step <= 250


def test_a_diverging_start_does_not_make_a_falling_loss_look_levelled() -> None:
    """lr=1 on a user task: 795,275 at step 10, 17 at 110, 6.3 at 210. 0.1% of the first
    average (80) called it levelled at 110; the median of the first evals is the start."""
    curve = [(10, 795_275.0)] + [(10 * (k + 2), 17 * 0.99**k + 5) for k in range(80)]
    assert plateau_step(curve) is None  # still 10% better every 10 evals
    calm = [(10, 795_275.0)] + [(10 * (k + 2), 5.0 * (1 + 0.01 * (-1) ** k)) for k in range(40)]
    assert plateau_step(calm) is not None  # flat after the spike: levelled


@pytest.mark.parametrize(("tolerance", "window"), [(-0.1, 5), (1.0, 5), (0.01, 0), (0.01, 2.5)])
def test_invalid_plateau_settings(tolerance: float, window: int) -> None:
    with pytest.raises(ValueError, match="plateau (tolerance|window)"):
        plateau_step(levelling_curve(0.1, 0.5), tolerance, window)


def test_without_a_threshold_the_fastest_stable_rate_decides() -> None:
    points = [
        SweepPoint(1e-3, 200, 1000, lowest_loss=0.50),  # too low: flat on a high loss
        SweepPoint(1e-2, 600, 1000, lowest_loss=0.102),
        SweepPoint(1e-1, 350, 1000, lowest_loss=0.100),
        SweepPoint(1.0, 150, 1000, lowest_loss=0.30),  # too high: levels off early, worse
    ]
    assert [p.learning_rate for p in stable_points(points)] == [1e-2, 1e-1]
    decision = choose_max_train_steps(points, 10)
    assert (decision.max_train_steps, decision.fastest_learning_rate) == (350, 1e-1)
    assert decision.on_boundary is BoundarySide.NONE
    assert "stopped improving" in decision.reason and "no fit threshold" in decision.reason
    # the rate that levelled off sooner on a worse loss is named: "fastest" read false
    assert "fastest stable learning rate 0.1" in decision.reason
    unstable = "learning rate 0.001 (training loss 0.5), learning rate 1 (training loss 0.3)"
    assert f"not stable: {unstable}; the fastest stable rate reached 0.1)" in decision.reason


def test_a_loss_falling_towards_zero_is_stable_on_the_way_down_from_the_start() -> None:
    """A GRU memorising a noisy training set (goog-volatility): one rate levels off at 0.032,
    a slower one is still creeping down at 0.025 when the sweep ends, both from about 1.0.
    10% of 0.025 alone called the first unstable, and no rate fitted."""
    points = [
        SweepPoint(1e-3, 240, 1000, lowest_loss=0.647, first_loss=1.05),  # barely moved
        SweepPoint(5.6e-3, None, 1000, lowest_loss=0.0253, first_loss=0.98),  # still falling
        SweepPoint(3.2e-2, 340, 1000, lowest_loss=0.0319, first_loss=0.98),
        SweepPoint(0.18, 120, 1000, lowest_loss=0.630, first_loss=1.60),  # levels off high
        SweepPoint(1.0, 240, 1000, lowest_loss=0.952, first_loss=18.8),
    ]
    assert [p.learning_rate for p in stable_points(points)] == [3.2e-2]
    decision = choose_max_train_steps(points, 20)
    assert (decision.max_train_steps, decision.fastest_learning_rate) == (340, 3.2e-2)
    without_starts = [dataclasses.replace(p, first_loss=None) for p in points]
    assert stable_points(without_starts) == []  # the margin of the lowest loss alone


def test_the_way_down_never_makes_the_margin_stricter() -> None:
    """A loss that barely falls (1.0 to 0.9): 10% of 0.9 still holds."""
    points = [
        SweepPoint(1e-2, 300, 1000, lowest_loss=0.90, first_loss=1.0),
        SweepPoint(1e-1, 200, 1000, lowest_loss=0.98, first_loss=1.0),
    ]
    assert [p.learning_rate for p in stable_points(points)] == [1e-2, 1e-1]


def test_without_a_threshold_a_lowest_loss_still_falling_at_the_end_trains_n_steps() -> None:
    """Fitting needs more than N: compute-bound at N, so runs train N; stopping left a user
    who gave only a task and a budget with nothing."""
    points = [
        SweepPoint(1e-3, None, 800, lowest_loss=0.5),
        SweepPoint(1e-2, None, 800, lowest_loss=0.2),  # the lowest, still falling
        SweepPoint(1e-1, 300, 800, lowest_loss=0.6),  # levelled off far above it
    ]
    decision = choose_max_train_steps(points, 10)
    assert (decision.max_train_steps, decision.fastest_learning_rate) == (800, 1e-2)
    assert decision.on_boundary is BoundarySide.NONE
    assert "still falling" in decision.reason and "max_train_steps=800" in decision.reason
    at_the_top = [  # the grid is widened upward before its N is trusted
        SweepPoint(1e-3, None, 800, lowest_loss=0.5),
        SweepPoint(1e-2, 300, 800, lowest_loss=0.6),
        SweepPoint(1e-1, None, 800, lowest_loss=0.2),
    ]
    assert choose_max_train_steps(at_the_top, 10).on_boundary is BoundarySide.HIGH


def test_every_rate_diverged_or_short_of_its_threshold_says_to_sweep_longer() -> None:
    points = [SweepPoint(lr, None, 800) for lr in (1e-3, 1e-2, 1e-1)]  # no lowest loss
    decision = choose_max_train_steps(points, 10)
    assert decision.max_train_steps is None
    assert "raise the sweep's N" in decision.reason and "fit threshold" in decision.reason
