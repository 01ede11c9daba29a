"""Tasks by name: the built-ins, and user tasks given as ``package.module:factory``."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
import contextlib
import importlib
import os
import re
import sys
from types import MappingProxyType
from types import ModuleType
from typing import NoReturn

from ._cancer import CancerMLPTask
from ._co2 import Co2LSTMTask
from ._digits import DigitsCNNTask
from ._digits import DigitsMLPTask
from ._errors import UnknownTaskError
from ._loop import TRAIN_LOSS
from ._results import MetricDirection
from ._task import TASK_MEMBERS
from ._task import Task

_TASKS: Mapping[str, Callable[[], Task]] = MappingProxyType(
    {task.name: task for task in (CancerMLPTask, Co2LSTMTask, DigitsCNNTask, DigitsMLPTask)}
)
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_USER_TASK = re.compile(
    rf"(?P<module>{_IDENTIFIER}(?:\.{_IDENTIFIER})*):(?P<factory>{_IDENTIFIER})"
)


def available_tasks() -> list[str]:
    """Names of the built-in tasks, sorted."""
    return sorted(_TASKS)


def is_user_task_reference(name: str) -> bool:
    """Whether `name` has the form ``package.module:factory``."""
    return isinstance(name, str) and _USER_TASK.fullmatch(name) is not None


def get_task(name: str) -> Task:
    """A fresh task: a built-in by name, or a user task ``package.module:factory``.

    A user task's module is imported (the working directory is importable too) and its
    factory called with no arguments; the result must satisfy the Task protocol.
    UnknownTaskError (a ValueError) names `name`, what went wrong and what is allowed.
    """
    factory = _TASKS.get(name) if isinstance(name, str) else None
    if factory is not None:
        return factory()
    match = _USER_TASK.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        raise UnknownTaskError(name, available_tasks())
    module = _import_user_module(match["module"], name)
    factory_name = match["factory"]
    factory = getattr(module, factory_name, None)
    if factory is None:
        _fail(name, f"module {module.__name__!r} has no attribute {factory_name!r}")
    if not callable(factory):
        _fail(name, f"{factory_name!r} is a {type(factory).__name__}, not a function")
    try:
        task = factory()
    except (Exception, SystemExit) as error:
        _fail(name, f"{factory_name}() raised {_one_line(error)}")
    return check_task(task, name, f"{factory_name}()")


def check_task(task: object, name: str, source: str = "the factory") -> Task:
    """`task` if it satisfies the Task protocol and the metric rules, else UnknownTaskError.

    `name` is the task string the error names; `source` says where `task` came from.
    """
    what = f"{source} returned a {type(task).__name__}"
    missing = [member for member in TASK_MEMBERS if not hasattr(task, member)]
    if missing or not isinstance(task, Task):
        _fail(name, f"{what}, not a Task (missing {', '.join(missing)})")
    problem = _metric_problem(task)
    if problem is not None:
        _fail(name, f"{what} whose {problem}")
    return task


def _metric_problem(task: Task) -> str | None:
    metrics = task.metrics
    if not isinstance(metrics, Mapping) or not all(
        isinstance(d, MetricDirection) for d in metrics.values()
    ):
        return "metrics is not a mapping of metric names to MetricDirection"
    if not metrics:
        return "metrics is empty; declare at least the metric evaluate returns"
    if task.default_metric not in metrics:
        return f"default_metric {task.default_metric!r} is not one of its metrics"
    if TRAIN_LOSS in metrics:
        return f"metrics contain {TRAIN_LOSS!r}, which the training loop adds itself"
    hparams = task.model_hyperparameters
    if not isinstance(hparams, frozenset | set) or not all(isinstance(h, str) for h in hparams):
        return "model_hyperparameters is not a frozenset of names"
    return None


def _import_user_module(module_name: str, name: str) -> ModuleType:
    with _working_directory_importable():
        try:
            return importlib.import_module(module_name)
        except (Exception, SystemExit) as error:  # sys.exit() at import is a failure too
            _fail(name, f"cannot import module {module_name!r} ({_one_line(error)})")


@contextlib.contextmanager
def _working_directory_importable() -> Iterator[None]:
    """Put the working directory on sys.path for the block (as `python -m` does)."""
    cwd = os.getcwd()
    if cwd in sys.path or "" in sys.path:
        yield
        return
    sys.path.insert(0, cwd)
    try:
        yield
    finally:
        sys.path.remove(cwd)


def _one_line(error: BaseException) -> str:
    if isinstance(error, SystemExit):
        return f"SystemExit: sys.exit({error.code!r}) was called"  # an exit, in user code
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def _fail(name: str, reason: str) -> NoReturn:
    raise UnknownTaskError(name, available_tasks(), reason)
