"""A trial's recovery checkpoints: where a run may resume, upload, supersede and discard.

A tuning trial uploads a recovery checkpoint every ``recovery_interval`` steps and when
its worker stops; its retry (or a promoted copy, from its parent's checkpoint) resumes
from the latest. The worker discards the last one once the trial's end is recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import logging
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from autotune import training
from autotune.campaign._trial_attrs import ATTR_PARENT_STUDY
from autotune.campaign._trial_attrs import ATTR_PARENT_TRIAL
from autotune.campaign._trial_attrs import ATTR_RECOVERY
from autotune.campaign._trial_attrs import ATTR_RECOVERY_ERROR
from autotune.campaign._trial_attrs import ATTR_RESUME
from autotune.storage import CheckpointRef
from autotune.storage import CheckpointStore
from autotune.storage import flush

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResumeSource:
    """A checkpoint a trial may resume from, and the trial whose run wrote it."""

    checkpoint: CheckpointRef
    study_name: str
    trial_number: int

    @property
    def step(self) -> int:
        return self.checkpoint.step


def resume_sources(user_attrs: Mapping[str, Any], study_name: str) -> tuple[ResumeSource, ...]:
    """Where a trial may resume, best first: its recovery checkpoint (a retry), then its
    parent's checkpoint (a promoted trial). Malformed references are skipped."""
    recovery = user_attrs.get(ATTR_RECOVERY)
    candidates = (
        (recovery, study_name, recovery.get("trial") if isinstance(recovery, dict) else None),
        (
            user_attrs.get(ATTR_RESUME),
            user_attrs.get(ATTR_PARENT_STUDY),
            user_attrs.get(ATTR_PARENT_TRIAL),
        ),
    )
    return tuple(
        ResumeSource(ref, name, number)
        for attr, name, number in candidates
        if (ref := CheckpointRef.from_attr(attr)) is not None
        and isinstance(name, str)
        and isinstance(number, int)
    )


def takes_recovery_checkpoint(
    step: int, interval: int, max_train_steps: int, stopping: bool
) -> bool:
    """Whether an eval uploads a recovery checkpoint: every ``interval`` steps and when the
    worker is stopping, never at the last step (the result is in)."""
    return step < max_train_steps and (stopping or step % interval == 0)


def recovery_checkpoint_to_discard(trial: FrozenTrial) -> str | None:
    """The artifact id of a told trial's recovery checkpoint that no retry will need.

    Only once a trial is recorded COMPLETE or PRUNED: before that (a worker killed between
    the end of training and ``tell``) its retry resumes from it, and a failed trial's
    retry inherits it.
    """
    if trial.state not in (TrialState.COMPLETE, TrialState.PRUNED):
        return None
    ref = CheckpointRef.from_attr(trial.user_attrs.get(ATTR_RECOVERY))
    return None if ref is None else ref.artifact_id


def discard_recovery_checkpoint(store: CheckpointStore, trial: FrozenTrial) -> None:
    """Remove a told trial's last recovery checkpoint (see recovery_checkpoint_to_discard)."""
    artifact_id = recovery_checkpoint_to_discard(trial)
    if artifact_id is not None:
        store.remove(artifact_id)


class RecoveryCheckpoints:
    """The latest recovery checkpoint of one trial: upload and supersede.

    The reference lives in the trial's ATTR_RECOVERY, which a retry inherits; the previous
    checkpoint (this trial's or the one it resumed from) is removed once a newer one is
    recorded. The last one is removed by the worker once the trial's end is recorded
    (:func:`discard_recovery_checkpoint`). A failing store (full, read-only) is warned about
    once per trial and recorded in ATTR_RECOVERY_ERROR, which ``status`` reports.
    """

    def __init__(self, trial: optuna.Trial, store: CheckpointStore) -> None:
        self._trial, self._store = trial, store
        inherited = CheckpointRef.from_attr(trial.user_attrs.get(ATTR_RECOVERY))
        self._latest = None if inherited is None else inherited.artifact_id
        self._failed = False

    def upload(self, directory: Path, step: int) -> None:
        path = training.latest_checkpoint(directory)
        try:
            if path is None:
                raise FileNotFoundError(f"no checkpoint in {directory}")
            artifact_id = self._store.save_recovery(path)
        except Exception as error:  # a retry then resumes from an older one or from scratch
            self._failure(step, error)
            return
        ref = CheckpointRef(artifact_id, step).to_attr() | {"trial": self._trial.number}
        self._trial.set_user_attr(ATTR_RECOVERY, ref)
        flush(self._trial)  # durable before the checkpoint it replaces is removed
        if self._latest is not None:
            self._store.remove(self._latest)
        self._latest = artifact_id

    def _failure(self, step: int, error: Exception) -> None:
        """Warn and record the first failure of the trial; later ones only at debug level
        (every eval of a run on a full disk would repeat it)."""
        number = self._trial.number
        if self._failed:
            _logger.debug("trial %d: recovery checkpoint failed: %s", number, error)
            return
        self._failed = True
        reason = f"step {step}: {type(error).__name__}: {error}"
        _logger.warning(
            "trial %d: recovery checkpoint failed (%s); a killed run of it restarts from its "
            "last good checkpoint or from scratch; later failures of this trial not logged",
            number,
            reason,
        )
        self._trial.set_user_attr(ATTR_RECOVERY_ERROR, reason)
