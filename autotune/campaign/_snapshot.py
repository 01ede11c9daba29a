"""A campaign as one immutable snapshot: its studies' facts and the trials decisions need."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import datetime

from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial

from autotune.campaign._budget import steps_spent
from autotune.campaign._records import Stage
from autotune.campaign._records import StudyFacts
from autotune.campaign._records import StudyPlan
from autotune.campaign._records import TaskDefaults
from autotune.campaign._records import campaign_of
from autotune.campaign._records import spec_data_of
from autotune.campaign._records import task_defaults_of
from autotune.spec import StudySpec
from autotune.spec import study_spec_from_dict
from autotune.storage import study_id_of


@dataclass(frozen=True)
class StudySnapshot:
    """One stage/round study: its name, its recorded facts and (where read) its trials."""

    name: str
    facts: StudyFacts
    trials: tuple[FrozenTrial, ...] = ()

    @property
    def plan(self) -> StudyPlan:
        return self.facts.plan


@dataclass(frozen=True)
class CampaignSnapshot:
    """Everything ``next_transition`` decides on: plain data, read in one go."""

    spec: StudySpec
    task_defaults: TaskDefaults
    studies: tuple[StudySnapshot, ...]  # published studies, in pipeline order
    today: datetime.date  # the re-evaluation's periods rotate with the calendar month
    max_retry: int | None = None  # the storage's retry limit for stale trials
    steps_spent: int = 0  # every step the campaign trained so far (read with a budget)

    def __post_init__(self) -> None:
        if not self.studies:
            raise ValueError(f"campaign {self.spec.name!r} has no studies")

    @property
    def latest(self) -> StudySnapshot:
        return self.studies[-1]

    def stage_studies(self, stage: Stage) -> list[StudySnapshot]:
        return [s for s in self.studies if s.plan.stage is stage]

    @property
    def stopped(self) -> str | None:
        reasons = (s.facts.stopped.reason for s in self.studies if s.facts.stopped)
        return next(reasons, None)


@dataclass(frozen=True)
class StoredStudy:
    """A published campaign study as found in the storage."""

    study_id: int
    name: str
    facts: StudyFacts


@dataclass(frozen=True)
class StoredCampaign:
    """A campaign's spec, task defaults and published studies, in pipeline order."""

    spec: StudySpec
    task_defaults: TaskDefaults
    studies: tuple[StoredStudy, ...]


def stored_campaign(storage: BaseStorage, campaign: str) -> StoredCampaign | None:
    """The campaign as stored (None: no such campaign); reads study attributes only.

    Optuna's study summaries would read every trial in the storage; this reads none. The
    stored spec is validated against its schema only: reading a campaign never imports the
    task's code.
    """
    frozen = [s for s in storage.get_all_studies() if campaign_of(s.user_attrs) == campaign]
    if not frozen:
        return None
    found = sorted(
        (
            StoredStudy(study_id_of(s), s.study_name, StudyFacts.from_attrs(s.user_attrs))
            for s in frozen
        ),
        key=lambda s: s.facts.plan.position,
    )
    first = next(s for s in frozen if s.study_name == found[0].name)
    spec = study_spec_from_dict(spec_data_of(first.user_attrs), f"campaign {campaign!r}")
    return StoredCampaign(spec, task_defaults_of(first.user_attrs), tuple(found))


def studies_deciding(plans: Sequence[tuple[str, StudyPlan]]) -> set[str]:
    """The studies (by name, in pipeline order) whose trials the next decision reads: the
    latest; every sweep study while sweeping (the sweep decides on all its widenings'
    points); the parent round of a promoted round (the short-vs-long check ranks by it);
    after a tuning round, the baseline's (its run names the defaults' candidate in the
    re-evaluation: one or two trials)."""
    latest_name, latest = plans[-1]
    names = {latest_name}
    if latest.stage is Stage.STEPS_SWEEP:
        names |= {name for name, plan in plans if plan.stage is Stage.STEPS_SWEEP}
    if latest.stage is Stage.JOINT and latest.round_number > 1:
        names.add(plans[-2][0])  # promotion appends the round right after its parent
    if latest.stage is Stage.JOINT:
        names |= {name for name, plan in plans if plan.stage is Stage.BASELINE}
    return names


def read_snapshot(
    storage: BaseStorage, campaign: str, today: datetime.date, max_retry: int | None
) -> CampaignSnapshot | None:
    """The campaign's snapshot with the trials its next decision needs (see
    `studies_deciding`); None: no campaign."""
    stored = stored_campaign(storage, campaign)
    if stored is None:
        return None
    needs_trials = studies_deciding([(s.name, s.facts.plan) for s in stored.studies])
    budgeted = stored.spec.budget is not None  # the budget's leftover needs every study
    trials = {
        s.name: _trials(storage, s) for s in stored.studies if budgeted or s.name in needs_trials
    }
    spent = sum(
        steps_spent(trials[s.name], s.facts.plan.max_train_steps, carried=False)
        for s in stored.studies
        if s.name in trials
    )
    studies = tuple(
        StudySnapshot(s.name, s.facts, trials[s.name] if s.name in needs_trials else ())
        for s in stored.studies
    )
    return CampaignSnapshot(
        stored.spec, stored.task_defaults, studies, today, max_retry, spent if budgeted else 0
    )


def _trials(storage: BaseStorage, study: StoredStudy) -> tuple[FrozenTrial, ...]:
    return tuple(storage.get_all_trials(study.study_id, deepcopy=False))
