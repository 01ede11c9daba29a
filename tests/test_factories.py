"""Every spec sampler and pruner kind has a factory, and each builds what the kind names."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from autotune.campaign import Stage
from autotune.campaign import StudyPlan
from autotune.spec import PrunerKind
from autotune.spec import SamplerKind
from autotune.spec import StudySpec
from autotune.spec import load_study_spec
from autotune.worker._factories import PRUNER_FACTORIES
from autotune.worker._factories import SAMPLER_FACTORIES
from autotune.worker._factories import TrialSeededSampler
from autotune.worker._factories import make_pruner
from autotune.worker._factories import make_sampler
from autotune.worker._factories import trial_sampler_seed
from autotune.worker._pruner import RungPruner
from tests.conftest import write_study


@pytest.fixture
def spec(tmp_path: Path) -> StudySpec:
    return load_study_spec(write_study(tmp_path, "kinds", trials=4))


def plan(stage: Stage, round_number: int) -> StudyPlan:
    return StudyPlan(
        stage, round_number, trials=4, max_train_steps=120, campaign_max_train_steps=480
    )


def with_pruner(spec: StudySpec, kind: PrunerKind) -> StudySpec:
    return spec.model_copy(update={"pruner": spec.pruner.model_copy(update={"type": kind})})


def test_every_kind_has_a_factory() -> None:
    assert set(SAMPLER_FACTORIES) == set(SamplerKind)
    assert set(PRUNER_FACTORIES) == set(PrunerKind)


@pytest.mark.parametrize(
    ("kind", "sampler"),
    [
        (SamplerKind.TPE, optuna.samplers.TPESampler),
        (SamplerKind.RANDOM, optuna.samplers.RandomSampler),
        (SamplerKind.GRID, optuna.samplers.RandomSampler),  # grid trials are queued
    ],
)
def test_a_sampler_kind_builds_its_sampler(
    spec: StudySpec, kind: SamplerKind, sampler: type[optuna.samplers.BaseSampler]
) -> None:
    built = make_sampler(spec, 0, kind)
    assert isinstance(built, TrialSeededSampler)
    assert type(built.sampler_for("kinds/joint/1", 0)) is sampler


def test_the_sampler_defaults_to_the_spec_s(spec: StudySpec) -> None:
    assert spec.sampler.type is SamplerKind.TPE
    sampler = make_sampler(spec)
    assert isinstance(sampler.sampler_for("kinds/joint/1", 0), optuna.samplers.TPESampler)


def draws(sampler: optuna.samplers.BaseSampler, study_name: str, count: int) -> list[float]:
    study = optuna.create_study(study_name=study_name, sampler=sampler)
    return [study.ask().suggest_float("x", 0.0, 1.0) for _ in range(count)]


def test_the_spec_seed_fixes_every_trial_s_draws(spec: StudySpec) -> None:
    assert spec.seed == 1
    again = draws(make_sampler(spec, kind=SamplerKind.RANDOM), "s/joint/1", 4)
    assert draws(make_sampler(spec, kind=SamplerKind.RANDOM), "s/joint/1", 4) == again
    assert len(set(again)) == 4  # trials differ from each other
    other_seed = spec.model_copy(update={"seed": 2})
    assert draws(make_sampler(other_seed, kind=SamplerKind.RANDOM), "s/joint/1", 4) != again
    assert draws(make_sampler(spec, kind=SamplerKind.RANDOM), "s/joint/2", 4) != again


def test_a_trial_s_draws_do_not_depend_on_who_sampled_before_it(spec: StudySpec) -> None:
    """Two workers (two samplers) sharing a study: trial #k draws what one worker draws."""
    alone = draws(make_sampler(spec, kind=SamplerKind.RANDOM), "shared", 4)
    study = optuna.create_study(study_name="shared")
    workers = [make_sampler(spec, kind=SamplerKind.RANDOM) for _ in range(2)]
    shared = []
    for number in range(4):
        study.sampler = workers[number % 2]
        shared.append(study.ask().suggest_float("x", 0.0, 1.0))
    assert shared == alone


def test_trial_sampler_seeds_are_stable_and_distinct() -> None:
    assert trial_sampler_seed(0, "q/joint/1", 3) == trial_sampler_seed(0, "q/joint/1", 3)
    seeds = {trial_sampler_seed(0, "q/joint/1", n) for n in range(100)}
    seeds |= {trial_sampler_seed(1, "q/joint/1", 0), trial_sampler_seed(0, "q/joint/2", 0)}
    assert len(seeds) == 102 and all(0 <= s < 2**32 for s in seeds)


@pytest.mark.parametrize(
    ("kind", "pruner"),
    [
        (PrunerKind.SUCCESSIVE_HALVING, RungPruner),
        (PrunerKind.NONE, optuna.pruners.NopPruner),
    ],
)
def test_a_pruner_kind_builds_its_pruner_in_round_one(
    spec: StudySpec, kind: PrunerKind, pruner: type[optuna.pruners.BasePruner]
) -> None:
    assert type(make_pruner(with_pruner(spec, kind), plan(Stage.JOINT, 1), 120)) is pruner


@pytest.mark.parametrize(
    ("stage", "round_number"),
    [(Stage.JOINT, 2), (Stage.BASELINE, 1), (Stage.STEPS_SWEEP, 1), (Stage.REEVALUATION, 1)],
)
def test_promoted_rounds_and_other_stages_run_to_the_end(
    spec: StudySpec, stage: Stage, round_number: int
) -> None:
    assert spec.pruner.type is PrunerKind.SUCCESSIVE_HALVING
    assert isinstance(make_pruner(spec, plan(stage, round_number), 120), optuna.pruners.NopPruner)


def test_round_one_finishes_what_the_step_after_it_takes(tmp_path: Path) -> None:
    rounds = "rounds:\n  - {budget_fraction: 0.25}\n  - {budget_fraction: 1.0, top_k: 3}\n"
    promoting = load_study_spec(write_study(tmp_path, "promoting", trials=9, extra=rounds))
    single = load_study_spec(write_study(tmp_path, "single", trials=9, reevaluation=True))
    assert promoting.round_one_keeps(0) == 3
    assert single.round_one_keeps(0) == single.reevaluation.finalists
    pruner = make_pruner(promoting, plan(Stage.JOINT, 1), 120)
    assert isinstance(pruner, RungPruner) and pruner._min_keep == 3


def test_the_first_rung_is_not_before_the_runs_first_evaluation(spec: StudySpec) -> None:
    per_run = spec.model_copy(update={"evaluations_per_run": 8})  # 480 / 8: every 60 steps
    assert spec.pruner.min_steps < per_run.run_eval_interval(480) == 60
    pruner = make_pruner(per_run, plan(Stage.JOINT, 1), 120)
    assert isinstance(pruner, RungPruner) and pruner.rungs[0] == 60
    assert make_pruner(spec, plan(Stage.JOINT, 1), 120).rungs[0] == spec.pruner.min_steps
