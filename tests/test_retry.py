"""Retried trials copy the configuration and seed, never the pruner's rung records."""

from __future__ import annotations

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from autotune.storage._retry import RetryStaleTrial
from autotune.storage._retry import retry_trial


def failed_trial(
    study: optuna.Study, history: list[int] | None = None
) -> optuna.trial.FrozenTrial:
    system_attrs = {"completed_rung_0": 0.5}
    if history is not None:
        system_attrs |= {"retry_history": history, "failed_trial": history[0]}
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.FAIL,
            params={"learning_rate": 0.01},
            distributions={"learning_rate": FloatDistribution(1e-4, 1.0, log=True)},
            user_attrs={"seed": 42, "worker": "a", "interrupted": "stop requested at step 20"},
            system_attrs=system_attrs,
        )
    )
    return study.trials[-1]


def test_retry_copies_params_and_seed_but_not_rungs() -> None:
    study = optuna.create_study()
    original = failed_trial(study)
    assert retry_trial(study, original)
    retry = study.trials[-1]
    assert retry.state == TrialState.WAITING
    assert retry.params == original.params
    assert retry.user_attrs == {"seed": 42}
    assert not any(key.startswith("completed_rung") for key in retry.system_attrs)
    assert retry.system_attrs["failed_trial"] == original.number
    assert retry.system_attrs["retry_history"] == [original.number]


def test_retry_stops_after_max_retry() -> None:
    study = optuna.create_study()
    twice_failed = failed_trial(study, history=[0, 1])
    assert not retry_trial(study, twice_failed, max_retry=2)
    RetryStaleTrial(max_retry=3)(study, twice_failed)
    assert study.trials[-1].system_attrs["retry_history"] == [0, 1, twice_failed.number]
    assert study.trials[-1].system_attrs["failed_trial"] == 0


def test_retry_of_a_promoted_trial_keeps_its_lineage_and_schedule() -> None:
    study = optuna.create_study()
    lineage = {
        "seed": 7,
        "schedule_overrides": {"warmup_steps": 0, "decay_steps": 12},
        "parent_study": "c/joint/1",
        "parent_trial": 3,
        "parent_budget": 60,
        "parent_value": 0.25,
        "resume_checkpoint": {"artifact_id": "abc", "step": 40},
    }
    results = {"checkpoint": {"artifact_id": "own", "step": 80}, "best_step": 80, "worker": "a"}
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.FAIL,
            params={"learning_rate": 0.01},
            distributions={"learning_rate": FloatDistribution(1e-4, 1.0, log=True)},
            user_attrs=lineage | results,
        )
    )
    assert retry_trial(study, study.trials[-1])
    assert study.trials[-1].user_attrs == lineage
