"""Failures in words: grouped by reason, trials named, a trial's traceback shown."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import pytest

from autotune.campaign._campaign import TrialFailure
from autotune.campaign._campaign import failure_of
from autotune.report._failures import NUMBERS_SHOWN
from autotune.report._failures import failure_lines
from autotune.report._failures import group_failures
from autotune.report._failures import parse_trial_reference
from autotune.report._failures import trial_log_lines

SWISH = "ValueError: unknown activation 'swish'"


def failure(study: str, number: int, reason: str = SWISH, **kwargs: object) -> TrialFailure:
    fields = {"retried": False, "worker": "host-1-0", "traceback": None} | kwargs
    return TrialFailure(study, number, reason, **fields)  # type: ignore[arg-type]


def test_repeated_reasons_are_one_line_commonest_first() -> None:
    failures = [
        failure("q/joint/1", 1, "RuntimeError: out of memory"),
        failure("q/joint/1", 2),
        failure("q/joint/1", 5),
        failure("q/joint/2", 0),
    ]
    assert failure_lines("q", failures) == [
        "failed trials (4), by reason:",
        f"  3 trials: {SWISH} (q/joint/1 #2, #5; q/joint/2 #0)",
        "  1 trial: RuntimeError: out of memory (q/joint/1 #1)",
        "  a trial's error and traceback: autotune logs q --trial 'q/joint/1#2'",
    ]


def test_the_traceback_hint_says_where_the_campaign_is() -> None:
    lines = failure_lines("q", [failure("q/joint/1", 1)], "autotune", " --state-dir /x")
    assert lines[-1].endswith("autotune logs q --state-dir /x --trial 'q/joint/1#1'")


def test_ties_keep_the_order_trials_failed_in() -> None:
    groups = group_failures([failure("s", 0, "B"), failure("s", 1, "A")])
    assert [g.reason for g in groups] == ["B", "A"]


def test_many_trials_of_one_reason_are_counted_not_listed() -> None:
    failures = [failure("s", n) for n in range(NUMBERS_SHOWN + 3)]
    (line,) = failure_lines("c", failures)[1:2]
    assert line.endswith(f"#{NUMBERS_SHOWN - 1}; and 3 more)") and f"#{NUMBERS_SHOWN}," not in line


def test_nothing_failed_says_nothing() -> None:
    assert failure_lines("c", []) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [("q/joint/1#2", ("q/joint/1", 2)), ("q/joint/1 #12", ("q/joint/1", 12))],
)
def test_a_trial_is_named_study_hash_number(text: str, expected: tuple[str, int]) -> None:
    assert parse_trial_reference(text) == expected


@pytest.mark.parametrize("text", ["q/joint/1", "#2", "q/joint/1#x", "q/joint/1#-1", ""])
def test_a_malformed_trial_reference_says_what_is_allowed(text: str) -> None:
    with pytest.raises(
        ValueError, match=r"is not STUDY#N; allowed: .* e\.g\. quickstart/joint/1#2"
    ):
        parse_trial_reference(text)


def test_a_failed_trial_shows_its_traceback_and_where_logs_are() -> None:
    stored = failure("q/joint/1", 2, traceback="Traceback (most recent call last):\n  ...\n")
    lines = trial_log_lines(("q/joint/1", 2), "FAIL", stored, [".autotune/logs/q-worker-0.log"])
    assert lines == [
        "trial q/joint/1 #2: FAIL on worker host-1-0",
        f"reason: {SWISH}",
        "traceback (stored with the trial; the worker's log itself is not stored):",
        "Traceback (most recent call last):\n  ...",
        "logs of local workers (autotune run): .autotune/logs/q-worker-0.log",
    ]


def test_without_a_stored_traceback_it_says_so() -> None:
    lines = trial_log_lines(("q/joint/1", 2), "FAIL", failure("q/joint/1", 2), [])
    assert "no traceback stored (the worker that ran it stored none)" in lines
    assert lines[-1] == "no local worker logs here: `autotune worker` logs to its own terminal"


def test_a_trial_that_did_not_fail_has_no_error() -> None:
    lines = trial_log_lines(("q/joint/1", 3), "COMPLETE", None, [])
    assert (
        lines[0] == "trial q/joint/1 #3: COMPLETE; no error stored (only failed trials have one)"
    )


def stored_trial(**user_attrs: object) -> FrozenTrial:
    return optuna.trial.create_trial(state=TrialState.FAIL, user_attrs=user_attrs)


def test_a_training_error_is_the_reason_with_its_traceback() -> None:
    trial = stored_trial(error=SWISH, error_traceback="Traceback ...", worker="w-1")
    assert failure_of("q/joint/1", trial) == TrialFailure(
        "q/joint/1", trial.number, SWISH, retried=False, worker="w-1", traceback="Traceback ..."
    )


def test_interrupted_and_stale_trials_say_they_were_retried() -> None:
    interrupted = failure_of("s", stored_trial(interrupted="stop requested"))
    assert interrupted.reason == "interrupted (stop requested); retried" and interrupted.retried
    stale = failure_of("s", stored_trial())
    assert stale.reason == "its worker stopped reporting (killed or cut off); retried"
    assert stale.retried and stale.worker is None
