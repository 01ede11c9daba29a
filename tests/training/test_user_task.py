from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
import pickle
import sys

import pytest
import torch
import yaml

from autotune.spec._space import SearchSpace
from autotune.training._budget import Budget
from autotune.training._config import TRAINING_HYPERPARAMETERS
from autotune.training._errors import UnknownTaskError
from autotune.training._loop import train
from autotune.training._registry import available_tasks
from autotune.training._registry import check_task
from autotune.training._registry import get_task
from autotune.training._registry import is_user_task_reference
from autotune.training._task import Task
from examples.sine_task import SineTask

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = "examples.sine_task:make_task"
ALLOWED = r"available tasks: cancer-mlp, co2-lstm, digits-cnn, digits-mlp, or a user task given as"


def test_available_tasks() -> None:
    assert available_tasks() == ["cancer-mlp", "co2-lstm", "digits-cnn", "digits-mlp"]


def test_example_user_task() -> None:
    task = get_task(EXAMPLE)
    assert type(task).__name__ == "SineTask" and isinstance(task, Task)
    assert task is not get_task(EXAMPLE)
    assert task.metrics["val_loss"].value == "minimize"
    assert task.describe().span is None


@pytest.mark.parametrize("name", [EXAMPLE, "a:b", "pkg.sub.mod:factory_2", "_m:_f"])
def test_user_task_references(name: str) -> None:
    assert is_user_task_reference(name)


@pytest.mark.parametrize("name", ["", "mnist-cnn", "a:b:c", "a.:b", ":b", "a:", "1a:b", "a b:c"])
def test_unknown_names(name: str) -> None:
    assert not is_user_task_reference(name)
    with pytest.raises(UnknownTaskError, match=rf"^unknown task {name!r}; {ALLOWED}"):
        get_task(name)


def test_non_string_name() -> None:
    with pytest.raises(UnknownTaskError, match=r"unknown task 3"):
        get_task(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        (
            "examples.no_such_module:make_task",
            r"task 'examples.no_such_module:make_task': cannot import module "
            r"'examples.no_such_module' \(ModuleNotFoundError: No module named "
            r"'examples.no_such_module'\)",
        ),
        (
            "examples.sine_task:no_such_factory",
            r"module 'examples.sine_task' has no attribute 'no_such_factory'",
        ),
        ("examples.sine_task:NUM_POINTS", r"'NUM_POINTS' is a int, not a function"),
        ("examples.sine_task:make_points", r"make_points\(\) raised TypeError: .*argument"),
        ("os:getcwd", r"getcwd\(\) returned a str, not a Task \(missing name, metrics, "),
    ],
)
def test_bad_user_tasks(name: str, pattern: str) -> None:
    with pytest.raises(UnknownTaskError, match=pattern) as error:
        get_task(name)
    assert ALLOWED.replace("\\", "") in str(error.value)
    assert "\n" not in str(error.value)


BAD_MODULE = """
from examples.sine_task import SineTask
from autotune.training._results import MetricDirection

class NoMetrics(SineTask):
    metrics = {}

class BadDefault(SineTask):
    default_metric = "val_accuracy"

class TrainLoss(SineTask):
    metrics = {**SineTask.metrics, "train_loss": MetricDirection.MINIMIZE}

class Incomplete:
    name = "incomplete"
    def data(self, period=None): ...
"""


@pytest.fixture
def user_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module `at_user_tasks` on sys.path, and one `at_broken` that fails to import."""
    (tmp_path / "at_user_tasks.py").write_text(BAD_MODULE)
    (tmp_path / "at_broken.py").write_text("raise RuntimeError('no GPU here\\nsecond line')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "at_user_tasks"
    for module in ("at_user_tasks", "at_broken"):
        sys.modules.pop(module, None)


@pytest.mark.parametrize(
    ("factory", "pattern"),
    [
        ("NoMetrics", r"NoMetrics\(\) returned a NoMetrics whose metrics is empty"),
        ("BadDefault", r"default_metric 'val_accuracy' is not one of its metrics"),
        ("TrainLoss", r"metrics contain 'train_loss'"),
        ("Incomplete", r"not a Task \(missing metrics, default_metric, .*describe\)"),
    ],
)
def test_user_tasks_breaking_the_rules(user_modules: str, factory: str, pattern: str) -> None:
    with pytest.raises(UnknownTaskError, match=pattern):
        get_task(f"{user_modules}:{factory}")


def test_user_module_that_fails_to_import(user_modules: str) -> None:
    message = r"cannot import module 'at_broken' \(RuntimeError: no GPU here\);"
    with pytest.raises(UnknownTaskError, match=message):
        get_task("at_broken:make_task")


def test_user_module_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "at_cwd_task.py").write_text(
        "from examples.sine_task import SineTask\n\ndef make():\n    return SineTask()\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    path = list(sys.path)
    try:
        assert type(get_task("at_cwd_task:make")).__name__ == "SineTask"
    finally:
        sys.modules.pop("at_cwd_task", None)
    assert sys.path == path


def test_check_task_accepts_the_builtins() -> None:
    for name in available_tasks():
        assert check_task(get_task(name), name).name == name


def test_error_pickles() -> None:
    with pytest.raises(UnknownTaskError) as error:
        get_task("examples.sine_task:nope")
    copy = pickle.loads(pickle.dumps(error.value))
    assert str(copy) == str(error.value) and copy.reason == error.value.reason
    assert isinstance(copy, ValueError)


def test_example_study_spec_matches_the_task() -> None:
    spec = yaml.safe_load((REPO_ROOT / "studies" / "user_task_example.yaml").read_text())
    assert spec["task"] == EXAMPLE
    task = get_task(spec["task"])
    space = SearchSpace.model_validate(spec["search_space"])
    known = TRAINING_HYPERPARAMETERS | task.model_hyperparameters
    assert set(space.params) | set(spec.get("fixed", {})) <= known
    assert spec["metric"]["name"] in task.metrics


def test_example_forward() -> None:
    task = get_task(EXAMPLE)
    model = task.build_model({"activation": "relu", "num_layers": 1}, torch.Generator())
    data = task.data()
    assert model(data.val_x).shape == data.val_y.shape == (len(data.val_y), 1)


def test_example_rejects_bad_activation() -> None:
    with pytest.raises(ValueError, match=r"activation='gelu'; allowed: tanh, relu"):
        get_task(EXAMPLE).build_model({"activation": "gelu"}, torch.Generator())


UNITS_MODULE = """
import torch
from autotune.training import MetricDirection
from autotune.training import TaskData
from examples.sine_task import SineTask

SCALE = 10.0  # the targets are trained standardised; the user reads them x 10


class InUnits(SineTask):
    metrics = {"val_mse_units": MetricDirection.MINIMIZE}  # no val_loss
    default_metric = "val_mse_units"
    periods_seen = []

    def data(self, period=None):
        d = super().data(period)
        return TaskData(d.train_x, d.train_y, d.val_x, d.val_y, statistics={"scale": SCALE})

    def evaluate(self, model, data, period):
        self.periods_seen.append(period)
        error = (model(data.val_x) - data.val_y) * data.statistics["scale"]
        return {"val_mse_units": error.pow(2).mean().item()}


def make():
    return InUnits()
"""


def test_a_task_reports_in_its_own_units_without_val_loss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "at_units.py").write_text(UNITS_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    task = get_task("at_units:make")
    period = task.periods(3, 7)[2]
    budget = Budget(max_train_steps=40, eval_interval=20, batch_size=32, seed=0)
    result = train({"learning_rate": 1e-2}, task, budget, lambda _: None, period=period)
    assert result.selection_metric == "val_mse_units"
    assert task.periods_seen == [period, period]  # evaluate got the run's period
    plain = train({"learning_rate": 1e-2}, SineTask(), budget, lambda _: None, period=period)
    assert result.final.metrics["val_mse_units"] == pytest.approx(
        100 * plain.final.metrics["val_loss"], rel=1e-4
    )  # the same run, in units x 10; a two-argument evaluate still works
