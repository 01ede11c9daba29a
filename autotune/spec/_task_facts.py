"""What spec checks need to know about a task, as plain data; the checks over it.

spec never imports the training code: whoever has the task (``autotune create``, a starting
worker) looks it up and passes these facts, so reading a stored campaign needs no task at all.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
import datetime
from types import MappingProxyType

from autotune._domains import Domain
from autotune._domains import DomainKind
from autotune._errors import SpecError
from autotune.spec._space import CategoricalParam
from autotune.spec._space import FloatParam
from autotune.spec._space import IntParam
from autotune.spec._study import Direction
from autotune.spec._study import StudySpec


@dataclass(frozen=True, eq=False)
class TaskFacts:
    """A task as spec checks see it: its metrics, default metric and hyperparameter names.

    ``hyperparameters`` holds every name a spec may tune or fix (the training loop's and
    the model's); ``has_fit_threshold`` whether max_train_steps "auto" measures the steps
    to a training loss (else to where the training loss stops improving, docs/method.md §3);
    ``domains`` the values the hyperparameters that have a known domain may take (fixed
    values and search ranges are checked against them); ``span`` the first and last date of
    dated data (None: iid data, whose periods are folds), the domain of ``periods`` dates.
    """

    name: str
    metrics: Mapping[str, Direction]
    default_metric: str
    hyperparameters: frozenset[str]
    has_fit_threshold: bool
    domains: Mapping[str, Domain] = field(default_factory=dict)
    span: tuple[datetime.date, datetime.date] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))
        object.__setattr__(self, "domains", MappingProxyType(dict(self.domains)))
        object.__setattr__(self, "hyperparameters", frozenset(self.hyperparameters))
        if self.default_metric not in self.metrics:
            raise ValueError(
                f"task {self.name!r}: default_metric {self.default_metric!r} is not one of "
                f"its metrics ({', '.join(self.metrics)})"
            )


TaskLookup = Callable[[str], TaskFacts]
"""The facts of a task by its name in a spec; raises ValueError naming what is wrong."""


def look_up_task(tasks: TaskLookup, name: str, source: str) -> TaskFacts:
    """``tasks(name)``, its ValueError turned into a SpecError on the ``task`` key."""
    try:
        return tasks(name)
    except ValueError as error:
        raise SpecError(source, [f"task: {error}"]) from None


def check_against_task(spec: StudySpec, tasks: TaskLookup, source: str) -> None:
    """Raise SpecError if the task is unknown or does not fit the spec."""
    problems = list(task_problems(spec, look_up_task(tasks, spec.task, source)))
    if problems:
        raise SpecError(source, problems)


def task_problems(spec: StudySpec, task: TaskFacts) -> Iterator[str]:
    """Problems that need the task: metric, hyperparameter names and values."""
    yield from _metric_problems(spec, task)
    yield from _hyperparameter_problems(spec, task)
    yield from _domain_problems(spec, task.domains)
    yield from period_problems(spec, task)


def period_problems(spec: StudySpec, task: TaskFacts) -> Iterator[str]:
    """``periods`` on a task without dated data, or dates outside the data's span."""
    if spec.periods is None:
        return
    named = [("periods.tuning", spec.periods.tuning)]
    named += [(f"periods.heldout[{i}]", p) for i, p in enumerate(spec.periods.heldout or ())]
    given = [(where, period) for where, period in named if period is not None]
    if given and task.span is None:
        yield (
            f"periods: task {spec.task!r} has no dated data (its periods are folds of iid "
            "rows, chosen by the task); allowed: leave periods out"
        )
        return
    for where, period in given:
        for key in ("train", "validation"):
            first, last = getattr(period, key)
            if task.span is not None and (first < task.span[0] or last > task.span[1]):
                yield (
                    f"{where}.{key}: {first}..{last} reaches outside the data of task "
                    f"{spec.task!r}; allowed: dates in {task.span[0]}..{task.span[1]}"
                )


def _metric_problems(spec: StudySpec, task: TaskFacts) -> Iterator[str]:
    direction = task.metrics.get(spec.metric.name)
    if direction is None:
        yield (
            f"metric.name: task {spec.task!r} has no metric {spec.metric.name!r}; "
            f"its metrics: {', '.join(task.metrics)}"
        )
    elif direction is not spec.metric.direction:
        yield (
            f"metric.direction: {spec.metric.name!r} is to be {direction.value}d, "
            f"got {spec.metric.direction.value!r}"
        )


def _hyperparameter_problems(spec: StudySpec, task: TaskFacts) -> Iterator[str]:
    known = task.hyperparameters
    allowed = ", ".join(sorted(known))
    for index, group in enumerate(spec.search_space.groups):
        for name in group.params:
            if name not in known:
                yield (
                    f"search_space.groups[{index}].params.{name}: task {spec.task!r} has no "
                    f"hyperparameter {name!r}; allowed: {allowed}"
                )
    for name in spec.fixed:
        if name not in known:
            yield (
                f"fixed.{name}: task {spec.task!r} has no hyperparameter {name!r}; "
                f"allowed: {allowed}"
            )


def _domain_problems(spec: StudySpec, domains: Mapping[str, Domain]) -> Iterator[str]:
    """Fixed values and search ranges outside their hyperparameters' domains."""
    for name, value in spec.fixed.items():
        domain = domains.get(name)
        if domain is not None and not domain.contains(value):
            yield f"fixed.{name}: {value!r} is not allowed for {name}; allowed: {domain.allowed}"
    for index, group in enumerate(spec.search_space.groups):
        for name, param in group.params.items():
            domain = domains.get(name)
            if domain is not None:
                where = f"search_space.groups[{index}].params.{name}"
                yield from _param_problems(where, name, param, domain)


def _param_problems(
    where: str, name: str, param: FloatParam | IntParam | CategoricalParam, domain: Domain
) -> Iterator[str]:
    """A categorical's choices, or a range's ends (and hard limits, which widening may reach);
    the domain is an interval, so a range whose ends lie in it lies in it."""
    allowed = f"allowed for {name}: {domain.allowed}"
    if isinstance(param, CategoricalParam):
        bad = [choice for choice in param.choices if not domain.contains(choice)]
        if bad:
            yield f"{where}.choices: {', '.join(map(repr, bad))} not allowed; {allowed}"
        return
    if domain.kind in (DomainKind.CHOICE, DomainKind.BOOL):
        yield f"{where}: {name} takes no {param.type} range; use type: categorical, {allowed}"
        return
    if domain.kind is DomainKind.INT and isinstance(param, FloatParam):
        yield f"{where}.type: {name} is an int, use type: int; {allowed}"
        return
    for key in ("low", "high", "hard_low", "hard_high"):
        value = getattr(param, key)
        if value is not None and not domain.contains_number(value):
            yield f"{where}.{key}: {value!r} is outside the domain; {allowed}"
