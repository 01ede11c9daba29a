"""Per-value trends of a grid stage: every value was tried by many trials, so compare them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import math
import statistics

from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from autotune.spec import Direction


@dataclass(frozen=True)
class ValueTrend:
    """One value of one parameter: how many COMPLETE trials used it, their median and best."""

    parameter: str
    value: object
    trials: int
    median: float
    best: float


def grid_trends(
    trials: Sequence[FrozenTrial], parameter: str, direction: Direction
) -> tuple[ValueTrend, ...]:
    """The trend of each value of ``parameter`` over the COMPLETE trials, in value order."""
    groups: dict[object, list[float]] = {}
    for trial in trials:
        finite = trial.value is not None and math.isfinite(trial.value)
        if trial.state is TrialState.COMPLETE and finite and parameter in trial.params:
            groups.setdefault(trial.params[parameter], []).append(float(trial.value))  # type: ignore[arg-type]
    pick = min if direction is Direction.MINIMIZE else max
    return tuple(
        ValueTrend(parameter, value, len(values), statistics.median(values), pick(values))
        for value, values in sorted(groups.items(), key=lambda item: repr(item[0]))
    )
