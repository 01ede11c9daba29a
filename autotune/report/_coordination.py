"""How long workers wait for their trials, shown by ``autotune status``.

Every trial records its hand-out (asking for a trial to having it) and, of that, the wait
for the study's advisory lock. Both grow before anything fails when too many workers share
one campaign or one PostgreSQL: the lock serialises hand-outs, so past about one hand-out
per lock hold the workers queue. A user sees it here first, with what to do about it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from optuna.trial import FrozenTrial

from autotune.campaign._trial_attrs import ATTR_HANDOUT_MS
from autotune.campaign._trial_attrs import ATTR_LOCK_WAIT_MS

RECENT_TRIALS = 200  # the hand-outs summarised: the latest ones, as the load is now
LOCK_WAIT_SHARE_WARNING = 0.02  # of a trial's length: past it, workers visibly queue
ROUND_TRIP_WARNING_MS = 10.0  # a database in the same data centre answers in about 1 ms
CAPACITY_SECTION = "deploy/README.md, 'How far one PostgreSQL goes'"


@dataclass(frozen=True)
class Coordination:
    """The recent hand-outs of one study, in milliseconds, and its trials' length."""

    study: str
    trials: int
    handout_ms_p50: float
    handout_ms_p99: float
    lock_wait_ms_p50: float
    lock_wait_ms_p99: float
    trial_s_p50: float | None  # finished trials' median length; None: none finished yet


def coordination_of(study: str, trials: Sequence[FrozenTrial]) -> Coordination | None:
    """The hand-outs of the study's latest trials that recorded one (None: no such trial)."""
    timed = [t for t in trials if ATTR_HANDOUT_MS in t.user_attrs]
    recent = sorted(timed, key=lambda t: t.number)[-RECENT_TRIALS:]
    if not recent:
        return None
    handout = np.array([float(t.user_attrs[ATTR_HANDOUT_MS]) for t in recent])
    waits = np.array([float(t.user_attrs.get(ATTR_LOCK_WAIT_MS, 0.0)) for t in recent])
    lengths = [
        (t.datetime_complete - t.datetime_start).total_seconds()
        for t in recent
        if t.datetime_start is not None and t.datetime_complete is not None
    ]
    return Coordination(
        study,
        len(recent),
        float(np.median(handout)),
        float(np.percentile(handout, 99)),
        float(np.median(waits)),
        float(np.percentile(waits, 99)),
        float(np.median(lengths)) if lengths else None,
    )


def coordination_lines(found: Coordination | None, round_trip_ms: float | None) -> list[str]:
    """A line on hand-outs and the storage's round trip, and a warning when either is
    large enough to slow the campaign down, saying what helps."""
    lines = []
    if found is not None:
        lines.append(
            f"workers: a trial's hand-out takes {found.handout_ms_p50:.0f} ms (p99 "
            f"{found.handout_ms_p99:.0f} ms), {found.lock_wait_ms_p50:.0f} ms of it waiting for "
            f"the study's lock (p99 {found.lock_wait_ms_p99:.0f} ms); last {found.trials} "
            f"trials of {found.study}"
            + ("" if round_trip_ms is None else f"; storage round trip {round_trip_ms:.1f} ms")
        )
        lines += _queueing_warning(found)
    elif round_trip_ms is not None:
        lines.append(f"storage round trip {round_trip_ms:.1f} ms")
    if round_trip_ms is not None and round_trip_ms > ROUND_TRIP_WARNING_MS:
        lines.append(
            f"WARNING: the storage answers in {round_trip_ms:.0f} ms (within a data centre: "
            "about 1 ms) and a trial sends about 50 statements: the database is far away or "
            f"overloaded; see {CAPACITY_SECTION}"
        )
    return lines


def _queueing_warning(found: Coordination) -> list[str]:
    """Waiting for the lock is queueing behind other workers (one worker alone waits only
    for its own connection), so its share of a trial is what more workers would grow."""
    if found.trial_s_p50 is None or found.trial_s_p50 <= 0:
        return []
    share = found.lock_wait_ms_p50 / 1000 / found.trial_s_p50
    if share <= LOCK_WAIT_SHARE_WARNING:
        return []
    return [
        f"WARNING: workers wait {share:.0%} of a trial for the study's lock "
        f"({found.lock_wait_ms_p50:.0f} ms of {found.trial_s_p50:.1f} s): they queue behind "
        "each other, so more workers will not finish sooner; longer trials or a faster "
        f"database help; see {CAPACITY_SECTION}"
    ]
