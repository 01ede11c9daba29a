"""The plumbing shared by the iid classification tasks (digits, breast cancer).

Such a task is a labelled table split into stratified k-fold periods, standardised with the
training rows' statistics, trained with cross-entropy and scored by validation loss and
accuracy; a subclass adds only its table and its model.
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
from ._folds import repeated_kfold_periods
from ._hparams import parse_choice
from ._hparams import parse_float_in
from ._hparams import parse_int_in
from ._layers import Activation
from ._layers import linear
from ._period import Period
from ._results import MetricDirection
from ._task import TaskData
from ._task import TaskInfo

_DEFAULT_FOLDS = 5
_DEFAULT_SEED = 0


def load_labelled_table(filename: str) -> tuple[np.ndarray, np.ndarray]:
    """Float32 features and int64 labels (last column) of a headerless gzipped CSV in data/.

    Parsed as float64 before the cast, so each value rounds once from its decimal text.
    """
    path = resources.files(__package__).joinpath("data", filename)
    with path.open("rb") as raw, gzip.open(raw, "rt") as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.float64)
    return table[:, :-1].astype(np.float32), table[:, -1].astype(np.int64)


def standardised_split(
    features: np.ndarray,
    labels: np.ndarray,
    period: Period,
    task: str,
    statistics_dtype: type[np.floating] = np.float64,
) -> TaskData:
    """A stratified fold split, standardised with the training rows' statistics only, so
    nothing about the validation rows leaks into training.

    `statistics_dtype` is the precision of the mean and std (and of the scaling); the
    inputs come out as float32 either way. Constant columns are centred but not scaled.
    """
    train, val = fold_rows(period, len(labels), strata=labels, task_name=task)
    mean = features[train].mean(axis=0, dtype=statistics_dtype)
    std = features[train].std(axis=0, dtype=statistics_dtype)
    std[std == 0] = 1.0

    def x(rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(((features[rows] - mean) / std).astype(np.float32))

    def y(rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(labels[rows])

    return TaskData(train_x=x(train), train_y=y(train), val_x=x(val), val_y=y(val))


def parse_dropout(hparams: Mapping[str, Any]) -> float:
    """The "dropout" hyperparameter (default 0.0: no dropout layers), a float in [0, 1)."""
    return parse_float_in(hparams, "dropout", 0.0)


def build_mlp(
    hparams: Mapping[str, Any],
    generator: torch.Generator,
    n_in: int,
    n_out: int,
    default_hidden: int,
) -> torch.nn.Sequential:
    """num_layers x (Linear, activation, dropout), then Linear to `n_out` logits.

    Reads hidden_units, num_layers, dropout and activation; the caller checks for unknown
    keys, since only it knows its task's full set of model hyperparameters.
    """
    hidden = parse_int_in(hparams, "hidden_units", default_hidden)
    depth = parse_int_in(hparams, "num_layers", 1)
    dropout = parse_dropout(hparams)
    activation = parse_choice(hparams, "activation", Activation.RELU, Activation)
    layers: list[torch.nn.Module] = []
    for _ in range(depth):
        layers += [linear(n_in, hidden, generator), activation.module()]
        if dropout > 0.0:
            layers.append(torch.nn.Dropout(dropout))
        n_in = hidden
    layers.append(linear(n_in, n_out, generator))
    return torch.nn.Sequential(*layers)


class KFoldClassificationTask:
    """Periods, data, loss and metrics of an iid classification task (subclasses add a
    table via `_load` and a model via `build_model` and `default_hyperparameters`).

    Periods are the folds of a seeded, stratified k-fold split of the rows; the default
    period validates on fold 0 of 5 with seed 0 (an 80/20 split).
    """

    name = "classification"
    summary = "classifier"
    metrics: Mapping[str, MetricDirection] = MappingProxyType(
        {"val_loss": MetricDirection.MINIMIZE, "val_accuracy": MetricDirection.MAXIMIZE}
    )
    default_metric = "val_loss"
    model_hyperparameters: frozenset[str] = frozenset()
    fit_threshold: float = 0.05
    _num_classes = 2
    _statistics_dtype: type[np.floating] = np.float64

    def __init__(self) -> None:
        self._raw: tuple[np.ndarray, np.ndarray] | None = None
        self._data: dict[Period, TaskData] = {}

    def _load(self) -> tuple[np.ndarray, np.ndarray]:
        """The task's float32 features and int64 labels (read once, on first use)."""
        raise NotImplementedError

    def default_period(self) -> Period:
        """Fold 0 of the 5-fold split with seed 0 (train on 80%, validate on 20%)."""
        return Period.kfold(0, _DEFAULT_FOLDS, _DEFAULT_SEED)

    def periods(self, count: int, seed: int) -> list[Period]:
        """`count` stratified folds of seeded 5-fold splits: each trains on 80% of the rows,
        as the default period does (see `repeated_kfold_periods`)."""
        return repeated_kfold_periods(count, seed, _DEFAULT_FOLDS)

    def data(self, period: Period | None = None) -> TaskData:
        """Standardised rows of `period` (default: fold 0 of 5), cached per period."""
        period = self.default_period() if period is None else period
        if period not in self._data:
            if self._raw is None:
                self._raw = self._load()
            self._data[period] = standardised_split(
                *self._raw, period, self.name, self._statistics_dtype
            )
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

        val_loss is the cross-entropy of that constant distribution (a hard majority vote
        would score an infinite cross-entropy), val_accuracy the share of the training
        set's majority class in the validation rows.
        """
        data = self.data(period)
        counts = torch.bincount(data.train_y, minlength=self._num_classes).double()
        logits = (counts / counts.sum()).log().expand(len(data.val_y), -1)
        accuracy = (data.val_y == counts.argmax()).double().mean()
        return {
            "val_loss": self.loss(logits, data.val_y).item(),
            "val_accuracy": accuracy.item(),
        }

    def describe(self) -> TaskInfo:
        """Name, summary, metrics and model hyperparameters (no date span: iid data)."""
        return TaskInfo(self.name, self.summary, self.metrics, self.model_hyperparameters)
