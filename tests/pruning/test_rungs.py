"""Pure ASHA decisions on synthetic learning curves."""

from __future__ import annotations

import heapq
import math

import numpy as np
import pytest

from autotune.pruning import RungDecision
from autotune.pruning import RungReport
from autotune.pruning import decide
from autotune.pruning import keep_count
from autotune.pruning import rung_for_step
from autotune.pruning import rung_reports
from autotune.pruning import rung_steps
from autotune.spec import Direction

CONTINUE, PRUNE = RungDecision.CONTINUE, RungDecision.PRUNE
MIN, MAX = Direction.MINIMIZE, Direction.MAXIMIZE
NAN = float("nan")


def learning_curve(rng: np.random.Generator, steps: np.ndarray) -> np.ndarray:
    """A noisy decaying loss: each trial has its own floor, height and speed."""
    floor, height, tau = rng.uniform(0.1, 1.0), rng.uniform(1.0, 3.0), rng.uniform(5.0, 50.0)
    return floor + height * np.exp(-steps / tau) + rng.normal(0.0, 0.02, size=steps.shape)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((10, 3, 300), (10, 30, 90, 270)),
        ((10, 3, 270), (10, 30, 90)),
        ((1, 2, 10), (1, 2, 4, 8)),
        ((5, 4, 5), ()),
        ((50, 3, 20), ()),
    ],
)
def test_rung_steps(args: tuple[int, int, int], expected: tuple[int, ...]) -> None:
    assert rung_steps(*args) == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [((0, 3, 100), "min_steps"), ((1, 1, 100), "reduction_factor"), ((1, 3, 0), "max_train")],
)
def test_rung_steps_rejects_bad_arguments(args: tuple[int, int, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rung_steps(*args)


def test_rung_for_step() -> None:
    rungs = (10, 30, 90)
    assert [rung_for_step(s, rungs) for s in (0, 9, 10, 29, 30, 89, 90, 10_000)] == [
        None,
        None,
        0,
        0,
        1,
        1,
        2,
        2,
    ]
    assert rung_for_step(5, ()) is None


def test_rung_reports_take_the_first_report_at_or_past_each_rung() -> None:
    values = {0: 5.0, 8: 4.0, 12: 3.0, 25: 2.5, 31: 2.0}
    assert rung_reports(values, (10, 30, 90)) == (RungReport(0, 12, 3.0), RungReport(1, 31, 2.0))


def test_one_report_can_cross_several_rungs() -> None:
    assert rung_reports({3: 9.0, 100: 1.0}, (10, 30, 90)) == (
        RungReport(0, 100, 1.0),
        RungReport(1, 100, 1.0),
        RungReport(2, 100, 1.0),
    )
    assert rung_reports({}, (10,)) == ()
    assert rung_reports({9: 1.0}, (10,)) == ()


def test_first_trial_at_a_rung_always_continues() -> None:
    for direction in Direction:
        for value in (0.0, -1e9, 1e9, math.inf, NAN):
            assert decide(value, [], 3, direction) == CONTINUE


def test_keep_count() -> None:
    assert [keep_count(n, 3) for n in range(1, 11)] == [1, 1, 1, 1, 1, 2, 2, 2, 3, 3]


def test_min_keep_finishes_that_many_whatever_the_order() -> None:
    assert [keep_count(n, 3, 4) for n in range(1, 16)] == [1, 2, 3] + [4] * 11 + [5]
    for k in (1, 4, 9):  # grows by at most one per trial (the store's cursor relies on it)
        steps = [keep_count(n + 1, 3, k) - keep_count(n, 3, k) for n in range(1, 40)]
        assert set(steps) <= {0, 1}
    assert decide(5.0, [1.0, 2.0, 3.0], 3, MIN, min_keep=4) == CONTINUE  # 4th of 4: kept
    assert decide(5.0, [1.0, 2.0, 3.0, 4.0], 3, MIN, min_keep=4) == PRUNE  # 5th of 5
    # Best first: plain ASHA continues only the first of 12 arrivals, min_keep=4 the first 4.
    arrivals = [float(v) for v in range(1, 13)]
    for min_keep, kept in ((1, 1), (4, 4)):
        decisions = [decide(v, arrivals[:i], 3, MIN, min_keep) for i, v in enumerate(arrivals)]
        assert decisions.count(CONTINUE) == kept
    with pytest.raises(ValueError, match="min_keep"):
        decide(1.0, [], 3, MIN, min_keep=0)


def test_fewer_trials_than_the_reduction_factor_keep_only_the_best() -> None:
    assert decide(1.0, [2.0], 3, MIN) == CONTINUE
    assert decide(2.0, [1.0], 3, MIN) == PRUNE
    assert decide(2.0, [1.0, 3.0], 4, MIN) == PRUNE


def test_rank_must_be_within_the_top_fraction() -> None:
    others = [1.0, 2.0, 3.0, 4.0, 5.0]  # n = 6 with the trial itself: keep the top 2
    assert decide(0.5, others, 3, MIN) == CONTINUE
    assert decide(1.5, others, 3, MIN) == CONTINUE
    assert decide(2.5, others, 3, MIN) == PRUNE
    assert decide(1.5, others, 2, MIN) == CONTINUE  # keep 3
    assert decide(3.5, others, 2, MIN) == PRUNE


def test_ties_count_in_the_trials_favour() -> None:
    assert decide(1.0, [1.0], 3, MIN) == CONTINUE
    assert decide(2.0, [1.0, 2.0, 2.0, 3.0, 4.0], 3, MIN) == CONTINUE  # 1 better < keep 2
    assert decide(2.0, [1.0, 1.0, 2.0, 3.0, 4.0], 3, MIN) == PRUNE  # 2 better


def test_all_equal_values_all_continue() -> None:
    for n in range(1, 30):
        assert decide(0.7, [0.7] * n, 3, MIN) == CONTINUE
        assert decide(0.7, [0.7] * n, 3, MAX) == CONTINUE


def test_nan_is_worst_in_both_directions() -> None:
    assert decide(NAN, [1.0], 3, MIN) == PRUNE
    assert decide(NAN, [1.0], 3, MAX) == PRUNE
    assert decide(NAN, [math.inf], 3, MIN) == PRUNE  # worse even than an infinite loss
    assert decide(math.inf, [NAN], 3, MIN) == CONTINUE
    assert decide(-math.inf, [NAN], 3, MAX) == CONTINUE
    assert decide(1e30, [NAN, NAN], 3, MIN) == CONTINUE
    assert decide(NAN, [NAN, NAN], 3, MIN) == CONTINUE  # NaN ties with NaN


def test_maximize_keeps_the_largest() -> None:
    others = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert decide(4.5, others, 3, MAX) == CONTINUE
    assert decide(3.5, others, 3, MAX) == PRUNE
    assert decide(4.5, others, 3, MIN) == PRUNE


def test_rejects_a_reduction_factor_below_two() -> None:
    with pytest.raises(ValueError, match="reduction_factor"):
        decide(1.0, [], 1, MIN)


def simulate_asha(
    seed: int, trials: int, rungs: tuple[int, ...], reduction_factor: int, workers: int
) -> tuple[list[int], list[int]]:
    """Trials on ``workers`` asynchronous workers at random speeds; (arrived, kept) per rung."""
    rng = np.random.default_rng(seed)
    steps = np.array(rungs, dtype=float)
    recorded: list[list[float]] = [[] for _ in rungs]
    arrived, kept = [0] * len(rungs), [0] * len(rungs)
    events: list[tuple[float, int, int]] = []  # (time, trial, rung it reaches)
    started = 0

    def start(now: float) -> None:
        nonlocal started
        speed = rng.uniform(0.5, 2.0)
        curves[started] = (learning_curve(rng, steps), speed, now)
        heapq.heappush(events, (now + rungs[0] / speed, started, 0))
        started += 1

    curves: dict[int, tuple[np.ndarray, float, float]] = {}
    for _ in range(workers):
        start(0.0)
    while events:
        now, trial, rung = heapq.heappop(events)
        curve, speed, begun = curves[trial]
        value = float(curve[rung])
        decision = decide(value, recorded[rung], reduction_factor, Direction.MINIMIZE)
        recorded[rung].append(value)
        arrived[rung] += 1
        if decision == CONTINUE and rung + 1 < len(rungs):
            kept[rung] += 1
            heapq.heappush(events, (begun + rungs[rung + 1] / speed, trial, rung + 1))
        elif started < trials:
            kept[rung] += decision == CONTINUE
            start(now)
    return arrived, kept


@pytest.mark.parametrize(("seed", "reduction_factor"), [(0, 2), (1, 3), (2, 4), (3, 3)])
def test_fraction_kept_per_rung_is_about_one_over_the_reduction_factor(
    seed: int, reduction_factor: int
) -> None:
    rungs = rung_steps(1, reduction_factor, reduction_factor**3 + 1)
    arrived, kept = simulate_asha(seed, 2000, rungs, reduction_factor, workers=8)
    target = 1 / reduction_factor
    assert arrived[0] == 2000
    # Values reach the first rung in random order: ASHA keeps 1 / reduction_factor of them.
    assert kept[0] / arrived[0] == pytest.approx(target, abs=0.02)
    for rung in range(1, len(rungs) - 1):
        # Trials promoted later come from larger pools and are stronger, so later arrivals at
        # a higher rung beat earlier ones more often: a little more than 1 / factor continue.
        assert arrived[rung] >= 50
        assert target - 0.02 <= kept[rung] / arrived[rung] <= target + 0.08
    assert all(arrived[r + 1] == kept[r] for r in range(len(rungs) - 1))


@pytest.mark.parametrize("reduction_factor", [2, 3, 4])
def test_values_in_random_order_keep_one_over_the_reduction_factor(reduction_factor: int) -> None:
    rng = np.random.default_rng(reduction_factor)
    for direction in Direction:
        values = rng.normal(size=1200).round(2)  # rounded: many ties
        kept = sum(
            decide(float(v), values[:i].tolist(), reduction_factor, direction) == CONTINUE
            for i, v in enumerate(values)
        )
        assert kept / len(values) == pytest.approx(1 / reduction_factor, abs=0.02)
