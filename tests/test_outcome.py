"""A worker counts each trial's end as a TrialOutcome."""

from __future__ import annotations

from optuna.trial import TrialState
import pytest

from autotune.worker._outcome import TrialOutcome


@pytest.mark.parametrize("state", [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL])
def test_a_told_state_is_the_outcome_of_its_name(state: TrialState) -> None:
    assert TrialOutcome.of_state(state).name == state.name


def test_a_trial_still_running_has_no_outcome() -> None:
    with pytest.raises(KeyError):
        TrialOutcome.of_state(TrialState.RUNNING)
