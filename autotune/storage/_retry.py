"""Re-queue the configuration of a trial that did not finish (stale or interrupted)."""

from __future__ import annotations

import warnings

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from autotune.campaign._trial_attrs import ATTR_SEED  # noqa: F401 (re-exported)
from autotune.campaign._trial_attrs import INHERITED_BY_RETRIES
from autotune.campaign._trial_budget import RETRY_HISTORY
from autotune.campaign._trial_budget import unretried_failures
from autotune.storage._rung_store import engine_of
from autotune.storage._rung_store import remove_trial


def retry_trial(study: optuna.Study, trial: FrozenTrial, max_retry: int | None = None) -> bool:
    """Add a WAITING copy of the trial (same params, seed, lineage); False past ``max_retry``."""
    history = [*trial.system_attrs.get(RETRY_HISTORY, []), trial.number]
    if max_retry is not None and len(history) > max_retry:
        return False
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs={
                k: trial.user_attrs[k] for k in INHERITED_BY_RETRIES if k in trial.user_attrs
            },
            system_attrs={
                "failed_trial": trial.system_attrs.get("failed_trial", trial.number),
                RETRY_HISTORY: history,
            },
        )
    )
    return True


def max_retry_of(study: optuna.Study) -> int | None:
    """The retry limit of the study's storage (None: unlimited or no retry callback)."""
    callback = study._storage.get_heartbeat_stale_trial_callback()
    return getattr(callback, "max_retry", None)


def retry_unretried_failures(study: optuna.Study, trials: list[FrozenTrial]) -> bool:
    """Queue the missing retries among ``trials``; whether any was queued.

    Call under the study's advisory lock (the one the janitor and interrupts hold while
    they fail a trial and queue its retry), so that no retry is queued twice.
    """
    max_retry = max_retry_of(study)
    orphans = unretried_failures(trials, max_retry)
    for trial in orphans:
        forget_rung_values(study, trial)
        retry_trial(study, trial, max_retry)
    return bool(orphans)


def forget_rung_values(study: optuna.Study, trial: FrozenTrial) -> None:
    """Drop a failed trial's rung values, so they never prune its retry or anyone else."""
    try:
        engine = engine_of(study._storage)
    except TypeError:  # not an RDB storage: the rung store lives only in PostgreSQL
        return
    remove_trial(engine, study._study_id, trial._trial_id)


class RetryStaleTrial(RetryHeartbeatStaleTrialCallback):
    """Optuna's stale-trial retry, copying only what a retry should inherit (see above)."""

    def __init__(self, max_retry: int | None = None) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            super().__init__(max_retry=max_retry)
        self.max_retry = max_retry

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        forget_rung_values(study, trial)
        retry_trial(study, trial, self.max_retry)
