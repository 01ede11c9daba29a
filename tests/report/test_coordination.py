"""`autotune status` on workers' hand-outs: pure, over synthetic trials."""

from __future__ import annotations

import datetime

import optuna
from optuna.trial import TrialState

from autotune.campaign._trial_attrs import ATTR_HANDOUT_MS
from autotune.campaign._trial_attrs import ATTR_LOCK_WAIT_MS
from autotune.report._coordination import RECENT_TRIALS
from autotune.report._coordination import coordination_lines
from autotune.report._coordination import coordination_of

START = datetime.datetime(2026, 12, 6, 12, 0, 0)


def trial(number: int, handout_ms: float, wait_ms: float, seconds: float | None = 1.0):
    finished = seconds is not None
    frozen = optuna.trial.create_trial(
        state=TrialState.COMPLETE if finished else TrialState.RUNNING,
        value=1.0 if finished else None,
        user_attrs={ATTR_HANDOUT_MS: handout_ms, ATTR_LOCK_WAIT_MS: wait_ms},
    )
    frozen.number = number
    frozen.datetime_start = START
    frozen.datetime_complete = START + datetime.timedelta(seconds=seconds) if finished else None
    return frozen


def test_trials_without_a_recorded_hand_out_give_nothing() -> None:
    plain = optuna.trial.create_trial(state=TrialState.COMPLETE, value=1.0)
    assert coordination_of("c/joint/1", [plain]) is None
    assert coordination_lines(None, None) == []
    assert coordination_lines(None, 0.4) == ["storage round trip 0.4 ms"]


def test_only_the_latest_hand_outs_count() -> None:
    old = [trial(n, 500.0, 400.0) for n in range(50)]
    recent = [trial(n, 10.0, 2.0) for n in range(50, 50 + RECENT_TRIALS)]
    found = coordination_of("c/joint/1", old + recent)
    assert found is not None
    assert (found.trials, found.handout_ms_p50, found.lock_wait_ms_p50) == (RECENT_TRIALS, 10, 2)
    assert found.trial_s_p50 == 1.0


def test_a_quiet_campaign_gets_one_line_and_no_warning() -> None:
    found = coordination_of("c/joint/1", [trial(n, 8.0, 1.0) for n in range(20)])
    lines = coordination_lines(found, 0.5)
    assert len(lines) == 1
    assert "hand-out takes 8 ms" in lines[0] and "1 ms of it waiting" in lines[0]
    assert "last 20 trials of c/joint/1" in lines[0] and "round trip 0.5 ms" in lines[0]


def test_queueing_for_the_lock_warns_with_its_share_of_a_trial() -> None:
    trials = [trial(n, 130.0, 120.0, seconds=2.0) for n in range(10)]
    trials.append(trial(10, 130.0, 120.0, seconds=None))  # running: no length, still counted
    (_, warning) = coordination_lines(coordination_of("c/joint/2", trials), 0.5)
    assert warning.startswith("WARNING: workers wait 6% of a trial for the study's lock")
    assert "(120 ms of 2.0 s)" in warning and "deploy/README.md" in warning


def test_a_wait_that_is_small_beside_long_trials_is_no_warning() -> None:
    found = coordination_of("c/joint/2", [trial(n, 130.0, 120.0, seconds=60.0) for n in range(5)])
    assert len(coordination_lines(found, 0.5)) == 1


def test_a_slow_storage_warns() -> None:
    found = coordination_of("c/joint/1", [trial(n, 8.0, 1.0) for n in range(3)])
    lines = coordination_lines(found, 25.0)
    assert lines[-1].startswith("WARNING: the storage answers in 25 ms")
