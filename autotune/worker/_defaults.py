"""The task's default hyperparameters, read where the task's code is: at create time."""

from __future__ import annotations

from typing import Any

from autotune.spec import StudySpec


def task_defaults(spec: StudySpec) -> dict[str, Any]:
    """What a new campaign stores, so that reading and advancing it never needs the task."""
    from autotune import training  # torch: only where a campaign is created or run

    return training.get_task(spec.task).default_hyperparameters()
