"""An example user task: regress a noisy sine wave with a small MLP.

A user task is any object with the members of `autotune.training.Task`, made by a
function of no arguments. Name that function in a study spec as
``task: examples.sine_task:make_task`` (run autotune from the directory that holds
``examples/``, or install the package); studies/user_task_example.yaml does so.

The data are 1024 points x ~ U(-3, 3), y = sin(2x) + 0.5 sin(5x) + N(0, 0.1^2), made in
code from a fixed seed. They are iid, so periods are the folds of a seeded k-fold split.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from autotune.training import MetricDirection
from autotune.training import Period
from autotune.training import TaskData
from autotune.training import TaskInfo
from autotune.training import fold_rows
from autotune.training import repeated_kfold_periods

NUM_POINTS = 1024
NOISE = 0.1
DATA_SEED = 0
ACTIVATIONS: Mapping[str, type[torch.nn.Module]] = MappingProxyType(
    {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}
)


def make_points(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (n, 1) and noisy sine targets (n, 1), float32."""
    x = rng.uniform(-3.0, 3.0, size=(NUM_POINTS, 1))
    y = np.sin(2 * x) + 0.5 * np.sin(5 * x) + rng.normal(0.0, NOISE, size=x.shape)
    return x.astype(np.float32), y.astype(np.float32)


class SineTask:
    """Noisy-sine regression with an MLP; metrics val_loss (MSE) and val_mae."""

    name = "sine-mlp"
    metrics: Mapping[str, MetricDirection] = MappingProxyType(
        {"val_loss": MetricDirection.MINIMIZE, "val_mae": MetricDirection.MINIMIZE}
    )
    default_metric = "val_loss"
    model_hyperparameters = frozenset({"hidden_units", "num_layers", "dropout", "activation"})
    # Optional: the training MSE at which the data count as fitted: twice the noise
    # variance NOISE**2 = 0.01, below which no fit can go (the default MLP levels off at
    # 0.013-0.015 and passes 0.02 after 500-900 steps). Without it, max_train_steps: auto
    # measures where the training loss stops improving instead.
    fit_threshold = 0.02

    def __init__(self) -> None:
        self._points = make_points(np.random.default_rng(DATA_SEED))
        self._data: dict[Period, TaskData] = {}

    def default_hyperparameters(self) -> dict[str, Any]:
        return {"learning_rate": 1e-2, "optimizer": "adamw", "hidden_units": 64, "num_layers": 2}

    def build_model(
        self, hparams: Mapping[str, Any], generator: torch.Generator
    ) -> torch.nn.Module:
        hidden = int(hparams.get("hidden_units", 64))
        depth = int(hparams.get("num_layers", 2))
        dropout = float(hparams.get("dropout", 0.0))
        activation_name = hparams.get("activation", "tanh")
        if activation_name not in ACTIVATIONS:
            raise ValueError(
                f"invalid hyperparameter activation={activation_name!r}; "
                f"allowed: {', '.join(ACTIVATIONS)}"
            )
        activation = ACTIVATIONS[activation_name]
        # Draw the initialisation from `generator` only: seed a forked global RNG with it.
        seed = int(torch.randint(2**62, (1,), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            layers: list[torch.nn.Module] = []
            n_in = 1
            for _ in range(depth):
                layers += [torch.nn.Linear(n_in, hidden), activation(), torch.nn.Dropout(dropout)]
                n_in = hidden
            return torch.nn.Sequential(*layers, torch.nn.Linear(n_in, 1))

    def default_period(self) -> Period:
        return Period.kfold(0, 5, 0)

    def periods(self, count: int, seed: int) -> list[Period]:
        return repeated_kfold_periods(count, seed, folds=5)  # 80% training, as by default

    def data(self, period: Period | None = None) -> TaskData:
        period = self.default_period() if period is None else period
        if period not in self._data:
            x, y = self._points
            train, val = fold_rows(period, len(x), task_name=self.name)
            tensors = [torch.from_numpy(a[rows]) for rows in (train, val) for a in (x, y)]
            self._data[period] = TaskData(*tensors)
        return self._data[period]

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.mse_loss(outputs, targets)

    def evaluate(self, model: torch.nn.Module, data: TaskData) -> dict[str, float]:
        predictions = model(data.val_x)
        return {
            "val_loss": self.loss(predictions, data.val_y).item(),
            "val_mae": (predictions - data.val_y).abs().mean().item(),
        }

    def trivial_metrics(self, period: Period | None = None) -> dict[str, float]:
        """Optional: the metrics of predicting the training mean for every validation row."""
        data = self.data(period)
        predictions = data.train_y.mean().expand_as(data.val_y)
        return {
            "val_loss": self.loss(predictions, data.val_y).item(),
            "val_mae": (predictions - data.val_y).abs().mean().item(),
        }

    def describe(self) -> TaskInfo:
        summary = "MLP regression of a noisy sine wave (example user task; k-fold periods)"
        return TaskInfo(self.name, summary, self.metrics, self.model_hyperparameters)


def make_task() -> SineTask:
    """The factory autotune calls (no arguments)."""
    return SineTask()
