"""The training loop: one run of a task under a step budget."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
import math
import time
from typing import Any

import numpy as np
import torch

from ._budget import Budget
from ._config import TRAINING_HYPERPARAMETERS
from ._config import TrainingHyperparameters
from ._config import build_optimizer
from ._errors import NonFiniteLossError
from ._hparams import check_known
from ._results import EvalResult
from ._results import EvaluatedModel
from ._results import MetricDirection
from ._results import TrainResult
from ._schedules import learning_rate_at
from ._task import Task
from ._task import TaskData

TRAIN_LOSS = "train_loss"


@dataclass(frozen=True)
class _Seeds:
    """Independent seeds for initialisation, batch order and the torch global RNG."""

    init: int
    batches: int
    torch_global: int

    @classmethod
    def from_seed(cls, seed: int) -> _Seeds:
        children = np.random.SeedSequence(seed).spawn(3)
        init, batches, torch_global = (int(c.generate_state(1, np.uint64)[0]) for c in children)
        return cls(init=init, batches=batches, torch_global=torch_global)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _batches(n_rows: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless row-index batches from successive random permutations (epochs)."""
    pending = torch.empty(0, dtype=torch.long)
    while True:
        while len(pending) < batch_size:
            pending = torch.cat([pending, torch.randperm(n_rows, generator=generator)])
        yield pending[:batch_size]
        pending = pending[batch_size:]


def _resolve_metric(task: Task, selection_metric: str | None) -> tuple[str, MetricDirection]:
    """The selection metric and its direction: a task metric or TRAIN_LOSS (minimised)."""
    metric = task.default_metric if selection_metric is None else selection_metric
    directions = {**task.metrics, TRAIN_LOSS: MetricDirection.MINIMIZE}
    if metric not in directions:
        raise ValueError(
            f"selection_metric={metric!r} is invalid for task {task.name!r}; "
            f"allowed: {', '.join(sorted(directions))}"
        )
    return metric, directions[metric]


def _split_hparams(
    hparams: Mapping[str, Any], task: Task
) -> tuple[TrainingHyperparameters, dict[str, Any]]:
    """Validate the keys; parse the training ones and return the model ones."""
    allowed = TRAINING_HYPERPARAMETERS | task.model_hyperparameters
    check_known(hparams, allowed, f"task {task.name!r}")
    model = {k: v for k, v in hparams.items() if k in task.model_hyperparameters}
    return TrainingHyperparameters.from_hparams(hparams), model


def _train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    task: Task,
    batch: tuple[torch.Tensor, torch.Tensor],
    learning_rate: float,
    step: int,
) -> float:
    """One update; returns the batch loss, or raises NonFiniteLossError before updating."""
    for group in optimizer.param_groups:
        group["lr"] = learning_rate
    optimizer.zero_grad(set_to_none=True)
    loss = task.loss(model(batch[0]), batch[1])
    value = loss.item()
    if not math.isfinite(value):
        raise NonFiniteLossError(step, value)
    loss.backward()
    optimizer.step()
    return value


def _evaluate(model: torch.nn.Module, task: Task, data: TaskData) -> dict[str, float]:
    model.eval()
    with torch.no_grad():
        metrics = task.evaluate(model, data)
    model.train()
    missing = sorted(set(task.metrics) - set(metrics))
    if missing:
        raise ValueError(f"task {task.name!r} evaluate() did not return {', '.join(missing)}")
    return metrics


class _Tracker:
    """Train loss since the last eval, training time, and the best eval so far."""

    def __init__(self, metric: str, direction: MetricDirection) -> None:
        self.metric, self.direction = metric, direction
        self.loss_sum, self.losses, self.steps, self.train_seconds = 0.0, 0, 0, 0.0
        self.final: EvalResult | None = None
        self.best: EvalResult | None = None

    def add_step(self, loss: float, started: float) -> None:
        """Count one training step that began at perf_counter() value `started`."""
        self.loss_sum, self.losses = self.loss_sum + loss, self.losses + 1
        self.steps += 1
        self.train_seconds += time.perf_counter() - started

    def record(self, metrics: Mapping[str, float]) -> EvalResult:
        """The EvalResult at the current step; resets the running train loss."""
        result = EvalResult(self.steps, {**metrics, TRAIN_LOSS: self.loss_sum / self.losses})
        self.loss_sum, self.losses, self.final = 0.0, 0, result
        if self.best is None or self.direction.is_better(
            result.metrics[self.metric], self.best.metrics[self.metric]
        ):
            self.best = result
        return result

    def result(self, batch_size: int, wall_time_s: float) -> TrainResult:
        assert self.final is not None and self.best is not None  # the last step evaluates
        return TrainResult(
            final=self.final,
            best=self.best,
            selection_metric=self.metric,
            steps_done=self.steps,
            wall_time_s=wall_time_s,
            examples_per_s=self.steps * batch_size / self.train_seconds,
            evaluated_model=EvaluatedModel.RAW,
        )


def train(
    hparams: Mapping[str, Any],
    task: Task,
    budget: Budget,
    on_eval: Callable[[EvalResult], None],
    selection_metric: str | None = None,
) -> TrainResult:
    """Train `task`'s model under `budget`, evaluating every eval_interval steps.

    `on_eval` receives each EvalResult; any exception it raises stops training and
    propagates unchanged. `best` is the eval with the best `selection_metric` (the task's
    default metric when None; the earliest wins ties). The torch global RNG is forked and
    seeded from budget.seed, so the caller's RNG state is untouched and runs are repeatable.
    """
    config, model_hparams = _split_hparams(hparams, task)
    metric = _resolve_metric(task, selection_metric)
    seeds = _Seeds.from_seed(budget.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seeds.torch_global)
        return _run(config, model_hparams, task, budget, on_eval, _Tracker(*metric), seeds)


def _run(
    config: TrainingHyperparameters,
    model_hparams: dict[str, Any],
    task: Task,
    budget: Budget,
    on_eval: Callable[[EvalResult], None],
    tracker: _Tracker,
    seeds: _Seeds,
) -> TrainResult:
    started = time.perf_counter()
    data = task.data()
    model = task.build_model(model_hparams, _generator(seeds.init))
    model.train()
    optimizer = build_optimizer(model.parameters(), config)
    batches = _batches(len(data.train_y), budget.batch_size, _generator(seeds.batches))
    eval_steps = frozenset(budget.eval_steps())
    for step in range(1, budget.max_train_steps + 1):
        tick = time.perf_counter()
        lr = learning_rate_at(
            step - 1,
            config.learning_rate,
            budget.max_train_steps,
            config.schedule,
            config.warmup_fraction,
        )
        rows = next(batches)
        batch = (data.train_x[rows], data.train_y[rows])
        tracker.add_step(_train_step(model, optimizer, task, batch, lr, step), tick)
        if step in eval_steps:
            on_eval(tracker.record(_evaluate(model, task, data)))
    return tracker.result(budget.batch_size, time.perf_counter() - started)
