from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
import math
import pickle
from typing import Any

import pytest
import torch

from autotune.training import Budget
from autotune.training import EvalResult
from autotune.training import EvaluatedModel
from autotune.training import NonFiniteLossError
from autotune.training import Task
from autotune.training import TrainResult
from autotune.training import get_task
from autotune.training import train
from autotune.training._loop import _batches

QUICKSTART = Budget(max_train_steps=300, eval_interval=30, batch_size=64, seed=0)
GOOD = {"learning_rate": 3e-3, "optimizer": "adamw", "hidden_units": 64}


@dataclass
class Recorder:
    evals: list[EvalResult] = field(default_factory=list)

    def __call__(self, result: EvalResult) -> None:
        self.evals.append(result)


@pytest.fixture(scope="module")
def task() -> Task:
    return get_task("digits-mlp")


def run(task: Task, hparams: dict[str, Any], budget: Budget, **kw: Any) -> tuple:
    recorder = Recorder()
    return train(hparams, task, budget, recorder, **kw), recorder.evals


@pytest.fixture(scope="module")
def reference(task: Task) -> tuple[TrainResult, list[EvalResult]]:
    return run(task, GOOD, QUICKSTART)


def test_learns_digits(task: Task, reference: tuple) -> None:
    result, _ = reference
    counts = torch.bincount(task.data().val_y)
    majority = (counts.max() / counts.sum()).item()
    assert result.final.metrics["val_accuracy"] > 0.9
    assert result.final.metrics["val_accuracy"] > majority + 0.5
    assert result.final.metrics["val_loss"] < 0.5


def test_evaluates_at_interval(reference: tuple) -> None:
    result, evals = reference
    assert [e.step for e in evals] == list(range(30, 301, 30))
    assert result.final == evals[-1]
    assert set(result.final.metrics) == {"val_loss", "val_accuracy", "train_loss"}
    assert evals[0].metrics["train_loss"] > evals[-1].metrics["train_loss"] > 0


def test_result_fields(reference: tuple) -> None:
    result, _ = reference
    assert result.steps_done == 300
    assert result.selection_metric == "val_loss"
    assert result.evaluated_model is EvaluatedModel.RAW
    assert result.wall_time_s > 0 and result.examples_per_s > 0
    # Training time is at most the wall time: 300 * 64 examples / examples_per_s.
    assert 300 * 64 / result.examples_per_s <= result.wall_time_s


def test_best_is_lowest_val_loss(reference: tuple) -> None:
    result, evals = reference
    assert result.best == min(evals, key=lambda e: e.metrics["val_loss"])


def test_best_by_other_metric(task: Task) -> None:
    budget = Budget(max_train_steps=60, eval_interval=10, batch_size=32, seed=1)
    result, evals = run(task, GOOD, budget, selection_metric="val_accuracy")
    assert result.selection_metric == "val_accuracy"
    assert result.best == max(evals, key=lambda e: e.metrics["val_accuracy"])


def test_last_step_is_always_evaluated(task: Task) -> None:
    budget = Budget(max_train_steps=50, eval_interval=20, batch_size=32, seed=0)
    result, evals = run(task, GOOD, budget)
    assert [e.step for e in evals] == [20, 40, 50]
    assert result.final.step == 50


def test_deterministic_per_seed(task: Task, reference: tuple) -> None:
    _, evals = reference
    torch.manual_seed(12345)  # the caller's global RNG state must not matter
    _, again = run(task, GOOD, QUICKSTART)
    assert again == evals
    other_seed = Budget(max_train_steps=300, eval_interval=30, batch_size=64, seed=1)
    _, other = run(task, GOOD, other_seed)
    assert other[-1].metrics != evals[-1].metrics


def test_dropout_is_deterministic_and_leaves_global_rng(task: Task) -> None:
    hparams = {**GOOD, "dropout": 0.3, "num_layers": 2}
    budget = Budget(max_train_steps=40, eval_interval=20, batch_size=32, seed=3)
    torch.manual_seed(1)
    before = torch.get_rng_state()
    _, first = run(task, hparams, budget)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(2)
    _, second = run(task, hparams, budget)
    assert first == second


def test_on_eval_exception_propagates_and_stops(task: Task) -> None:
    class Stop(Exception):
        pass

    calls: list[int] = []
    error = Stop("pruned")

    def on_eval(result: EvalResult) -> None:
        calls.append(result.step)
        raise error

    with pytest.raises(Stop) as caught:
        train(GOOD, task, QUICKSTART, on_eval)
    assert caught.value is error
    assert calls == [30]


def test_huge_learning_rate_raises(task: Task) -> None:
    hparams = {"learning_rate": 1e6, "optimizer": "sgd_nesterov"}
    with pytest.raises(NonFiniteLossError) as caught:
        train(hparams, task, QUICKSTART, Recorder())
    error = caught.value
    assert 1 <= error.step <= 300 and not math.isfinite(error.value)
    assert f"at step {error.step}" in str(error)
    assert isinstance(error, RuntimeError)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.step, str(copy)) == (error.step, str(error))


def test_sgd_cosine_warmup_learns(task: Task) -> None:
    hparams = {
        "learning_rate": 0.05,
        "optimizer": "sgd_nesterov",
        "momentum": 0.9,
        "weight_decay": 1e-4,
        "schedule": "cosine",
        "warmup_fraction": 0.1,
        "activation": "tanh",
    }
    result, _ = run(task, hparams, QUICKSTART)
    assert result.final.metrics["val_accuracy"] > 0.9


def test_default_hyperparameters_train(task: Task) -> None:
    budget = Budget(max_train_steps=100, eval_interval=50, batch_size=64, seed=0)
    result, _ = run(task, task.default_hyperparameters(), budget)
    assert result.final.metrics["val_accuracy"] > 0.8


def test_batch_larger_than_training_set(task: Task) -> None:
    budget = Budget(max_train_steps=2, eval_interval=1, batch_size=2000, seed=0)
    result, evals = run(task, GOOD, budget)
    assert [e.step for e in evals] == [1, 2] and result.steps_done == 2


def test_batches_walk_through_permutations() -> None:
    batches = _batches(250, 100, torch.Generator().manual_seed(0))
    stream = torch.cat([next(batches) for _ in range(5)])
    assert torch.equal(stream[:250].sort().values, torch.arange(250))
    assert torch.equal(stream[250:].sort().values, torch.arange(250))
    assert not torch.equal(stream[:250], stream[250:])
