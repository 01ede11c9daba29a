"""A task with a broken pipeline: validation targets misaligned with their inputs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from autotune.training import Period
from autotune.training import TaskData
from examples.sine_task import SineTask


class MisalignedSineTask(SineTask):
    """The example sine task with its validation targets shuffled against the inputs.

    Training works; validation measures nothing, so no model beats predicting the mean.
    """

    name = "misaligned-sine"

    def data(self, period: Period | None = None) -> TaskData:
        data = super().data(period)
        order = torch.randperm(len(data.val_y), generator=torch.Generator().manual_seed(1))
        return TaskData(data.train_x, data.train_y, data.val_x, data.val_y[order])


def misaligned_sine() -> MisalignedSineTask:
    return MisalignedSineTask()


class SwishFailsInTrainingTask(SineTask):
    """The example sine task whose model builds with activation "swish" and raises on its
    first forward pass: a failure no check at create can see, only a trial."""

    name = "swish-fails-in-training"

    def build_model(
        self, hparams: Mapping[str, Any], generator: torch.Generator
    ) -> torch.nn.Module:
        if hparams.get("activation") != "swish":
            return super().build_model(hparams, generator)
        return _RaisesInForward(super().build_model({**hparams, "activation": "relu"}, generator))


class _RaisesInForward(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise ValueError("invalid hyperparameter activation='swish'")


def swish_fails_in_training() -> SwishFailsInTrainingTask:
    return SwishFailsInTrainingTask()


class MisnamedMetricTask(SineTask):
    """The example sine task whose ``evaluate`` names its loss "loss", not the "val_loss" it
    declares: every trial fails, so create must refuse it."""

    name = "misnamed-metric"

    def evaluate(self, model: torch.nn.Module, data: TaskData) -> dict[str, float]:
        metrics = super().evaluate(model, data)
        return {"loss": metrics["val_loss"], "val_mae": metrics["val_mae"]}


def misnamed_metric() -> MisnamedMetricTask:
    return MisnamedMetricTask()
