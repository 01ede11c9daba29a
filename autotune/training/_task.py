"""The Task protocol: what the training loop needs from a model and its data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
import datetime
import inspect
from types import MappingProxyType
from typing import Any
from typing import Protocol
from typing import runtime_checkable

import torch

from ._period import Period
from ._results import MetricDirection


@dataclass(frozen=True)
class TaskData:
    """Training and validation tensors of a task (inputs and targets).

    ``statistics`` holds whatever `evaluate` needs to report in the data's own units, e.g.
    the training mean and standard deviation a task standardised the targets with.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    statistics: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for split in ("train", "val"):
            x, y = getattr(self, f"{split}_x"), getattr(self, f"{split}_y")
            if len(x) != len(y) or len(x) == 0:
                raise ValueError(
                    f"TaskData {split}_x has {len(x)} rows and {split}_y {len(y)}; "
                    "allowed: the same positive number"
                )


@dataclass(frozen=True)
class TaskInfo:
    """What `autotune tasks` shows about a task; `span` is a time series' date range."""

    name: str
    summary: str
    metrics: Mapping[str, MetricDirection]
    model_hyperparameters: frozenset[str]
    span: tuple[datetime.date, datetime.date] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))
        object.__setattr__(self, "model_hyperparameters", frozenset(self.model_hyperparameters))


@runtime_checkable
class Task(Protocol):
    """A trainable problem: model family, data split into periods, loss and metrics.

    This is the user-task API. To plug in your own task, write a class with these
    members and a factory function that takes no arguments and returns an instance;
    name it in a study spec as ``task: package.module:factory`` (the module must be
    importable from the working directory or installed; examples/sine_task.py (iid) and
    examples/elnino_task.py (dated) are two).

    - `metrics` maps every name `evaluate` returns to its direction; any of them can be
      the spec's metric, `default_metric` the one automatic mode optimises. No name is
      required (e.g. an MSE in the data's own units, "val_mse_degc2"); the loop adds
      "train_loss", so a task must not use that name.
    - `model_hyperparameters` are the names `build_model` understands; the loop owns the
      training ones (learning_rate, optimizer, schedule, ...). `build_model` must draw
      all randomness from `generator` and give missing hyperparameters their defaults.
    - Periods: a period says what it trains and what it validates on; `data(period)`
      returns the training and validation tensors of one, `data()` means
      `data(default_period())`. Iid data uses fold periods (`periods(count, seed)`: folds
      of seeded splits that train on as many rows as the default period, e.g. via
      `repeated_kfold_periods` and `fold_rows`). Dated data uses date ranges with their
      own validation range, `Period.date_range(start, end, validation_start,
      validation_end)`, of any lengths (`date_rows` gives their rows, `rolling_periods`
      seeded ones for `periods`); `describe().span` is the data's first and last date. A
      study spec's ``periods: {tuning: ..., heldout: [...]}`` names the dated periods that
      tune and that re-evaluate: each must lie in the span and be accepted by `data`
      (checked when the campaign is created). Cache the data per period on the
      instance: the loop calls `data` once per run and a worker runs many.
    - `evaluate(model, data)` or `evaluate(model, data, period)` (a third parameter gets
      the run's period) is called in eval mode under torch.no_grad. To report in the
      data's own units, undo the scaling with ``data.statistics`` (set in `data(period)`)
      or with what the period tells.

    Optional capabilities (not required by this protocol, so tasks without them stay
    valid); each is a protocol of its own, which callers test with ``isinstance``:

    - `HasTrivialMetrics`: ``trivial_metrics(period=None)``, what a trivial predictor
      scores; the baseline run records it (docs/method.md §4).
    - `HasFitThreshold`: ``fit_threshold``, the training loss that counts as fitted; a
      spec's ``max_train_steps: auto`` sweep counts the steps to reach it. Without it the
      sweep measures where the training loss stops improving (docs/method.md §3).
    """

    name: str
    metrics: Mapping[str, MetricDirection]
    default_metric: str
    model_hyperparameters: frozenset[str]

    def default_hyperparameters(self) -> dict[str, Any]:
        """A simple, fast, reasonable configuration that `train` accepts as is."""
        ...

    def build_model(
        self, hparams: Mapping[str, Any], generator: torch.Generator
    ) -> torch.nn.Module:
        """A freshly initialised model; missing hyperparameters take their defaults."""
        ...

    def default_period(self) -> Period:
        """The split `data()` uses when no period is given."""
        ...

    def periods(self, count: int, seed: int) -> list[Period]:
        """`count` distinct periods chosen by `seed`, each with as much training data as the
        default period (iid: folds of seeded k-fold splits, `repeated_kfold_periods`)."""
        ...

    def data(self, period: Period | None = None) -> TaskData:
        """Training and validation data of `period` (None: the default period)."""
        ...

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Scalar training loss of a batch."""
        ...

    def evaluate(self, model: torch.nn.Module, data: TaskData) -> dict[str, float]:
        """Validation metrics of `model` (called in eval mode under torch.no_grad); may
        take a third parameter, the period of `data`."""
        ...

    def describe(self) -> TaskInfo:
        """Name, one-line summary, metrics, model hyperparameters and date span."""
        ...


TASK_MEMBERS: tuple[str, ...] = (
    "name",
    "metrics",
    "default_metric",
    "model_hyperparameters",
    "default_hyperparameters",
    "build_model",
    "default_period",
    "periods",
    "data",
    "loss",
    "evaluate",
    "describe",
)


def evaluate_takes_period(task: Task) -> bool:
    """Whether `task.evaluate` takes the period as its third positional parameter."""
    try:
        parameters = inspect.signature(task.evaluate).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable: the two-argument form
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters):
        return True
    return sum(p.kind in positional for p in parameters) >= 3


def evaluate_task(
    task: Task, model: torch.nn.Module, data: TaskData, period: Period
) -> dict[str, float]:
    """`task.evaluate` with the period when it takes one (older tasks take two arguments)."""
    if evaluate_takes_period(task):
        return task.evaluate(model, data, period)  # type: ignore[call-arg]
    return task.evaluate(model, data)


@runtime_checkable
class HasTrivialMetrics(Protocol):
    """A task that knows what a trivial predictor scores: a baseline that does not beat it
    means a broken pipeline or data (docs/method.md §4)."""

    def trivial_metrics(self, period: Period | None = None) -> dict[str, float]:
        """The metrics `evaluate` names, measured for a trivial predictor on the validation
        data of `period` (e.g. the training class frequencies, the training mean, the last
        observed value)."""
        ...


@runtime_checkable
class HasFitThreshold(Protocol):
    """A task whose training set counts as fitted below a training loss.

    ``fit_threshold`` is the training loss ("train_loss") at or below which the training
    set counts as fitted; the learning-rate sweep that measures max_train_steps counts the
    steps to reach it (docs/method.md §3). For noisy regression use a small multiple of the noise
    floor rather than 0. Optional: without it the sweep uses where the loss levels off.
    """

    fit_threshold: float
