"""What each stage/round study runs: plans for the first study and every later one."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
import itertools
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.trial import FrozenTrial

from autotune.analysis import sweep_learning_rates
from autotune.campaign._budget import plan_budget
from autotune.campaign._records import Fact
from autotune.campaign._records import Stage
from autotune.campaign._records import StudyPlan
from autotune.campaign._records import distributions_to_json
from autotune.campaign._trial_attrs import ATTR_SWEEP_TO_BEAT
from autotune.spec import FloatParam
from autotune.spec import IntParam
from autotune.spec import SamplerKind
from autotune.spec import StudySpec


@dataclass(frozen=True)
class QueuedTrial:
    """A trial a new study queues up front; ``key`` makes queuing it idempotent."""

    key: str
    params: dict[str, Any]
    user_attrs: dict[str, Any]


@dataclass(frozen=True)
class NewStudy:
    """A stage/round study to create: its plan, queued and carried trials, first facts."""

    plan: StudyPlan
    queued: tuple[QueuedTrial, ...] = ()
    carried: tuple[FrozenTrial, ...] = ()  # finished trials copied in (a widened stage)
    facts: tuple[Fact, ...] = ()


def sweep_study(
    spec: StudySpec, rates: Sequence[float], round_number: int, to_beat: int | None = None
) -> NewStudy:
    """A sweep study: one queued constant-learning-rate trial per rate, the middle of the
    grid first (its ends are the least likely fastest, and whichever rate fits first stops
    every slower one there). A widening's trials carry the steps ``to_beat``, those the
    fastest rate so far fitted in: a rate no faster stops there."""
    steps = spec.steps_sweep.steps
    assert steps is not None  # validated by the spec when max_train_steps is "auto"
    attrs = {} if to_beat is None else {ATTR_SWEEP_TO_BEAT: to_beat}
    queued = tuple(
        QueuedTrial(f"learning_rate={rate!r}", {"learning_rate": rate}, dict(attrs))
        for rate in middle_first(rates)
    )
    plan = StudyPlan(Stage.STEPS_SWEEP, round_number, len(rates), steps, None, sampling=False)
    return NewStudy(plan, queued)


def middle_first(rates: Sequence[float]) -> list[float]:
    """The rates in order of their distance from the middle of the list (ties: the earlier
    first, so a widening's two rates, nearest the old grid first, keep their order)."""
    middle = (len(rates) - 1) / 2
    return [rates[i] for i in sorted(range(len(rates)), key=lambda i: (abs(i - middle), i))]


def first_study(spec: StudySpec) -> NewStudy:
    """The first study of a campaign: the sweep, the baseline or round 1."""
    if spec.measures_max_train_steps:
        sweep = spec.steps_sweep
        return sweep_study(spec, sweep_learning_rates(sweep.low, sweep.high, sweep.count), 1)
    return study_after_steps(spec, int(spec.max_train_steps), 0)


def study_after_steps(spec: StudySpec, max_train_steps: int, sweep_steps: int) -> NewStudy:
    """The study that follows once max_train_steps is known (by a sweep that cost
    ``sweep_steps``, or the spec's): the baseline or round 1."""
    if spec.baseline:
        steps = spec.round_steps(1, max_train_steps)
        plan = StudyPlan(Stage.BASELINE, 1, 1, steps, max_train_steps, sweep_steps=sweep_steps)
        return NewStudy(plan)
    return tuning_study(spec, 0, max_train_steps, sweep_steps)


def tuning_study(
    spec: StudySpec,
    index: int,
    total_steps: int,
    sweep_steps: int | None,
    stage_fixed: Mapping[str, Any] | None = None,
    distributions: Mapping[str, BaseDistribution] | None = None,
) -> NewStudy:
    """Round 1 of tuning stage ``index`` (default distributions: its groups' ranges).

    A grid stage queues every combination of its values and samples nothing else.
    """
    stage = spec.tuning_stages[index]
    if distributions is None:
        distributions = space_distributions(spec.search_space.group_params(stage.groups))
    queued: tuple[QueuedTrial, ...] = ()
    trials, step_budget = spec.stage_trials(stage), None
    if spec.stage_sampler(stage) is SamplerKind.GRID:
        combinations = grid_combinations(distributions, stage.grid_points)
        queued = tuple(QueuedTrial(repr(sorted(c.items())), c, {}) for c in combinations)
        trials = len(queued)
    elif spec.budget is not None:  # sample until the stage's share of the budget is spent
        shares = plan_budget(spec, total_steps, spec.budget.steps, sweep_steps)
        step_budget = shares.round_one[index]
        trials = max(1, step_budget // spec.round_steps(1, total_steps))
    plan = StudyPlan(
        Stage.JOINT,
        1,
        trials,
        spec.round_steps(1, total_steps),
        total_steps,
        name=stage.label,
        stage_index=index,
        stage_fixed=dict(stage_fixed or {}),
        distributions=distributions_to_json(dict(distributions)),
        sampling=not queued,
        step_budget=step_budget,
        sweep_steps=sweep_steps,
    )
    return NewStudy(plan, queued)


def grid_combinations(
    distributions: Mapping[str, BaseDistribution], points: int
) -> list[dict[str, Any]]:
    """Every combination of ``points`` values per number (log-aware) and every choice."""
    axes = {name: _grid_values(dist, points) for name, dist in distributions.items()}
    names = list(axes)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*axes.values())]


def _grid_values(dist: BaseDistribution, points: int) -> list[Any]:
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    assert isinstance(dist, FloatDistribution | IntDistribution)  # the only other kinds
    spaced = np.geomspace if dist.log else np.linspace
    values = [float(v) for v in spaced(dist.low, dist.high, points)]
    if isinstance(dist, IntDistribution):
        return sorted({int(round(v)) for v in values})
    return values


def space_distributions(params: Mapping[str, Any]) -> dict[str, BaseDistribution]:
    """Optuna distributions of spec parameters."""
    distributions: dict[str, BaseDistribution] = {}
    for name, param in params.items():
        if isinstance(param, FloatParam):
            distributions[name] = FloatDistribution(
                param.low, param.high, log=param.log, step=param.step
            )
        elif isinstance(param, IntParam):
            distributions[name] = IntDistribution(
                param.low, param.high, log=param.log, step=param.step
            )
        else:
            distributions[name] = CategoricalDistribution(list(param.choices))
    return distributions
