"""Every task (the built-ins and the example user task) against the Task protocol."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from autotune.training._budget import Budget
from autotune.training._loop import TRAIN_LOSS
from autotune.training._loop import train
from autotune.training._period import PeriodKind
from autotune.training._registry import available_tasks
from autotune.training._registry import check_task
from autotune.training._registry import get_task
from autotune.training._results import MetricDirection
from autotune.training._task import TASK_MEMBERS
from autotune.training._task import HasFitThreshold
from autotune.training._task import HasTrivialMetrics
from autotune.training._task import Task
from autotune.training._task import TaskData
from autotune.training._task import TaskInfo

EXAMPLE = "examples.sine_task:make_task"
TASKS = [*available_tasks(), EXAMPLE]


@pytest.fixture(scope="module", params=TASKS)
def task(request: pytest.FixtureRequest) -> Task:
    return get_task(request.param)


def test_satisfies_the_protocol(task: Task) -> None:
    assert isinstance(task, Task)
    assert check_task(task, task.name) is task
    assert task.default_metric == "val_loss"
    assert task.metrics["val_loss"] is MetricDirection.MINIMIZE
    assert TRAIN_LOSS not in task.metrics


def test_has_the_optional_capabilities(task: Task) -> None:
    assert isinstance(task, HasTrivialMetrics) and isinstance(task, HasFitThreshold)
    assert set(task.trivial_metrics()) == set(task.metrics)
    assert task.fit_threshold > 0


def test_a_task_without_the_optional_members_lacks_the_capabilities() -> None:
    full = get_task(EXAMPLE)
    minimal = SimpleNamespace(**{name: getattr(full, name) for name in TASK_MEMBERS})
    assert check_task(minimal, "minimal") is minimal
    assert not isinstance(minimal, HasTrivialMetrics)
    assert not isinstance(minimal, HasFitThreshold)
    unset = SimpleNamespace(**vars(minimal), trivial_metrics=None, fit_threshold=0.1)
    assert not isinstance(unset, HasTrivialMetrics) and isinstance(unset, HasFitThreshold)


def test_describe(task: Task) -> None:
    info = task.describe()
    assert isinstance(info, TaskInfo)
    assert info.name == task.name and info.summary
    assert dict(info.metrics) == dict(task.metrics)
    assert info.model_hyperparameters == task.model_hyperparameters
    if task.default_period().kind is PeriodKind.DATE_RANGE:
        assert info.span is not None and info.span[0] < info.span[1]
    else:
        assert info.span is None


def test_default_hyperparameters_name_known_keys(task: Task) -> None:
    hparams = task.default_hyperparameters()
    assert hparams["learning_rate"] > 0
    model_keys = {k for k in hparams if k in task.model_hyperparameters}
    task.build_model({k: hparams[k] for k in model_keys}, torch.Generator().manual_seed(0))


def test_data_is_cached_per_period(task: Task) -> None:
    data = task.data()
    assert isinstance(data, TaskData)
    assert task.data(task.default_period()) is data
    periods = task.periods(2, 1)
    assert len(set(periods)) == 2
    other = task.data(periods[1])
    assert other is task.data(periods[1]) and other is not data
    assert other.train_x.shape[1:] == data.train_x.shape[1:]


def test_forward_loss_and_metrics(task: Task) -> None:
    data = task.data()
    model = task.build_model({}, torch.Generator().manual_seed(0))
    outputs = model(data.train_x[:16])
    assert outputs.shape[0] == 16
    loss = task.loss(outputs, data.train_y[:16])
    assert loss.shape == () and math.isfinite(loss.item())
    loss.backward()
    model.eval()
    with torch.no_grad():
        metrics = task.evaluate(model, data)
    assert set(metrics) == set(task.metrics)
    assert all(math.isfinite(v) for v in metrics.values())


def test_smoke_training_run(task: Task) -> None:
    evals = []
    hparams = task.default_hyperparameters()
    budget = Budget(max_train_steps=60, eval_interval=30, batch_size=32, seed=0)
    result = train(hparams, task, budget, evals.append)
    assert [e.step for e in evals] == [30, 60]
    assert set(result.final.metrics) == {*task.metrics, TRAIN_LOSS}
    assert all(math.isfinite(v) for v in result.final.metrics.values())


def test_training_on_another_period(task: Task) -> None:
    period = task.periods(3, 2)[2]
    budget = Budget(max_train_steps=30, eval_interval=30, batch_size=32, seed=0)
    result = train(task.default_hyperparameters(), task, budget, lambda _: None, period=period)
    assert math.isfinite(result.final.metrics["val_loss"])


QUICKSTART = Budget(max_train_steps=300, eval_interval=30, batch_size=64, seed=0)


def _class_prior_loss(data: TaskData) -> float:
    """Cross-entropy of always predicting the training class frequencies."""
    prior = torch.bincount(data.train_y, minlength=10).double() / len(data.train_y)
    return -prior.log()[data.val_y].mean().item()


@pytest.mark.parametrize("name", ["digits-mlp", "digits-cnn"])
def test_digits_beat_the_trivial_predictors(name: str) -> None:
    task = get_task(name)
    data = task.data()
    result = train(task.default_hyperparameters(), task, QUICKSTART, lambda _: None)
    majority = torch.bincount(data.val_y).max().item() / len(data.val_y)
    assert result.final.metrics["val_loss"] < 0.2 * _class_prior_loss(data)
    assert result.final.metrics["val_accuracy"] > majority + 0.7


def test_co2_beats_persistence() -> None:
    task = get_task("co2-lstm")
    data = task.data()
    persistence = task.loss(data.val_x[:, -1, :].expand_as(data.val_y), data.val_y).item()
    result = train(task.default_hyperparameters(), task, QUICKSTART, lambda _: None)
    assert result.final.metrics["val_loss"] < 0.5 * persistence
    assert result.best.metrics["val_mse"] < 0.5 * persistence


def test_example_beats_the_mean_predictor() -> None:
    task = get_task(EXAMPLE)
    data = task.data()
    mean_predictor = task.loss(data.train_y.mean().expand_as(data.val_y), data.val_y).item()
    result = train(task.default_hyperparameters(), task, QUICKSTART, lambda _: None)
    assert result.final.metrics["val_loss"] < 0.2 * mean_predictor
