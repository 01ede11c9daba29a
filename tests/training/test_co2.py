from __future__ import annotations

import datetime

import numpy as np
import pytest
import torch

from autotune.training._co2 import Co2LSTMTask
from autotune.training._co2 import load_co2
from autotune.training._recurrent import RecurrentCell
from autotune.training._task import TaskData

D = datetime.date


@pytest.fixture(scope="module")
def task() -> Co2LSTMTask:
    return Co2LSTMTask()


@pytest.fixture(scope="module")
def data(task: Co2LSTMTask) -> TaskData:
    return task.data()


def test_series() -> None:
    series = load_co2()
    assert len(series.dates) == len(series.values) == 2284
    assert series.span == (D(1958, 3, 29), D(2001, 12, 29))
    assert set(np.diff(series.dates).astype(int)) == {7}
    assert series.values.dtype == np.float32 and not np.isnan(series.values).any()
    assert 310 < series.values.min() < series.values.max() < 375


def test_gaps_are_interpolated_in_time() -> None:
    values = load_co2().values
    # 1958-05-10 is missing, between 316.9 (05-03) and 317.5 (05-17)
    assert values[6] == pytest.approx(317.2, abs=1e-4)


def test_window_shapes(task: Co2LSTMTask, data: TaskData) -> None:
    assert data.train_x.shape == (520 - 104 - 4 + 1, 104, 1)
    assert data.train_y.shape == (413, 4)
    assert data.val_x.shape == (104 - 4 + 1, 104, 1)
    assert data.val_y.shape == (101, 4)
    assert data.train_x.dtype == data.val_y.dtype == torch.float32


def _training_values(data: TaskData) -> torch.Tensor:
    """The training range's standardised series, rebuilt from its windows."""
    return torch.cat([data.train_x[0, :, 0], data.train_y[:, 0], data.train_y[-1, 1:]])


def test_standardised_with_training_statistics(task: Co2LSTMTask, data: TaskData) -> None:
    training = _training_values(data)
    assert len(training) == 520
    assert training.mean().item() == pytest.approx(0.0, abs=1e-4)
    assert training.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-4)
    raw = task.series.values[-624:-104]
    expected = (raw - raw.mean()) / raw.std()
    assert torch.allclose(training, torch.from_numpy(expected), atol=1e-5)
    assert data.val_y.mean() > 1.0  # the trend carries on past the training range


def test_validation_follows_the_training_range(data: TaskData) -> None:
    training = _training_values(data)
    assert torch.equal(data.val_x[0, :, 0], training[-104:])
    assert torch.equal(data.val_x[1, -1, 0], data.val_y[0, 0])
    assert torch.equal(data.val_y[1:, 0], data.val_y[:-1, 1])


def test_data_is_cached_per_period(task: Co2LSTMTask, data: TaskData) -> None:
    assert task.data(task.default_period()) is data
    other = task.data(task.periods(1, 0)[0])
    assert other is not data and other.train_x.shape[1:] == (104, 1)


def test_settings() -> None:
    task = Co2LSTMTask(horizon_weeks=8, max_context_weeks=26, validation_weeks=52, train_weeks=200)
    data = task.data()
    assert data.train_x.shape == (200 - 26 - 8 + 1, 26, 1)
    assert data.val_y.shape == (52 - 8 + 1, 8)
    model = task.build_model({"context_weeks": 26}, torch.Generator().manual_seed(0))
    assert model(data.val_x).shape == (45, 8)
    assert "8-week-ahead" in task.describe().summary


def test_settings_must_fit_the_data() -> None:
    task = Co2LSTMTask(train_weeks=2200)
    for ask in (task.default_period, lambda: task.periods(1, 0)):
        with pytest.raises(ValueError, match=r"train_weeks=2200 .* sum <= 2284"):
            ask()


@pytest.mark.parametrize(
    ("settings", "pattern"),
    [
        ({"horizon_weeks": 0}, r"horizon_weeks=0.*int >= 1"),
        ({"max_context_weeks": 1}, r"max_context_weeks=1.*int >= 2"),
        ({"horizon_weeks": 8, "validation_weeks": 4}, r"validation_weeks=4.*int >= 8"),
        ({"train_weeks": 100}, r"train_weeks=100.*int >= 108"),
        ({"train_weeks": 520.0}, r"train_weeks=520.0"),
    ],
)
def test_bad_settings(settings: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        Co2LSTMTask(**settings)


def test_describe(task: Co2LSTMTask) -> None:
    info = task.describe()
    assert info.name == "co2-lstm"
    assert info.span == (D(1958, 3, 29), D(2001, 12, 29))
    assert set(info.metrics) == {"val_loss", "val_mse", "val_mae"}
    assert info.model_hyperparameters == {
        "cell",
        "hidden_units",
        "num_layers",
        "dropout",
        "context_weeks",
    }


def test_metrics(task: Co2LSTMTask, data: TaskData) -> None:
    model = task.build_model({}, torch.Generator().manual_seed(0)).eval()
    with torch.no_grad():
        metrics = task.evaluate(model, data)
    assert metrics["val_loss"] == metrics["val_mse"]
    mae = (model(data.val_x) - data.val_y).abs().mean().item()
    assert metrics["val_mae"] == pytest.approx(mae)


@pytest.mark.parametrize("cell", ["lstm", "gru", RecurrentCell.GRU])
def test_model_cells(task: Co2LSTMTask, data: TaskData, cell: object) -> None:
    hparams = {"cell": cell, "hidden_units": 8, "num_layers": 2, "dropout": 0.1}
    model = task.build_model(hparams, torch.Generator().manual_seed(0))
    expected = torch.nn.GRU if cell in ("gru", RecurrentCell.GRU) else torch.nn.LSTM
    assert type(model.rnn) is expected
    assert model.rnn.hidden_size == 8 and model.rnn.num_layers == 2
    assert model.rnn.dropout == 0.1
    assert model(data.train_x[:5]).shape == (5, 4)


def test_model_reads_only_the_last_context_weeks(task: Co2LSTMTask, data: TaskData) -> None:
    model = task.build_model({"context_weeks": 10}, torch.Generator().manual_seed(0)).eval()
    x = data.val_x[:3].clone()
    before = model(x)
    x[:, :-10, :] += 5.0
    assert torch.allclose(model(x), before)


def test_model_is_level_invariant(task: Co2LSTMTask, data: TaskData) -> None:
    model = task.build_model({}, torch.Generator().manual_seed(0)).eval()
    x = data.val_x[:3]
    assert torch.allclose(model(x + 2.0), model(x) + 2.0, atol=1e-5)


def test_model_uses_only_the_generator(task: Co2LSTMTask) -> None:
    before = torch.get_rng_state()
    a = task.build_model({"cell": "gru"}, torch.Generator().manual_seed(3))
    b = task.build_model({"cell": "gru"}, torch.Generator().manual_seed(3))
    c = task.build_model({"cell": "gru"}, torch.Generator().manual_seed(4))
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.rnn.weight_hh_l0, c.rnn.weight_hh_l0)
    bound = 1 / 32**0.5
    assert a.rnn.weight_hh_l0.abs().max() <= bound


@pytest.mark.parametrize(
    ("hparams", "pattern"),
    [
        ({"cell": "rnn"}, r"cell='rnn'.*'lstm', 'gru'"),
        ({"hidden_units": 0}, r"hidden_units=0.*int >= 1"),
        ({"num_layers": 0}, r"num_layers=0"),
        ({"dropout": -0.1}, r"dropout=-0.1.*\[0, 1\)"),
        ({"context_weeks": 105}, r"context_weeks=105.*\[2, 104\].*max_context_weeks"),
        ({"context_weeks": 1}, r"context_weeks=1.*int >= 2"),
        ({"width": 3}, r"'width'.*allowed: cell, context_weeks, dropout"),
    ],
)
def test_invalid_model_hparams(task: Co2LSTMTask, hparams: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        task.build_model(hparams, torch.Generator())
