"""Does the initial configuration beat a trivial predictor? (docs/method.md §4)"""

from __future__ import annotations

from dataclasses import dataclass
import math

from autotune.spec import Direction


@dataclass(frozen=True)
class BaselineVerdict:
    """The baseline against the trivial predictor; `margin` > 0 means the baseline is better."""

    baseline_value: float
    trivial_value: float
    beats_trivial: bool
    margin: float
    message: str


def compare_to_trivial(
    baseline_value: float,
    trivial_value: float,
    direction: Direction,
    min_relative_margin: float = 0.0,
    *,
    metric: str = "the metric",
) -> BaselineVerdict:
    """Whether the baseline is better than the trivial value by more than the margin.

    It must be strictly better, and by at least `min_relative_margin` x |trivial_value|. A
    non-finite baseline value never beats it.
    """
    if not isinstance(direction, Direction):
        raise ValueError(f"direction={direction!r} is invalid; allowed: a Direction")
    if not math.isfinite(trivial_value):
        raise ValueError(f"trivial_value={trivial_value!r} is invalid; allowed: a finite float")
    if not (math.isfinite(min_relative_margin) and min_relative_margin >= 0):
        raise ValueError(
            f"min_relative_margin={min_relative_margin!r} is invalid; allowed: a float >= 0"
        )
    sign = 1.0 if direction is Direction.MINIMIZE else -1.0
    margin = sign * (trivial_value - baseline_value)
    needed = min_relative_margin * abs(trivial_value)
    beats = math.isfinite(baseline_value) and margin > 0 and margin >= needed
    values = f"{metric} {baseline_value:g} vs {trivial_value:g} for the trivial predictor"
    if beats:
        message = f"the baseline beats the trivial predictor: {values} (margin {margin:g})"
    else:
        better = "lower" if direction is Direction.MINIMIZE else "higher"
        by = "" if needed == 0 else f" by at least {needed:g}"
        message = (
            f"the baseline does NOT beat the trivial predictor: {values} (it must be "
            f"{better}{by}). The training pipeline or the data is broken; fix it before "
            "tuning, since tuning would hide the problem"
        )
    return BaselineVerdict(baseline_value, trivial_value, beats, margin, message)
