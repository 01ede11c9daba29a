"""Sampler and pruner of a stage/round, one factory per spec kind.

A new ``SamplerKind`` or ``PrunerKind`` needs its enum member in the spec and one entry
here; the tests check that every kind has one.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from types import MappingProxyType
import warnings

import optuna

from autotune.campaign import Stage
from autotune.campaign import StudyPlan
from autotune.spec import PrunerKind
from autotune.spec import SamplerKind
from autotune.spec import StudySpec
from autotune.worker._pruner import RungPruner

SamplerFactory = Callable[[StudySpec, int | None], optuna.samplers.BaseSampler]
"""Builds a sampler from the spec and the worker's seed (None: unseeded)."""

PrunerFactory = Callable[[StudySpec, int, int], optuna.pruners.BasePruner]
"""Builds a pruner from the spec, the round's training steps and how many trials it must
finish (see ``StudySpec.round_one_keeps``)."""


def _random_sampler(spec: StudySpec, seed: int | None) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


def _tpe_sampler(spec: StudySpec, seed: int | None) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():  # constant_liar is experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            n_startup_trials=spec.sampler.n_startup_trials, seed=seed, constant_liar=True
        )


def _rung_pruner(spec: StudySpec, steps: int, keeps: int) -> optuna.pruners.BasePruner:
    pruner = spec.pruner
    return RungPruner(
        pruner.min_steps, pruner.reduction_factor, steps, spec.metric.direction, keeps
    )


def _no_pruner(spec: StudySpec, steps: int, keeps: int) -> optuna.pruners.BasePruner:
    return optuna.pruners.NopPruner()


SAMPLER_FACTORIES: Mapping[SamplerKind, SamplerFactory] = MappingProxyType(
    {
        SamplerKind.TPE: _tpe_sampler,
        SamplerKind.RANDOM: _random_sampler,
        SamplerKind.GRID: _random_sampler,  # grid stages only run their queued trials
    }
)

PRUNER_FACTORIES: Mapping[PrunerKind, PrunerFactory] = MappingProxyType(
    {
        PrunerKind.SUCCESSIVE_HALVING: _rung_pruner,
        PrunerKind.NONE: _no_pruner,
    }
)


def make_sampler(
    spec: StudySpec, seed: int | None, kind: SamplerKind | None = None
) -> optuna.samplers.BaseSampler:
    """The sampler of a stage (default: the study's); grid stages only run queued trials."""
    return SAMPLER_FACTORIES[spec.sampler.type if kind is None else kind](spec, seed)


def make_pruner(spec: StudySpec, plan: StudyPlan, steps: int) -> optuna.pruners.BasePruner:
    """The spec's pruner in round 1 of a tuning stage; promoted configurations, baseline
    and sweep run to the end."""
    if plan.stage is not Stage.JOINT or plan.round_number > 1:
        return optuna.pruners.NopPruner()
    keeps = spec.round_one_keeps(plan.stage_index)
    return PRUNER_FACTORIES[spec.pruner.type](spec, steps, keeps)
