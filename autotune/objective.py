"""Optuna trial ↔ hyperparameters from the spec's space ↔ one torch training run."""

from __future__ import annotations

from collections.abc import Callable
import math
import threading
from typing import Any

import optuna

from autotune import training
from autotune._retry import ATTR_SEED
from autotune.spec import CategoricalParam
from autotune.spec import FloatParam
from autotune.spec import IntParam
from autotune.spec import SearchSpace
from autotune.spec import StudySpec

ATTR_PRUNED_REASON = "pruned_reason"
ATTR_OVERRIDES = "schedule_overrides"  # set on promoted trials (autotune.pipeline)


class StopRequested(Exception):
    """The worker was asked to stop (SIGTERM/SIGINT); the running trial is to be retried."""


def suggest(trial: optuna.Trial, space: SearchSpace) -> dict[str, Any]:
    """Ask the trial for a value of every parameter of the space, in group order."""
    values: dict[str, Any] = {}
    for name, param in space.params.items():
        if isinstance(param, FloatParam):
            values[name] = trial.suggest_float(
                name, param.low, param.high, log=param.log, step=param.step
            )
        elif isinstance(param, IntParam):
            values[name] = trial.suggest_int(
                name, param.low, param.high, log=param.log, step=param.step
            )
        elif isinstance(param, CategoricalParam):
            values[name] = trial.suggest_categorical(name, list(param.choices))
        else:
            raise TypeError(f"unsupported parameter type {type(param).__name__} for {name!r}")
    return values


def trial_seed(spec: StudySpec, trial: optuna.Trial) -> int:
    """The training seed of a trial, recorded as a user attribute.

    Retries inherit their original's user attributes, so a retried configuration trains
    with the same seed and reproduces the original's curve.
    """
    seed = trial.user_attrs.get(ATTR_SEED)
    if seed is None:
        seed = spec.seed * 100_003 + trial.number
        trial.set_user_attr(ATTR_SEED, seed)
    return int(seed)


def trial_budget(spec: StudySpec, seed: int, max_train_steps: int) -> training.Budget:
    """Training budget of one trial of a round that trains ``max_train_steps`` steps."""
    return training.Budget(
        max_train_steps=max_train_steps,
        eval_interval=spec.eval_interval,
        batch_size=spec.batch_size,
        seed=seed,
        gradient_accumulation_steps=spec.gradient_accumulation_steps,
    )


def result_attrs(result: training.TrainResult) -> dict[str, Any]:
    """Rich metrics of a finished run, recorded as trial user attributes."""
    attrs: dict[str, Any] = {f"final_{k}": v for k, v in result.final.metrics.items()}
    attrs |= {f"best_{k}": v for k, v in result.best.metrics.items()}
    attrs |= {
        "best_step": result.best.step,
        "steps_done": result.steps_done,
        "wall_time_s": round(result.wall_time_s, 3),
        "examples_per_s": round(result.examples_per_s, 1),
        "evaluated_model": result.evaluated_model.value,
    }
    return attrs


def make_objective(
    spec: StudySpec, stop_requested: threading.Event, max_train_steps: int
) -> Callable[[optuna.Trial], float]:
    """The objective: train with the trial's hyperparameters, report at every eval, prune.

    Returns the best validation value of the run (retrospective checkpoint selection). A
    non-finite loss prunes the trial with the reason recorded; a stop request raises
    StopRequested at the next eval.
    """
    task = training.get_task(spec.task)
    metric = spec.metric.name

    def objective(trial: optuna.Trial) -> float:
        overrides = trial.user_attrs.get(ATTR_OVERRIDES) or {}
        hparams = {**spec.fixed, **suggest(trial, spec.search_space), **overrides}

        def on_eval(evaluation: training.EvalResult) -> None:
            trial.report(evaluation.metrics[metric], evaluation.step)
            if stop_requested.is_set():
                raise StopRequested(f"stop requested at step {evaluation.step}")
            if trial.should_prune():
                reason = f"successive halving at step {evaluation.step}"
                trial.set_user_attr(ATTR_PRUNED_REASON, reason)
                raise optuna.TrialPruned(reason)

        try:
            result = training.train(
                hparams,
                task,
                trial_budget(spec, trial_seed(spec, trial), max_train_steps),
                on_eval,
                selection_metric=metric,
            )
        except training.NonFiniteLossError as error:
            trial.set_user_attr(ATTR_PRUNED_REASON, str(error))
            raise optuna.TrialPruned(str(error)) from None
        for key, value in result_attrs(result).items():
            trial.set_user_attr(key, value)
        value = result.best.metrics[metric]
        if not math.isfinite(value):
            trial.set_user_attr(ATTR_PRUNED_REASON, f"{metric} is {value}")
            raise optuna.TrialPruned(f"{metric} is {value}")
        return value

    return objective
