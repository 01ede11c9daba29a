"""Extending a campaign: a spec that changes only sizes continues the stored campaign.

In Optuna one calls ``optimize`` again for more trials; a campaign is a pipeline of
studies, so more trials or more budget make sense only where the pipeline has not moved
past what they size. The rule, decided here without I/O:

- ``trials`` and ``budget.steps`` size the round 1 of each tuning stage; ``rounds[N].top_k``
  sizes round N+1. A study not created yet takes its size from the new spec.
- An existing study whose size changes must be the campaign's latest study, an unwidened
  round 1 that samples: it gets the new size, and the decisions taken at its end (bounds,
  recommendation, stop) are cleared, so the pipeline decides again after the new trials.
- A study the pipeline has moved past cannot grow (round 2 was promoted from round 1's
  ranks; the re-evaluation chose its finalists): such a change is refused, saying what can
  be extended. Sizes only grow; ``workers`` and ``description`` change nothing stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Sequence
import dataclasses
from dataclasses import dataclass
import re
from typing import Any

from autotune._errors import CampaignExistsError
from autotune.campaign._plan import tuning_study
from autotune.campaign._records import Stage
from autotune.campaign._records import StudyFacts
from autotune.campaign._records import StudyPlan
from autotune.campaign._records import fact_attr
from autotune.spec import StudySpec

SIZE_KEYS = re.compile(r"^(trials|budget\.steps|rounds\[\d+\]\.top_k|stages\[\d+\]\.trials)$")
UNSTORED_KEYS = re.compile(r"^(workers|description)$")  # sizes nothing the campaign recorded
EXTENDABLE = "trials, budget.steps, rounds[N].top_k, stages[N].trials (larger), workers"


@dataclass(frozen=True)
class SpecChange:
    path: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.path}: {self.old} -> {self.new}"


@dataclass(frozen=True)
class Extension:
    """What extending writes: the new spec, and the studies whose facts change."""

    spec: StudySpec
    changes: tuple[SpecChange, ...]
    reopened: tuple[tuple[str, StudyFacts], ...]  # (study name, its new facts)

    def message(self) -> str:
        """What ``run``/``create`` say: the changes, and which study runs on."""
        changed = "; ".join(map(str, self.changes))
        if self.reopened:
            names = ", ".join(name for name, _ in self.reopened)
            effect = f"{names} runs on to its new size"
        elif any(SIZE_KEYS.match(c.path) for c in self.changes):
            effect = "the studies still to come take the new sizes"
        else:
            effect = "no study changes size"
        return f"extended campaign {self.spec.name!r} ({changed}): {effect}"


def spec_differences(old: Any, new: Any, path: str = "") -> Iterator[SpecChange]:
    """Every leaf that differs between two specs' JSON forms, by its key path."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            yield from spec_differences(
                old.get(key), new.get(key), f"{path}.{key}" if path else key
            )
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from spec_differences(a, b, f"{path}[{index}]")
    elif old != new:
        yield SpecChange(path, old, new)


def extension(
    studies: Sequence[tuple[str, StudyFacts]], stored: StudySpec, given: StudySpec
) -> Extension:
    """How ``given`` extends the campaign stored with ``stored`` and ``studies`` (pipeline
    order); CampaignExistsError naming the keys when it is no extension."""
    changes = tuple(spec_differences(stored.to_json_dict(), given.to_json_dict()))
    _check_keys(stored, changes)
    latest_name = studies[-1][0]
    reopened = []
    for name, facts in studies:
        resized = _resized_plan(facts.plan, stored, given)
        if resized is None:
            continue
        why = _why_not_reopened(facts.plan, name == latest_name)
        if why is not None:
            raise _refusal(stored, changes, f"{name} {why}")
        reopened.append((name, _reopened_facts(facts, resized)))
    return Extension(given, changes, tuple(reopened))


def _check_keys(stored: StudySpec, changes: Sequence[SpecChange]) -> None:
    other = [c for c in changes if not SIZE_KEYS.match(c.path) and not UNSTORED_KEYS.match(c.path)]
    if other:
        raise _refusal(stored, other, "")
    smaller = [c for c in changes if SIZE_KEYS.match(c.path) and _shrinks(c)]
    if smaller:
        raise _refusal(stored, smaller, "sizes can only grow")


def _shrinks(change: SpecChange) -> bool:
    return (
        not isinstance(change.old, int)
        or not isinstance(change.new, int)
        or change.new < change.old
    )


def _refusal(stored: StudySpec, changes: Sequence[SpecChange], why: str) -> CampaignExistsError:
    listed = "; ".join(map(str, changes[:8])) + (
        f"; and {len(changes) - 8} more" if len(changes) > 8 else ""
    )
    reason = f": {why}" if why else ""
    return CampaignExistsError(
        f"campaign {stored.name!r} exists already with a different spec (stored -> given: "
        f"{listed}){reason}. An existing campaign can be extended by changing only {EXTENDABLE}, "
        "while the round they size is still the latest; otherwise choose another name "
        f"(--name) or delete it: autotune delete {stored.name} --yes"
    )


def _resized_plan(plan: StudyPlan, stored: StudySpec, given: StudySpec) -> StudyPlan | None:
    """The plan ``given`` would give this existing study, or None if its size is the same."""
    if plan.stage is not Stage.JOINT:
        return None  # the sweep, baseline and re-evaluation are sized by other keys
    if plan.round_number > 1:
        index = plan.round_number - 1
        same = stored.rounds[index].top_k == given.rounds[index].top_k
        return None if same else plan  # refused: promoted already
    sizes = [_round_one_size(spec, plan) for spec in (stored, given)]
    if sizes[0] == sizes[1]:
        return None
    trials, step_budget = sizes[1]
    return dataclasses.replace(plan, trials=trials, step_budget=step_budget)


def _round_one_size(spec: StudySpec, plan: StudyPlan) -> tuple[int, int | None]:
    """A round 1's (trials, step budget) as ``spec`` plans it."""
    steps = plan.campaign_max_train_steps
    assert steps is not None  # tuning runs once max_train_steps is known
    new = tuning_study(
        spec,
        plan.stage_index,
        steps,
        plan.sweep_steps,
        plan.stage_fixed,
        plan.decoded_distributions(),
    )
    return new.plan.trials, new.plan.step_budget


def _why_not_reopened(plan: StudyPlan, latest: bool) -> str | None:
    if plan.round_number > 1:
        return f"was promoted already (round {plan.round_number}: its top_k is fixed)"
    if not latest:
        return "is done: the pipeline has moved past it (the next round or stage chose from it)"
    if plan.widening:
        return "is a widened round 1 (its trials are set by boundary.trials)"
    if not plan.sampling:
        return "runs a grid (its trials are its grid points)"
    return None


def _reopened_facts(facts: StudyFacts, plan: StudyPlan) -> StudyFacts:
    """The study with its new size and without the decisions taken at its end."""
    return dataclasses.replace(
        facts,
        plan=plan,
        step_advice=None,
        boundaries=None,
        skipped=None,
        recommendation=None,
        stopped=None,
    )


def fact_updates(old: StudyFacts, new: StudyFacts) -> list[tuple[str, Any]]:
    """The study user attributes to write to turn ``old`` facts into ``new``: (key, JSON
    value), None for a fact cleared."""
    updates = []
    for field in dataclasses.fields(StudyFacts):
        before, after = getattr(old, field.name), getattr(new, field.name)
        if before != after:
            key = fact_attr(after if after is not None else before)[0]
            updates.append((key, None if after is None else fact_attr(after)[1]))
    return updates
