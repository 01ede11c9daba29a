"""The max_train_steps sweep's trials as points (learning rate, steps to fit)."""

from __future__ import annotations

from collections.abc import Sequence

from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from autotune.analysis import SweepPoint
from autotune.campaign._trial_attrs import ATTR_STEPS_DONE
from autotune.campaign._trial_attrs import ATTR_STEPS_TO_FIT
from autotune.campaign._trial_attrs import ATTR_SWEEP_LOWEST_LOSS
from autotune.campaign._trial_attrs import ATTR_SWEEP_OUTPACED_BY

LEARNING_RATE = "learning_rate"


def sweep_points(trials: Sequence[FrozenTrial], sweep_steps: int) -> list[SweepPoint]:
    """The finished sweep trials as (learning rate, steps to fit, lowest loss) points; a
    trial stopped because another rate fitted sooner is a point that did not fit."""
    points = []
    for trial in trials:
        if LEARNING_RATE not in trial.params:
            continue
        rate = trial.params[LEARNING_RATE]
        if trial.state is TrialState.COMPLETE:
            fitted = trial.user_attrs.get(ATTR_STEPS_TO_FIT)
            steps = int(fitted) if isinstance(fitted, int) else None
            lowest = trial.user_attrs.get(ATTR_SWEEP_LOWEST_LOSS)  # the plateau rule's
            lowest = float(lowest) if isinstance(lowest, int | float) else None
            points.append(SweepPoint(rate, steps, sweep_steps, lowest, None, _first(trial)))
        elif trial.state is TrialState.PRUNED and ATTR_SWEEP_OUTPACED_BY in trial.user_attrs:
            stopped = int(trial.user_attrs.get(ATTR_STEPS_DONE) or sweep_steps)
            points.append(SweepPoint(rate, None, sweep_steps, outpaced_at=stopped))
    return points


def _first(trial: FrozenTrial) -> float | None:
    """The training loss at the trial's first eval (None: it reported none)."""
    curve = trial.intermediate_values
    return float(curve[min(curve)]) if curve else None
