"""Advancing a campaign from round to round: promote the top-k to a longer step budget.

No coordinator: any worker that finds a round finished advances the campaign, under a
PostgreSQL advisory lock keyed by the campaign. Advancing is idempotent: a second worker
(or a worker that crashed half-way) finds the next round already there and only completes
what is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial

from autotune import training
from autotune._locks import advisory_lock
from autotune._retry import ATTR_SEED
from autotune._trial_budget import NextStep
from autotune._trial_budget import next_step
from autotune.analysis import top_k
from autotune.campaign import ATTR_CAMPAIGN
from autotune.campaign import Campaign
from autotune.campaign import create_round_study
from autotune.campaign import load_campaign
from autotune.campaign import publish_round_study
from autotune.objective import ATTR_OVERRIDES
from autotune.spec import StudySpec

ATTR_PARENT_STUDY = "parent_study"
ATTR_PARENT_TRIAL = "parent_trial"
ATTR_PARENT_BUDGET = "parent_budget"
ATTR_PARENT_VALUE = "parent_value"


def promotion_overrides(hparams: Mapping[str, Any], parent_steps: int) -> dict[str, Any]:
    """Schedule settings that spend a longer budget's extra steps at a high learning rate.

    METHOD §1, round-2 rule: the warmup keeps its length; linear and WSD keep the parent's
    decay length, so the constant phase grows; cosine keeps its base rate and stretches to
    the new budget; Noam does not depend on the budget.
    """
    # model_dim only scales Noam, which has no budget-dependent part: any value will do.
    schedule = training.ScheduleConfig.from_hparams(hparams, model_dim=1)
    if schedule.kind is training.Schedule.NOAM:
        return {}
    overrides: dict[str, Any] = {
        "warmup_fraction": 0.0,
        "warmup_steps": training.resolved_warmup_steps(schedule, parent_steps),
    }
    if schedule.kind in (training.Schedule.LINEAR, training.Schedule.WSD):
        overrides |= {
            "decay_fraction": None,
            "decay_steps": training.resolved_decay_steps(schedule, parent_steps),
        }
    return overrides


def promoted_trial_attrs(
    parent: FrozenTrial, parent_study: str, parent_steps: int, fixed: Mapping[str, Any]
) -> dict[str, Any]:
    """User attributes of a promoted trial: lineage, the parent's seed, schedule overrides."""
    return {
        ATTR_PARENT_STUDY: parent_study,
        ATTR_PARENT_TRIAL: parent.number,
        ATTR_PARENT_BUDGET: parent_steps,
        ATTR_PARENT_VALUE: parent.value,
        ATTR_SEED: parent.user_attrs.get(ATTR_SEED),
        ATTR_OVERRIDES: promotion_overrides({**fixed, **parent.params}, parent_steps),
    }


def advance(campaign_name: str, storage: RDBStorage) -> Campaign:
    """Create the next round if the latest one is finished; return the campaign as it is now."""
    with advisory_lock(storage, f"campaign:{campaign_name}"):
        campaign = load_campaign(campaign_name, storage)
        latest = campaign.current_study
        round_number = Campaign.round_of(latest)
        spec = campaign.spec
        if round_number >= len(spec.rounds) or not round_is_finished(latest):
            return campaign
        parents = top_k(
            latest.get_trials(deepcopy=False),
            _top_k(spec, round_number + 1),
            spec.metric.direction,
        )
        if not parents:
            return campaign
        _promote(spec, storage, latest, parents, round_number + 1)
        return load_campaign(campaign_name, storage)


def _top_k(spec: StudySpec, round_number: int) -> int:
    top = spec.rounds[round_number - 1].top_k
    assert top is not None  # validated by the spec: every later round has top_k
    return top


def _promote(
    spec: StudySpec,
    storage: RDBStorage,
    parent_study: optuna.Study,
    parents: list[FrozenTrial],
    round_number: int,
) -> None:
    study = create_round_study(spec, storage, round_number, len(parents))
    if ATTR_CAMPAIGN in study.user_attrs:
        return  # published by another worker already
    done = {t.user_attrs.get(ATTR_PARENT_TRIAL) for t in study.get_trials(deepcopy=False)}
    parent_steps = Campaign.steps_of(parent_study)
    for parent in parents:
        if parent.number not in done:
            study.enqueue_trial(
                parent.params,
                user_attrs=promoted_trial_attrs(
                    parent, parent_study.study_name, parent_steps, spec.fixed
                ),
            )
    publish_round_study(study, spec)


def round_is_finished(study: optuna.Study) -> bool:
    """Whether nothing of the round is left to run or running."""
    trials = study.get_trials(deepcopy=False)
    sampling = Campaign.round_of(study) == 1
    return next_step(trials, Campaign.trial_budget(study), sampling) == NextStep.DONE
