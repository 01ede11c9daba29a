"""Objective pieces: suggestions follow the space; budgets follow the spec."""

from __future__ import annotations

from pathlib import Path

import optuna

from autotune import training
from autotune.objective import result_attrs
from autotune.objective import suggest
from autotune.objective import trial_budget
from autotune.spec import load_study_spec
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
