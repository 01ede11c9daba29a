"""The breast-cancer task: an MLP diagnosing tumours from the Wisconsin diagnostic features.

The data is scikit-learn's copy (``sklearn/datasets/data/breast_cancer.csv``, BSD-3-Clause)
of the UCI Breast Cancer Wisconsin (Diagnostic) data set (Wolberg, Street and Mangasarian,
1995; CC BY 4.0 at the UCI repository), shipped as ``data/breast_cancer.csv.gz``: 569 rows
of 30 features and the class (0 malignant, 1 benign), without a header. A small iid tabular
problem whose features differ in scale by five orders of magnitude, so standardisation (with
the training rows' statistics only) and regularisation matter.
"""

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
from ._layers import linear
from ._period import Period
from ._results import MetricDirection
from ._task import TaskData
from ._task import TaskInfo

NUM_FEATURES = 30
NUM_CLASSES = 2
_DEFAULT_FOLDS = 5
_DEFAULT_SEED = 0
_FIT_THRESHOLD = 0.05
"""Training cross-entropy at or below which the 455 training rows count as fitted: the loss
when the true class gets ~95% probability on average (the default model reaches it in ~150
steps at batch size 64: the data is nearly linearly separable)."""


def load_breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    """The 569 tumours as float32 features (30 columns) and int64 labels (0 malignant)."""
    path = resources.files(__package__).joinpath("data", "breast_cancer.csv.gz")
    with path.open("rb") as raw, gzip.open(raw, "rt") as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.float64)
    return table[:, :-1].astype(np.float32), table[:, -1].astype(np.int64)


def standardised_split(
    features: np.ndarray, labels: np.ndarray, period: Period, task: str
) -> TaskData:
    """A stratified fold split, standardised with the training rows' statistics only, so
    nothing about the validation rows leaks into training."""
    train, val = fold_rows(period, len(labels), strata=labels, task_name=task)
    mean = features[train].mean(axis=0, dtype=np.float64)
    std = features[train].std(axis=0, dtype=np.float64)
    std[std == 0] = 1.0

    def x(rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(((features[rows] - mean) / std).astype(np.float32))

    def y(rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(labels[rows])

    return TaskData(train_x=x(train), train_y=y(train), val_x=x(val), val_y=y(val))


class CancerMLPTask:
    """MLP classifier on the breast-cancer data (stratified k-fold periods, standardised).

    Periods are the folds of a seeded, stratified k-fold split of the 569 rows; the default
    period validates on fold 0 of 5 with seed 0 (455 training rows, 114 validation rows).
    """

    name = "cancer-mlp"
    summary = (
        "MLP classifier on the breast-cancer Wisconsin data "
        "(569 rows, 30 features, 2 classes; k-fold periods)"
    )
    metrics: Mapping[str, MetricDirection] = MappingProxyType(
        {"val_loss": MetricDirection.MINIMIZE, "val_accuracy": MetricDirection.MAXIMIZE}
    )
    default_metric = "val_loss"
    model_hyperparameters = frozenset({"hidden_units", "num_layers", "dropout", "activation"})
    fit_threshold: float = _FIT_THRESHOLD

    def __init__(self) -> None:
        self._raw: tuple[np.ndarray, np.ndarray] | None = None
        self._data: dict[Period, TaskData] = {}

    def default_hyperparameters(self) -> dict[str, Any]:
        """One 16-unit ReLU layer (455 rows are few), AdamW at 3e-3 with its usual weight
        decay of 1e-2; it fits the training rows in ~150 steps at batch size 64."""
        return {
            "learning_rate": 3e-3,
            "optimizer": "adamw",
            "weight_decay": 1e-2,
            "hidden_units": 16,
            "num_layers": 1,
            "dropout": 0.0,
            "activation": Activation.RELU.value,
        }

    def build_model(
        self, hparams: Mapping[str, Any], generator: torch.Generator
    ) -> torch.nn.Module:
        """A fresh MLP: num_layers x (Linear, activation, dropout), then Linear to 2 logits."""
        check_known(hparams, self.model_hyperparameters, f"task {self.name!r} model")
        hidden = parse_int(hparams, "hidden_units", 16, minimum=1)
        depth = parse_int(hparams, "num_layers", 1, minimum=1)
        dropout = parse_float(
            hparams, "dropout", 0.0, "a float in [0, 1)", lambda v: 0.0 <= v < 1.0
        )
        activation = parse_choice(hparams, "activation", Activation.RELU, Activation)
        layers: list[torch.nn.Module] = []
        n_in = NUM_FEATURES
        for _ in range(depth):
            layers += [linear(n_in, hidden, generator), activation.module()]
            if dropout > 0.0:
                layers.append(torch.nn.Dropout(dropout))
            n_in = hidden
        layers.append(linear(n_in, NUM_CLASSES, generator))
        return torch.nn.Sequential(*layers)

    def default_period(self) -> Period:
        """Fold 0 of the 5-fold split with seed 0 (train on 80%, validate on 20%)."""
        return Period.kfold(0, _DEFAULT_FOLDS, _DEFAULT_SEED)

    def periods(self, count: int, seed: int) -> list[Period]:
        """The `count` folds of a seeded, stratified `count`-fold split (count >= 2)."""
        return kfold_periods(count, seed)

    def data(self, period: Period | None = None) -> TaskData:
        """Standardised rows of `period` (default: fold 0 of 5), cached per period."""
        period = self.default_period() if period is None else period
        if period not in self._data:
            if self._raw is None:
                self._raw = load_breast_cancer()
            self._data[period] = standardised_split(*self._raw, period, self.name)
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
        """Metrics of the majority-class predictor that knows only the training labels.

        val_accuracy is the share of the training majority class (benign) in the
        validation rows; val_loss the cross-entropy of the training class frequencies (a
        hard majority vote would score an infinite cross-entropy).
        """
        data = self.data(period)
        counts = torch.bincount(data.train_y, minlength=NUM_CLASSES).double()
        logits = (counts / counts.sum()).log().expand(len(data.val_y), -1)
        accuracy = (data.val_y == counts.argmax()).double().mean()
        return {
            "val_loss": self.loss(logits, data.val_y).item(),
            "val_accuracy": accuracy.item(),
        }

    def describe(self) -> TaskInfo:
        """Name, summary, metrics and model hyperparameters (no date span: iid data)."""
        return TaskInfo(self.name, self.summary, self.metrics, self.model_hyperparameters)
