"""The task side of spec checks: TaskFacts from the training code, for create and workers.

spec checks a study against plain TaskFacts; building them imports the task (and torch), which
only the places that run or create a campaign can do. Reading a stored campaign does not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from autotune import training
from autotune._domains import MODEL_DOMAINS
from autotune._domains import TRAINING_DOMAINS
from autotune._domains import Domain
from autotune._errors import SpecError
from autotune.campaign._budget import least_budget_with_sweep
from autotune.campaign._campaign import check_budget
from autotune.spec import CategoricalParam
from autotune.spec import Direction
from autotune.spec import StudySpec
from autotune.spec import TaskFacts
from autotune.spec import check_against_task
from autotune.spec import load_study_spec
from autotune.worker._periods import heldout_periods
from autotune.worker._periods import most_reevaluation_periods
from autotune.worker._periods import tuning_period


def task_facts(name: str) -> TaskFacts:
    """The facts spec checks need about task ``name``; UnknownTaskError (a ValueError) if none."""
    task = training.get_task(name)
    hyperparameters = training.TRAINING_HYPERPARAMETERS | task.model_hyperparameters
    return TaskFacts(
        name=task.name,
        metrics={metric: Direction(d.value) for metric, d in task.metrics.items()},
        default_metric=task.default_metric,
        hyperparameters=hyperparameters,
        has_fit_threshold=getattr(task, "fit_threshold", None) is not None,
        domains=_domains(name, hyperparameters),
        span=task.describe().span,
    )


def _domains(name: str, hyperparameters: frozenset[str]) -> dict[str, Domain]:
    """The training loop's domains; the model's too for a built-in task (a user task's
    model hyperparameters are its own, whatever their names)."""
    table = dict(TRAINING_DOMAINS)
    if not training.is_user_task_reference(name):
        table.update(MODEL_DOMAINS)
    return {key: domain for key, domain in table.items() if key in hyperparameters}


def load_checked_study_spec(path: str | Path) -> StudySpec:
    """A study spec file, validated and checked against its task (automatic mode included)."""
    spec = load_study_spec(path, task_facts)
    check_periods_fit_data(spec, str(path))
    check_reevaluation_periods(spec, str(path))
    check_step_fits_data(spec, str(path))
    check_model_builds(spec, str(path))
    check_evaluates(spec, str(path))
    check_budget(spec, str(path))  # before any database is opened
    check_sweep_fits_budget(spec, str(path))
    return spec


def check_sweep_fits_budget(spec: StudySpec, source: str) -> None:
    """SpecError if a budget cannot pay for a sweep whose rates all train their whole
    horizon (the worst case of a task without ``fit_threshold``, where a rate stops only
    once its loss levels off) and the pipeline after it: the campaign would overspend or
    stop after the sweep. With a threshold rates stop when they fit, typically early, and
    a sweep where none fits stops the campaign anyway."""
    if spec.budget is None or not spec.measures_max_train_steps:
        return
    if task_facts(spec.task).has_fit_threshold:
        return
    least = least_budget_with_sweep(spec)
    if spec.budget.steps >= least:
        return
    sweep = spec.steps_sweep
    raise SpecError(
        source,
        [
            f"budget.steps: {spec.budget.steps:,} cannot pay for the learning-rate sweep that "
            f"measures max_train_steps (up to {sweep.count} rates x {sweep.steps:,} steps: "
            "the task has no fit_threshold, so a rate stops early only once its loss levels "
            f"off) and the pipeline after it; allowed: at least {least:,}, or a smaller "
            "steps_sweep.steps, or a max_train_steps of your own (no sweep)"
        ],
    )


def check_spec_task(spec: StudySpec, source: str) -> None:
    """SpecError if ``spec``'s task is missing here or does not fit it (at worker start)."""
    check_against_task(spec, task_facts, source)
    check_periods_fit_data(spec, source)
    check_step_fits_data(spec, source)
    check_model_builds(spec, source)


def check_model_builds(spec: StudySpec, source: str) -> None:
    """SpecError if the task cannot build its model from its defaults and the spec's
    ``fixed`` values, or with a searched model hyperparameter at an end of its range (or
    any of its choices). A user task's model hyperparameters have no domains here (they
    are its own), so a fixed ``hidden_units: "big"`` or a ``dropout`` range of [1.05, 1.4]
    would otherwise pass and fail every trial; building the model is cheap and says so at
    create."""
    task = training.get_task(spec.task)
    hparams = {**task.default_hyperparameters(), **spec.fixed}
    model = {k: v for k, v in hparams.items() if k in task.model_hyperparameters}  # as trained
    problem = _build_problem(task, model)
    if problem is not None:
        fixed = sorted(set(spec.fixed) & set(task.model_hyperparameters))
        where, named = (
            ("fixed", f"the spec's fixed {', '.join(f'{k}={spec.fixed[k]!r}' for k in fixed)}")
            if fixed
            else ("task", "its default hyperparameters")
        )
        raise SpecError(
            source, [f"{where}: task {spec.task!r} cannot build its model with {named}: {problem}"]
        )
    problems = [
        f"search_space.{name}: task {spec.task!r} cannot build its model with "
        f"{name}={value!r} ({end}; the rest at their defaults and fixed values): {problem}; "
        "allowed: a range whose every value the model accepts"
        for name, value, end in _range_ends(spec, set(task.model_hyperparameters))
        if (problem := _build_problem(task, {**model, name: value}))
    ]
    if problems:
        raise SpecError(source, problems)


def check_evaluates(spec: StudySpec, source: str) -> None:
    """SpecError if the task's ``evaluate`` fails on its untrained default model or leaves
    out a metric the task declares: a task whose ``evaluate`` returned "loss" for
    "val_loss" passed create, failed every sweep trial and stopped the campaign (exit 3).
    One evaluation of the tuning period's validation rows, at create (not at each worker's
    start: the campaign passed it)."""
    task = training.get_task(spec.task)
    hparams = {**task.default_hyperparameters(), **spec.fixed}
    model = task.build_model(
        {k: v for k, v in hparams.items() if k in task.model_hyperparameters},
        torch.Generator().manual_seed(0),
    )
    period = tuning_period(spec) or task.default_period()
    data = task.data(period)  # checked before (check_step_fits_data)
    try:
        training.evaluate_model(model, task, data, period)
    except Exception as error:  # a user task's own code, whatever it raises
        raise SpecError(
            source,
            [
                f"task: task {spec.task!r} cannot evaluate its untrained default model: "
                f"{type(error).__name__}: {error}; allowed: an evaluate(model, data) that "
                f"runs on any model it builds and returns every metric it declares "
                f"({', '.join(task.metrics)})"
            ],
        ) from None


def _range_ends(spec: StudySpec, model_names: set[str]) -> list[tuple[str, Any, str]]:
    """(parameter, value, which end) for each end of a searched model hyperparameter's
    range and each of its choices: where a model the task cannot build first shows."""
    ends: list[tuple[str, Any, str]] = []
    for name, param in spec.search_space.params.items():
        if name not in model_names or name in spec.fixed:
            continue
        if isinstance(param, CategoricalParam):
            ends += [(name, choice, "a choice") for choice in param.choices]
        else:
            ends += [(name, param.low, "its range's low end"), (name, param.high, "its high end")]
    return ends


def _build_problem(task: training.Task, model: dict[str, Any]) -> str | None:
    """Why the task cannot build its model from ``model`` (None: it can)."""
    try:
        task.build_model(model, torch.Generator().manual_seed(0))
    except Exception as error:  # a user task's own check, whatever it raises
        return f"{type(error).__name__}: {error}"
    return None


def check_reevaluation_periods(spec: StudySpec, source: str) -> None:
    """SpecError if the task's ``periods`` gives fewer than the ``reevaluation.periods`` a
    spec sets (every re-evaluation run failed at the end of the campaign, after all its
    tuning), or none at all; the default count (12) is capped at what the task gives."""
    task = training.get_task(spec.task)
    most = most_reevaluation_periods(spec, task)
    wanted = spec.reevaluation.periods
    explicit = "periods" in spec.reevaluation.model_fields_set
    if most is None or most >= wanted or (most > 0 and not explicit):
        return
    try:
        task.periods(wanted, spec.reevaluation.period_seed or 0)
        why = "without its tuning period"
    except Exception as error:  # a user task's own refusal, whatever it raises
        why = f"{type(error).__name__}: {error}"
    raise SpecError(
        source,
        [
            f"reevaluation.periods: {wanted} is invalid for task {spec.task!r}, whose "
            f"periods(count, seed) gives at most {most} ({why}); allowed: 1 to {most}, "
            "periods.heldout listing the periods, or reevaluation.enabled: false"
        ],
    )


def check_periods_fit_data(spec: StudySpec, source: str) -> None:
    """SpecError naming each of the spec's periods the task cannot make data for (too few
    rows, a range its windows do not fit): a spec error at create, not a failed trial."""
    task = training.get_task(spec.task)
    named = [("periods.tuning", tuning_period(spec))]
    named += [(f"periods.heldout[{i}]", p) for i, p in enumerate(heldout_periods(spec) or [])]
    problems = []
    for where, period in named:
        if period is None:
            continue
        try:
            task.data(period)
        except Exception as error:  # a user task's own check, whatever it raises
            problems.append(f"{where}: task {spec.task!r} cannot use it: {error}")
    if problems:
        raise SpecError(source, problems)


def check_step_fits_data(spec: StudySpec, source: str) -> None:
    """SpecError if one optimizer step takes more rows than the task trains on.

    Such a step would walk the training set many times over (batch_size 1e9 or 100000
    accumulated micro-batches hung the worker, silent, its trial RUNNING); the whole
    training set in one step is the most any step can usefully see.
    """
    problems = list(step_problems(spec, training_rows(spec.task, tuning_period(spec))))
    if problems:
        raise SpecError(source, problems)


def training_rows(task_name: str, period: training.Period | None = None) -> int:
    """How many rows the tuning period (None: the task's default) trains on."""
    return len(training.get_task(task_name).data(period).train_y)


def step_problems(spec: StudySpec, rows: int) -> list[str]:
    """What in batch_size and gradient_accumulation_steps exceeds ``rows`` training rows."""
    batch, micro = spec.batch_size, spec.gradient_accumulation_steps
    if batch > rows:
        return [
            f"batch_size: {batch} is more than the {rows} training rows of task "
            f"{spec.task!r}; allowed: 1 to {rows}"
        ]
    if batch * micro > rows:
        return [
            f"gradient_accumulation_steps: {micro} micro-batches of batch_size {batch} take "
            f"{batch * micro} rows per step, more than the {rows} training rows of task "
            f"{spec.task!r}; allowed: 1 to {rows // batch} with batch_size {batch}"
        ]
    return []
