"""The digits tasks: an MLP and a small CNN classifying scikit-learn's 8x8 digits."""

from __future__ import annotations

from collections.abc import Mapping
import gzip
from importlib import resources
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from ._folds import fold_rows
from ._folds import kfold_periods
from ._hparams import check_known
from ._hparams import parse_choice
from ._hparams import parse_float
from ._hparams import parse_int
from ._layers import Activation
from ._layers import conv2d
from ._layers import linear
from ._period import Period
from ._results import MetricDirection
from ._task import TaskData
from ._task import TaskInfo

_IMAGE_SIDE = 8
_NUM_PIXELS = _IMAGE_SIDE * _IMAGE_SIDE
_NUM_CLASSES = 10
_DEFAULT_FOLDS = 5
_DEFAULT_SEED = 0
_FIT_THRESHOLD = 0.05
"""Training cross-entropy at or below which the digits count as fitted: the loss when the
true class gets ~95% probability on average (both default models reach it in ~300 steps)."""


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1797 digits as float32 pixels (0..16, 64 columns) and int64 labels (0..9)."""
    path = resources.files(__package__).joinpath("data", "digits.csv.gz")
    with path.open("rb") as raw, gzip.open(raw, "rt") as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.float32)
    return table[:, :-1], table[:, -1].astype(np.int64)


def digits_data(pixels: np.ndarray, labels: np.ndarray, period: Period, task: str) -> TaskData:
    """A stratified fold split, standardised with the training rows' statistics."""
    train, val = fold_rows(period, len(labels), strata=labels, task_name=task)
    mean = pixels[train].mean(axis=0)
    std = pixels[train].std(axis=0)
    std[std == 0] = 1.0

    def x(rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy((pixels[rows] - mean) / std)

    def y(rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(labels[rows])

    return TaskData(train_x=x(train), train_y=y(train), val_x=x(val), val_y=y(val))


def _parse_dropout(hparams: Mapping[str, Any]) -> float:
    return parse_float(hparams, "dropout", 0.0, "a float in [0, 1)", lambda v: 0.0 <= v < 1.0)


class _DigitsTask:
    """Data, periods, loss and metrics shared by the digits tasks (subclasses add a model).

    Periods are the folds of a seeded, stratified k-fold split of the 1797 digits; the
    default period validates on fold 0 of 5 with seed 0 (an 80/20 split).
    """

    name = "digits"
    summary = "digits classifier"
    metrics: Mapping[str, MetricDirection] = MappingProxyType(
        {"val_loss": MetricDirection.MINIMIZE, "val_accuracy": MetricDirection.MAXIMIZE}
    )
    default_metric = "val_loss"
    model_hyperparameters: frozenset[str] = frozenset()
    fit_threshold: float = _FIT_THRESHOLD

    def __init__(self) -> None:
        self._raw: tuple[np.ndarray, np.ndarray] | None = None
        self._data: dict[Period, TaskData] = {}

    def default_period(self) -> Period:
        """Fold 0 of the 5-fold split with seed 0 (train on 80%, validate on 20%)."""
        return Period.kfold(0, _DEFAULT_FOLDS, _DEFAULT_SEED)

    def periods(self, count: int, seed: int) -> list[Period]:
        """The `count` folds of a seeded, stratified `count`-fold split (count >= 2)."""
        return kfold_periods(count, seed)

    def data(self, period: Period | None = None) -> TaskData:
        """Standardised digits of `period` (default: fold 0 of 5), cached per period."""
        period = self.default_period() if period is None else period
        if period not in self._data:
            if self._raw is None:
                self._raw = load_digits()
            self._data[period] = digits_data(*self._raw, period, self.name)
        return self._data[period]

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

    def trivial_metrics(self, period: Period | None = None) -> dict[str, float]:
        """Metrics of predicting the training class frequencies for every validation row.

        val_loss is the cross-entropy of that constant distribution, val_accuracy the
        share of the training set's majority class in the validation rows.
        """
        data = self.data(period)
        counts = torch.bincount(data.train_y, minlength=_NUM_CLASSES).double()
        logits = (counts / counts.sum()).log().expand(len(data.val_y), -1)
        accuracy = (data.val_y == counts.argmax()).double().mean()
        return {
            "val_loss": self.loss(logits, data.val_y).item(),
            "val_accuracy": accuracy.item(),
        }

    def describe(self) -> TaskInfo:
        """Name, summary, metrics and model hyperparameters (no date span: iid data)."""
        return TaskInfo(self.name, self.summary, self.metrics, self.model_hyperparameters)


class DigitsMLPTask(_DigitsTask):
    """MLP classifier on the digits (stratified k-fold periods, standardised inputs)."""

    name = "digits-mlp"
    summary = "MLP classifier on the 8x8 digits (1797 images, 10 classes; k-fold periods)"
    model_hyperparameters = frozenset({"hidden_units", "num_layers", "dropout", "activation"})

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
        dropout = _parse_dropout(hparams)
        activation = parse_choice(hparams, "activation", Activation.RELU, Activation)
        layers: list[torch.nn.Module] = []
        n_in = _NUM_PIXELS
        for _ in range(depth):
            layers += [linear(n_in, hidden, generator), activation.module()]
            if dropout > 0.0:
                layers.append(torch.nn.Dropout(dropout))
            n_in = hidden
        layers.append(linear(n_in, _NUM_CLASSES, generator))
        return torch.nn.Sequential(*layers)


class DigitsCNNTask(_DigitsTask):
    """Small convolutional classifier on the 8x8 digits (same data and periods as the MLP)."""

    name = "digits-cnn"
    summary = "small CNN classifier on the 8x8 digits (1797 images, 10 classes; k-fold periods)"
    model_hyperparameters = frozenset(
        {"channels", "num_conv_layers", "hidden_units", "dropout", "activation"}
    )

    def default_hyperparameters(self) -> dict[str, Any]:
        """Two 16-channel conv layers and a 64-unit ReLU head, AdamW at 3e-3."""
        return {
            "learning_rate": 3e-3,
            "optimizer": "adamw",
            "channels": 16,
            "num_conv_layers": 2,
            "hidden_units": 64,
            "dropout": 0.0,
            "activation": Activation.RELU.value,
        }

    def build_model(
        self, hparams: Mapping[str, Any], generator: torch.Generator
    ) -> torch.nn.Module:
        """num_conv_layers x (3x3 conv, activation, 2x2 max-pool while the side is > 2),
        then Linear to hidden_units, activation, dropout, and Linear to 10."""
        check_known(hparams, self.model_hyperparameters, f"task {self.name!r} model")
        channels = parse_int(hparams, "channels", 16, minimum=1)
        depth = parse_int(hparams, "num_conv_layers", 2, minimum=1)
        hidden = parse_int(hparams, "hidden_units", 64, minimum=1)
        dropout = _parse_dropout(hparams)
        activation = parse_choice(hparams, "activation", Activation.RELU, Activation)
        layers: list[torch.nn.Module] = [torch.nn.Unflatten(1, (1, _IMAGE_SIDE, _IMAGE_SIDE))]
        side, channels_in = _IMAGE_SIDE, 1
        for _ in range(depth):
            layers += [conv2d(channels_in, channels, generator), activation.module()]
            if side > 2:
                layers.append(torch.nn.MaxPool2d(2))
                side //= 2
            channels_in = channels
        layers += [torch.nn.Flatten(), linear(channels * side * side, hidden, generator)]
        layers.append(activation.module())
        if dropout > 0.0:
            layers.append(torch.nn.Dropout(dropout))
        layers.append(linear(hidden, _NUM_CLASSES, generator))
        return torch.nn.Sequential(*layers)
