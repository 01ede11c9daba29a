"""The worker's one heartbeat thread: the running trial beats every interval, the first
beat one interval in, and nothing beats between trials."""

from __future__ import annotations

import threading
import time
from typing import Any

from autotune.worker._worker import _TrialHeartbeat


class _Beats:
    """Each beat's trial and time; ``wait_for(n)`` waits (bounded) until n beats came."""

    def __init__(self) -> None:
        self.beats: list[tuple[Any, float]] = []
        self._came = threading.Condition()

    def __call__(self, trial: Any) -> None:
        with self._came:
            self.beats.append((trial, time.monotonic()))
            self._came.notify_all()

    def wait_for(self, count: int) -> bool:
        with self._came:
            return self._came.wait_for(lambda: len(self.beats) >= count, timeout=30)


def test_a_running_trial_beats_every_interval_the_first_one_interval_in() -> None:
    beats, trial = _Beats(), object()
    with _TrialHeartbeat(0.05, beats) as heartbeat:
        started = time.monotonic()
        with heartbeat.beating(trial):
            assert beats.wait_for(3)
    times = [at for _, at in beats.beats]
    assert all(beaten is trial for beaten, _ in beats.beats)
    assert times[0] - started >= 0.05  # never before one interval
    assert all(b - a >= 0.05 for a, b in zip(times, times[1:], strict=False))


def test_a_trial_shorter_than_the_interval_never_beats() -> None:
    beats = _Beats()
    with _TrialHeartbeat(3600, beats) as heartbeat:
        for _ in range(3):
            with heartbeat.beating(object()):
                pass
    assert beats.beats == []


def test_the_next_trial_starts_its_own_interval() -> None:
    """A trial that starts while the thread waits for the previous one's due beat gets
    its first beat one interval after its own start."""
    beats, first, second = _Beats(), object(), object()
    with _TrialHeartbeat(0.2, beats) as heartbeat:
        with heartbeat.beating(first):
            pass
        started = time.monotonic()
        with heartbeat.beating(second):
            assert beats.wait_for(1)
    assert [beaten for beaten, _ in beats.beats] == [second]
    assert beats.beats[0][1] - started >= 0.2


def test_a_failing_beat_is_logged_and_the_next_one_still_comes(caplog: Any) -> None:
    calls: list[float] = []

    def flaky(_trial: Any) -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("connection reset")

    beats = _Beats()

    def beat(trial: Any) -> None:
        flaky(trial)
        beats(trial)

    with _TrialHeartbeat(0.02, beat) as heartbeat, heartbeat.beating(object()):
        assert beats.wait_for(1)
    assert len(calls) >= 2
    assert "heartbeat failed: connection reset" in caplog.text
