"""The digits-mlp task: an MLP classifier on scikit-learn's 8x8 digits."""

from __future__ import annotations

from collections.abc import Mapping
import enum
import gzip
from importlib import resources
import math
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from ._hparams import check_known
from ._hparams import parse_choice
from ._hparams import parse_float
from ._hparams import parse_int
from ._results import MetricDirection
from ._task import TaskData

_NUM_PIXELS = 64
_NUM_CLASSES = 10
_VAL_FRACTION = 0.2
_SPLIT_SEED = 0


class Activation(enum.Enum):
    """Hidden-layer nonlinearity."""

    RELU = "relu"
    TANH = "tanh"
    GELU = "gelu"

    def module(self) -> torch.nn.Module:
        """A fresh module computing this activation."""
        modules = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "gelu": torch.nn.GELU}
        return modules[self.value]()


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1797 digits as float32 pixels (0..16, 64 columns) and int64 labels (0..9)."""
    path = resources.files(__package__).joinpath("data", "digits.csv.gz")
    with path.open("rb") as raw, gzip.open(raw, "rt") as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.float32)
    return table[:, :-1], table[:, -1].astype(np.int64)


def stratified_split(
    labels: np.ndarray, val_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled train and validation row indices with each class split by val_fraction."""
    train, val = [], []
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        n_val = round(len(rows) * val_fraction)
        val.append(rows[:n_val])
        train.append(rows[n_val:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(val))


def _digits_data() -> TaskData:
    pixels, labels = load_digits()
    train, val = stratified_split(labels, _VAL_FRACTION, np.random.default_rng(_SPLIT_SEED))
    mean = pixels[train].mean(axis=0)
    std = pixels[train].std(axis=0)
    std[std == 0] = 1.0

    def x(rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy((pixels[rows] - mean) / std)

    def y(rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(labels[rows])

    return TaskData(train_x=x(train), train_y=y(train), val_x=x(val), val_y=y(val))


def _linear(n_in: int, n_out: int, generator: torch.Generator) -> torch.nn.Linear:
    """A Linear layer with PyTorch's default init, drawn from `generator` only."""
    layer = torch.nn.utils.skip_init(torch.nn.Linear, n_in, n_out)
    with torch.no_grad():
        torch.nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
        bound = 1.0 / math.sqrt(n_in)
        layer.bias.uniform_(-bound, bound, generator=generator)
    return layer


class DigitsMLPTask:
    """MLP classifier on the digits (80/20 stratified split, standardised inputs)."""

    name = "digits-mlp"
    metrics: Mapping[str, MetricDirection] = MappingProxyType(
        {"val_loss": MetricDirection.MINIMIZE, "val_accuracy": MetricDirection.MAXIMIZE}
    )
    default_metric = "val_loss"
    model_hyperparameters = frozenset({"hidden_units", "num_layers", "dropout", "activation"})

    def __init__(self) -> None:
        self._data: TaskData | None = None

    def default_hyperparameters(self) -> dict[str, Any]:
        """Small one-hidden-layer ReLU MLP trained with AdamW at 3e-3."""
        return {
            "learning_rate": 3e-3,
            "optimizer": "adamw",
            "hidden_units": 64,
            "num_layers": 1,
            "dropout": 0.0,
            "activation": Activation.RELU.value,
        }

    def build_model(
        self, hparams: Mapping[str, Any], generator: torch.Generator
    ) -> torch.nn.Module:
        """A fresh MLP: num_layers x (Linear, activation, dropout), then Linear to 10."""
        check_known(hparams, self.model_hyperparameters, f"task {self.name!r} model")
        hidden = parse_int(hparams, "hidden_units", 64, minimum=1)
        depth = parse_int(hparams, "num_layers", 1, minimum=1)
        dropout = parse_float(
            hparams, "dropout", 0.0, "a float in [0, 1)", lambda v: 0.0 <= v < 1.0
        )
        activation = parse_choice(hparams, "activation", Activation.RELU, Activation)
        layers: list[torch.nn.Module] = []
        n_in = _NUM_PIXELS
        for _ in range(depth):
            layers += [_linear(n_in, hidden, generator), activation.module()]
            if dropout > 0.0:
                layers.append(torch.nn.Dropout(dropout))
            n_in = hidden
        layers.append(_linear(n_in, _NUM_CLASSES, generator))
        return torch.nn.Sequential(*layers)

    def data(self) -> TaskData:
        """The split, standardised digits (loaded once per task instance)."""
        if self._data is None:
            self._data = _digits_data()
        return self._data

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy."""
        return torch.nn.functional.cross_entropy(outputs, targets)

    def evaluate(self, model: torch.nn.Module, data: TaskData) -> dict[str, float]:
        """Validation cross-entropy and accuracy."""
        logits = model(data.val_x)
        accuracy = (logits.argmax(dim=1) == data.val_y).float().mean()
        return {
            "val_loss": self.loss(logits, data.val_y).item(),
            "val_accuracy": accuracy.item(),
        }
