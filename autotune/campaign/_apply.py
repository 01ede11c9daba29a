"""Writing transitions: the only code that changes a campaign's studies.

``advance`` reads a snapshot, decides with ``next_transition`` and applies the result, all
under the campaign's advisory lock. Applying is idempotent: a worker that dies half-way
leaves the new study unpublished, and the next worker decides the same transition from the
same snapshot and completes it (queued and carried trials are keyed, never added twice).
"""

from __future__ import annotations

import datetime
from typing import Any
import warnings

import optuna
from optuna.storages import BaseStorage

from autotune._errors import CampaignExistsError
from autotune._errors import CampaignNotFoundError
from autotune.campaign._plain import plain
from autotune.campaign._plan import NewStudy
from autotune.campaign._records import Stage
from autotune.campaign._records import StudyKey
from autotune.campaign._records import TaskDefaults
from autotune.campaign._records import fact_attr
from autotune.campaign._snapshot import CampaignSnapshot
from autotune.campaign._snapshot import read_snapshot
from autotune.campaign._transitions import Transition
from autotune.campaign._transitions import TransitionKind
from autotune.campaign._transitions import next_transition
from autotune.campaign._trial_attrs import ATTR_CARRIED_FROM
from autotune.campaign._trial_attrs import ATTR_QUEUED_AS
from autotune.spec import Direction
from autotune.spec import StudySpec
from autotune.storage import advisory_lock

_DIRECTIONS = {
    Direction.MINIMIZE: optuna.study.StudyDirection.MINIMIZE,
    Direction.MAXIMIZE: optuna.study.StudyDirection.MAXIMIZE,
}


def campaign_lock_name(campaign: str) -> str:
    return f"campaign:{campaign}"


def advance(campaign: str, storage: BaseStorage, today: datetime.date | None = None) -> Transition:
    """Decide and apply the campaign's next transition, under its advisory lock.

    A first look without the lock settles WAIT, which writes nothing: when a round ends,
    every idle worker calls this, and each would otherwise read the whole snapshot in turn
    under the lock. A stale look only delays a worker by one poll.
    """
    day = today or datetime.date.today()
    looked = next_transition(_snapshot(storage, campaign, day))
    if looked.kind is TransitionKind.WAIT:
        return looked
    with advisory_lock(storage, campaign_lock_name(campaign)):
        snapshot = _snapshot(storage, campaign, day)
        transition = next_transition(snapshot)
        apply(transition, storage, snapshot.spec, snapshot.task_defaults)
    return transition


def _snapshot(storage: BaseStorage, campaign: str, today: datetime.date) -> CampaignSnapshot:
    snapshot = read_snapshot(storage, campaign, today, max_retry(storage))
    if snapshot is None:
        raise CampaignNotFoundError(f"no campaign {campaign!r} in this storage")
    return snapshot


def max_retry(storage: BaseStorage) -> int | None:
    """The storage's retry limit for stale trials (None: unlimited or no retry)."""
    get_callback = getattr(storage, "get_heartbeat_stale_trial_callback", None)
    callback = get_callback() if callable(get_callback) else None
    return getattr(callback, "max_retry", None)


def apply(
    transition: Transition, storage: BaseStorage, spec: StudySpec, defaults: TaskDefaults
) -> None:
    """Write the transition's facts, then create and publish its new study (if any)."""
    for study_name, fact in transition.facts:
        key, value = fact_attr(fact)
        storage.set_study_user_attr(storage.get_study_id_from_name(study_name), key, value)
    if transition.new_study is not None:
        create_stage_study(storage, spec, defaults, transition.new_study)


def create_stage_study(
    storage: BaseStorage, spec: StudySpec, defaults: TaskDefaults, new: NewStudy
) -> optuna.Study:
    """Create (or, after an interrupted attempt, complete) a stage/round study; publish it
    last, so readers never see a study half made."""
    plan = new.plan
    direction = _direction(spec, plan.stage)
    study = optuna.create_study(
        study_name=plan.study_name(spec.name),
        storage=storage,
        direction=direction,
        load_if_exists=True,
    )
    _refuse_foreign(study, spec, direction)
    with warnings.catch_warnings():  # experimental since Optuna 3.2, unchanged since
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([_value_name(spec, plan.stage)])  # the dashboard's axis label
    attrs: dict[str, Any] = {
        StudyKey.SPEC_HASH.value: spec.spec_hash,
        StudyKey.SPEC.value: spec.to_json_dict(),
        StudyKey.TASK_DEFAULTS.value: plain(defaults),
    }
    attrs |= dict(fact_attr(f) for f in (plan, *new.facts))
    for key, value in attrs.items():
        study.set_user_attr(key, value)
    _add_trials(study, new)
    study.set_user_attr(StudyKey.CAMPAIGN.value, spec.name)
    return study


def _refuse_foreign(
    study: optuna.Study, spec: StudySpec, direction: optuna.study.StudyDirection
) -> None:
    """CampaignExistsError if a study of this name is not ours to complete: autotune's
    unpublished attempt has the campaign's direction, spec hash (or none yet) and only
    trials autotune queued or carried; anything else is someone else's Optuna study."""
    attrs = study.user_attrs
    if attrs.get(StudyKey.CAMPAIGN.value) == spec.name:
        return  # published by this campaign already
    problems = []
    if study.direction != direction:
        problems.append(
            f"it is to {study.direction.name.lower()}, the campaign to {direction.name.lower()}"
        )
    if attrs.get(StudyKey.SPEC_HASH.value) not in (None, spec.spec_hash):
        problems.append("it was made for another spec")
    foreign = [
        t.number
        for t in study.get_trials(deepcopy=False)
        if ATTR_QUEUED_AS not in t.user_attrs and ATTR_CARRIED_FROM not in t.user_attrs
    ]
    if foreign:
        problems.append(f"it has {len(foreign)} trial(s) autotune did not make")
    if problems:
        raise CampaignExistsError(
            f"an Optuna study named {study.study_name!r} exists already and is not campaign "
            f"{spec.name!r}'s ({'; '.join(problems)}); choose another campaign name (--name) "
            "or delete that study"
        )


def _add_trials(study: optuna.Study, new: NewStudy) -> None:
    existing = study.get_trials(deepcopy=False)
    queued = {t.user_attrs.get(ATTR_QUEUED_AS) for t in existing}
    for trial in new.queued:
        if trial.key not in queued:
            study.enqueue_trial(
                trial.params, user_attrs={**trial.user_attrs, ATTR_QUEUED_AS: trial.key}
            )
    carried = {t.user_attrs.get(ATTR_CARRIED_FROM) for t in existing}
    for frozen in new.carried:
        if frozen.user_attrs.get(ATTR_CARRIED_FROM) not in carried:
            study.add_trial(frozen)


def _value_name(spec: StudySpec, stage: Stage) -> str:
    """What the study's trial values are (as Campaign.value_name says)."""
    return "steps to fit" if stage is Stage.STEPS_SWEEP else spec.metric.name


def _direction(spec: StudySpec, stage: Stage) -> optuna.study.StudyDirection:
    if stage is Stage.STEPS_SWEEP:  # a sweep trial's value is its steps to fit
        return optuna.study.StudyDirection.MINIMIZE
    return _DIRECTIONS[spec.metric.direction]


def optuna_direction(direction: Direction) -> optuna.study.StudyDirection:
    return _DIRECTIONS[direction]
