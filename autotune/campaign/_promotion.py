"""Promotion: the top-k of a round re-run at the next round's longer budget (docs/method.md §8).

Without a budget a round promotes its ``top_k``; with one, as many as the round's share of
the budget buys at full cost (see `autotune.campaign._budget`; what resuming saves goes to
the re-evaluation's periods), at least ``top_k`` and at most a third of the configurations
the round before finished (successive halving's reduction factor: a promotion still selects).

A promoted configuration is a new queued trial in the next round's study, with its parent's
seed and lineage. It resumes from the parent's uploaded checkpoint when both runs' learning
rates agree up to it (the constant phase of linear/WSD schedules), else it restarts.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from autotune.analysis import BestStepAnalysis
from autotune.analysis import StepRecommendation
from autotune.analysis import analyze_best_steps
from autotune.analysis import best_step_records
from autotune.analysis import top_k
from autotune.campaign._budget import affordable_runs
from autotune.campaign._hparams import promotion_overrides
from autotune.campaign._hparams import resumable_step
from autotune.campaign._hparams import stage_base_hparams
from autotune.campaign._hparams import trial_hparams
from autotune.campaign._plan import NewStudy
from autotune.campaign._plan import QueuedTrial
from autotune.campaign._records import StepAdvice
from autotune.campaign._snapshot import CampaignSnapshot
from autotune.campaign._snapshot import StudySnapshot
from autotune.campaign._trial_attrs import ATTR_CHECKPOINT
from autotune.campaign._trial_attrs import ATTR_OVERRIDES
from autotune.campaign._trial_attrs import ATTR_PARENT_BUDGET
from autotune.campaign._trial_attrs import ATTR_PARENT_STUDY
from autotune.campaign._trial_attrs import ATTR_PARENT_TRIAL
from autotune.campaign._trial_attrs import ATTR_PARENT_VALUE
from autotune.campaign._trial_attrs import ATTR_RESUME
from autotune.campaign._trial_attrs import ATTR_SEED
from autotune.spec import StudySpec
from autotune.storage import CheckpointRef

PROMOTION_REDUCTION = 3  # a budgeted round promotes at most 1 in 3 of the round before


def promoted_study(snapshot: CampaignSnapshot) -> NewStudy | None:
    """The next round of the latest study, its top-k queued; None: nothing to promote."""
    spec, latest = snapshot.spec, snapshot.latest
    plan = latest.plan
    next_round = plan.round_number + 1
    top = spec.rounds[next_round - 1].top_k
    assert top is not None  # validated by the spec: every later round has top_k
    total = plan.campaign_max_train_steps
    assert total is not None  # rounds run once max_train_steps is known
    steps, facts = spec.round_steps(next_round, total), ()
    if spec.apply_step_advice:
        interval = spec.run_eval_interval(total)
        analysis = best_steps(spec, latest)
        advice = adapted_round_steps(steps, plan.max_train_steps, analysis, interval)
        if spec.budget is not None and advice.steps > steps:  # the budget planned `steps`
            note = f"{advice.note}; kept at {steps}: the budget planned this round's steps"
            advice = StepAdvice(steps, steps, note)
        steps, facts = advice.steps, (advice,)
    count = promotion_count(snapshot, next_round, steps, top)
    parents = top_k(list(latest.trials), count, spec.metric.direction)
    if not parents:
        return None
    new_plan = dataclasses.replace(
        plan,
        round_number=next_round,
        trials=len(parents),
        max_train_steps=steps,
        widening=0,
        sampling=False,
    )
    base = stage_base_hparams(spec, snapshot.task_defaults.hyperparameters, plan.stage_fixed)
    queued = tuple(
        QueuedTrial(
            queued_as(parent),
            dict(parent.params),
            promoted_trial_attrs(spec, base, parent, latest, steps),
        )
        for parent in parents
    )
    return NewStudy(new_plan, queued, facts=facts)


def promotion_count(snapshot: CampaignSnapshot, next_round: int, steps: int, top: int) -> int:
    """How many configurations round ``next_round`` promotes: ``top`` without a budget;
    with one, what the budget leaves for it after the later rounds' and the re-evaluation's
    shares buys at ``steps`` each, within [top, a third of the parent round's finished]."""
    spec, latest = snapshot.spec, snapshot.latest
    total = latest.plan.campaign_max_train_steps
    if spec.budget is None or total is None:
        return top
    affordable = affordable_runs(spec, snapshot.steps_spent, latest.plan, next_round, steps)
    finished = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in latest.trials)
    selective = math.ceil(finished / PROMOTION_REDUCTION)
    return max(top, min(affordable, selective))


def queued_as(parent: FrozenTrial) -> str:
    """The key of a promoted trial in its study: one promotion per parent, ever."""
    return f"parent={parent.number}"


def best_steps(spec: StudySpec, study: StudySnapshot) -> BestStepAnalysis:
    """Where in their budget the round's trials peaked, and the max_train_steps advice."""
    interval = spec.run_eval_interval(study.plan.campaign_max_train_steps)
    return analyze_best_steps(best_step_records(list(study.trials)), interval)


def promoted_trial_attrs(
    spec: StudySpec,
    base: dict[str, Any],
    parent: FrozenTrial,
    parent_study: StudySnapshot,
    steps: int,
) -> dict[str, Any]:
    """User attributes of a promoted trial: lineage, the parent's seed, schedule overrides,
    and the parent's checkpoint where the child may resume from it."""
    parent_steps = parent_study.plan.max_train_steps
    parent_hparams = trial_hparams(base, parent.params, parent.user_attrs)
    overrides = promotion_overrides(parent_hparams, parent_steps)
    attrs = {
        ATTR_PARENT_STUDY: parent_study.name,
        ATTR_PARENT_TRIAL: parent.number,
        ATTR_PARENT_BUDGET: parent_steps,
        ATTR_PARENT_VALUE: parent.value,
        ATTR_SEED: parent.user_attrs.get(ATTR_SEED),
        ATTR_OVERRIDES: overrides,
    }
    checkpoint = CheckpointRef.from_attr(parent.user_attrs.get(ATTR_CHECKPOINT))
    if checkpoint is not None:
        child_hparams = {**parent_hparams, **overrides}
        interval = spec.run_eval_interval(parent_study.plan.campaign_max_train_steps)
        reusable = resumable_step(parent_hparams, parent_steps, child_hparams, steps, interval)
        if checkpoint.step <= reusable:
            attrs[ATTR_RESUME] = checkpoint.to_attr()
    return attrs


def adapted_round_steps(
    planned: int, parent_steps: int, analysis: BestStepAnalysis, interval: int
) -> StepAdvice:
    """The next round's steps with the best-step advice applied, and what was done.

    The advice for the parent round's budget scales the planned budget by the same factor,
    rounded to the runs' eval ``interval``, never below the parent's steps.
    """
    suggested = analysis.suggested_max_train_steps
    if analysis.recommendation not in (StepRecommendation.FEWER, StepRecommendation.MORE):
        return StepAdvice(planned, planned, f"kept {planned} steps: {analysis.reason}")
    assert suggested is not None  # FEWER and MORE always suggest
    scaled = round(planned * suggested / parent_steps / interval) * interval
    steps = max(parent_steps, interval, scaled)
    more = analysis.recommendation is StepRecommendation.MORE
    change = f"{planned} -> {steps} steps ({'longer' if more else 'shorter'})"
    return StepAdvice(planned, steps, f"{change}: {analysis.reason}")
