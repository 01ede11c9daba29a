"""The breast-cancer task: its data, folds, standardisation, model, and a short real run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from autotune import training
from autotune.spec import load_study_spec
from autotune.training._budget import Budget
from autotune.training._cancer import CancerMLPTask
from autotune.training._cancer import load_breast_cancer
from autotune.training._cancer import standardised_split
from autotune.training._folds import fold_rows
from autotune.training._loop import train
from autotune.training._period import Period
from autotune.training._registry import available_tasks
from autotune.training._registry import get_task
from autotune.training._results import EvalResult
from autotune.training._results import MetricDirection
from autotune.training._task import HasFitThreshold
from autotune.training._task import HasTrivialMetrics
from autotune.training._task import Task
from autotune.worker._task_checks import task_facts

REPO_ROOT = Path(__file__).resolve().parents[2]
ROWS, FEATURES, MALIGNANT, BENIGN = 569, 30, 212, 357


@pytest.fixture(scope="module")
def task() -> CancerMLPTask:
    return CancerMLPTask()


@pytest.fixture(scope="module")
def raw() -> tuple[np.ndarray, np.ndarray]:
    return load_breast_cancer()


def short_run(task: Task, period: Period | None = None, seed: int = 0) -> list[EvalResult]:
    evals: list[EvalResult] = []
    hparams = task.default_hyperparameters()
    train(hparams, task, Budget(300, 50, 64, seed), evals.append, period=period)
    return evals


def test_registered_and_exported() -> None:
    assert "cancer-mlp" in available_tasks()
    assert isinstance(get_task("cancer-mlp"), CancerMLPTask)
    assert training.CancerMLPTask is CancerMLPTask
    assert training.load_breast_cancer is load_breast_cancer


def test_description(task: CancerMLPTask) -> None:
    assert isinstance(task, Task)
    assert isinstance(task, HasTrivialMetrics) and isinstance(task, HasFitThreshold)
    assert task.default_metric == "val_loss"
    assert dict(task.metrics) == {
        "val_loss": MetricDirection.MINIMIZE,
        "val_accuracy": MetricDirection.MAXIMIZE,
    }
    assert task.model_hyperparameters == {"hidden_units", "num_layers", "dropout", "activation"}
    assert task.describe().span is None and "569 rows" in task.describe().summary


def test_raw_data(raw: tuple[np.ndarray, np.ndarray]) -> None:
    features, labels = raw
    assert features.shape == (ROWS, FEATURES) and features.dtype == np.float32
    assert labels.dtype == np.int64
    assert np.bincount(labels).tolist() == [MALIGNANT, BENIGN]
    assert np.isfinite(features).all() and features.min() >= 0
    assert features[0, :3].tolist() == pytest.approx([17.99, 10.38, 122.8])
    assert features[:, 3].max() > 1000 and features[:, 19].max() < 0.1  # why we standardise
    assert len(np.unique(features, axis=0)) == ROWS


def test_default_period_is_fold_0_of_5(task: CancerMLPTask) -> None:
    assert task.default_period() == Period.kfold(0, 5, 0)
    data = task.data()
    assert task.data(Period.kfold(0, 5, 0)) is data
    assert (len(data.train_y), len(data.val_y)) == (455, 114)
    assert data.train_x.shape == (455, FEATURES) and data.train_x.dtype == torch.float32
    assert data.train_y.dtype == torch.int64


@pytest.mark.parametrize("seed", [0, 3])
def test_folds_are_disjoint_cover_the_data_and_are_stratified(
    task: CancerMLPTask, raw: tuple[np.ndarray, np.ndarray], seed: int
) -> None:
    features, labels = raw
    periods = task.periods(5, seed)
    assert periods == [Period.kfold(fold, 5, seed) for fold in range(5)]
    val_rows = [fold_rows(p, ROWS, strata=labels)[1] for p in periods]
    assert sorted(np.concatenate(val_rows).tolist()) == list(range(ROWS))
    for period, rows in zip(periods, val_rows, strict=True):
        data = task.data(period)
        assert torch.equal(data.val_y, torch.from_numpy(labels[rows]))  # the task uses strata
        assert len(data.train_y) + len(data.val_y) == ROWS
        malignant = int((data.val_y == 0).sum())
        assert MALIGNANT // 5 <= malignant <= MALIGNANT // 5 + 1
        assert len(data.val_y) in (ROWS // 5, ROWS // 5 + 1)


def test_standardisation_uses_the_training_rows_only(
    raw: tuple[np.ndarray, np.ndarray],
) -> None:
    features, labels = raw
    period = Period.kfold(2, 5, 1)
    train_rows, val_rows = fold_rows(period, ROWS, strata=labels)
    data = standardised_split(features, labels, period, "cancer-mlp")
    assert data.train_x.mean(dim=0).abs().max() < 1e-4
    assert data.train_x.std(dim=0, unbiased=False).sub(1).abs().max() < 1e-3
    assert data.val_x.mean(dim=0).abs().max() > 0.01  # not standardised on its own
    mean, std = features[train_rows].mean(axis=0), features[train_rows].std(axis=0)
    expected = (features[val_rows] - mean) / std
    assert np.allclose(data.val_x.numpy(), expected, atol=1e-4)
    poisoned = features.copy()
    poisoned[val_rows] *= 1000.0
    leaked = standardised_split(poisoned, labels, period, "cancer-mlp")
    assert torch.equal(leaked.train_x, data.train_x)


def test_a_constant_column_is_left_unscaled(raw: tuple[np.ndarray, np.ndarray]) -> None:
    features, labels = raw
    constant = features.copy()
    constant[:, 5] = 7.0
    data = standardised_split(constant, labels, Period.kfold(0, 5, 0), "cancer-mlp")
    assert torch.isfinite(data.train_x).all() and not data.val_x[:, 5].any()


def test_trivial_metrics_are_the_majority_class(task: CancerMLPTask) -> None:
    data = task.data()
    train_y, val_y = data.train_y.numpy(), data.val_y.numpy()
    frequencies = np.bincount(train_y) / len(train_y)
    trivial = task.trivial_metrics()
    assert trivial["val_accuracy"] == pytest.approx((val_y == 1).mean())  # benign
    assert trivial["val_loss"] == pytest.approx(-np.log(frequencies[val_y]).mean())
    assert trivial["val_accuracy"] == pytest.approx(BENIGN / ROWS, abs=0.01)


@pytest.mark.parametrize("period", [None, Period.kfold(3, 5, 7)], ids=["default", "other"])
def test_the_default_configuration_beats_the_trivial_predictor(
    task: CancerMLPTask, period: Period | None
) -> None:
    trivial = task.trivial_metrics(period)
    evals = short_run(task, period)
    best = min(evals, key=lambda e: e.metrics["val_loss"])
    assert best.metrics["val_loss"] < 0.4 * trivial["val_loss"]
    assert best.metrics["val_accuracy"] > trivial["val_accuracy"] + 0.2
    assert min(e.metrics["train_loss"] for e in evals) <= task.fit_threshold


def test_training_is_deterministic() -> None:
    a, b = CancerMLPTask(), CancerMLPTask()
    assert torch.equal(a.data().train_x, b.data().train_x)
    assert torch.equal(a.data().val_y, b.data().val_y)
    assert [e.metrics for e in short_run(a)] == [e.metrics for e in short_run(b)]
    assert short_run(a, seed=1)[0].metrics != short_run(a)[0].metrics


def test_build_model(task: CancerMLPTask) -> None:
    model = task.build_model({}, torch.Generator().manual_seed(0))
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(30, 16), (16, 2)]
    hparams = {"hidden_units": 8, "num_layers": 2, "dropout": 0.3, "activation": "tanh"}
    model = task.build_model(hparams, torch.Generator().manual_seed(0))
    assert sum(isinstance(m, torch.nn.Tanh) for m in model) == 2
    assert sum(isinstance(m, torch.nn.Dropout) for m in model) == 2
    assert model(task.data().val_x[:5]).shape == (5, 2)


@pytest.mark.parametrize(
    ("hparams", "pattern"),
    [
        ({"hidden_units": 0}, r"hidden_units=0.*int >= 1"),
        ({"dropout": 1.0}, r"dropout=1.0.*\[0, 1\)"),
        ({"channels": 4}, r"'channels'.*allowed: activation, dropout, hidden_units, num_layers"),
    ],
)
def test_invalid_model_hyperparameters(task: CancerMLPTask, hparams: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        task.build_model(hparams, torch.Generator())


def test_the_study_uses_the_tabular_space_and_fits_the_task() -> None:
    spec = load_study_spec(REPO_ROOT / "studies" / "cancer.yaml", task_facts)
    assert spec.task == "cancer-mlp" and spec.search_space.name == "tabular"
    assert spec.search_space.groups[0].name == "learning_rate"


def test_automatic_mode_picks_the_tabular_space(tmp_path: Path) -> None:
    path = tmp_path / "auto.yaml"
    path.write_text("name: auto\ntask: cancer-mlp\n")
    spec = load_study_spec(path, task_facts)
    assert spec.search_space.name == "tabular"
