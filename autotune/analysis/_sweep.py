"""max_train_steps measured by a constant-learning-rate sweep, never tuned (docs/method.md §3).

Train a grid of learning rates for N steps each (N: the steps some configuration needed
to fit the training set); the steps the fastest one needs to fit become max_train_steps,
unless the fastest learning rate sits on the grid's boundary.

"Fitted" has two rules. With the task's ``fit_threshold``: the first eval whose training
loss is at or below it (`steps_to_fit`). Without one (most user tasks cannot know the loss
a noisy problem levels off at): the eval after which the training loss (averaged over
`PLATEAU_WINDOW` evals) stops improving by more than `PLATEAU_TOLERANCE` of itself over
`PLATEAU_WINDOW` evals (`plateau_step`), and only for rates that levelled off near the
lowest loss of the sweep (`STABLE_MARGIN`): a rate too high levels off early on a worse
loss, one too low barely moves at all.

With a threshold, a rate that has not fitted by the step at which another rate fitted needs
more steps, so it cannot be the fastest: its trial stops there (`outpaced_by`), and the
sweep costs about its fastest rate's steps per rate, not up to N for every slow one. The
plateau rule cannot stop early: a slower rate may level off lower, which decides which rates
count as stable.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
import enum
import math

import numpy as np

PLATEAU_TOLERANCE = 0.02  # relative improvement of the training loss that counts as none
PLATEAU_WINDOW = 10  # evals averaged, and over which the improvement is measured
ABSOLUTE_TOLERANCE = 1e-3  # of the first evals' median: a loss falling to 0 levels off too
STABLE_MARGIN = 0.1  # a rate's lowest loss within 10% of the sweep's lowest counts as stable


class BoundarySide(enum.Enum):
    """Which end of the learning-rate grid the fastest learning rate is on, if any."""

    NONE = "none"
    LOW = "low"
    HIGH = "high"


@dataclass(frozen=True)
class SweepPoint:
    """One sweep trial: its learning rate, the step it fitted at (None: never), its N.

    ``lowest_loss`` is set by the plateau rule (no fit threshold): the lowest training loss
    the rate reached, which decides whether it counts as stable; ``first_loss``, its loss at
    its first eval, says how far every rate started from (`stable_points`). ``outpaced_at``
    is the step an unfitted rate was stopped at because another rate had fitted by then
    (`outpaced_by`).
    """

    learning_rate: float
    steps_to_fit: int | None
    sweep_steps: int
    lowest_loss: float | None = None
    outpaced_at: int | None = None
    first_loss: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(
                f"SweepPoint.learning_rate={self.learning_rate!r} is invalid; allowed: > 0"
            )
        if not _is_int(self.sweep_steps) or self.sweep_steps < 1:
            raise ValueError(
                f"SweepPoint.sweep_steps={self.sweep_steps!r} is invalid; allowed: an int >= 1"
            )
        fit = self.steps_to_fit
        if fit is not None and not (_is_int(fit) and 1 <= fit <= self.sweep_steps):
            raise ValueError(
                f"SweepPoint.steps_to_fit={fit!r} is invalid; allowed: None or an int in "
                f"[1, sweep_steps={self.sweep_steps}]"
            )
        if self.outpaced_at is not None:
            _check_outpaced(self.outpaced_at, fit, self.sweep_steps)


@dataclass(frozen=True)
class SweepDecision:
    """max_train_steps from a sweep (None: no trial fitted) and why."""

    max_train_steps: int | None
    fastest_learning_rate: float | None
    on_boundary: BoundarySide
    reason: str


def sweep_learning_rates(low: float, high: float, count: int) -> tuple[float, ...]:
    """`count` log-spaced learning rates from `low` to `high`, both included."""
    if not (math.isfinite(low) and math.isfinite(high) and 0 < low < high):
        raise ValueError(
            f"sweep range low={low!r}, high={high!r} is invalid; allowed: 0 < low < high"
        )
    if not _is_int(count) or count < 2:
        raise ValueError(f"sweep count={count!r} is invalid; allowed: an int >= 2")
    rates = [float(r) for r in np.geomspace(low, high, count)]
    rates[0], rates[-1] = float(low), float(high)
    return tuple(rates)


def steps_to_fit(curve: Sequence[tuple[int, float]], threshold: float) -> int | None:
    """The first eval step whose training metric is <= `threshold` (None: never; nan never)."""
    if not math.isfinite(threshold):
        raise ValueError(f"fit threshold={threshold!r} is invalid; allowed: a finite float")
    return min((step for step, value in curve if value <= threshold), default=None)


def outpaced_by(step: int, fitted: Iterable[int]) -> int | None:
    """The fewest steps another rate fitted in, once a rate still unfitted at ``step`` has
    reached it (None: it may still be the fastest). Call after checking the fit at
    ``step``: fitting later than another rate is strictly slower, so no tie is lost."""
    fastest = min(fitted, default=None)
    return fastest if fastest is not None and step >= fastest else None


def plateau_step(
    curve: Sequence[tuple[int, float]],
    tolerance: float = PLATEAU_TOLERANCE,
    window: int = PLATEAU_WINDOW,
) -> int | None:
    """The eval step at which the training loss stops improving: the first whose best
    `window`-eval moving average improves over the next `window` evals by at most
    `tolerance` of itself (or `ABSOLUTE_TOLERANCE` of the first `window` evals' median, for
    a loss that falls to 0). None: still improving when the curve ends, too short (under 2 `window`
    evals), or a non-finite loss.

    The moving average and its best-so-far, not single evals: a training loss averaged over
    a few minibatches is noisy, and one lucky or unlucky eval must neither end nor prolong it.
    """
    if not (math.isfinite(tolerance) and 0 <= tolerance < 1):
        raise ValueError(f"plateau tolerance={tolerance!r} is invalid; allowed: 0 <= t < 1")
    if not _is_int(window) or window < 1:
        raise ValueError(f"plateau window={window!r} is invalid; allowed: an int >= 1")
    ordered = sorted(curve)
    values = np.array([value for _, value in ordered], dtype=float)
    if len(values) < 2 * window or not np.isfinite(values).all():
        return None
    averages = np.convolve(values, np.ones(window) / window, mode="valid")
    best = np.minimum.accumulate(averages)
    # The start's scale: the median of the first window, not its mean. A rate too high
    # starts at 795,275 and falls to 17 by its 11th eval: 0.1% of the mean (80) took 17
    # -> 6 for a plateau, and its curve drew it as fitting as fast as the chosen rate.
    floor = ABSOLUTE_TOLERANCE * abs(float(np.median(values[:window])))
    for index in range(len(averages) - window):
        if best[index] - best[index + window] <= max(tolerance * abs(best[index]), floor):
            return ordered[index + window - 1][0] or None  # step 0 trains nothing
    return None


def stable_points(
    results: Sequence[SweepPoint], margin: float = STABLE_MARGIN
) -> list[SweepPoint]:
    """The points that fitted; under the plateau rule, only those whose lowest loss is within
    `margin` of the lowest loss of the sweep: of that loss itself, or of the way down to it
    from where the rates started (their median first loss), whichever is more.

    The second: a loss falling towards 0 (a net memorising a noisy training set) levels off
    at 0.032 for one rate and 0.025 for a slower one still creeping down, both 97% of the
    way from 1.0; 10% of 0.025 alone called the first unstable and left no rate fitted.
    """
    fitted = [p for p in results if p.steps_to_fit is not None]
    losses = [p.lowest_loss for p in results if p.lowest_loss is not None]
    if not losses:
        return fitted
    floor = min(losses)
    starts = [p.first_loss for p in results if p.first_loss is not None]
    descent = float(np.median(starts)) - floor if starts else 0.0
    limit = floor + margin * max(abs(floor), descent)
    return [p for p in fitted if p.lowest_loss is not None and p.lowest_loss <= limit]


def choose_max_train_steps(results: Sequence[SweepPoint], round_to: int) -> SweepDecision:
    """max_train_steps = the fastest stable trial's steps to fit, rounded up to `round_to`.

    Ties in steps go to a learning rate inside the grid if one ties (a plateau reaching
    inside is no boundary optimum), then to the lower learning rate.
    """
    if not _is_int(round_to) or round_to < 1:
        raise ValueError(f"round_to={round_to!r} is invalid; allowed: an int >= 1")
    rates = sorted(p.learning_rate for p in results)
    if len(rates) < 2 or len(set(rates)) != len(rates):
        raise ValueError(
            f"sweep results with learning rates {rates} are invalid; allowed: at least 2 "
            "distinct learning rates"
        )
    fitted = stable_points(results)
    falling = _still_falling(results)
    if not fitted and falling is not None:
        return _falling_decision(falling, rates)
    if not fitted:
        most = max(p.sweep_steps for p in results)
        plateau = any(p.lowest_loss is not None for p in results)
        check = (
            f"its training loss kept improving by more than {PLATEAU_TOLERANCE:.0%} over "
            f"{PLATEAU_WINDOW} evals"
            if plateau
            else "check the fit threshold"
        )
        return SweepDecision(
            None,
            None,
            BoundarySide.NONE,
            f"no learning rate in [{rates[0]:g}, {rates[-1]:g}] fitted the training set "
            f"within N={most} steps; raise the sweep's N ({check})",
        )
    side = {rates[0]: BoundarySide.LOW, rates[-1]: BoundarySide.HIGH}
    fastest = min(
        fitted,
        key=lambda p: (p.steps_to_fit, p.learning_rate in side, p.learning_rate),
    )
    steps = math.ceil(fastest.steps_to_fit / round_to) * round_to  # type: ignore[operator]
    boundary = side.get(fastest.learning_rate, BoundarySide.NONE)
    reason = _reason(fastest, steps, boundary) + _unstable_note(results, fitted, fastest)
    return SweepDecision(steps, fastest.learning_rate, boundary, reason)


def _unstable_note(
    results: Sequence[SweepPoint], stable: Sequence[SweepPoint], fastest: SweepPoint
) -> str:
    """The rates that levelled off sooner on a worse loss, left out as unstable: without
    them "the fastest learning rate" read false beside rates of fewer steps."""
    sooner = [
        p
        for p in results
        if p not in stable
        and p.steps_to_fit is not None
        and p.steps_to_fit < (fastest.steps_to_fit or 0)
        and p.lowest_loss is not None
    ]
    if not sooner:
        return ""
    named = ", ".join(
        f"learning rate {p.learning_rate:g} (training loss {p.lowest_loss:.4g})" for p in sooner
    )
    return (
        f" (sooner but levelled off on a worse training loss, so not stable: {named}; "
        f"the fastest stable rate reached {fastest.lowest_loss:.4g})"
    )


def _still_falling(results: Sequence[SweepPoint]) -> SweepPoint | None:
    """Under the plateau rule, the rate with the sweep's lowest loss if it never levelled
    off: still falling at the sweep's end (None: it levelled off, or no plateau rule)."""
    measured = [p for p in results if p.lowest_loss is not None]
    if not measured:
        return None
    lowest = min(measured, key=lambda p: (p.lowest_loss, p.learning_rate))
    return lowest if lowest.steps_to_fit is None else None


def _falling_decision(point: SweepPoint, rates: Sequence[float]) -> SweepDecision:
    """The lowest loss still falling at N: fitting needs more than N steps, a compute-bound
    workload at N, whose limit is what one affords (docs/method.md §3), so runs train N.
    Stopping left a user who gave only a task and a budget with nothing (a GRU memorising a
    noisy series: every faster rate levelled off far above it, on SGD noise)."""
    side = {rates[0]: BoundarySide.LOW, rates[-1]: BoundarySide.HIGH}
    boundary = side.get(point.learning_rate, BoundarySide.NONE)
    reason = (
        f"no learning rate levelled off near the lowest training loss within N="
        f"{point.sweep_steps} steps: learning rate {point.learning_rate:g} reached "
        f"{point.lowest_loss:.4g} and was still falling, so fitting needs more than N steps "
        f"and runs train N (compute-bound at N; a larger steps_sweep.steps measures further): "
        f"max_train_steps={point.sweep_steps}"
    )
    return SweepDecision(point.sweep_steps, point.learning_rate, boundary, reason)


def _reason(fastest: SweepPoint, steps: int, boundary: BoundarySide) -> str:
    how = (
        f"fitted the training set in {fastest.steps_to_fit} steps"
        if fastest.lowest_loss is None
        else (
            f"stopped improving its training loss by more than {PLATEAU_TOLERANCE:.0%} over "
            f"{PLATEAU_WINDOW} evals after {fastest.steps_to_fit} steps (lowest loss "
            f"{fastest.lowest_loss:.4g}; no fit threshold, so the plateau of the fastest "
            f"stable rate)"
        )
    )
    stable = "" if fastest.lowest_loss is None else "stable "
    found = (
        f"the fastest {stable}learning rate {fastest.learning_rate:g} {how}: "
        f"max_train_steps={steps}"
    )
    if boundary is BoundarySide.NONE:
        return found
    end, wider = ("lowest", "lower") if boundary is BoundarySide.LOW else ("highest", "higher")
    return (
        f"{found}, but it is the {end} learning rate of the grid; widen the grid to {wider} "
        "learning rates and sweep again before trusting it"
    )


def _check_outpaced(stop: int, fit: int | None, sweep_steps: int) -> None:
    if fit is not None or not (_is_int(stop) and 1 <= stop <= sweep_steps):
        raise ValueError(
            f"SweepPoint.outpaced_at={stop!r} is invalid; allowed: None, or for a point that "
            f"did not fit an int in [1, sweep_steps={sweep_steps}]"
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
