"""Handing a trial to a worker with as little as possible under the study's lock.

``Study.ask`` does three things: it claims a queued (WAITING) trial or creates a new one,
builds the :class:`optuna.Trial` (re-reading it and running the sampler's relative
sampling) and returns it. Only the first changes what the budget counts, so only it needs
the study's advisory lock; the caller builds ``optuna.Trial(study, trial_id)`` after the
lock is released, where it delays no other worker.

Most hand-outs need no lock at all (:func:`create_trial_within`): a worker that read the
round's trials without the lock and found room for k more trials in its budget creates one
only while the study holds fewer than its count plus k, which the database checks under the
study's row lock as it makes the trial. Trials made by others since the read each take one
of the k (a new trial reserves at most a whole trial's steps); trials finishing since only
free steps. Only near the budget's end, when queued trials are waiting or failed ones need
their retry, does a worker take the lock.
"""

from __future__ import annotations

from collections.abc import Sequence

import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from autotune.storage._write_behind import TrialLimitReached
from autotune.storage._write_behind import WriteBehindStorage


def claim_trial(study: optuna.Study, trials: Sequence[FrozenTrial]) -> int:
    """Claim the first queued trial among ``trials`` that no one else has, else create one;
    its id. What ``Study.ask`` does before it builds the trial (same storage calls)."""
    storage = study._storage
    for trial in sorted(trials, key=lambda t: t.number):
        if trial.state is not TrialState.WAITING:
            continue
        try:
            if storage.set_trial_state_values(trial._trial_id, state=TrialState.RUNNING):
                return trial._trial_id
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # finished by someone else since it was read
    return storage.create_new_trial(study._study_id)


def create_trial_within(study: optuna.Study, limit: int) -> int | None:
    """A new trial's id if the study holds fewer than ``limit`` trials as it is made; None
    if it holds as many (or the storage cannot check it: only autotune's can)."""
    backend = getattr(study._storage, "_backend", study._storage)  # behind Optuna's cache
    if not isinstance(backend, WriteBehindStorage):
        return None
    try:
        with backend.trials_at_most(limit):
            return study._storage.create_new_trial(study._study_id)
    except TrialLimitReached:
        return None
