"""A task with a broken pipeline: validation targets misaligned with their inputs."""

from __future__ import annotations

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
