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
from autotune.training._checkpoint import CheckpointSettings
from autotune.training._checkpoint import average_checkpoints
from autotune.training._checkpoint import load_checkpoint
from autotune.training._loop import _BatchStream

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
    batches = _BatchStream(250, 100, torch.Generator().manual_seed(0))
    stream = torch.cat([next(batches) for _ in range(5)])
    assert torch.equal(stream[:250].sort().values, torch.arange(250))
    assert torch.equal(stream[250:].sort().values, torch.arange(250))
    assert not torch.equal(stream[:250], stream[250:])


def test_batch_stream_state_round_trip() -> None:
    first = _BatchStream(50, 16, torch.Generator().manual_seed(0))
    for _ in range(5):
        next(first)
    second = _BatchStream(50, 16, torch.Generator().manual_seed(99))
    second.load_state_dict(first.state_dict())
    for _ in range(10):
        assert torch.equal(next(first), next(second))


SHORT = Budget(max_train_steps=150, eval_interval=50, batch_size=64, seed=0)


@pytest.mark.parametrize(
    ("optimizer", "extra"),
    [
        ("sgd", {"learning_rate": 0.05, "momentum": 0.9}),
        ("sgd", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
        ("sgd_nesterov", {"learning_rate": 0.05}),
        ("adam", {"learning_rate": 3e-3, "eps": 1e-7}),
        ("nadam", {"learning_rate": 3e-3, "beta1": 0.8}),
        ("adamw", {"learning_rate": 3e-3, "weight_decay": 0.01}),
    ],
)
def test_every_optimizer_learns(task: Task, optimizer: str, extra: dict) -> None:
    result, _ = run(task, {"optimizer": optimizer, **extra}, SHORT)
    assert result.final.metrics["val_accuracy"] > 0.85


def test_inapplicable_optimizer_arguments_are_ignored(task: Task) -> None:
    _, plain = run(task, {"learning_rate": 3e-3, "optimizer": "adam"}, SHORT)
    sgd_args = {"momentum": 0.5, "nesterov": True}
    _, ignored = run(task, {"learning_rate": 3e-3, "optimizer": "adam", **sgd_args}, SHORT)
    assert ignored == plain


@pytest.mark.parametrize("schedule", ["linear", "cosine", "wsd"])
def test_schedules_learn(task: Task, schedule: str) -> None:
    hparams = {**GOOD, "schedule": schedule, "warmup_steps": 10, "final_lr_fraction": 0.1}
    result, _ = run(task, hparams, SHORT)
    assert result.final.metrics["val_accuracy"] > 0.85


def test_noam_model_dim_defaults_to_hidden_units(task: Task) -> None:
    noam = {"learning_rate": 2.0, "optimizer": "adam", "schedule": "noam", "warmup_steps": 20}
    budget = Budget(max_train_steps=40, eval_interval=20, batch_size=32, seed=0)
    _, implicit = run(task, {**noam, "hidden_units": 32}, budget)
    _, explicit = run(task, {**noam, "hidden_units": 32, "noam_model_dim": 32}, budget)
    _, other = run(task, {**noam, "hidden_units": 32, "noam_model_dim": 512}, budget)
    assert implicit == explicit
    assert other != explicit


def test_ema_evaluates_shadow_weights(task: Task) -> None:
    raw, raw_evals = run(task, {**GOOD, "ema_decay": 0.99}, SHORT)
    ema, ema_evals = run(task, {**GOOD, "ema_decay": 0.99, "evaluated_model": "ema"}, SHORT)
    assert raw.evaluated_model is EvaluatedModel.RAW
    assert ema.evaluated_model is EvaluatedModel.EMA
    assert [e.metrics["train_loss"] for e in ema_evals] == [
        e.metrics["train_loss"] for e in raw_evals
    ]  # the EMA does not change training
    assert ema_evals[-1].metrics["val_loss"] != raw_evals[-1].metrics["val_loss"]
    assert ema.final.metrics["val_accuracy"] > 0.85


def test_averaged_final_eval_is_the_average_of_the_last_k(task: Task, tmp_path) -> None:
    hparams = {**GOOD, "average_last_checkpoints": 3, "evaluated_model": "averaged"}
    settings = CheckpointSettings(tmp_path, keep_last=1)  # kept: max(1, K) = 3
    result, evals = run(task, hparams, QUICKSTART, checkpoints=settings)
    assert result.evaluated_model is EvaluatedModel.AVERAGED
    assert [p.name for p in result.checkpoints] == [
        "step-00000240.pt",
        "step-00000270.pt",
        "step-00000300.pt",
    ]
    _, raw_evals = run(task, GOOD, QUICKSTART)
    assert evals[:-1] == raw_evals[:-1]  # intermediate evals use the raw weights
    model = task.build_model({"hidden_units": 64}, torch.Generator())
    model.load_state_dict(average_checkpoints(result.checkpoints))
    model.eval()
    with torch.no_grad():
        expected = task.evaluate(model, task.data())
    assert {k: evals[-1].metrics[k] for k in expected} == expected
    assert evals[-1].metrics["val_loss"] != raw_evals[-1].metrics["val_loss"]
    last = load_checkpoint(result.checkpoints[-1])
    assert len(last["averaging"]) == 3


def test_gradient_accumulation_matches_one_big_batch(task: Task, tmp_path) -> None:
    hparams = {"learning_rate": 0.1, "optimizer": "sgd", "momentum": 0.9, "hidden_units": 32}
    big = Budget(max_train_steps=5, eval_interval=5, batch_size=64, seed=0)
    accumulated = Budget(5, 5, 32, 0, gradient_accumulation_steps=2)
    one, one_evals = run(task, hparams, big, checkpoints=CheckpointSettings(tmp_path / "a"))
    two, two_evals = run(
        task, hparams, accumulated, checkpoints=CheckpointSettings(tmp_path / "b")
    )
    for name, value in one_evals[-1].metrics.items():
        assert two_evals[-1].metrics[name] == pytest.approx(value, rel=1e-5)
    weights_one = load_checkpoint(one.checkpoints[-1])["model"]
    weights_two = load_checkpoint(two.checkpoints[-1])["model"]
    for name, tensor in weights_one.items():
        torch.testing.assert_close(weights_two[name], tensor, rtol=1e-5, atol=1e-6)
    assert two.steps_done == 5


def test_period_is_passed_to_the_task(task: Task) -> None:
    budget = Budget(max_train_steps=20, eval_interval=20, batch_size=32, seed=0)
    _, default = run(task, GOOD, budget)
    _, explicit = run(task, GOOD, budget, period=task.default_period())
    _, other = run(task, GOOD, budget, period=task.periods(5, 0)[3])
    assert explicit == default
    assert other != default


def test_early_stopping_ends_a_run_after_patience_evals_without_a_new_best() -> None:
    task = get_task("digits-mlp")
    hparams = {**task.default_hyperparameters(), "learning_rate": 0.05}
    budget = Budget(max_train_steps=1500, eval_interval=30, batch_size=32, seed=1)
    full = train(hparams, task, budget, lambda evaluation: None)
    stopped = train({**hparams, "early_stopping_patience": 2}, task, budget, lambda e: None)
    assert full.steps_done == 1500
    assert stopped.steps_done == stopped.best.step + 2 * 30 < 1500
    assert stopped.best == full.best or stopped.best.step < full.best.step
    with pytest.raises(ValueError, match="early_stopping_patience"):
        train({**hparams, "early_stopping_patience": -1}, task, budget, lambda e: None)


def test_fast_mode_trains_on_the_most_recent_share_of_the_rows() -> None:
    from autotune.training._loop import _window

    task = get_task("digits-mlp")
    data = task.data()
    budget = Budget(
        max_train_steps=30, eval_interval=30, batch_size=32, seed=1, train_fraction=0.25
    )
    window = _window(data, budget)
    kept = len(window.train_y)
    assert kept == math.ceil(len(data.train_y) * 0.25)
    assert torch.equal(window.train_x, data.train_x[-kept:])
    assert torch.equal(window.val_x, data.val_x)
    fast = train(task.default_hyperparameters(), task, budget, lambda e: None)
    full = train(
        task.default_hyperparameters(),
        task,
        Budget(max_train_steps=30, eval_interval=30, batch_size=32, seed=1),
        lambda e: None,
    )
    assert fast.final.metrics != full.final.metrics
    with pytest.raises(ValueError, match="train_fraction"):
        Budget(max_train_steps=30, eval_interval=30, batch_size=32, seed=1, train_fraction=0.0)


def test_a_run_stopped_at_a_step_reproduces_that_step_of_the_full_run(task: Task) -> None:
    """A recipe's fixed stop: the same schedule (spanning max_train_steps), cut at the step."""
    cosine = {**GOOD, "schedule": "cosine"}
    full, evals = run(task, cosine, QUICKSTART)
    stopped, stopped_evals = run(
        task, cosine, Budget(max_train_steps=300, eval_interval=30, batch_size=64, seed=0,
                             stop_at_step=120)
    )  # fmt: skip
    assert stopped.steps_done == 120 and stopped.final.step == 120
    assert [e.metrics for e in stopped_evals] == [e.metrics for e in evals[:4]]


def test_a_stop_past_the_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="stop_at_step=400 is invalid"):
        Budget(max_train_steps=300, eval_interval=30, batch_size=64, seed=0, stop_at_step=400)
    assert Budget(300, 30, 64, 0, stop_at_step=100).eval_steps() == (30, 60, 90, 100)
