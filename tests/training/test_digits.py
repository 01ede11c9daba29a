from __future__ import annotations

import numpy as np
import pytest
import torch

from autotune.training._digits import Activation
from autotune.training._digits import DigitsCNNTask
from autotune.training._digits import load_digits
from autotune.training._period import Period
from autotune.training._registry import available_tasks
from autotune.training._registry import get_task
from autotune.training._results import MetricDirection
from autotune.training._task import Task


@pytest.fixture(scope="module")
def task() -> Task:
    return get_task("digits-mlp")


def test_registry() -> None:
    assert "digits-mlp" in available_tasks() and "digits-cnn" in available_tasks()
    assert isinstance(get_task("digits-mlp"), Task)
    assert isinstance(get_task("digits-cnn"), DigitsCNNTask)


def test_task_description(task: Task) -> None:
    assert task.name == "digits-mlp"
    assert task.default_metric == "val_loss"
    assert dict(task.metrics) == {
        "val_loss": MetricDirection.MINIMIZE,
        "val_accuracy": MetricDirection.MAXIMIZE,
    }
    assert task.model_hyperparameters == {"hidden_units", "num_layers", "dropout", "activation"}


def test_raw_data() -> None:
    pixels, labels = load_digits()
    assert pixels.shape == (1797, 64)
    assert pixels.min() == 0 and pixels.max() == 16
    assert sorted(np.unique(labels)) == list(range(10))


def test_default_split_is_stratified_and_standardised(task: Task) -> None:
    assert task.default_period() == Period.kfold(0, 5, 0)
    data = task.data()
    assert task.data(Period.kfold(0, 5, 0)) is data
    assert len(data.train_y) + len(data.val_y) == 1797
    assert len(data.val_y) == pytest.approx(1797 * 0.2, abs=10)
    assert data.train_x.shape[1] == 64 and data.train_x.dtype == torch.float32
    assert data.train_y.dtype == torch.int64
    _, val_labels = load_digits()
    val_counts = torch.bincount(data.val_y, minlength=10)
    all_counts = torch.from_numpy(np.bincount(val_labels, minlength=10))
    assert torch.allclose(val_counts.double(), all_counts.double() * 0.2, atol=1)
    assert data.train_x.mean(dim=0).abs().max() < 1e-4


def test_split_is_deterministic() -> None:
    a, b = get_task("digits-mlp").data(), get_task("digits-mlp").data()
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.val_y, b.val_y)


def test_build_model_defaults(task: Task) -> None:
    model = task.build_model({}, torch.Generator().manual_seed(0))
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 64), (64, 10)]
    assert any(isinstance(m, torch.nn.ReLU) for m in model)
    assert not any(isinstance(m, torch.nn.Dropout) for m in model)


def test_build_model_options(task: Task) -> None:
    hparams = {"hidden_units": 32, "num_layers": 3, "dropout": 0.25, "activation": "gelu"}
    model = task.build_model(hparams, torch.Generator().manual_seed(0))
    assert sum(isinstance(m, torch.nn.Linear) for m in model) == 4
    assert sum(isinstance(m, torch.nn.GELU) for m in model) == 3
    assert sum(isinstance(m, torch.nn.Dropout) for m in model) == 3
    enum_model = task.build_model({"activation": Activation.TANH}, torch.Generator())
    assert any(isinstance(m, torch.nn.Tanh) for m in enum_model)


def test_build_model_uses_only_the_generator(task: Task) -> None:
    before = torch.get_rng_state()
    a = task.build_model({}, torch.Generator().manual_seed(7))
    b = task.build_model({}, torch.Generator().manual_seed(7))
    c = task.build_model({}, torch.Generator().manual_seed(8))
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a[0].weight, c[0].weight)


def test_default_init_scale(task: Task) -> None:
    model = task.build_model({}, torch.Generator().manual_seed(0))
    bound = 1 / 64**0.5
    assert model[0].weight.abs().max() <= bound
    assert model[0].weight.std().item() == pytest.approx(bound / 3**0.5, rel=0.1)


@pytest.mark.parametrize(
    ("hparams", "pattern"),
    [
        ({"hidden_units": 0}, r"hidden_units=0.*int >= 1"),
        ({"hidden_units": 3.5}, r"hidden_units=3.5.*int >= 1"),
        ({"num_layers": 0}, r"num_layers=0.*an int in \[1, 64\]"),
        ({"dropout": 1.0}, r"dropout=1.0.*\[0, 1\)"),
        ({"activation": "sigmoid"}, r"activation='sigmoid'.*'relu', 'tanh', 'gelu'"),
        ({"width": 3}, r"'width'.*allowed: activation, dropout, hidden_units, num_layers"),
    ],
)
def test_invalid_model_hparams(task: Task, hparams: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        task.build_model(hparams, torch.Generator())


# --- digits-cnn --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cnn() -> Task:
    return get_task("digits-cnn")


def test_cnn_description(cnn: Task) -> None:
    assert cnn.name == "digits-cnn"
    assert cnn.metrics == get_task("digits-mlp").metrics
    assert cnn.model_hyperparameters == {
        "channels",
        "num_conv_layers",
        "hidden_units",
        "dropout",
        "activation",
    }


def test_cnn_shares_the_mlp_data(cnn: Task, task: Task) -> None:
    a, b = cnn.data(), task.data()
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.val_y, b.val_y)


def test_cnn_defaults(cnn: Task) -> None:
    model = cnn.build_model({}, torch.Generator().manual_seed(0))
    convs = [m for m in model if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (1, 16, (3, 3)),
        (16, 16, (3, 3)),
    ]
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(16 * 2 * 2, 64), (64, 10)]
    assert model(cnn.data().val_x[:7]).shape == (7, 10)


@pytest.mark.parametrize(("layers", "side"), [(1, 4), (2, 2), (3, 2)])
def test_cnn_pools_down_to_two_by_two(cnn: Task, layers: int, side: int) -> None:
    hparams = {"num_conv_layers": layers, "channels": 4, "hidden_units": 8}
    model = cnn.build_model(hparams, torch.Generator().manual_seed(0))
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model) == layers
    head = [m for m in model if isinstance(m, torch.nn.Linear)][0]
    assert head.in_features == 4 * side * side
    assert model(torch.zeros(2, 64)).shape == (2, 10)


def test_cnn_options(cnn: Task) -> None:
    hparams = {"dropout": 0.3, "activation": "tanh", "channels": 8}
    model = cnn.build_model(hparams, torch.Generator().manual_seed(0))
    assert sum(isinstance(m, torch.nn.Tanh) for m in model) == 3
    assert sum(isinstance(m, torch.nn.Dropout) for m in model) == 1


def test_cnn_uses_only_the_generator(cnn: Task) -> None:
    before = torch.get_rng_state()
    a = cnn.build_model({}, torch.Generator().manual_seed(7))
    b = cnn.build_model({}, torch.Generator().manual_seed(7))
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    bound = 1 / 9**0.5
    assert 0.5 * bound < a[1].weight.abs().max() <= bound


@pytest.mark.parametrize(
    ("hparams", "pattern"),
    [
        ({"channels": 0}, r"channels=0.*int >= 1"),
        ({"num_conv_layers": 0}, r"num_conv_layers=0.*an int in \[1, 64\]"),
        ({"dropout": 1.5}, r"dropout=1.5"),
        ({"activation": "elu"}, r"activation='elu'"),
        ({"num_layers": 2}, r"'num_layers'.*allowed: activation, channels, dropout"),
    ],
)
def test_cnn_invalid_hparams(cnn: Task, hparams: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        cnn.build_model(hparams, torch.Generator())
