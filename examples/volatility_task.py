"""An example user task with a weak signal: forecast next week's size of daily stock moves.

The data are Google's daily prices, 2004-08-19 to 2008-10-14, as shipped inside matplotlib
(mpl-data/sample_data/goog.npz); they are read from the installed package, nothing is
downloaded. The target is the mean absolute log return (in percent) of the next five
trading days. Big moves cluster, so the last weeks say something about the next, but not
much: at its best step a model beats the trivial predictor (the training mean) by about a
fifth, and one trained to the end of its schedule is often worse than it. This is the
regime where a tuner's answer must stop where its value came from and be checked against
the trivial predictor (docs/method.md §12).

A GRU reads the last 20 days' return and absolute return (standardised with the training
range's statistics). Periods are date ranges: ``Period.date_range(start, end,
validation_start, validation_end)``; `periods` gives seeded 500-day training ranges, each
validated on the 60 trading days after it.
"""

from __future__ import annotations

from collections.abc import Mapping
import datetime
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

CONTEXT_DAYS = 20  # the model reads the last four weeks
FEATURES = 2  # each day's return and absolute return
TRAIN_DAYS = 500  # what `periods` train on: about two years
VALIDATION_DAYS = 60  # and validate on: about a quarter
HORIZON_DAYS = 5  # the target: the mean absolute return of the next five trading days


def load_returns() -> tuple[np.ndarray, np.ndarray]:
    """One date per trading day (datetime64[D]) and that day's log return in percent."""
    from matplotlib import cbook

    prices = cbook.get_sample_data("goog.npz")["price_data"]
    close = np.asarray(prices["adj_close"], dtype=np.float64)
    returns = 100.0 * np.diff(np.log(close))
    return np.asarray(prices["date"][1:], dtype="datetime64[D]"), returns.astype(np.float32)


class Forecaster(torch.nn.Module):
    """A GRU over the last days' features; a linear head on its last state."""

    def __init__(self, hidden_units: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        self.gru = torch.nn.GRU(
            FEATURES,
            hidden_units,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.head = torch.nn.Linear(hidden_units, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states, _ = self.gru(x)
        return self.head(states[:, -1])


class VolatilityTask:
    """Next week's mean absolute Google return (%); metrics in %² and %, dated periods."""

    name = "goog-volatility"
    metrics: Mapping[str, MetricDirection] = MappingProxyType(
        {"val_mse_pct2": MetricDirection.MINIMIZE, "val_mae_pct": MetricDirection.MINIMIZE}
    )
    default_metric = "val_mse_pct2"
    model_hyperparameters = frozenset({"hidden_units", "num_layers", "dropout"})

    def __init__(self) -> None:
        self.dates, self.returns = load_returns()
        self._data: dict[Period, TaskData] = {}

    def default_hyperparameters(self) -> dict[str, Any]:
        return {
            "learning_rate": 3e-3,
            "optimizer": "adamw",
            "hidden_units": 32,
            "num_layers": 1,
            "dropout": 0.0,
        }

    def build_model(
        self, hparams: Mapping[str, Any], generator: torch.Generator
    ) -> torch.nn.Module:
        seed = int(torch.randint(2**62, (1,), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return Forecaster(
                int(hparams.get("hidden_units", 32)),
                int(hparams.get("num_layers", 1)),
                float(hparams.get("dropout", 0.0)),
            )

    def default_period(self) -> Period:
        """Train from the start to 2007, validate on the first half of 2008."""
        return Period.date_range(
            datetime.date(2004, 8, 20),
            datetime.date(2007, 12, 31),
            datetime.date(2008, 1, 1),
            datetime.date(2008, 6, 30),
        )

    def periods(self, count: int, seed: int) -> list[Period]:
        """Seeded 500-day training ranges, each validated on the 60 trading days after it."""
        return rolling_periods(self.dates, count, seed, TRAIN_DAYS, VALIDATION_DAYS)

    def data(self, period: Period | None = None) -> TaskData:
        period = self.default_period() if period is None else period
        if period not in self._data:
            self._data[period] = self._build_data(period)
        return self._data[period]

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.mse_loss(outputs, targets)  # on the standardised scale

    def evaluate(self, model: torch.nn.Module, data: TaskData) -> dict[str, float]:
        return _errors_in_percent(model(data.val_x), data)

    def trivial_metrics(self, period: Period | None = None) -> dict[str, float]:
        """The training mean for every day (0 on the standardised scale)."""
        data = self.data(period)
        return _errors_in_percent(torch.zeros_like(data.val_y), data)

    def describe(self) -> TaskInfo:
        summary = "next week's mean absolute Google return, GRU (example; weak signal, dated)"
        span = (self.dates[0].item(), self.dates[-1].item())
        return TaskInfo(self.name, summary, self.metrics, self.model_hyperparameters, span)

    def _build_data(self, period: Period) -> TaskData:
        train, validation = date_rows(period, self.dates, VALIDATION_DAYS, self.name)
        last = len(self.returns) - HORIZON_DAYS  # targets need their whole week
        train = train[(train >= CONTEXT_DAYS) & (train <= train[-1] - HORIZON_DAYS + 1)]
        validation = validation[(validation >= CONTEXT_DAYS) & (validation <= last)]
        if len(train) == 0 or len(validation) == 0:
            raise ValueError(
                f"period {period.name!r} is invalid for {self.name!r}: it leaves no day to "
                f"forecast; allowed: training from {self.dates[CONTEXT_DAYS]} on"
            )
        size = np.abs(self.returns)
        ahead = np.convolve(size, np.ones(HORIZON_DAYS) / HORIZON_DAYS, mode="valid")
        seen = self.returns[: train[-1] + 1]  # standardise with what training may know
        features = np.stack(
            [
                (self.returns - seen.mean()) / seen.std(),
                (size - np.abs(seen).mean()) / np.abs(seen).std(),
            ],
            axis=1,
        )
        known = ahead[train]  # the training targets
        mean, std = float(known.mean()), float(known.std())

        def windows(targets: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            context = np.stack([features[t - CONTEXT_DAYS : t] for t in targets])
            y = (ahead[targets, None] - mean) / std
            return torch.from_numpy(context.astype(np.float32)), torch.from_numpy(
                y.astype(np.float32)
            )

        return TaskData(*windows(train), *windows(validation), statistics={"std": std})


def _errors_in_percent(predictions: torch.Tensor, data: TaskData) -> dict[str, float]:
    std = data.statistics["std"]
    error = predictions - data.val_y
    return {
        "val_mse_pct2": float(error.pow(2).mean()) * std**2,
        "val_mae_pct": float(error.abs().mean()) * std,
    }


def make_task() -> VolatilityTask:
    """The factory autotune calls (no arguments)."""
    return VolatilityTask()
