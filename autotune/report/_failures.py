"""Why trials failed, in words: one line per distinct reason, the trials it hit named.

"5 failed of 12" alone sends the reader to the database; the same error repeated over
many trials is one line with its count, so a broken configuration stands out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from autotune.campaign._campaign import TrialFailure

NUMBERS_SHOWN = 8  # trial numbers named per reason; more are counted


@dataclass(frozen=True)
class FailureGroup:
    """Failed trials that share one reason, in the order they failed."""

    reason: str
    trials: tuple[tuple[str, int], ...]  # (study, trial number)

    @property
    def count(self) -> int:
        return len(self.trials)


def group_failures(failures: Sequence[TrialFailure]) -> list[FailureGroup]:
    """Failures grouped by reason, the commonest first (ties: the earliest first)."""
    groups: dict[str, list[tuple[str, int]]] = {}
    for failure in failures:
        groups.setdefault(failure.reason, []).append((failure.study, failure.number))
    ordered = sorted(groups.items(), key=lambda item: -len(item[1]))  # stable: first seen
    return [FailureGroup(reason, tuple(trials)) for reason, trials in ordered]


def _trial_list(trials: Sequence[tuple[str, int]]) -> str:
    """ "a #2, #5; b #1" for the first NUMBERS_SHOWN trials, then how many more."""
    shown: dict[str, list[int]] = {}
    for study, number in trials[:NUMBERS_SHOWN]:
        shown.setdefault(study, []).append(number)
    text = "; ".join(
        f"{study} " + ", ".join(f"#{n}" for n in numbers) for study, numbers in shown.items()
    )
    rest = len(trials) - NUMBERS_SHOWN
    return text + (f"; and {rest} more" if rest > 0 else "")


def failure_group_line(group: FailureGroup) -> str:
    """e.g. "3 trials: ValueError: unknown activation 'swish' (quickstart/joint/1 #2, #5)"."""
    noun = "trial" if group.count == 1 else "trials"
    return f"{group.count} {noun}: {group.reason} ({_trial_list(group.trials)})"


def failure_lines(
    campaign: str, failures: Sequence[TrialFailure], autotune: str = "autotune", where: str = ""
) -> list[str]:
    """The failures section of the summary and status: a head line, one line per reason,
    and how to read a trial's traceback (empty when nothing failed)."""
    if not failures:
        return []
    groups = group_failures(failures)
    first = groups[0].trials[0]
    return [
        f"failed trials ({len(failures)}), by reason:",
        *(f"  {failure_group_line(group)}" for group in groups),
        f"  a trial's error and traceback: {autotune} logs {campaign}{where} "
        f"--trial '{first[0]}#{first[1]}'",
    ]


def parse_trial_reference(text: str) -> tuple[str, int]:
    """ "quickstart/joint/1#2" (or "... #2") as (study name, trial number); ValueError
    saying what is allowed otherwise."""
    study, sep, number = text.rpartition("#")
    study = study.strip()
    if not sep or not study or not number.strip().isdigit():
        raise ValueError(
            f"--trial {text!r} is not STUDY#N; allowed: a study name and a trial number, "
            "e.g. quickstart/joint/1#2 (as the failures lines of autotune status name them)"
        )
    return study, int(number)


def trial_log_lines(
    reference: tuple[str, int], state: str, failure: TrialFailure | None, logs: Sequence[str]
) -> list[str]:
    """What ``autotune logs --trial`` shows: the trial's state, its stored error and
    traceback, and where local workers' logs are (they are not in the database)."""
    study, number = reference
    if failure is None:
        lines = [
            f"trial {study} #{number}: {state}; no error stored (only failed trials have one)"
        ]
    else:
        on = f" on worker {failure.worker}" if failure.worker else ""
        lines = [f"trial {study} #{number}: FAIL{on}", f"reason: {failure.reason}"]
        if failure.traceback:
            lines += [
                "traceback (stored with the trial; the worker's log itself is not stored):",
                failure.traceback.rstrip("\n"),
            ]
        elif not failure.retried:
            lines.append("no traceback stored (the worker that ran it stored none)")
    if logs:
        lines.append(f"logs of local workers (autotune run): {', '.join(logs)}")
    else:
        lines.append("no local worker logs here: `autotune worker` logs to its own terminal")
    return lines
