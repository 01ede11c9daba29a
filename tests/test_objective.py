"""Objective pieces: suggestions follow the space; budgets follow the spec."""

from __future__ import annotations

from pathlib import Path
import threading

import optuna
import pytest

from autotune import training
from autotune.campaign import Stage
from autotune.spec import load_study_spec
from autotune.worker._objectives import TRIVIAL_PREFIX
from autotune.worker._objectives import RoundSetting
from autotune.worker._objectives import make_objective
from autotune.worker._objectives import result_attrs
from autotune.worker._objectives import suggest
from autotune.worker._objectives import trial_budget
from tests.conftest import REPO_ROOT
from tests.conftest import write_study


def test_suggest_covers_every_parameter_within_its_range() -> None:
    spec = load_study_spec(REPO_ROOT / "studies" / "quickstart.yaml")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(20):
        values = suggest(study.ask(), spec.search_space)
        assert list(values) == list(spec.search_space.params)
        assert 1e-4 <= values["learning_rate"] <= 3e-1
        assert values["schedule"] in ("constant", "cosine")
        assert isinstance(values["hidden_units"], int)


def test_trial_budget_carries_the_spec(tmp_path: Path) -> None:
    path = write_study(tmp_path, "acc", trials=1)
    path.write_text(path.read_text() + "gradient_accumulation_steps: 2\n")
    budget = trial_budget(load_study_spec(path), seed=7, max_train_steps=120)
    assert budget == training.Budget(
        max_train_steps=120, eval_interval=20, batch_size=32, seed=7, gradient_accumulation_steps=2
    )


def test_result_attrs_name_the_best_step_and_evaluated_model() -> None:
    task = training.get_task("digits-mlp")
    result = training.train(
        {"learning_rate": 3e-3}, task, training.Budget(60, 20, 32, 0), lambda _: None
    )
    attrs = result_attrs(result)
    assert attrs["best_step"] == result.best.step
    assert attrs["best_val_loss"] == result.best.metrics["val_loss"]
    assert attrs["evaluated_model"] == "raw"
    assert attrs["steps_done"] == 60


PLAIN_TASK = """from types import SimpleNamespace

from autotune.training._task import TASK_MEMBERS
from examples.sine_task import SineTask


def make():
    full = SineTask()
    return SimpleNamespace(**{name: getattr(full, name) for name in TASK_MEMBERS})
"""


@pytest.mark.parametrize(
    ("task", "trivial"),
    [
        ("digits-mlp", {"trivial_val_loss", "trivial_val_accuracy"}),
        ("at_plain_task:make", set()),  # no trivial_metrics: nothing to compare with
    ],
)
def test_the_baseline_records_a_task_s_trivial_metrics_when_it_has_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, task: str, trivial: set[str]
) -> None:
    (tmp_path / "at_plain_task.py").write_text(PLAIN_TASK)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = load_study_spec(write_study(tmp_path, "base", trials=1, max_train_steps=40))
    spec = spec.model_copy(update={"task": task})
    objective = make_objective(spec, threading.Event(), RoundSetting(Stage.BASELINE, 40))
    trial = optuna.create_study().ask()
    objective(trial)
    assert {k for k in trial.user_attrs if k.startswith(TRIVIAL_PREFIX)} == trivial
