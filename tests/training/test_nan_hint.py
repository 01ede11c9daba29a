"""The hint of a non-finite training loss: the learning rate only when updates could be the
cause; a model that outputs nan with its initial weights, or a loss that is nan on finite
outputs, is named as such (issue 17 item 17: the hint always blamed the learning rate)."""

from __future__ import annotations

from collections.abc import Mapping
import pickle
from typing import Any

import pytest
import torch

from autotune.training import Budget
from autotune.training import NonFiniteLossError
from autotune.training import get_task
from autotune.training import train
from autotune.training._errors import LossCause

BUDGET = Budget(max_train_steps=60, eval_interval=30, batch_size=64, seed=0)
HPARAMS = {"learning_rate": 3e-3, "optimizer": "adamw", "hidden_units": 16}


class _Times(torch.nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


class _Changed:
    """digits-mlp with its model's output multiplied by nan, or its loss by nan."""

    def __init__(self, output_factor: float = 1.0, loss_factor: float = 1.0) -> None:
        self._task = get_task("digits-mlp")
        self._output_factor = output_factor
        self._loss_factor = loss_factor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._task, name)

    def build_model(self, hparams: Mapping[str, Any], generator: torch.Generator) -> Any:
        model = self._task.build_model(hparams, generator)
        return torch.nn.Sequential(model, _Times(self._output_factor))

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self._task.loss(output, target) * self._loss_factor


def _error(task: Any, hparams: Mapping[str, Any]) -> NonFiniteLossError:
    with pytest.raises(NonFiniteLossError) as caught:
        train(hparams, task, BUDGET, lambda evaluation: None)
    return caught.value


def test_a_model_that_outputs_nan_is_named_not_the_learning_rate() -> None:
    error = _error(_Changed(output_factor=float("nan")), HPARAMS)
    assert error.step == 1 and error.cause is LossCause.MODEL_OUTPUT
    assert "model's output is already non-finite" in str(error)
    assert "learning rate too high?" not in str(error)
    assert pickle.loads(pickle.dumps(error)).cause is LossCause.MODEL_OUTPUT


def test_a_loss_that_is_nan_on_finite_outputs_is_named() -> None:
    error = _error(_Changed(loss_factor=float("nan")), HPARAMS)
    assert error.step == 1 and error.cause is LossCause.LOSS
    assert "check the task's loss" in str(error)


def test_a_loss_that_diverges_after_updates_blames_the_learning_rate() -> None:
    error = _error(_Changed(), {**HPARAMS, "learning_rate": 1e6, "optimizer": "sgd"})
    assert error.step > 1 and error.cause is LossCause.UPDATES
    assert "(learning rate too high?)" in str(error)
