"""Spec loading: the shipped files load; every kind of bad input gives one clear SpecError."""

from __future__ import annotations

import os
from pathlib import Path
import re
import textwrap

import pytest

from autotune import load_study_spec  # checked against the task, as create does
from autotune.spec import Direction
from autotune.spec import FloatParam
from autotune.spec import SpecError
from autotune.spec import load_search_space
from tests.conftest import REPO_ROOT
from tests.conftest import run_autotune

VALID_SPACE = """\
name: tiny
groups:
  - name: learning_rate
    params:
      learning_rate: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}
  - name: model
    params:
      hidden_units: {type: int, low: 8, high: 64}
      activation: {type: categorical, choices: [relu, tanh]}
"""

VALID_STUDY = """\
name: tiny
task: digits-mlp
search_space: tiny.yaml
metric: {name: val_loss, direction: minimize}
max_train_steps: 100
eval_interval: 10
batch_size: 32
trials: 4
pruner: {type: successive_halving, min_steps: 10, reduction_factor: 3}
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_shipped_search_space_loads_learning_rate_first() -> None:
    space = load_search_space(REPO_ROOT / "search_spaces" / "mlp.yaml")
    assert space.groups[0].name == "learning_rate"
    assert list(space.params)[0] == "learning_rate"
    learning_rate = space.params["learning_rate"]
    assert isinstance(learning_rate, FloatParam) and learning_rate.log


def test_shipped_quickstart_loads_with_its_space() -> None:
    spec = load_study_spec(REPO_ROOT / "studies" / "quickstart.yaml")
    assert spec.name == "quickstart"
    assert spec.task == "digits-mlp"
    assert spec.metric.direction == Direction.MINIMIZE
    assert spec.search_space.name == "mlp"
    assert spec.pruner.min_steps <= spec.max_train_steps


def test_valid_study_with_relative_space_file(tmp_path: Path) -> None:
    write(tmp_path, "tiny.yaml", VALID_SPACE)
    spec = load_study_spec(write(tmp_path, "study.yaml", VALID_STUDY))
    assert set(spec.search_space.params) == {"learning_rate", "hidden_units", "activation"}
    assert spec.spec_hash == load_study_spec(tmp_path / "study.yaml").spec_hash


def test_spec_is_frozen(tmp_path: Path) -> None:
    write(tmp_path, "tiny.yaml", VALID_SPACE)
    spec = load_study_spec(write(tmp_path, "study.yaml", VALID_STUDY))
    with pytest.raises(Exception, match="frozen"):
        spec.trials = 5  # type: ignore[misc]


# (what to change in the valid study, words the error must contain)
STUDY_CASES = [
    ("unknown_key", VALID_STUDY + "colour: red\n", ["colour", "unknown key", "allowed keys"]),
    ("wrong_type", VALID_STUDY.replace("trials: 4", "trials: many"), ["trials", "'many'"]),
    ("fractional_int", VALID_STUDY.replace("trials: 4", "trials: 2.5"), ["trials", "2.5"]),
    (
        "zero_trials",
        VALID_STUDY.replace("trials: 4", "trials: 0"),
        ["trials", "(got 0)", "greater than or equal to 1"],
    ),
    (
        "unknown_task",
        VALID_STUDY.replace("digits-mlp", "imagenet"),
        ["task", "imagenet", "digits-mlp"],
    ),
    (
        "unknown_metric",
        VALID_STUDY.replace("name: val_loss", "name: bleu"),
        ["metric.name", "bleu", "val_loss"],
    ),
    (
        "wrong_direction",
        VALID_STUDY.replace("direction: minimize", "direction: maximize"),
        ["metric.direction", "val_loss", "minimize"],
    ),
    (
        "bad_direction_word",
        VALID_STUDY.replace("direction: minimize", "direction: lower"),
        ["metric.direction", "'lower'", "minimize", "maximize"],
    ),
    (
        "eval_interval_too_long",
        VALID_STUDY.replace("eval_interval: 10", "eval_interval: 500"),
        ["eval_interval", "500", "max_train_steps"],
    ),
    (
        "checkpoint_interval_between_evals",
        VALID_STUDY + "checkpoint_interval: 15\n",
        ["checkpoint_interval", "15", "multiple of eval_interval", "10"],
    ),
    (
        "reduction_factor",
        VALID_STUDY.replace("reduction_factor: 3", "reduction_factor: 1"),
        ["pruner.reduction_factor", "(got 1)", "greater than or equal to 2"],
    ),
    (
        "pruner_kind",
        VALID_STUDY.replace("type: successive_halving", "type: hyperband"),
        ["pruner.type", "hyperband", "successive_halving"],
    ),
    (
        "missing_metric",
        VALID_STUDY.replace("metric: {name: val_loss, direction: minimize}\n", ""),
        ["metric", "required key is missing"],
    ),
    (
        "missing_space_file",
        VALID_STUDY.replace("tiny.yaml", "nowhere.yaml"),
        ["search_space", "nowhere.yaml"],
    ),
    (
        "unknown_hyperparameter",
        VALID_STUDY + "fixed: {momentom: 0.9}\n",
        ["fixed.momentom", "momentum"],
    ),
    ("bad_name", VALID_STUDY.replace("name: tiny", "name: 'a b/c'"), ["name", "'a b/c'"]),
    ("top_level_list", "- name: tiny\n", ["top level must be a mapping", "list"]),
    ("bad_yaml", VALID_STUDY + "metric: {name: [\n", ["bad YAML", "line"]),
    # issue 17 item 8: a key given twice (the last one won), a boolean read as 1
    (
        "duplicate_key",
        VALID_STUDY + "name: other\n",
        ["bad YAML at line 10", "duplicate key 'name' (first at line 1)"],
    ),
    (
        "duplicate_nested_key",
        VALID_STUDY.replace("min_steps: 10,", "min_steps: 10, min_steps: 20,"),
        ["bad YAML at line 9", "duplicate key 'min_steps'"],
    ),
    (
        "boolean_trials",
        VALID_STUDY.replace("trials: 4", "trials: true"),
        ["trials: Input should be a valid integer (got true, a boolean)"],
    ),
    (
        "boolean_nested_int",
        VALID_STUDY.replace("min_steps: 10", "min_steps: false"),
        ["pruner.min_steps", "(got false, a boolean)"],
    ),
    # issue 17 item 17: YAML reads 1e300 (no dot) as a string
    (
        "steps_in_e_notation",
        VALID_STUDY.replace("max_train_steps: 100", "max_train_steps: 1e300"),
        ["max_train_steps: allowed: an int in [1, 1000000000] or 'auto', got '1e300'", "YAML"],
    ),
    (
        "steps_too_many",
        VALID_STUDY.replace("max_train_steps: 100", "max_train_steps: 1.0e+300"),
        ["max_train_steps: allowed: an int in [1, 1000000000] or 'auto', got 1e+300"],
    ),
]


@pytest.mark.parametrize(("case", "text", "words"), STUDY_CASES, ids=[c[0] for c in STUDY_CASES])
def test_invalid_study_names_file_key_value(
    tmp_path: Path, case: str, text: str, words: list[str]
) -> None:
    write(tmp_path, "tiny.yaml", VALID_SPACE)
    path = write(tmp_path, "study.yaml", text)
    with pytest.raises(SpecError) as raised:
        load_study_spec(path)
    message = str(raised.value)
    assert str(path) in message
    for word in words:
        assert word in message, f"{case}: {word!r} not in {message!r}"


DUPLICATE_PARAM = "hidden_units: {type: int, low: 8, high: 9}"
SPACE_CASES = [
    (
        "low_not_below_high",
        VALID_SPACE.replace("low: 8, high: 64", "low: 64, high: 8"),
        ["groups[1].params.hidden_units", "low=64", "high=8", "below"],
    ),
    (
        "log_with_nonpositive_low",
        VALID_SPACE.replace("low: 1.0e-4", "low: 0.0"),
        ["groups[0].params.learning_rate", "low=0.0", "> 0", "log"],
    ),
    (
        "unknown_param_type",
        VALID_SPACE.replace("type: int", "type: integer"),
        ["groups[1].params.hidden_units", "integer", "'float', 'int', 'categorical'"],
    ),
    (
        "unknown_param_key",
        VALID_SPACE.replace("high: 64}", "high: 64, scale: 2}"),
        ["groups[1].params.hidden_units", "scale", "allowed keys"],
    ),
    (
        "learning_rate_not_first",
        VALID_SPACE.replace("- name: learning_rate", "- name: optimizer"),
        ["groups", "learning_rate", "first"],
    ),
    (
        "batch_size_tuned",
        VALID_SPACE + "      batch_size: {type: int, low: 16, high: 256}\n",
        ["batch_size", "never tuned"],
    ),
    (
        "single_choice",
        VALID_SPACE.replace("[relu, tanh]", "[relu]"),
        ["groups[1].params.activation.choices", "at least 2"],
    ),
    (
        "log_flag_not_bool",
        VALID_SPACE.replace("log: true", "log: 7"),
        ["groups[0].params.learning_rate.log", "7", "boolean"],
    ),
    (
        "boolean_bound",
        VALID_SPACE.replace("low: 8,", "low: true,"),
        ["groups[1].params.hidden_units.low", "(got true, a boolean)"],
    ),
    (
        "duplicate_param",
        VALID_SPACE.replace("      activation:", f"      {DUPLICATE_PARAM}\n      activation:"),
        ["bad YAML at line 9", "duplicate key 'hidden_units' (first at line 8)"],
    ),
]


@pytest.mark.parametrize(("case", "text", "words"), SPACE_CASES, ids=[c[0] for c in SPACE_CASES])
def test_invalid_space_names_file_key_value(
    tmp_path: Path, case: str, text: str, words: list[str]
) -> None:
    space_path = write(tmp_path, "tiny.yaml", text)
    with pytest.raises(SpecError) as raised:
        load_study_spec(write(tmp_path, "study.yaml", VALID_STUDY))
    message = str(raised.value)
    assert str(space_path) in message
    for word in words:
        assert word in message, f"{case}: {word!r} not in {message!r}"


def test_missing_study_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="file not found"):
        load_study_spec(tmp_path / "absent.yaml")


def test_a_directory_or_fifo_is_named_for_what_it_is(tmp_path: Path) -> None:
    """Not "file not found" for a path that exists (issue 17 item 17)."""
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    for path, what in [(tmp_path, "is a directory"), (fifo, "is a named pipe (FIFO)")]:
        with pytest.raises(SpecError, match=re.escape(f"{path} {what}; allowed: a YAML file")):
            load_study_spec(path)


def test_cli_prints_spec_error_without_traceback_and_exits_2(tmp_path: Path) -> None:
    write(tmp_path, "tiny.yaml", VALID_SPACE)
    path = write(tmp_path, "study.yaml", VALID_STUDY.replace("trials: 4", "trials: -3"))
    result = run_autotune("create", str(path), "--storage", "postgresql://u@127.0.0.1:1/x")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert str(path) in result.stderr and "trials" in result.stderr and "-3" in result.stderr


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "studies").glob("*.yaml")), ids=str)
def test_every_shipped_study_loads(path: Path) -> None:
    spec = load_study_spec(path)
    assert spec.search_space.groups[0].name == "learning_rate"


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "search_spaces").glob("*.yaml")), ids=str)
def test_every_shipped_search_space_loads(path: Path) -> None:
    assert load_search_space(path).name == path.stem


def test_every_problem_between_keys_is_reported_at_once(tmp_path: Path) -> None:
    """Spec errors came one per run (issue 15): the study's checks across keys all report."""
    write(tmp_path, "tiny.yaml", VALID_SPACE)
    text = (
        VALID_STUDY.replace("eval_interval: 10", "eval_interval: 200\ncheckpoint_interval: 150")
        .replace("trials: 4", "trials: 2\nrounds: [{budget_fraction: 0.5}, {top_k: 3}]")
        .replace("min_steps: 10", "min_steps: 500")
    ) + "fixed: {learning_rate: 0.1}\n"
    with pytest.raises(SpecError) as raised:
        load_study_spec(write(tmp_path, "study.yaml", text))
    assert [problem.split(" (")[0] for problem in raised.value.problems] == [
        "checkpoint_interval",
        "eval_interval",
        "pruner.min_steps",
        "round 2 top_k",
        "parameters both fixed and tuned: learning_rate",
    ]


@pytest.mark.parametrize(
    ("steps", "interval"), [(None, 10), (40, 10), (370, 20), (580, 30), (340, 20), (2000, 100)]
)
def test_runs_are_evaluated_about_evaluations_per_run_times_on_the_grid(
    tmp_path: Path, steps: int | None, interval: int
) -> None:
    write(tmp_path, "tiny.yaml", VALID_SPACE)
    spec = load_study_spec(write(tmp_path, "s.yaml", VALID_STUDY + "evaluations_per_run: 20\n"))
    assert spec.eval_interval == 10
    assert spec.run_eval_interval(steps) == interval
    assert spec.recovery_interval(interval) == 5 * interval


def test_without_evaluations_per_run_runs_keep_eval_interval_and_the_stored_hash(
    tmp_path: Path,
) -> None:
    write(tmp_path, "tiny.yaml", VALID_SPACE)
    spec = load_study_spec(write(tmp_path, "study.yaml", VALID_STUDY))
    assert spec.run_eval_interval(5000) == spec.eval_interval
    assert "evaluations_per_run" not in spec.to_json_dict()  # campaigns stored before it
    relative = spec.model_copy(update={"evaluations_per_run": 20})
    assert relative.to_json_dict()["evaluations_per_run"] == 20
    assert relative.spec_hash != spec.spec_hash


def test_checkpoints_and_the_first_rung_follow_the_runs_evaluations(tmp_path: Path) -> None:
    write(tmp_path, "tiny.yaml", VALID_SPACE)
    text = VALID_STUDY + "checkpoint_interval: 50\n"  # pruner.min_steps: 10
    spec = load_study_spec(write(tmp_path, "study.yaml", text))
    assert spec.recovery_interval(30) == 60  # checkpoints are written at evaluations
    assert spec.recovery_interval(10) == 50
    assert (spec.first_rung(10), spec.first_rung(30)) == (10, 30)


def test_a_section_given_a_number_names_the_keys_it_takes(tmp_path: Path) -> None:
    """``budget: 300000`` read "Input should be a valid dictionary or instance of
    BudgetSpec", a class name the user never wrote."""
    path = tmp_path / "auto.yaml"
    path.write_text("task: cancer-mlp\nbudget: 300000\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"budget: must be a mapping of \{steps: \.\.\.\} "):
        load_study_spec(path)
    path.write_text("task: cancer-mlp\nsteps_sweep: 5\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"steps_sweep: must be a mapping of \{low: \.\.\., high"):
        load_study_spec(path)
