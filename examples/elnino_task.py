"""An example user task on dated data: forecast next month's El Niño sea temperature.

The data are the monthly sea surface temperatures (°C) of the Niño 1+2 region, 1950-2010,
as shipped inside the statsmodels package (statsmodels/datasets/elnino/elnino.csv); they
are read from the installed package, nothing is downloaded.

Periods are date ranges that say what they train and what they validate on:
``Period.date_range(start, end, validation_start, validation_end)``. So one class serves a
24-month tuning validation and 12-month held-out validations; studies/elnino.yaml names
them in ``periods:``. The model reads the last 12 months (standardised with the training
range's mean and std) and the target's calendar month; `evaluate` reports in °C.

To make it yours, change `Forecaster` (keep its constructor's arguments, or change
`build_model` and `model_hyperparameters` with it) and the spec's search space.
"""

from __future__ import annotations

from collections.abc import Mapping
import csv
import datetime
import importlib.resources
import io
import math
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from autotune.training import MetricDirection
from autotune.training import Period
from autotune.training import TaskData
from autotune.training import TaskInfo
from autotune.training import date_rows
from autotune.training import rolling_periods

DATA_PACKAGE, DATA_FILE = "statsmodels.datasets.elnino", "elnino.csv"
CONTEXT_MONTHS = 12  # the model reads the last year
INPUTS = CONTEXT_MONTHS + 2  # and the target month as a point on the unit circle
VALIDATION_MONTHS = 12  # after a period without its own validation range, and in `periods`
TRAIN_MONTHS = 480  # what `periods` train on: 40 years


def load_sst() -> tuple[np.ndarray, np.ndarray]:
    """One date per month (its first day, datetime64[D]) and that month's temperature (°C)."""
    text = importlib.resources.files(DATA_PACKAGE).joinpath(DATA_FILE).read_text()
    rows = list(csv.reader(io.StringIO(text)))[1:]  # YEAR, JAN, ..., DEC
    dates = [datetime.date(int(row[0]), month, 1) for row in rows for month in range(1, 13)]
    values = [float(value) for row in rows for value in row[1:13]]
    return np.array(dates, dtype="datetime64[D]"), np.array(values, dtype=np.float32)


# --- the model: change this class to try another (same constructor) ----------------------
class Forecaster(torch.nn.Module):
    """An MLP from the last 12 standardised months and the target month to the next value."""

    def __init__(self, inputs: int, hidden_units: int, num_layers: int) -> None:
        super().__init__()
        layers: list[torch.nn.Module] = []
        for _ in range(num_layers):
            layers += [torch.nn.Linear(inputs, hidden_units), torch.nn.Tanh()]
            inputs = hidden_units
        self.layers = torch.nn.Sequential(*layers, torch.nn.Linear(inputs, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


# --- end of the model ------------------------------------------------------------------


class ElNinoTask:
    """Next-month Niño 1+2 temperature; metrics in °C² and °C, date-range periods."""

    name = "elnino-forecast"
    metrics: Mapping[str, MetricDirection] = MappingProxyType(
        {"val_mse_degc2": MetricDirection.MINIMIZE, "val_mae_degc": MetricDirection.MINIMIZE}
    )
    default_metric = "val_mse_degc2"
    model_hyperparameters = frozenset({"hidden_units", "num_layers"})
    # No fit_threshold: nobody knows the noise floor of this series in advance, so
    # max_train_steps: auto measures where the training loss stops improving.

    def __init__(self) -> None:
        self.dates, self.values = load_sst()
        self._data: dict[Period, TaskData] = {}

    def default_hyperparameters(self) -> dict[str, Any]:
        return {"learning_rate": 3e-3, "optimizer": "adamw", "hidden_units": 32, "num_layers": 1}

    def build_model(
        self, hparams: Mapping[str, Any], generator: torch.Generator
    ) -> torch.nn.Module:
        hidden_units = int(hparams.get("hidden_units", 32))
        num_layers = int(hparams.get("num_layers", 1))
        # Draw the initialisation from `generator` only: seed a forked global RNG with it.
        seed = int(torch.randint(2**62, (1,), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return Forecaster(INPUTS, hidden_units, num_layers)

    def default_period(self) -> Period:
        """Train 1960-2004, validate on 2005-2006."""
        return Period.date_range(
            datetime.date(1960, 1, 1),
            datetime.date(2004, 12, 31),
            datetime.date(2005, 1, 1),
            datetime.date(2006, 12, 31),
        )

    def periods(self, count: int, seed: int) -> list[Period]:
        """Seeded 40-year training ranges, each validated on the 12 months after it."""
        return rolling_periods(self.dates, count, seed, TRAIN_MONTHS, VALIDATION_MONTHS)

    def data(self, period: Period | None = None) -> TaskData:
        period = self.default_period() if period is None else period
        if period not in self._data:
            self._data[period] = self._build_data(period)
        return self._data[period]

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.mse_loss(outputs, targets)  # on the standardised scale

    def evaluate(self, model: torch.nn.Module, data: TaskData) -> dict[str, float]:
        """MSE (°C²) and MAE (°C): the standardised errors scaled back by the training std."""
        return _errors_in_degc(model(data.val_x), data)

    def trivial_metrics(self, period: Period | None = None) -> dict[str, float]:
        """Optional: the metrics of predicting the training mean for every month (a model
        that does not beat it is broken, not just untuned)."""
        data = self.data(period)
        return _errors_in_degc(torch.zeros_like(data.val_y), data)  # 0: the mean, standardised

    def describe(self) -> TaskInfo:
        summary = "next-month El Niño (Niño 1+2) sea temperature, MLP (example; dated periods)"
        span = (self.dates[0].item(), datetime.date(int(str(self.dates[-1])[:4]), 12, 31))
        return TaskInfo(self.name, summary, self.metrics, self.model_hyperparameters, span)

    def _target_rows(self, period: Period) -> tuple[np.ndarray, np.ndarray]:
        """The months forecast for training (their 12 inputs inside the training range) and
        for validation (inputs from any earlier months: known when forecasting)."""
        train, validation = date_rows(period, self.dates, VALIDATION_MONTHS, self.name)
        train, validation = train[CONTEXT_MONTHS:], validation[validation >= CONTEXT_MONTHS]
        if len(train) == 0 or len(validation) == 0:
            raise ValueError(
                f"period {period.name!r} is invalid for {self.name!r}: it leaves no month to "
                f"forecast; allowed: more than {CONTEXT_MONTHS} training months, validation "
                f"from {self.dates[CONTEXT_MONTHS]} on"
            )
        return train, validation

    def _build_data(self, period: Period) -> TaskData:
        train, validation = self._target_rows(period)
        training_values = self.values[date_rows(period, self.dates, VALIDATION_MONTHS)[0]]
        mean, std = float(training_values.mean()), float(training_values.std())
        z = (self.values - mean) / std
        months = self.dates.astype("datetime64[M]").astype(int) % 12
        angle = 2 * math.pi * months / 12
        calendar = np.stack([np.sin(angle), np.cos(angle)], axis=1)

        def windows(targets: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            context = np.stack([z[t - CONTEXT_MONTHS : t] for t in targets])
            x = np.concatenate([context, calendar[targets]], axis=1).astype(np.float32)
            return torch.from_numpy(x), torch.from_numpy(z[targets, None].astype(np.float32))

        statistics = {"mean": mean, "std": std}
        return TaskData(*windows(train), *windows(validation), statistics=statistics)


def _errors_in_degc(predictions: torch.Tensor, data: TaskData) -> dict[str, float]:
    std = data.statistics["std"]
    error = predictions - data.val_y
    return {
        "val_mse_degc2": float(error.pow(2).mean()) * std**2,
        "val_mae_degc": float(error.abs().mean()) * std,
    }


def make_task() -> ElNinoTask:
    """The factory autotune calls (no arguments)."""
    return ElNinoTask()
