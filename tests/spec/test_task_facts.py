"""Task checks over plain TaskFacts: spec needs no training code, stored specs need no task."""

from __future__ import annotations

import dataclasses
from pathlib import Path
import re
import subprocess
import sys

import pytest

from autotune import training
from autotune.spec import Direction
from autotune.spec import SpecError
from autotune.spec import StudySpec
from autotune.spec import TaskFacts
from autotune.spec import load_study_spec
from autotune.spec import study_spec_from_dict
from autotune.spec import task_problems
from autotune.worker._task_checks import check_spec_task
from autotune.worker._task_checks import task_facts
from tests.conftest import REPO_ROOT
from tests.conftest import write_study

MISSING_TASK = "nowhere_to_be_found.tasks:make_task"
FACTS = TaskFacts(
    name="toy",
    metrics={"val_loss": Direction.MINIMIZE, "accuracy": Direction.MAXIMIZE},
    default_metric="accuracy",
    hyperparameters=frozenset({"learning_rate", "momentum", "hidden_units"}),
    has_fit_threshold=False,
)
SPACE = """\
name: toy
groups:
  - name: learning_rate
    params:
      learning_rate: {type: float, low: 1.0e-3, high: 1.0, log: true}
  - name: model
    params:
      hidden_units: {type: int, low: 8, high: 64}
"""


def toy_lookup(name: str) -> TaskFacts:
    if name != "toy":
        raise ValueError(f"no task {name!r}; tasks: toy")
    return FACTS


def toy_spec(tmp_path: Path, **changes: str) -> Path:
    (tmp_path / "toy-space.yaml").write_text(SPACE, encoding="utf-8")
    keys = {
        "name": "toy",
        "task": "toy",
        "search_space": "toy-space.yaml",
        "metric": "{name: accuracy, direction: maximize}",
        "max_train_steps": "100",
        "eval_interval": "10",
        "batch_size": "16",
        "trials": "4",
        **changes,
    }
    path = tmp_path / "toy.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in keys.items()), encoding="utf-8")
    return path


def problems_of(tmp_path: Path, **changes: str) -> list[str]:
    return list(task_problems(load_study_spec(toy_spec(tmp_path, **changes)), FACTS))


def test_a_fitting_spec_has_no_task_problems(tmp_path: Path) -> None:
    assert problems_of(tmp_path) == []
    assert isinstance(load_study_spec(toy_spec(tmp_path), toy_lookup), StudySpec)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"metric": "{name: bleu, direction: maximize}"}, ["metric.name", "'bleu'", "accuracy"]),
        (
            {"metric": "{name: accuracy, direction: minimize}"},
            ["metric.direction", "'accuracy' is to be maximized", "'minimize'"],
        ),
        ({"fixed": "{momentom: 0.9}"}, ["fixed.momentom", "allowed: hidden_units, learning"]),
    ],
    ids=["metric", "direction", "hyperparameter"],
)
def test_task_problems_name_key_and_what_is_allowed(
    tmp_path: Path, changes: dict[str, str], words: list[str]
) -> None:
    (problem,) = problems_of(tmp_path, **changes)
    for word in words:
        assert word in problem, problem
    with pytest.raises(SpecError, match=r"toy\.yaml"):
        load_study_spec(toy_spec(tmp_path, **changes), toy_lookup)


def test_an_unknown_task_is_a_spec_error_only_when_looked_up(tmp_path: Path) -> None:
    path = toy_spec(tmp_path, task="elsewhere")
    assert load_study_spec(path).task == "elsewhere"
    with pytest.raises(SpecError, match="task: no task 'elsewhere'; tasks: toy"):
        load_study_spec(path, toy_lookup)


def test_automatic_mode_takes_the_metric_from_the_lookup(tmp_path: Path) -> None:
    (tmp_path / "toy-space.yaml").write_text(SPACE, encoding="utf-8")
    path = tmp_path / "auto.yaml"
    path.write_text("task: toy\nsearch_space: toy-space.yaml\n", encoding="utf-8")
    with pytest.raises(SpecError, match="metric: required key is missing"):
        load_study_spec(path)  # no lookup: the metric cannot be known
    # no fit_threshold: automatic mode measures steps to the training loss's plateau
    spec = load_study_spec(path, toy_lookup)
    assert spec.measures_max_train_steps
    fitting = dataclasses.replace(FACTS, has_fit_threshold=True)
    assert load_study_spec(path, lambda _: fitting) == spec
    assert (spec.name, spec.metric.name, spec.metric.direction) == (
        "toy",
        "accuracy",
        Direction.MAXIMIZE,
    )
    assert [stage.groups for stage in spec.tuning_stages] == [("learning_rate",), ("model",)]


def test_automatic_mode_tunes_the_metric_a_spec_names(tmp_path: Path) -> None:
    (tmp_path / "toy-space.yaml").write_text(SPACE, encoding="utf-8")
    path = tmp_path / "auto.yaml"
    lines = "task: toy\nsearch_space: toy-space.yaml\nbudget: {steps: 50000}\n"
    path.write_text(lines + "metric: {name: val_loss}\n", encoding="utf-8")
    spec = load_study_spec(path, toy_lookup)  # still automatic: what to tune, not how
    assert spec.measures_max_train_steps
    assert (spec.metric.name, spec.metric.direction) == ("val_loss", Direction.MINIMIZE)
    path.write_text(lines + "metric: {name: val_loss, direction: maximize}\n", encoding="utf-8")
    with pytest.raises(SpecError, match="'val_loss' is to be minimized"):
        load_study_spec(path, toy_lookup)
    path.write_text(lines + "metric: {name: bleu}\n", encoding="utf-8")
    with pytest.raises(SpecError, match="no metric 'bleu'"):
        load_study_spec(path, toy_lookup)


def test_automatic_mode_keeps_a_batch_size_and_says_which_key_turned_it_off(
    tmp_path: Path,
) -> None:
    """``batch_size: 128`` turned automatic mode off and listed four missing keys, unsaid
    why; the batch size is the machine's choice (memory, throughput), not the pipeline's."""
    (tmp_path / "toy-space.yaml").write_text(SPACE, encoding="utf-8")
    path = tmp_path / "auto.yaml"
    lines = "task: toy\nsearch_space: toy-space.yaml\n"
    path.write_text(lines + "batch_size: 128\n", encoding="utf-8")
    spec = load_study_spec(path, toy_lookup)
    assert spec.measures_max_train_steps and spec.batch_size == 128
    path.write_text(lines + "trials: 40\n", encoding="utf-8")
    with pytest.raises(SpecError) as refused:
        load_study_spec(path, toy_lookup)
    assert "max_train_steps: required key is missing" in str(refused.value)
    assert "(this spec sets trials, which turns automatic mode off" in str(refused.value)


def test_a_metric_may_be_named_alone_its_direction_the_tasks(tmp_path: Path) -> None:
    """``metric: val_accuracy`` read "must be a mapping of {name: ..., direction: ...}"."""
    (tmp_path / "toy-space.yaml").write_text(SPACE, encoding="utf-8")
    path = tmp_path / "auto.yaml"
    path.write_text("task: toy\nsearch_space: toy-space.yaml\nmetric: val_loss\n")
    spec = load_study_spec(path, toy_lookup)
    assert spec.measures_max_train_steps  # still automatic
    assert (spec.metric.name, spec.metric.direction) == ("val_loss", Direction.MINIMIZE)
    manual = toy_spec(tmp_path).read_text()
    manual = re.sub(r"metric: .*\n", "metric: accuracy\n", manual)
    path.write_text(manual, encoding="utf-8")
    spec = load_study_spec(path, toy_lookup)  # a manual spec: the task's direction too
    assert (spec.metric.name, spec.metric.direction) == ("accuracy", Direction.MAXIMIZE)


def test_task_facts_refuse_a_default_metric_they_lack() -> None:
    with pytest.raises(ValueError, match="default_metric 'bleu'"):
        TaskFacts("toy", {"val_loss": Direction.MINIMIZE}, "bleu", frozenset(), False)


def test_facts_of_a_built_in_task_are_those_of_the_training_code() -> None:
    facts = task_facts("digits-mlp")
    task = training.get_task("digits-mlp")
    assert facts.name == task.name and facts.default_metric == task.default_metric
    assert {k: d.value for k, d in facts.metrics.items()} == {
        k: d.value for k, d in task.metrics.items()
    }
    assert facts.hyperparameters == training.TRAINING_HYPERPARAMETERS | (
        task.model_hyperparameters
    )
    assert facts.has_fit_threshold
    with pytest.raises(training.UnknownTaskError):
        task_facts("imagenet")


def test_a_stored_spec_loads_without_its_task_but_a_worker_checks_it(tmp_path: Path) -> None:
    """load_campaign validates the stored spec only; a worker start names the missing task."""
    spec = load_study_spec(write_study(tmp_path, "s", trials=4))
    stored = {**spec.to_json_dict(), "task": MISSING_TASK}
    loaded = study_spec_from_dict(stored, "campaign 's'")
    assert loaded.task == MISSING_TASK
    with pytest.raises(SpecError, match="campaign 's'.*\n.*task: .*nowhere_to_be_found"):
        check_spec_task(loaded, "campaign 's'")


def test_the_spec_package_imports_no_training_code() -> None:
    """The spec package alone: no torch, no Optuna, no autotune.training (tests/test_layering
    holds the same for every pure package)."""
    code = (
        "import sys, autotune.spec; "
        "print(sorted(m for m in ('torch', 'optuna', 'autotune.training') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True
    )
    assert result.stdout.strip() == "[]"
