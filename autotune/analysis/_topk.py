"""The k best finished trials of a study, for promotion to the next round."""

from __future__ import annotations

from collections.abc import Sequence
import math

from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from autotune.spec import Direction


def _finite_value(trial: FrozenTrial) -> float | None:
    """The single objective value of a COMPLETE trial if finite, else None."""
    if trial.state is not TrialState.COMPLETE or trial.values is None:
        return None
    if len(trial.values) != 1:
        raise ValueError(
            f"trial {trial.number} has {len(trial.values)} objective values; "
            "allowed: single-objective trials"
        )
    value = trial.values[0]
    return value if math.isfinite(value) else None


def top_k(trials: Sequence[FrozenTrial], k: int, direction: Direction) -> list[FrozenTrial]:
    """The `k` best COMPLETE trials with a finite value, best first.

    Ties go to the earlier trial number; fewer than `k` such trials gives all of them.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"top_k k={k!r} is invalid; allowed: an int >= 1")
    if not isinstance(direction, Direction):
        raise ValueError(f"top_k direction={direction!r} is invalid; allowed: a Direction")
    sign = 1.0 if direction is Direction.MINIMIZE else -1.0
    scored = [(value, t) for t in trials if (value := _finite_value(t)) is not None]
    scored.sort(key=lambda pair: (sign * pair[0], pair[1].number))
    return [trial for _, trial in scored[:k]]
