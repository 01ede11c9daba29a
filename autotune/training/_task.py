"""The Task protocol: what the training loop needs from a model and its data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from typing import Protocol
from typing import runtime_checkable

import torch

from ._results import MetricDirection


@dataclass(frozen=True)
class TaskData:
    """Training and validation tensors of a task (inputs and targets)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor

    def __post_init__(self) -> None:
        for split in ("train", "val"):
            x, y = getattr(self, f"{split}_x"), getattr(self, f"{split}_y")
            if len(x) != len(y) or len(x) == 0:
                raise ValueError(
                    f"TaskData {split}_x has {len(x)} rows and {split}_y {len(y)}; "
                    "allowed: the same positive number"
                )


@runtime_checkable
class Task(Protocol):
    """A trainable problem: model family, data, loss and validation metrics.

    `metrics` maps every name `evaluate` returns to its direction; `model_hyperparameters`
    are the names `build_model` understands. `build_model` must draw all randomness from
    `generator`. The loop adds "train_loss" to the metrics, so a task must not use that name.
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

    def data(self) -> TaskData:
        """The task's training and validation data."""
        ...

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Scalar training loss of a batch."""
        ...

    def evaluate(self, model: torch.nn.Module, data: TaskData) -> dict[str, float]:
        """Validation metrics of `model` (called in eval mode under torch.no_grad)."""
        ...
