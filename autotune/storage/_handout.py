"""Handing a trial to a worker with as little as possible under the study's lock.

``Study.ask`` does three things: it claims a queued (WAITING) trial or creates a new one,
builds the :class:`optuna.Trial` (re-reading it and running the sampler's relative
sampling) and returns it. Only the first changes what the budget counts, so only it needs
the study's advisory lock; the caller builds ``optuna.Trial(study, trial_id)`` after the
lock is released, where it delays no other worker.
"""

from __future__ import annotations

from collections.abc import Sequence

import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState


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
