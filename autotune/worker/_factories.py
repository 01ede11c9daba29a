"""Sampler and pruner of a stage/round, one factory per spec kind.

A new ``SamplerKind`` or ``PrunerKind`` needs its enum member in the spec and one entry
here; the tests check that every kind has one.

Sampling is keyed by trial: each trial's sampler is seeded from the campaign's seed, the
study's name and the trial's number, so trial #k of a study draws the same random numbers
whichever worker samples it and whenever. Random trials are then the same in every run;
TPE's model-based trials also depend on which trials had finished when they were sampled,
which only one worker makes the same from run to run.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import hashlib
from types import MappingProxyType
from typing import Any
import warnings

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from autotune.campaign import Stage
from autotune.campaign import StudyPlan
from autotune.spec import PrunerKind
from autotune.spec import SamplerKind
from autotune.spec import StudySpec
from autotune.worker._pruner import RungPruner

SamplerFactory = Callable[[StudySpec, int | None], optuna.samplers.BaseSampler]
"""Builds a sampler from the spec and a seed (None: unseeded)."""

PrunerFactory = Callable[[StudySpec, int, int, int], optuna.pruners.BasePruner]
"""Builds a pruner from the spec, the round's training steps, how many trials it must
finish (see ``StudySpec.round_one_keeps``) and its first rung (``StudySpec.first_rung``)."""


def _random_sampler(spec: StudySpec, seed: int | None) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


def _tpe_sampler(spec: StudySpec, seed: int | None) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():  # constant_liar is experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            n_startup_trials=spec.sampler.n_startup_trials, seed=seed, constant_liar=True
        )


def _rung_pruner(
    spec: StudySpec, steps: int, keeps: int, first_rung: int
) -> optuna.pruners.BasePruner:
    reduction = spec.pruner.reduction_factor
    return RungPruner(first_rung, reduction, steps, spec.metric.direction, keeps)


def _no_pruner(
    spec: StudySpec, steps: int, keeps: int, first_rung: int
) -> optuna.pruners.BasePruner:
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


def trial_sampler_seed(campaign_seed: int, study_name: str, trial_number: int) -> int:
    """The seed of one trial's sampling: a stable hash (not Python's salted ``hash``) of the
    campaign's seed, the study and the trial number, so that studies and trials differ."""
    key = f"{campaign_seed}/{study_name}/{trial_number}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "big")


class TrialSeededSampler(optuna.samplers.BaseSampler):
    """A sampler built afresh for each trial, seeded by ``trial_sampler_seed``.

    One seeded sampler shared by a worker's trials would make trial #k's draws depend on
    how many trials that worker sampled before (and two workers with one seed would draw
    the same configurations); keyed by trial number, they depend on nothing else. Optuna's
    samplers keep no history of their own (TPE reads the study's trials), so a fresh one
    per trial loses nothing.
    """

    def __init__(self, build: Callable[[int], optuna.samplers.BaseSampler], seed: int) -> None:
        self._build = build
        self._seed = seed
        self._current: tuple[tuple[str, int], optuna.samplers.BaseSampler] | None = None

    def sampler_for(self, study_name: str, trial_number: int) -> optuna.samplers.BaseSampler:
        """The sampler of trial ``trial_number`` of ``study_name`` (built once per trial)."""
        key = (study_name, trial_number)
        if self._current is None or self._current[0] != key:
            seed = trial_sampler_seed(self._seed, study_name, trial_number)
            self._current = (key, self._build(seed))
        return self._current[1]

    def _of(self, study: optuna.Study, trial: FrozenTrial) -> optuna.samplers.BaseSampler:
        return self.sampler_for(study.study_name, trial.number)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._of(study, trial).infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._of(study, trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        sampler = self._of(study, trial)
        return sampler.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._of(study, trial).before_trial(study, trial)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._of(study, trial).after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        """Nothing to reseed: every trial's seed is fixed by its key."""


def make_sampler(
    spec: StudySpec, seed: int | None = None, kind: SamplerKind | None = None
) -> optuna.samplers.BaseSampler:
    """The sampler of a stage (default: the study's), keyed by trial from ``seed``
    (default: the spec's); grid stages only run queued trials."""
    factory = SAMPLER_FACTORIES[spec.sampler.type if kind is None else kind]
    campaign_seed = spec.seed if seed is None else seed
    return TrialSeededSampler(lambda trial_seed: factory(spec, trial_seed), campaign_seed)


def make_pruner(spec: StudySpec, plan: StudyPlan, steps: int) -> optuna.pruners.BasePruner:
    """The spec's pruner in round 1 of a tuning stage; promoted configurations, baseline
    and sweep run to the end."""
    if plan.stage is not Stage.JOINT or plan.round_number > 1:
        return optuna.pruners.NopPruner()
    keeps = spec.round_one_keeps(plan.stage_index)
    first_rung = spec.first_rung(spec.run_eval_interval(plan.campaign_max_train_steps))
    return PRUNER_FACTORIES[spec.pruner.type](spec, steps, keeps, first_rung)
