"""Objective pieces: suggestions follow the space; budgets follow the spec."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.trial import TrialState
from optuna.trial import create_trial
import pytest

from autotune import training
from autotune.spec import load_study_spec
from autotune.storage._artifacts import CheckpointRef
from autotune.worker._objectives import ResumeSource
from autotune.worker._objectives import recovery_checkpoint_to_discard
from autotune.worker._objectives import result_attrs
from autotune.worker._objectives import resume_sources
from autotune.worker._objectives import suggest
from autotune.worker._objectives import takes_recovery_checkpoint
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


def test_recovery_checkpoints_every_interval_and_on_stop_never_at_the_end() -> None:
    taken = [s for s in range(20, 401, 20) if takes_recovery_checkpoint(s, 100, 400, False)]
    assert taken == [100, 200, 300]
    assert takes_recovery_checkpoint(40, 100, 400, stopping=True)
    assert not takes_recovery_checkpoint(400, 100, 400, stopping=True)


def test_resume_sources_prefer_the_recovery_checkpoint_and_skip_malformed_ones() -> None:
    recovery = {"artifact_id": "r", "step": 300, "trial": 7}
    parent = {"artifact_id": "p", "step": 100}
    lineage = {"parent_study": "c/joint/1", "parent_trial": 2}
    attrs = {"recovery_checkpoint": recovery, "resume_checkpoint": parent, **lineage}
    assert resume_sources(attrs, "c/joint/2") == (
        ResumeSource(CheckpointRef("r", 300), "c/joint/2", 7),
        ResumeSource(CheckpointRef("p", 100), "c/joint/1", 2),
    )
    no_trial = {**attrs, "recovery_checkpoint": {"artifact_id": "r", "step": 300}}
    assert [s.checkpoint.artifact_id for s in resume_sources(no_trial, "c/joint/2")] == ["p"]
    assert resume_sources({"recovery_checkpoint": "junk"}, "c/joint/1") == ()


@pytest.mark.parametrize(
    ("state", "discarded"),
    [
        (TrialState.COMPLETE, "r"),
        (TrialState.PRUNED, "r"),
        (TrialState.FAIL, None),  # its retry resumes from it
        (TrialState.RUNNING, None),  # not told yet: a retry may still need it
    ],
)
def test_a_recovery_checkpoint_is_discarded_only_once_the_trial_ended_well(
    state: TrialState, discarded: str | None
) -> None:
    recovery = {"recovery_checkpoint": {"artifact_id": "r", "step": 300, "trial": 7}}
    value = 0.5 if state == TrialState.COMPLETE else None
    told = create_trial(state=state, value=value, user_attrs=recovery)
    assert recovery_checkpoint_to_discard(told) == discarded
    assert recovery_checkpoint_to_discard(create_trial(state=state, value=value)) is None
