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
from autotune.worker._factories import make_pruner
from autotune.worker._factories import make_sampler
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
    assert type(make_sampler(spec, 0, kind)) is sampler


def test_the_sampler_defaults_to_the_spec_s_and_takes_the_worker_seed(spec: StudySpec) -> None:
    assert spec.sampler.type is SamplerKind.TPE
    assert isinstance(make_sampler(spec, None), optuna.samplers.TPESampler)
    firsts = []
    for _ in range(2):
        study = optuna.create_study(sampler=make_sampler(spec, 5, SamplerKind.RANDOM))
        firsts.append(study.ask().suggest_float("x", 0.0, 1.0))
    assert firsts[0] == firsts[1]


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
