"""The training loop: one run of a task under a step budget, resumable from checkpoints."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
import contextlib
from dataclasses import dataclass
import math
from pathlib import Path
import time
from typing import Any

import numpy as np
import torch

from ._budget import Budget
from ._checkpoint import CHECKPOINT_FORMAT
from ._checkpoint import CheckpointSettings
from ._checkpoint import average_state_dicts
from ._checkpoint import checkpoint_path
from ._checkpoint import checkpoint_step
from ._checkpoint import fingerprint_differences
from ._checkpoint import list_checkpoints
from ._checkpoint import load_checkpoint
from ._checkpoint import prune_checkpoints
from ._checkpoint import run_fingerprint
from ._checkpoint import save_checkpoint
from ._config import TRAINING_HYPERPARAMETERS
from ._config import TrainingHyperparameters
from ._config import build_optimizer
from ._ema import ExponentialMovingAverage
from ._errors import CheckpointMismatchError
from ._errors import LossCause
from ._errors import NonFiniteLossError
from ._hparams import check_known
from ._period import Period
from ._results import EvalResult
from ._results import EvaluatedModel
from ._results import MetricDirection
from ._results import TrainResult
from ._schedules import SCHEDULE_HYPERPARAMETERS
from ._schedules import default_model_dim
from ._schedules import identical_between
from ._schedules import learning_rate_at
from ._schedules import schedule_of
from ._schedules import trajectory_hparams
from ._task import Task
from ._task import TaskData
from ._task import evaluate_task

TRAIN_LOSS = "train_loss"
State = dict[str, Any]


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


class _BatchStream:
    """Endless row-index batches from successive random permutations (epochs).

    Its state (the rows not yet served and the generator state) goes into checkpoints.
    """

    def __init__(self, n_rows: int, batch_size: int, generator: torch.Generator) -> None:
        self._rows, self._size, self._generator = n_rows, batch_size, generator
        self._pending = torch.empty(0, dtype=torch.long)
        self._start, self._end = 0, 0

    def __iter__(self) -> Iterator[torch.Tensor]:
        return self

    def __next__(self) -> torch.Tensor:
        if self._end - self._start < self._size:
            self._refill()
        start = self._start
        self._start += self._size
        return self._pending[start : self._start]

    def _refill(self) -> None:
        pending = self._pending[self._start :]
        while len(pending) < self._size:
            pending = torch.cat([pending, torch.randperm(self._rows, generator=self._generator)])
        self._pending, self._start, self._end = pending, 0, len(pending)

    def state_dict(self) -> State:
        return {
            "pending": self._pending[self._start :].clone(),
            "generator": self._generator.get_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._pending = state["pending"].clone()
        self._start, self._end = 0, len(self._pending)
        self._generator.set_state(state["generator"])


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
    hparams: Mapping[str, Any], task: Task, budget: Budget
) -> tuple[TrainingHyperparameters, dict[str, Any]]:
    """Validate the keys and the schedule; parse the training ones, return the model ones."""
    allowed = TRAINING_HYPERPARAMETERS | task.model_hyperparameters
    check_known(hparams, allowed, f"task {task.name!r}")
    model = {k: v for k, v in hparams.items() if k in task.model_hyperparameters}
    config = TrainingHyperparameters.from_hparams(hparams, model_dim=default_model_dim(model))
    # Resolves warmup and decay lengths for this budget: raises ValueError if they do not fit.
    learning_rate_at(
        budget.max_train_steps, config.learning_rate, budget.max_train_steps, config.schedule
    )
    return config, model


def _window(data: TaskData, budget: Budget) -> TaskData:
    """Fast mode: only the last ``train_fraction`` of the training rows (a shorter window)."""
    if budget.train_fraction >= 1.0:
        return data
    keep = max(budget.batch_size, math.ceil(len(data.train_y) * budget.train_fraction))
    start = max(len(data.train_y) - keep, 0)
    return TaskData(data.train_x[start:], data.train_y[start:], data.val_x, data.val_y)


def evaluate_model(
    model: torch.nn.Module, task: Task, data: TaskData, period: Period
) -> dict[str, float]:
    """The task's metrics of ``model`` on ``data``; ValueError naming any metric the task
    declares that its ``evaluate`` did not return."""
    model.eval()
    with torch.no_grad():
        metrics = evaluate_task(task, model, data, period)
    model.train()
    missing = sorted(set(task.metrics) - set(metrics))
    if missing:
        raise ValueError(f"task {task.name!r} evaluate() did not return {', '.join(missing)}")
    return metrics


@contextlib.contextmanager
def _loaded(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> Iterator[None]:
    """Within the block `model` holds the weights `state`; restored afterwards."""
    backup = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    try:
        yield
    finally:
        model.load_state_dict(backup)


def _eval_state(result: EvalResult | None) -> State | None:
    return None if result is None else {"step": result.step, "metrics": dict(result.metrics)}


def _eval_from_state(state: Mapping[str, Any] | None) -> EvalResult | None:
    return None if state is None else EvalResult(state["step"], state["metrics"])


class _Tracker:
    """Train loss since the last eval, steps, training time and the best eval so far."""

    def __init__(self, metric: str, direction: MetricDirection) -> None:
        self.metric, self.direction = metric, direction
        self.loss_sum, self.losses, self.steps = 0.0, 0, 0
        self.trained_steps, self.train_seconds = 0, 0.0  # this call only, for throughput
        self.final: EvalResult | None = None
        self.best: EvalResult | None = None

    def record(self, metrics: Mapping[str, float]) -> EvalResult:
        """The EvalResult at the current step; resets the running train loss."""
        result = EvalResult(self.steps, {**metrics, TRAIN_LOSS: self.loss_sum / self.losses})
        self.loss_sum, self.losses, self.final = 0.0, 0, result
        if self.best is None or self.direction.is_better(
            result.metrics[self.metric], self.best.metrics[self.metric]
        ):
            self.best = result
        return result

    def state_dict(self) -> State:
        return {
            "loss_sum": self.loss_sum,
            "losses": self.losses,
            "steps": self.steps,
            "final": _eval_state(self.final),
            "best": _eval_state(self.best),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.loss_sum, self.losses, self.steps = state["loss_sum"], state["losses"], state["steps"]
        self.final, self.best = _eval_from_state(state["final"]), _eval_from_state(state["best"])

    def examples_per_s(self, examples_per_step: int) -> float:
        if self.trained_steps == 0:
            return 0.0
        return self.trained_steps * examples_per_step / self.train_seconds


class _Run:
    """The mutable state of one run: model, optimizer, EMA, snapshots, batches, tracker.

    The learning-rate schedule is a pure function of the step, so beyond `step` it has no
    state to checkpoint.
    """

    def __init__(
        self,
        config: TrainingHyperparameters,
        model_hparams: Mapping[str, Any],
        task: Task,
        data: TaskData,
        budget: Budget,
        tracker: _Tracker,
        seeds: _Seeds,
    ) -> None:
        self.config, self.task, self.data = config, task, data
        self.period = task.default_period()  # the run's period, set by `train`
        self.budget, self.tracker = budget, tracker
        self.model = task.build_model(model_hparams, _generator(seeds.init))
        self.model.train()
        self.optimizer = build_optimizer(self.model.parameters(), config)
        self.ema = (
            None
            if config.ema_decay is None
            else ExponentialMovingAverage(self.model, config.ema_decay, config.ema_dynamic)
        )
        self.snapshots: deque[dict[str, torch.Tensor]] | None = (
            deque(maxlen=config.average_last_checkpoints) if config.averaging else None
        )
        self.batches = _BatchStream(
            len(data.train_y), budget.batch_size, _generator(seeds.batches)
        )
        self.learning_rate: float | None = None  # the rate now in the optimizer's groups

    @property
    def step(self) -> int:
        return self.tracker.steps

    def train_until(self, last_step: int) -> None:
        """Train steps step+1 .. last_step."""
        config, budget, ema = self.config, self.budget, self.ema
        started = time.perf_counter()
        for step in range(self.tracker.steps + 1, last_step + 1):
            rate = learning_rate_at(
                step, config.learning_rate, budget.max_train_steps, config.schedule
            )
            if rate != self.learning_rate:
                for group in self.optimizer.param_groups:
                    group["lr"] = rate
                self.learning_rate = rate
            loss = self._update(step)
            if ema is not None:
                ema.update(step)
            self.tracker.loss_sum += loss
            self.tracker.losses += 1
            self.tracker.steps = step
            self.tracker.trained_steps += 1
        self.tracker.train_seconds += time.perf_counter() - started

    def _update(self, step: int) -> float:
        """One optimizer step over gradient_accumulation_steps micro-batches; the mean loss.

        Raises NonFiniteLossError before updating if a micro-batch loss is nan or inf.
        """
        model, task, data = self.model, self.task, self.data
        micro = self.budget.gradient_accumulation_steps
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for _ in range(micro):
            rows = next(self.batches)
            output = model(data.train_x[rows])
            loss = task.loss(output, data.train_y[rows])
            value = loss.item()
            if not math.isfinite(value):
                raise NonFiniteLossError(step, value, _cause(step, output))
            (loss if micro == 1 else loss / micro).backward()
            total += value
        self.optimizer.step()
        return total if micro == 1 else total / micro

    def evaluate(self) -> EvalResult:
        """Evaluate the configured weights at the current step and record the result."""
        if self.snapshots is not None:
            self.snapshots.append(
                {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            )
        with self._evaluated_weights():
            metrics = evaluate_model(self.model, self.task, self.data, self.period)
        return self.tracker.record(metrics)

    def _evaluated_weights(self) -> contextlib.AbstractContextManager[None]:
        kind = self.config.evaluated_model
        if kind is EvaluatedModel.EMA and self.ema is not None:
            return self.ema.applied()
        last = self.step == self.budget.max_train_steps
        if kind is EvaluatedModel.AVERAGED and last and self.snapshots is not None:
            return _loaded(self.model, average_state_dicts(list(self.snapshots)))
        return contextlib.nullcontext()

    def state_dict(self, fingerprint: State) -> State:
        """Everything needed to continue exactly, as tensors and plain values."""
        return {
            "format": CHECKPOINT_FORMAT,
            "fingerprint": fingerprint,
            "max_train_steps": self.budget.max_train_steps,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "ema": None if self.ema is None else self.ema.state_dict(),
            "averaging": [] if self.snapshots is None else list(self.snapshots),
            "torch_rng": torch.get_rng_state(),
            "batches": self.batches.state_dict(),
            "tracker": self.tracker.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        if self.snapshots is not None:
            self.snapshots.extend(state["averaging"])
        torch.set_rng_state(state["torch_rng"])
        self.batches.load_state_dict(state["batches"])
        self.tracker.load_state_dict(state["tracker"])


def _cause(step: int, output: object) -> LossCause:
    """Step 1 runs on the initial weights: a non-finite loss there is not the learning
    rate's doing, and the output (a tensor, or a tuple of them) says whether the model's."""
    if step > 1:
        return LossCause.UPDATES
    tensors = output if isinstance(output, tuple | list) else (output,)
    finite = all(bool(torch.isfinite(t).all()) for t in tensors if isinstance(t, torch.Tensor))
    return LossCause.LOSS if finite else LossCause.MODEL_OUTPUT


def _fingerprint(
    task: Task, hparams: Mapping[str, Any], budget: Budget, period: Period | None
) -> State:
    """What a run resumed from a checkpoint must share with the run that wrote it."""
    settings = {
        "eval_interval": budget.eval_interval,
        "batch_size": budget.batch_size,
        "seed": budget.seed,
        "gradient_accumulation_steps": budget.gradient_accumulation_steps,
        "period": None if period is None else period.name,
        "train_fraction": budget.train_fraction,
    }
    return run_fingerprint(task.name, hparams, settings)


def _without_schedule(fingerprint: Mapping[str, Any]) -> State:
    """The fingerprint with its schedule (and stopping) hyperparameters left out."""
    return {**fingerprint, "hparams": trajectory_hparams(fingerprint["hparams"])}


def _schedule_only(fingerprint: Mapping[str, Any]) -> State:
    """The schedule hyperparameters of the fingerprint."""
    hparams = fingerprint["hparams"]
    return {k: v for k, v in hparams.items() if k in SCHEDULE_HYPERPARAMETERS}


def _trajectory_difference(
    state: Mapping[str, Any], fingerprint: State, config: TrainingHyperparameters, budget: Budget
) -> str | None:
    """Why the saved run's learning rates differ from this run's before the checkpoint, or None.

    Schedule hyperparameters and max_train_steps may differ if the rates agree up to it.
    """
    step, saved_max, saved = state["step"], state["max_train_steps"], state["fingerprint"]
    lines = [
        f"hparams.{line}"
        for line in fingerprint_differences(_schedule_only(saved), _schedule_only(fingerprint))
    ]
    if saved_max != budget.max_train_steps:
        lines.append(f"max_train_steps: checkpoint {saved_max}, this run {budget.max_train_steps}")
    if not lines:
        return None
    same = identical_between(
        schedule_of(saved["hparams"]),
        saved_max,
        config.schedule,
        budget.max_train_steps,
        config.learning_rate,
    )
    if same >= step:
        return None
    rates = f"their learning rates differ from step {same + 1}, before step {step}"
    return "; ".join([*lines, rates])


def _check_resumable(
    path: Path,
    state: Mapping[str, Any],
    fingerprint: State,
    config: TrainingHyperparameters,
    budget: Budget,
) -> None:
    """Raise ValueError naming what differs if `state` cannot continue into this run."""
    differences = fingerprint_differences(
        _without_schedule(state["fingerprint"]), _without_schedule(fingerprint)
    )
    step = state["step"]
    if step > budget.max_train_steps:
        differences.append(f"step {step} is past max_train_steps={budget.max_train_steps}")
    elif not differences:  # the schedules are only comparable if all else matches
        trajectory = _trajectory_difference(state, fingerprint, config, budget)
        if trajectory is not None:
            differences.append(trajectory)
    if differences:
        raise CheckpointMismatchError(f"cannot resume from {path}: {'; '.join(differences)}")


def _check_directory(settings: CheckpointSettings, start_step: int) -> None:
    """Refuse to mix with checkpoints of steps this run has not reached."""
    later = [
        p.name for p in list_checkpoints(settings.directory) if checkpoint_step(p) > start_step
    ]
    if later:
        raise ValueError(
            f"checkpoint directory {settings.directory} already holds {', '.join(later)}; "
            f"allowed: no checkpoints past the start step {start_step} (empty, or resume_from)"
        )


def train(
    hparams: Mapping[str, Any],
    task: Task,
    budget: Budget,
    on_eval: Callable[[EvalResult], None],
    selection_metric: str | None = None,
    *,
    period: Period | None = None,
    checkpoints: CheckpointSettings | None = None,
    resume_from: Path | None = None,
) -> TrainResult:
    """Train `task`'s model under `budget`, evaluating every eval_interval steps.

    `on_eval` receives each EvalResult; any exception it raises stops training and
    propagates unchanged. `best` is the eval with the best `selection_metric` (the task's
    default metric when None; the earliest wins ties). The torch global RNG is forked and
    seeded from budget.seed, so the caller's RNG state is untouched and runs are repeatable.

    With `checkpoints`, a checkpoint is written at every eval step before `on_eval` runs.
    `resume_from` continues exactly the run that wrote that checkpoint (same hparams, task,
    period and budget, except the schedule hyperparameters and max_train_steps when the
    learning rates agree up to the checkpoint); evals already done are not passed to
    `on_eval` again.
    """
    config, model_hparams = _split_hparams(hparams, task, budget)
    metric = _resolve_metric(task, selection_metric)
    fingerprint = _fingerprint(task, hparams, budget, period)
    state = None
    if resume_from is not None:
        state = load_checkpoint(resume_from)
        _check_resumable(Path(resume_from), state, fingerprint, config, budget)
    if checkpoints is not None:
        _check_directory(checkpoints, 0 if state is None else state["step"])
    seeds = _Seeds.from_seed(budget.seed)
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seeds.torch_global)
        data = _window(task.data() if period is None else task.data(period), budget)
        run = _Run(config, model_hparams, task, data, budget, _Tracker(*metric), seeds)
        if period is not None:
            run.period = period
        if state is not None:
            run.load_state_dict(state)
        kept = _train_and_evaluate(run, on_eval, checkpoints, fingerprint)
    tracker = run.tracker
    assert tracker.final is not None and tracker.best is not None  # the last step evaluates
    return TrainResult(
        final=tracker.final,
        best=tracker.best,
        selection_metric=tracker.metric,
        steps_done=tracker.steps,
        wall_time_s=time.perf_counter() - started,
        examples_per_s=tracker.examples_per_s(budget.examples_per_step),
        evaluated_model=config.evaluated_model,
        checkpoints=kept,
        resumed_from_step=0 if state is None else state["step"],
    )


def _train_and_evaluate(
    run: _Run,
    on_eval: Callable[[EvalResult], None],
    checkpoints: CheckpointSettings | None,
    fingerprint: State,
) -> tuple[Path, ...]:
    """Train to the end, evaluating (and checkpointing) at eval steps; the files kept."""
    keep = 0
    if checkpoints is not None:
        keep = max(checkpoints.keep_last, run.config.average_last_checkpoints)
    for eval_step in run.budget.eval_steps():
        if eval_step <= run.step:
            continue
        run.train_until(eval_step)
        result = run.evaluate()
        if checkpoints is not None:
            save_checkpoint(
                checkpoint_path(checkpoints.directory, eval_step), run.state_dict(fingerprint)
            )
            prune_checkpoints(checkpoints.directory, keep)
        on_eval(result)
        if _patience_spent(run.tracker, run.config.early_stopping_patience, run.budget):
            break
    return () if checkpoints is None else list_checkpoints(checkpoints.directory)


def _patience_spent(tracker: _Tracker, patience: int, budget: Budget) -> bool:
    """Whether `patience` evals have passed since the best one (0: never)."""
    if patience == 0 or tracker.best is None or tracker.final is None:
        return False
    return tracker.final.step - tracker.best.step >= patience * budget.eval_interval
