"""Built-in tasks by name."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from types import MappingProxyType

from ._digits import DigitsMLPTask
from ._errors import UnknownTaskError
from ._task import Task

_TASKS: Mapping[str, Callable[[], Task]] = MappingProxyType({DigitsMLPTask.name: DigitsMLPTask})


def available_tasks() -> list[str]:
    """Names of the built-in tasks, sorted."""
    return sorted(_TASKS)


def get_task(name: str) -> Task:
    """A fresh instance of the built-in task `name`; UnknownTaskError lists the others."""
    try:
        factory = _TASKS[name]
    except (KeyError, TypeError):
        raise UnknownTaskError(name, available_tasks()) from None
    return factory()
