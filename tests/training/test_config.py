from __future__ import annotations

import pytest
import torch

from autotune.training import SCHEDULE_HYPERPARAMETERS
from autotune.training import TRAINING_HYPERPARAMETERS
from autotune.training import Budget
from autotune.training import EvalResult
from autotune.training import EvaluatedModel
from autotune.training import OptimizerKind
from autotune.training import Schedule
from autotune.training import ScheduleConfig
from autotune.training import TrainingHyperparameters
from autotune.training import build_optimizer
from autotune.training import get_task
from autotune.training import train

BUDGET = Budget(max_train_steps=10, eval_interval=5, batch_size=8, seed=0)


def never_called(result: EvalResult) -> None:
    raise AssertionError("training must not start")


def test_training_hyperparameter_names() -> None:
    assert TRAINING_HYPERPARAMETERS == SCHEDULE_HYPERPARAMETERS | {
        "learning_rate",
        "optimizer",
        "weight_decay",
        "momentum",
        "nesterov",
        "beta1",
        "beta2",
        "eps",
        "ema_decay",
        "ema_dynamic",
        "average_last_checkpoints",
        "evaluated_model",
        "early_stopping_patience",
    }


def test_defaults() -> None:
    config = TrainingHyperparameters.from_hparams({"learning_rate": 0.1, "hidden_units": 8})
    assert config == TrainingHyperparameters(
        learning_rate=0.1,
        optimizer=OptimizerKind.ADAMW,
        weight_decay=0.0,
        momentum=0.9,
        nesterov=False,
        beta1=0.9,
        beta2=0.999,
        eps=1e-8,
        schedule=ScheduleConfig(),
        ema_decay=None,
        ema_dynamic=True,
        average_last_checkpoints=0,
        evaluated_model=EvaluatedModel.RAW,
    )
    assert not config.averaging and not config.uses_nesterov


def test_parses_strings_and_enums() -> None:
    config = TrainingHyperparameters.from_hparams(
        {
            "learning_rate": 1,
            "optimizer": OptimizerKind.SGD_NESTEROV,
            "schedule": "cosine",
            "warmup_fraction": 0.1,
            "ema_decay": 0.999,
            "ema_dynamic": False,
            "average_last_checkpoints": 3,
            "evaluated_model": "averaged",
        }
    )
    assert config.optimizer is OptimizerKind.SGD_NESTEROV and config.uses_nesterov
    assert config.schedule == ScheduleConfig(kind=Schedule.COSINE, warmup_fraction=0.1)
    assert isinstance(config.learning_rate, float)
    assert (config.ema_decay, config.ema_dynamic) == (0.999, False)
    assert config.averaging and config.evaluated_model is EvaluatedModel.AVERAGED


def test_ema_decay_none_is_off() -> None:
    config = TrainingHyperparameters.from_hparams({"learning_rate": 1, "ema_decay": None})
    assert config.ema_decay is None


def test_noam_model_dim() -> None:
    noam = {"learning_rate": 2, "schedule": "noam", "warmup_steps": 4}
    assert TrainingHyperparameters.from_hparams(noam, model_dim=64).schedule.noam_model_dim == 64
    explicit = {**noam, "noam_model_dim": 16}
    assert TrainingHyperparameters.from_hparams(explicit, 64).schedule.noam_model_dim == 16


def test_builds_optimizers() -> None:
    params = [torch.nn.Parameter(torch.zeros(2))]

    def build(**kw: object) -> torch.optim.Optimizer:
        return build_optimizer(params, TrainingHyperparameters(0.1, **kw))

    sgd = build(optimizer=OptimizerKind.SGD_NESTEROV, momentum=0.8)
    assert isinstance(sgd, torch.optim.SGD)
    assert sgd.defaults["nesterov"] and sgd.defaults["momentum"] == 0.8
    plain = build(optimizer=OptimizerKind.SGD, momentum=0.0, weight_decay=0.1)
    assert isinstance(plain, torch.optim.SGD) and not plain.defaults["nesterov"]
    assert plain.defaults["momentum"] == 0.0 and plain.defaults["weight_decay"] == 0.1
    assert build(optimizer=OptimizerKind.SGD, nesterov=True).defaults["nesterov"]
    adamw = build(beta1=0.8, weight_decay=0.1)
    assert isinstance(adamw, torch.optim.AdamW)
    assert adamw.defaults["betas"] == (0.8, 0.999) and adamw.defaults["weight_decay"] == 0.1
    adam = build(optimizer=OptimizerKind.ADAM, eps=1e-6, beta2=0.98)
    assert type(adam) is torch.optim.Adam
    assert adam.defaults["eps"] == 1e-6 and adam.defaults["betas"] == (0.9, 0.98)
    nadam = build(optimizer=OptimizerKind.NADAM, weight_decay=0.01)
    assert isinstance(nadam, torch.optim.NAdam) and nadam.defaults["weight_decay"] == 0.01
    assert all(g["lr"] == 0.1 for o in (sgd, adam, nadam) for g in o.param_groups)


@pytest.mark.parametrize(
    ("hparams", "pattern"),
    [
        ({"learning_rate": 1e-3, "foo": 1}, r"'foo'.*allowed: activation, .*warmup_frac"),
        ({"learning_rate": 1e-3, "optimizer": "adagrad"}, r"optimizer='adagrad'.*'sgd', 'sgd_n"),
        ({"learning_rate": -0.1}, r"learning_rate=-0.1.*a float > 0"),
        ({"learning_rate": 0}, r"learning_rate=0.*a float > 0"),
        ({"learning_rate": float("nan")}, r"learning_rate=nan.*a float > 0"),
        ({"learning_rate": True}, r"learning_rate=True.*a float > 0"),
        ({"learning_rate": "0.1"}, r"learning_rate='0.1'.*a float > 0"),
        ({}, r"'learning_rate' is required.*a float > 0"),
        ({"learning_rate": 1e-3, "weight_decay": -1.0}, r"weight_decay=-1.0.*float >= 0"),
        ({"learning_rate": 1e-3, "momentum": 1.0}, r"momentum=1.0.*\[0, 1\)"),
        ({"learning_rate": 1e-3, "optimizer": "adam", "momentum": 1.5}, r"momentum=1.5"),
        ({"learning_rate": 1e-3, "optimizer": "sgd_nesterov", "momentum": 0}, r"momentum=0.0"),
        ({"learning_rate": 1e-3, "nesterov": "yes"}, r"nesterov='yes'.*true or false"),
        ({"learning_rate": 1e-3, "beta2": 1.0}, r"beta2=1.0.*\[0, 1\)"),
        ({"learning_rate": 1e-3, "eps": 0.0}, r"eps=0.0.*a float > 0"),
        ({"learning_rate": 1e-3, "schedule": "exp"}, r"schedule='exp'.*'constant', 'linear"),
        ({"learning_rate": 1e-3, "warmup_fraction": 1.0}, r"warmup_fraction=1.0.*\[0, 1\)"),
        ({"learning_rate": 1e-3, "warmup_steps": 10}, r"warmup of 10 steps.*budget of 10"),
        ({"learning_rate": 1e-3, "schedule": "noam", "warmup_steps": 2}, r"noam_model_dim"),
        ({"learning_rate": 1e-3, "dropout": -0.5}, r"dropout=-0.5.*\[0, 1\)"),
        ({"learning_rate": 1e-3, "ema_decay": 1.0}, r"ema_decay=1.0.*\(0, 1\)"),
        ({"learning_rate": 1e-3, "ema_dynamic": 1}, r"ema_dynamic=1.*true or false"),
        ({"learning_rate": 1e-3, "average_last_checkpoints": -1}, r"checkpoints=-1.*>= 0"),
        ({"learning_rate": 1e-3, "evaluated_model": "best"}, r"model='best'.*'raw', 'ema'"),
        ({"learning_rate": 1e-3, "evaluated_model": "ema"}, r"'ema' only with ema_decay"),
        (
            {"learning_rate": 1e-3, "evaluated_model": "averaged", "average_last_checkpoints": 1},
            r"'averaged' only with average_last_checkpoints >= 2",
        ),
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
        ({"gradient_accumulation_steps": 0}, r"gradient_accumulation_steps=0.*int >= 1"),
    ],
)
def test_invalid_budget(kwargs: dict, pattern: str) -> None:
    values = {"max_train_steps": 10, "eval_interval": 5, "batch_size": 8, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=pattern):
        Budget(**values)


def test_examples_per_step() -> None:
    assert Budget(10, 5, 8, 0).examples_per_step == 8
    assert Budget(10, 5, 8, 0, gradient_accumulation_steps=4).examples_per_step == 32


def test_eval_steps() -> None:
    assert Budget(10, 5, 8, 0).eval_steps() == (5, 10)
    assert Budget(10, 4, 8, 0).eval_steps() == (4, 8, 10)
    assert Budget(3, 3, 8, 0).eval_steps() == (3,)
