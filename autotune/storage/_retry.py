"""Re-queue the configuration of a trial that did not finish (stale or interrupted).

A retry is a new WAITING trial with the failed trial's parameters and the user attributes
its storage's :class:`RetryStaleTrial` names as inherited (the caller's choice: autotune's
commands pass the configuration and lineage of ``autotune.campaign``); never Optuna's system
attributes, which would carry the pruner's rung records and judge the retry at rungs it
never reached.
"""

from __future__ import annotations

from collections.abc import Collection
from collections.abc import Sequence
import warnings

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from autotune.storage._rung_store import trial_rungs

ATTR_ERROR = "error"  # user attribute: training failed (the trial counts, it is not retried)
RETRY_HISTORY = "retry_history"  # system attribute of a retry: the numbers it descends from


def consumes_budget(trial: FrozenTrial) -> bool:
    """Whether a trial counts against the round's trial budget.

    Failed trials count only when training itself failed; trials failed as stale or
    interrupted are retried as new WAITING trials, which count instead.
    """
    if trial.state == TrialState.FAIL:
        return ATTR_ERROR in trial.user_attrs
    return True


def unretried_failures(
    trials: Sequence[FrozenTrial], max_retry: int | None = None
) -> list[FrozenTrial]:
    """Interrupted or stale trials whose retry is missing, and which may still be retried.

    Failing a trial and queuing its retry are two transactions: a worker killed between
    them leaves the configuration with neither a result nor a retry.
    """
    retried = {history[-1] for t in trials if (history := t.system_attrs.get(RETRY_HISTORY))}
    return [
        t
        for t in trials
        if t.state == TrialState.FAIL
        and not consumes_budget(t)
        and t.number not in retried
        and (max_retry is None or len(t.system_attrs.get(RETRY_HISTORY, ())) < max_retry)
    ]


def retry_trial(
    study: optuna.Study,
    trial: FrozenTrial,
    max_retry: int | None = None,
    inherited: Collection[str] = (),
) -> bool:
    """Add a WAITING copy of the trial (its params and the ``inherited`` user attributes);
    False past ``max_retry``."""
    history = [*trial.system_attrs.get(RETRY_HISTORY, []), trial.number]
    if max_retry is not None and len(history) > max_retry:
        return False
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs={k: v for k, v in trial.user_attrs.items() if k in inherited},
            system_attrs={
                "failed_trial": trial.system_attrs.get("failed_trial", trial.number),
                RETRY_HISTORY: history,
            },
        )
    )
    return True


class RetryStaleTrial(RetryHeartbeatStaleTrialCallback):
    """Optuna's stale-trial retry, copying only the ``inherited`` user attributes."""

    def __init__(self, max_retry: int | None = None, inherited: Collection[str] = ()) -> None:
        if isinstance(inherited, str):
            raise TypeError(f"inherited must be a collection of names, got {inherited!r}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            super().__init__(max_retry=max_retry)
        self.max_retry = max_retry
        self.inherited = frozenset(inherited)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.retry(study, trial)

    def retry(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        """Forget the trial's rung values and queue its retry; False past ``max_retry``."""
        forget_rung_values(study, trial)
        return retry_trial(study, trial, self.max_retry, self.inherited)


def retry_policy_of(study: optuna.Study) -> RetryStaleTrial:
    """The stale-trial retry of the study's storage (none: unlimited, inheriting nothing)."""
    callback = study._storage.get_heartbeat_stale_trial_callback()
    if isinstance(callback, RetryStaleTrial):
        return callback
    return RetryStaleTrial(getattr(callback, "max_retry", None))


def max_retry_of(study: optuna.Study) -> int | None:
    """The retry limit of the study's storage (None: unlimited or no retry callback)."""
    return retry_policy_of(study).max_retry


def retry_failed_trial(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Queue the retry of a trial failed as stale or interrupted, by the storage's policy."""
    return retry_policy_of(study).retry(study, trial)


def retry_unretried_failures(study: optuna.Study, trials: list[FrozenTrial]) -> bool:
    """Queue the missing retries among ``trials``; whether any was queued.

    Call under the study's advisory lock (the one the janitor and interrupts hold while
    they fail a trial and queue its retry), so that no retry is queued twice.
    """
    policy = retry_policy_of(study)
    orphans = unretried_failures(trials, policy.max_retry)
    for trial in orphans:
        policy.retry(study, trial)
    return bool(orphans)


def forget_rung_values(study: optuna.Study, trial: FrozenTrial) -> None:
    """Drop a failed trial's rung values, so they never prune its retry or anyone else."""
    try:
        rungs = trial_rungs(study, trial)
    except TypeError:  # not an RDB storage: the rung store lives only in PostgreSQL
        return
    rungs.remove()


def has_stale_trials(study: optuna.Study) -> bool:
    """Whether any running trial of the study has gone stale: a look without the study's
    lock, so that a worker's janitor takes the lock only when there is a trial to fail (a
    thousand janitors would otherwise take it about a hundred times a second)."""
    storage = study._storage
    if not isinstance(storage, BaseHeartbeat) or not is_heartbeat_enabled(storage):
        return False
    return bool(storage._get_stale_trial_ids(study._study_id))
