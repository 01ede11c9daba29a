"""Retried trials copy the configuration and the inherited user attributes they are given,
never the pruner's rung records; autotune's commands give the campaign's."""

from __future__ import annotations

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState
import pytest

from autotune import cli
from autotune.campaign._trial_attrs import INHERITED_BY_RETRIES
from autotune.storage import HeartbeatSettings
from autotune.storage import RetryStaleTrial
from autotune.storage import max_retry_of
from autotune.storage import open_storage
from autotune.storage import retry_failed_trial
from autotune.storage import retry_trial


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
    assert retry_trial(study, original, inherited=INHERITED_BY_RETRIES)
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
    assert retry_trial(study, study.trials[-1], inherited=INHERITED_BY_RETRIES)
    assert study.trials[-1].user_attrs == lineage


def test_a_retry_copies_exactly_the_inherited_keys_given() -> None:
    study = optuna.create_study()
    original = failed_trial(study)  # user attributes: seed, worker, interrupted
    RetryStaleTrial(max_retry=3, inherited=("worker", "absent"))(study, original)
    assert study.trials[-1].user_attrs == {"worker": "a"}
    RetryStaleTrial(max_retry=3)(study, original)
    assert study.trials[-1].user_attrs == {}
    assert study.trials[-1].params == original.params


def test_inherited_keys_must_be_a_collection_not_one_string() -> None:
    with pytest.raises(TypeError, match="collection of names"):
        RetryStaleTrial(inherited="seed")
    with pytest.raises(ValueError, match="retry_inherits"):
        HeartbeatSettings(retry_inherits="seed")  # type: ignore[arg-type]


def test_a_storage_retries_with_the_inheritance_and_limit_it_was_opened_with(
    storage_url: str,
) -> None:
    settings = HeartbeatSettings(max_retry=2, retry_inherits=("seed",))
    study = optuna.create_study(study_name="s", storage=open_storage(storage_url, settings))
    original = failed_trial(study)
    assert max_retry_of(study) == 2
    assert retry_failed_trial(study, original)
    retry = study.trials[-1]
    assert (retry.state, retry.user_attrs) == (TrialState.WAITING, {"seed": 42})
    assert not retry_failed_trial(study, failed_trial(study, history=[0, 1]))  # past the limit


def test_autotune_commands_retry_with_the_campaigns_inheritance() -> None:
    args = cli._parser().parse_args(["worker", "c", "--storage", "postgresql://u@h/d"])
    assert cli._heartbeat(args).retry_inherits == INHERITED_BY_RETRIES
