"""Hyperparameter composition: what configuration a trial of a stage trains.

Pure: the task's defaults come from the campaign's stored TaskDefaults, so composing a
configuration never needs the task's code. The schedule math is torch-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autotune.campaign._trial_attrs import ATTR_OVERRIDES
from autotune.spec import StudySpec
from autotune.training._schedules import Schedule
from autotune.training._schedules import ScheduleConfig
from autotune.training._schedules import resolved_decay_steps
from autotune.training._schedules import resolved_warmup_steps
from autotune.training._schedules import resumable_step

__all__ = ["resumable_step"]


def stage_base_hparams(
    spec: StudySpec, task_defaults: Mapping[str, Any], stage_fixed: Mapping[str, Any]
) -> dict[str, Any]:
    """What a tuning stage does not tune: the task's defaults, fixed values, earlier bests."""
    return {**task_defaults, **spec.fixed, **stage_fixed}


def baseline_hparams(spec: StudySpec, task_defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The baseline: the task's default configuration with the spec's fixed values."""
    return {**task_defaults, **spec.fixed}


def trial_hparams(
    base: Mapping[str, Any], params: Mapping[str, Any], user_attrs: Mapping[str, Any]
) -> dict[str, Any]:
    """A tuning trial's configuration: the stage's base, its parameters, schedule overrides."""
    return {**base, **params, **(user_attrs.get(ATTR_OVERRIDES) or {})}


def promotion_overrides(hparams: Mapping[str, Any], parent_steps: int) -> dict[str, Any]:
    """Schedule settings that spend a longer budget's extra steps at a high learning rate.

    The round-2 rule (docs/method.md §8): the warmup keeps its length; linear and WSD keep
    the parent's decay length, so the constant phase grows; cosine keeps its base rate and
    stretches to the new budget; Noam does not depend on the budget. Early stopping is kept
    (turning it off in promoted runs was measured: more steps, no better result;
    BENCHMARKS.md §2).
    """
    # model_dim only scales Noam, which has no budget-dependent part: any value will do.
    schedule = ScheduleConfig.from_hparams(hparams, model_dim=1)
    if schedule.kind is Schedule.NOAM:
        return {}
    overrides: dict[str, Any] = {
        "warmup_fraction": 0.0,
        "warmup_steps": resolved_warmup_steps(schedule, parent_steps),
    }
    if schedule.kind in (Schedule.LINEAR, Schedule.WSD):
        overrides |= {
            "decay_fraction": None,
            "decay_steps": resolved_decay_steps(schedule, parent_steps),
        }
    return overrides
