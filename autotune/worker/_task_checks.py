"""The task side of spec checks: TaskFacts from the training code, for create and workers.

spec checks a study against plain TaskFacts; building them imports the task (and torch), which
only the places that run or create a campaign can do. Reading a stored campaign does not.
"""

from __future__ import annotations

from pathlib import Path

from autotune import training
from autotune._domains import MODEL_DOMAINS
from autotune._domains import TRAINING_DOMAINS
from autotune._domains import Domain
from autotune.spec import Direction
from autotune.spec import StudySpec
from autotune.spec import TaskFacts
from autotune.spec import check_against_task
from autotune.spec import load_study_spec


def task_facts(name: str) -> TaskFacts:
    """The facts spec checks need about task ``name``; UnknownTaskError (a ValueError) if none."""
    task = training.get_task(name)
    hyperparameters = training.TRAINING_HYPERPARAMETERS | task.model_hyperparameters
    return TaskFacts(
        name=task.name,
        metrics={metric: Direction(d.value) for metric, d in task.metrics.items()},
        default_metric=task.default_metric,
        hyperparameters=hyperparameters,
        has_fit_threshold=getattr(task, "fit_threshold", None) is not None,
        domains=_domains(name, hyperparameters),
    )


def _domains(name: str, hyperparameters: frozenset[str]) -> dict[str, Domain]:
    """The training loop's domains; the model's too for a built-in task (a user task's
    model hyperparameters are its own, whatever their names)."""
    table = dict(TRAINING_DOMAINS)
    if not training.is_user_task_reference(name):
        table.update(MODEL_DOMAINS)
    return {key: domain for key, domain in table.items() if key in hyperparameters}


def load_checked_study_spec(path: str | Path) -> StudySpec:
    """A study spec file, validated and checked against its task (automatic mode included)."""
    return load_study_spec(path, task_facts)


def check_spec_task(spec: StudySpec, source: str) -> None:
    """SpecError if ``spec``'s task is missing here or does not fit it (at worker start)."""
    check_against_task(spec, task_facts, source)
