"""A trial's recovery checkpoints: when they are taken, where a run resumes, when dropped."""

from __future__ import annotations

from optuna.trial import TrialState
from optuna.trial import create_trial
import pytest

from autotune.storage import CheckpointRef
from autotune.worker._checkpoints import ResumeSource
from autotune.worker._checkpoints import recovery_checkpoint_to_discard
from autotune.worker._checkpoints import resume_sources
from autotune.worker._checkpoints import takes_recovery_checkpoint


def test_recovery_checkpoints_every_interval_and_on_stop_never_at_the_end() -> None:
    taken = [s for s in range(20, 401, 20) if takes_recovery_checkpoint(s, 100, 400, False)]
    assert taken == [100, 200, 300]
    assert takes_recovery_checkpoint(40, 100, 400, stopping=True)
    assert not takes_recovery_checkpoint(400, 100, 400, stopping=True)


def test_resume_sources_prefer_the_recovery_checkpoint_and_skip_malformed_ones() -> None:
    recovery = {"artifact_id": "r", "step": 300, "trial": 7}
    parent = {"artifact_id": "p", "step": 100}
    lineage = {"parent_study": "c/joint/1", "parent_trial": 2}
    attrs = {"recovery_checkpoint": recovery, "resume_checkpoint": parent, **lineage}
    assert resume_sources(attrs, "c/joint/2") == (
        ResumeSource(CheckpointRef("r", 300), "c/joint/2", 7),
        ResumeSource(CheckpointRef("p", 100), "c/joint/1", 2),
    )
    no_trial = {**attrs, "recovery_checkpoint": {"artifact_id": "r", "step": 300}}
    assert [s.checkpoint.artifact_id for s in resume_sources(no_trial, "c/joint/2")] == ["p"]
    assert resume_sources({"recovery_checkpoint": "junk"}, "c/joint/1") == ()


@pytest.mark.parametrize(
    ("state", "discarded"),
    [
        (TrialState.COMPLETE, "r"),
        (TrialState.PRUNED, "r"),
        (TrialState.FAIL, None),  # its retry resumes from it
        (TrialState.RUNNING, None),  # not told yet: a retry may still need it
    ],
)
def test_a_recovery_checkpoint_is_discarded_only_once_the_trial_ended_well(
    state: TrialState, discarded: str | None
) -> None:
    recovery = {"recovery_checkpoint": {"artifact_id": "r", "step": 300, "trial": 7}}
    value = 0.5 if state == TrialState.COMPLETE else None
    told = create_trial(state=state, value=value, user_attrs=recovery)
    assert recovery_checkpoint_to_discard(told) == discarded
    assert recovery_checkpoint_to_discard(create_trial(state=state, value=value)) is None
