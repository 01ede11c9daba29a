"""Fixed values and search ranges are checked against the hyperparameters' domains at load.

The domains are one table (autotune/_domains.py) that training parses with and spec checks
with, so a value ``create`` accepts is one a trial accepts, and the reverse.
"""

from __future__ import annotations

import copy
import enum
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from autotune import load_study_spec  # checked against the task, as create does
from autotune import training
from autotune._domains import MODEL_DOMAINS
from autotune._domains import TRAINING_DOMAINS
from autotune._domains import DomainKind
from autotune.spec import SpecError
from autotune.spec import StudySpec
from autotune.training._config import OptimizerKind
from autotune.training._layers import Activation
from autotune.training._recurrent import RecurrentCell
from autotune.training._results import EvaluatedModel
from autotune.training._schedules import Schedule
from tests.conftest import REPO_ROOT

SPACE = yaml.safe_load((REPO_ROOT / "search_spaces" / "mlp.yaml").read_text(encoding="utf-8"))
BASE: dict[str, Any] = {
    "name": "domains",
    "task": "digits-mlp",
    "search_space": SPACE,
    "metric": {"name": "val_loss", "direction": "minimize"},
    "max_train_steps": 100,
    "eval_interval": 10,
    "batch_size": 32,
    "trials": 4,
}
GROUP = {"learning_rate": 0, "optimizer": 1, "model": 2, "regularization": 3}


def _spec_file(tmp_path: Path, fixed: dict[str, Any] | None = None, **params: Any) -> Path:
    """BASE with ``fixed`` values and search-space params replaced (``group__param``)."""
    data = copy.deepcopy(BASE)
    data["fixed"] = fixed or {}
    for key, param in params.items():
        group, name = key.split("__")
        data["search_space"]["groups"][GROUP[group]]["params"][name] = param
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_the_base_spec_fits_the_domains(tmp_path: Path) -> None:
    assert isinstance(load_study_spec(_spec_file(tmp_path)), StudySpec)


@pytest.mark.parametrize(
    ("fixed", "words"),
    [
        ({"momentum": -5}, ["fixed.momentum: -5", "a float in [0, 1)"]),
        ({"momentum": "0.9"}, ["fixed.momentum: '0.9'", "a float in [0, 1)"]),
        ({"nesterov": 1}, ["fixed.nesterov: 1", "true or false"]),
        ({"beta2": 1.0}, ["fixed.beta2: 1.0", "a float in [0, 1)"]),
        ({"ema_decay": 0}, ["fixed.ema_decay: 0", "a float in (0, 1) or null"]),
        ({"evaluated_model": "best"}, ["fixed.evaluated_model: 'best'", "'raw', 'ema'"]),
    ],
    ids=lambda v: str(v)[:30],
)
def test_fixed_values_outside_their_domain_are_spec_errors(
    tmp_path: Path, fixed: dict[str, Any], words: list[str]
) -> None:
    path = _spec_file(tmp_path, fixed)
    with pytest.raises(SpecError) as caught:
        load_study_spec(path)
    message = str(caught.value)
    assert str(path) in message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize(
    ("params", "words"),
    [
        (
            {
                "learning_rate__schedule": {
                    "type": "categorical",
                    "choices": ["bogus_schedule", "cosine"],
                }
            },  # fmt: skip
            ["params.schedule.choices: 'bogus_schedule'", "'constant', 'linear'"],
        ),
        (
            {"learning_rate__warmup_fraction": {"type": "float", "low": 0.0, "high": 5.0}},
            ["params.warmup_fraction.high: 5.0", "a float in [0, 1)"],
        ),
        (
            {"model__hidden_units": {"type": "int", "low": 0, "high": 64}},
            ["params.hidden_units.low: 0", "an int >= 1"],
        ),
        (
            {"regularization__dropout": {"type": "float", "low": 0.0, "high": 1.5}},
            ["params.dropout.high: 1.5", "a float in [0, 1)"],
        ),
        (
            {
                "regularization__dropout": {
                    "type": "float",
                    "low": 0.0,
                    "high": 0.5,
                    "hard_high": 2.0,
                }
            },  # fmt: skip
            ["params.dropout.hard_high: 2.0", "a float in [0, 1)"],
        ),
        (
            {"model__num_layers": {"type": "int", "low": 1, "high": 100000}},
            ["params.num_layers.high: 100000", "an int in [1, 64]"],
        ),
        (
            {"learning_rate__early_stopping_patience": {"type": "int", "low": -3, "high": 8}},
            ["params.early_stopping_patience.low: -3", "an int >= 0"],
        ),
        (
            {"model__num_layers": {"type": "float", "low": 1.0, "high": 3.0}},
            ["params.num_layers.type: num_layers is an int, use type: int"],
        ),
        (
            {"optimizer__optimizer": {"type": "int", "low": 1, "high": 3}},
            ["params.optimizer: optimizer takes no int range; use type: categorical"],
        ),
    ],
    ids=lambda v: str(v)[:40],
)
def test_search_ranges_outside_their_domain_are_spec_errors(
    tmp_path: Path, params: dict[str, Any], words: list[str]
) -> None:
    with pytest.raises(SpecError) as caught:
        load_study_spec(_spec_file(tmp_path, **params))
    for word in words:
        assert word in str(caught.value), str(caught.value)


def test_every_domain_problem_of_a_spec_is_reported_at_once(tmp_path: Path) -> None:
    path = _spec_file(
        tmp_path,
        {"momentum": -5},
        regularization__dropout={"type": "float", "low": 0.0, "high": 1.5},
        model__num_layers={"type": "int", "low": 1, "high": 100000},
    )
    with pytest.raises(SpecError) as caught:
        load_study_spec(path)
    assert len(caught.value.problems) == 3, caught.value.problems


def test_a_user_tasks_own_model_hyperparameters_are_not_checked(tmp_path: Path) -> None:
    """The model domains are the built-in tasks'; a user task's "dropout" is its own."""
    from autotune.worker._task_checks import task_facts

    facts = task_facts("examples.sine_task:make_task")
    assert "momentum" in facts.domains
    assert not set(MODEL_DOMAINS) & set(facts.domains)


@pytest.mark.parametrize(
    ("name", "members"),
    [
        ("optimizer", OptimizerKind),
        ("schedule", Schedule),
        ("evaluated_model", EvaluatedModel),
        ("activation", Activation),
        ("cell", RecurrentCell),
    ],
)
def test_choice_domains_are_the_training_enums(name: str, members: type[enum.Enum]) -> None:
    domain = TRAINING_DOMAINS.get(name) or MODEL_DOMAINS[name]
    assert domain.kind is DomainKind.CHOICE
    assert domain.choices == tuple(member.value for member in members)


@pytest.mark.parametrize(
    ("hparams", "message"),
    [
        ({"num_layers": 100000}, r"num_layers=100000; allowed: an int in \[1, 64\]"),
        ({"dropout": 1.5}, r"dropout=1.5; allowed: a float in \[0, 1\)"),
        ({"hidden_units": 0}, r"hidden_units=0; allowed: an int >= 1"),
    ],
)
def test_training_rejects_what_the_spec_rejects(hparams: dict[str, Any], message: str) -> None:
    task = training.get_task("digits-mlp")
    with pytest.raises(ValueError, match=message):
        task.build_model(hparams, torch.Generator())
