"""The task's default hyperparameters, read where the task's code is: at create time."""

from __future__ import annotations

from autotune.campaign._records import TaskDefaults
from autotune.spec import StudySpec


def task_defaults(spec: StudySpec) -> TaskDefaults:
    """What a new campaign stores, so that reading and advancing it never needs the task:
    its default hyperparameters and the most re-evaluation periods it gives."""
    from autotune import training  # torch: only where a campaign is created or run
    from autotune.worker._periods import most_reevaluation_periods

    task = training.get_task(spec.task)
    return TaskDefaults(task.default_hyperparameters(), most_reevaluation_periods(spec, task))
