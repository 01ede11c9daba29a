from __future__ import annotations

import pytest

from autotune.training import TRAINING_HYPERPARAMETERS
from autotune.training import Budget
from autotune.training import EvalResult
from autotune.training import OptimizerKind
from autotune.training import Schedule
from autotune.training import TrainingHyperparameters
from autotune.training import build_optimizer
from autotune.training import get_task
from autotune.training import train

BUDGET = Budget(max_train_steps=10, eval_interval=5, batch_size=8, seed=0)


def never_called(result: EvalResult) -> None:
    raise AssertionError("training must not start")


def test_training_hyperparameter_names() -> None:
    assert TRAINING_HYPERPARAMETERS == {
        "learning_rate",
        "optimizer",
        "weight_decay",
        "momentum",
        "beta1",
        "beta2",
        "schedule",
        "warmup_fraction",
    }


def test_defaults() -> None:
    config = TrainingHyperparameters.from_hparams({"learning_rate": 0.1, "hidden_units": 8})
    assert config == TrainingHyperparameters(
        learning_rate=0.1,
        optimizer=OptimizerKind.ADAMW,
        weight_decay=0.0,
        momentum=0.9,
        beta1=0.9,
        beta2=0.999,
        schedule=Schedule.CONSTANT,
        warmup_fraction=0.0,
    )


def test_parses_strings_and_enums() -> None:
    config = TrainingHyperparameters.from_hparams(
        {"learning_rate": 1, "optimizer": OptimizerKind.SGD_NESTEROV, "schedule": "cosine"}
    )
    assert config.optimizer is OptimizerKind.SGD_NESTEROV
    assert config.schedule is Schedule.COSINE
    assert isinstance(config.learning_rate, float)


def test_builds_optimizers() -> None:
    import torch

    params = [torch.nn.Parameter(torch.zeros(2))]
    sgd = build_optimizer(
        params, TrainingHyperparameters(0.1, OptimizerKind.SGD_NESTEROV, momentum=0.8)
    )
    assert isinstance(sgd, torch.optim.SGD)
    assert sgd.defaults["nesterov"] and sgd.defaults["momentum"] == 0.8
    adamw = build_optimizer(params, TrainingHyperparameters(0.1, beta1=0.8, weight_decay=0.1))
    assert isinstance(adamw, torch.optim.AdamW)
    assert adamw.defaults["betas"] == (0.8, 0.999) and adamw.defaults["weight_decay"] == 0.1


@pytest.mark.parametrize(
    ("hparams", "pattern"),
    [
        ({"learning_rate": 1e-3, "foo": 1}, r"'foo'.*allowed: activation, beta1, .*warmup_frac"),
        ({"learning_rate": 1e-3, "optimizer": "adam"}, r"optimizer='adam'.*'adamw', 'sgd_nest"),
        ({"learning_rate": -0.1}, r"learning_rate=-0.1.*a float > 0"),
        ({"learning_rate": 0}, r"learning_rate=0.*a float > 0"),
        ({"learning_rate": float("nan")}, r"learning_rate=nan.*a float > 0"),
        ({"learning_rate": True}, r"learning_rate=True.*a float > 0"),
        ({"learning_rate": "0.1"}, r"learning_rate='0.1'.*a float > 0"),
        ({}, r"'learning_rate' is required.*a float > 0"),
        ({"learning_rate": 1e-3, "weight_decay": -1.0}, r"weight_decay=-1.0.*float >= 0"),
        ({"learning_rate": 1e-3, "momentum": 1.0}, r"momentum=1.0.*\(0, 1\)"),
        ({"learning_rate": 1e-3, "beta2": 1.0}, r"beta2=1.0.*\[0, 1\)"),
        ({"learning_rate": 1e-3, "schedule": "linear"}, r"schedule='linear'.*'constant', 'co"),
        ({"learning_rate": 1e-3, "warmup_fraction": 1.0}, r"warmup_fraction=1.0.*\[0, 1\)"),
        ({"learning_rate": 1e-3, "dropout": -0.5}, r"dropout=-0.5.*\[0, 1\)"),
    ],
)
def test_invalid_hparams_fail_before_training(hparams: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        train(hparams, get_task("digits-mlp"), BUDGET, never_called)


def test_invalid_selection_metric() -> None:
    with pytest.raises(ValueError, match=r"'val_f1'.*allowed: train_loss, val_accuracy, val_loss"):
        train({"learning_rate": 0.1}, get_task("digits-mlp"), BUDGET, never_called, "val_f1")


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"max_train_steps": 0}, r"max_train_steps=0.*int >= 1"),
        ({"eval_interval": 0}, r"eval_interval=0.*int >= 1"),
        ({"eval_interval": 11}, r"eval_interval=11.*<= max_train_steps \(10\)"),
        ({"batch_size": 2.0}, r"batch_size=2.0.*int >= 1"),
        ({"batch_size": True}, r"batch_size=True.*int >= 1"),
        ({"seed": -1}, r"seed=-1.*int >= 0"),
    ],
)
def test_invalid_budget(kwargs: dict, pattern: str) -> None:
    values = {"max_train_steps": 10, "eval_interval": 5, "batch_size": 8, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=pattern):
        Budget(**values)


def test_eval_steps() -> None:
    assert Budget(10, 5, 8, 0).eval_steps() == (5, 10)
    assert Budget(10, 4, 8, 0).eval_steps() == (4, 8, 10)
    assert Budget(3, 3, 8, 0).eval_steps() == (3,)
