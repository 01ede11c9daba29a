"""Trivial predictors and fit thresholds of the built-in tasks and the example user task."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from autotune.training._budget import Budget
from autotune.training._co2 import Co2LSTMTask
from autotune.training._digits import DigitsMLPTask
from autotune.training._loop import TRAIN_LOSS
from autotune.training._loop import train
from autotune.training._registry import available_tasks
from autotune.training._registry import check_task
from autotune.training._registry import get_task
from autotune.training._results import EvalResult
from autotune.training._task import TASK_MEMBERS
from autotune.training._task import Task

EXAMPLE = "examples.sine_task:make_task"
TASKS = [*available_tasks(), EXAMPLE]
STEPS = 600


@pytest.fixture(scope="module", params=TASKS)
def task(request: pytest.FixtureRequest) -> Task:
    return get_task(request.param)


@pytest.fixture(scope="module")
def evals(task: Task) -> list[EvalResult]:
    """The evals of one short run with the task's default hyperparameters."""
    results: list[EvalResult] = []
    train(task.default_hyperparameters(), task, Budget(STEPS, 50, 64, 0), results.append)
    return results


def test_trivial_metrics_are_finite_and_named_like_evaluate(task: Task) -> None:
    for period in (None, task.periods(3, 1)[1]):
        trivial = task.trivial_metrics(period)  # type: ignore[attr-defined]
        assert set(trivial) == set(task.metrics)
        assert all(isinstance(v, float) and math.isfinite(v) for v in trivial.values())
    assert task.trivial_metrics() == task.trivial_metrics(task.default_period())  # type: ignore[attr-defined]


def test_a_short_run_beats_the_trivial_predictor(task: Task, evals: list[EvalResult]) -> None:
    trivial = task.trivial_metrics()  # type: ignore[attr-defined]
    best = min(evals, key=lambda e: e.metrics["val_loss"])
    for name, direction in task.metrics.items():
        assert direction.is_better(best.metrics[name], trivial[name]), (name, best, trivial)
    assert best.metrics["val_loss"] < 0.5 * trivial["val_loss"]


def test_the_fit_threshold_is_reached_in_a_short_run(task: Task, evals: list[EvalResult]) -> None:
    threshold = task.fit_threshold  # type: ignore[attr-defined]
    assert isinstance(threshold, float) and threshold > 0
    assert min(e.metrics[TRAIN_LOSS] for e in evals) <= threshold


def test_digits_trivial_is_the_training_class_frequencies() -> None:
    task = DigitsMLPTask()
    data = task.data()
    frequencies = np.bincount(data.train_y.numpy(), minlength=10) / len(data.train_y)
    val = data.val_y.numpy()
    trivial = task.trivial_metrics()
    assert trivial["val_loss"] == pytest.approx(-np.log(frequencies[val]).mean())
    assert trivial["val_accuracy"] == pytest.approx((val == frequencies.argmax()).mean())
    assert trivial["val_loss"] == pytest.approx(math.log(10), abs=0.01)


def test_co2_trivial_is_the_persistence_forecast() -> None:
    task = Co2LSTMTask()
    data = task.data()
    last = data.val_x[:, -1, 0].numpy()[:, None]
    errors = data.val_y.numpy() - last
    trivial = task.trivial_metrics()
    assert trivial["val_mse"] == trivial["val_loss"] == pytest.approx((errors**2).mean())
    assert trivial["val_mae"] == pytest.approx(np.abs(errors).mean())


def test_sine_trivial_is_the_training_mean() -> None:
    task = get_task(EXAMPLE)
    data = task.data()
    errors = data.val_y - data.train_y.mean()
    trivial = task.trivial_metrics()  # type: ignore[attr-defined]
    assert trivial["val_loss"] == pytest.approx(float((errors**2).mean()))
    assert trivial["val_mae"] == pytest.approx(float(errors.abs().mean()))


def test_the_optional_members_are_not_required() -> None:
    assert "trivial_metrics" not in TASK_MEMBERS and "fit_threshold" not in TASK_MEMBERS
    full = get_task(EXAMPLE)
    minimal = SimpleNamespace(**{name: getattr(full, name) for name in TASK_MEMBERS})
    assert isinstance(minimal, Task) and check_task(minimal, "minimal") is minimal
    assert getattr(minimal, "trivial_metrics", None) is None
    assert getattr(minimal, "fit_threshold", None) is None
    assert torch.is_tensor(minimal.data().train_x)
