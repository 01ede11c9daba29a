"""Advancing a campaign: sweep → baseline → round 1 → promote the top-k to longer budgets.

No coordinator: any worker that finds a stage finished advances the campaign, under a
PostgreSQL advisory lock keyed by the campaign. Advancing is idempotent: a second worker
(or a worker that crashed half-way) finds the next stage already there and only completes
what is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import dataclass
import datetime
import math
from typing import Any

import optuna
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from autotune import training
from autotune.analysis import BestStepAnalysis
from autotune.analysis import BoundarySide
from autotune.analysis import StepRecommendation
from autotune.analysis import SweepDecision
from autotune.analysis import SweepPoint
from autotune.analysis import choose_max_train_steps
from autotune.analysis import compare_to_trivial
from autotune.analysis import top_k
from autotune.campaign._campaign import ATTR_DISTRIBUTIONS
from autotune.campaign._campaign import ATTR_STAGE_FIXED
from autotune.campaign._campaign import ATTR_STAGE_INDEX
from autotune.campaign._campaign import ATTR_STAGE_NAME
from autotune.campaign._campaign import ATTR_STOPPED
from autotune.campaign._campaign import Campaign
from autotune.campaign._campaign import Stage
from autotune.campaign._campaign import StudyPlan
from autotune.campaign._campaign import create_stage_study
from autotune.campaign._campaign import load_campaign
from autotune.campaign._campaign import plan_after_steps
from autotune.campaign._campaign import publish_stage_study
from autotune.campaign._campaign import tuning_plan
from autotune.campaign._reevaluation import finish_reevaluation
from autotune.campaign._reevaluation import start_reevaluation
from autotune.campaign._staging import after_tuning_round_one
from autotune.campaign._staging import study_base
from autotune.campaign._trial_attrs import ATTR_CHECKPOINT
from autotune.campaign._trial_attrs import ATTR_OVERRIDES
from autotune.campaign._trial_attrs import ATTR_PARENT_BUDGET
from autotune.campaign._trial_attrs import ATTR_PARENT_STUDY
from autotune.campaign._trial_attrs import ATTR_PARENT_TRIAL
from autotune.campaign._trial_attrs import ATTR_PARENT_VALUE
from autotune.campaign._trial_attrs import ATTR_RESUME
from autotune.campaign._trial_attrs import ATTR_SEED
from autotune.campaign._trial_budget import ATTR_ERROR
from autotune.campaign._trial_budget import NextStep
from autotune.campaign._trial_budget import next_step
from autotune.campaign._trial_budget import unretried_failures
from autotune.spec import StudySpec
from autotune.storage._artifacts import CheckpointRef
from autotune.storage._locks import advisory_lock
from autotune.storage._retry import max_retry_of
from autotune.worker._objectives import ATTR_PRUNED_REASON
from autotune.worker._objectives import ATTR_STEPS_TO_FIT
from autotune.worker._objectives import TRIVIAL_PREFIX
from autotune.worker._objectives import promotion_overrides
from autotune.worker._objectives import trial_hparams

ATTR_SWEEP_DECISION = "autotune.steps_decision"
ATTR_BASELINE = "autotune.baseline"
ATTR_STEP_ADVICE = "autotune.step_advice"
WIDENING_POINTS = 2  # grid points added beyond the boundary per widening


def promoted_trial_attrs(
    spec: StudySpec,
    parent: FrozenTrial,
    parent_study: optuna.Study,
    steps: int,
) -> dict[str, Any]:
    """User attributes of a promoted trial: lineage, the parent's seed, schedule overrides.

    It resumes from the parent's uploaded checkpoint when both runs' learning rates agree
    up to it (METHOD §1: the constant phase of linear/WSD schedules).
    """
    parent_steps = Campaign.steps_of(parent_study)
    parent_hparams = trial_hparams(
        study_base(spec, parent_study), parent.params, parent.user_attrs
    )
    overrides = promotion_overrides(parent_hparams, parent_steps)
    attrs = {
        ATTR_PARENT_STUDY: parent_study.study_name,
        ATTR_PARENT_TRIAL: parent.number,
        ATTR_PARENT_BUDGET: parent_steps,
        ATTR_PARENT_VALUE: parent.value,
        ATTR_SEED: parent.user_attrs.get(ATTR_SEED),
        ATTR_OVERRIDES: overrides,
    }
    checkpoint = CheckpointRef.from_attr(parent.user_attrs.get(ATTR_CHECKPOINT))
    if checkpoint is not None:
        child_hparams = {**parent_hparams, **overrides}
        reusable = training.resumable_step(
            parent_hparams, parent_steps, child_hparams, steps, spec.eval_interval
        )
        if checkpoint.step <= reusable:
            attrs[ATTR_RESUME] = checkpoint.to_attr()
    return attrs


def advance(campaign_name: str, storage: RDBStorage) -> Campaign:
    """Create the next stage/round if the latest one is finished; the campaign as it is now.

    A failed baseline or a sweep that never fitted stops the campaign (Campaign.stopped).
    """
    with advisory_lock(storage, f"campaign:{campaign_name}"):
        campaign = load_campaign(campaign_name, storage)
        latest = campaign.current_study
        if campaign.stopped is not None or not stage_is_finished(latest):
            return campaign
        stage = Campaign.stage_of(latest)
        if stage is Stage.STEPS_SWEEP:
            changed = _after_sweep(campaign, latest)
        elif stage is Stage.BASELINE:
            changed = _after_baseline(campaign, latest)
        elif stage is Stage.JOINT:
            changed = _after_round(campaign, latest)
        else:
            finish_reevaluation(campaign, latest)
            changed = False
        return load_campaign(campaign_name, storage) if changed else campaign


def stage_is_finished(study: optuna.Study) -> bool:
    """Whether nothing of the stage/round is left to run, running, or waiting for a retry."""
    trials = study.get_trials(deepcopy=False)
    if unretried_failures(trials, max_retry_of(study)):
        return False  # the next worker to look for a trial queues the retry
    return (
        next_step(trials, Campaign.trial_budget(study), Campaign.samples(study)) == NextStep.DONE
    )


def _stop(study: optuna.Study, reason: str) -> bool:
    study.set_user_attr(ATTR_STOPPED, reason)
    return True


def _open_next(campaign: Campaign, plan: StudyPlan) -> optuna.Study:
    return create_stage_study(campaign.spec, campaign.storage, plan)


# --- the max_train_steps sweep -------------------------------------------------------------


def sweep_points(trials: Sequence[FrozenTrial], sweep_steps: int) -> list[SweepPoint]:
    """The finished sweep trials as (learning rate, steps to fit) points."""
    points = []
    for trial in trials:
        if trial.state is TrialState.COMPLETE and "learning_rate" in trial.params:
            fitted = trial.user_attrs.get(ATTR_STEPS_TO_FIT)
            steps = int(fitted) if isinstance(fitted, int) else None
            points.append(SweepPoint(trial.params["learning_rate"], steps, sweep_steps))
    return points


def widened_rates(rates: Sequence[float], side: BoundarySide, count: int) -> list[float]:
    """``count`` more learning rates beyond the ``side`` end of the grid, same log spacing."""
    ordered = sorted(rates)
    ratio = math.exp((math.log(ordered[-1]) - math.log(ordered[0])) / (len(ordered) - 1))
    if side is BoundarySide.HIGH:
        return [ordered[-1] * ratio**k for k in range(1, count + 1)]
    return [ordered[0] / ratio**k for k in range(1, count + 1)]


def resolved_max_train_steps(measured: int, spec: StudySpec) -> int:
    """The measured steps, at least long enough for one eval and the first rung."""
    return max(measured, spec.eval_interval, spec.pruner.min_steps)


def _after_sweep(campaign: Campaign, latest: optuna.Study) -> bool:
    spec = campaign.spec
    sweeps = campaign.stage_studies(Stage.STEPS_SWEEP)
    sweep_steps = Campaign.steps_of(latest)
    trials = [t for s in sweeps for t in s.get_trials(deepcopy=False)]
    points = sweep_points(trials, sweep_steps)
    if len({p.learning_rate for p in points}) < 2:
        return _stop(latest, "max_train_steps sweep: fewer than 2 sweep trials finished")
    decision = choose_max_train_steps(points, spec.eval_interval)
    if decision.max_train_steps is None:
        return _stop(latest, f"max_train_steps sweep: {decision.reason}")
    widenings = len(sweeps) - 1
    side = decision.on_boundary
    if side is not BoundarySide.NONE and widenings < spec.steps_sweep.max_widenings:
        rates = widened_rates([p.learning_rate for p in points], side, WIDENING_POINTS)
        queued = tuple({"learning_rate": rate} for rate in rates)
        plan = StudyPlan(
            Stage.STEPS_SWEEP, len(sweeps) + 1, len(rates), sweep_steps, None, queued=queued
        )
        publish_stage_study(_open_next(campaign, plan), spec)
        return True
    measured = resolved_max_train_steps(decision.max_train_steps, spec)
    latest.set_user_attr(ATTR_SWEEP_DECISION, sweep_record(decision, measured, widenings))
    study = _open_next(campaign, plan_after_steps(spec, measured))
    publish_stage_study(study, spec)
    return True


def sweep_record(decision: SweepDecision, measured: int, widenings: int) -> dict[str, Any]:
    """The sweep's decision and reasoning, as stored with the campaign."""
    reason = decision.reason
    if decision.on_boundary is not BoundarySide.NONE:
        reason += (
            f" (after {widenings} widening(s), the maximum: treat max_train_steps as an "
            "upper estimate)"
        )
    if measured != decision.max_train_steps:
        reason += f"; raised to {measured} for one eval interval and the first rung"
    return {
        "max_train_steps": measured,
        "fastest_learning_rate": decision.fastest_learning_rate,
        "on_boundary": decision.on_boundary.value,
        "widenings": widenings,
        "reason": reason,
    }


# --- the baseline --------------------------------------------------------------------------


@dataclass(frozen=True)
class BaselineOutcome:
    """Whether the campaign may go on after the baseline run, and why (METHOD §4)."""

    passed: bool
    message: str
    value: float | None
    trivial_value: float | None

    def to_attr(self) -> dict[str, Any]:
        return asdict(self)


def baseline_outcome(trial: FrozenTrial, spec: StudySpec) -> BaselineOutcome:
    """The baseline trial against the trivial predictor.

    A failed or diverged baseline fails; a task without a trivial predictor for the metric
    passes with the value recorded unchecked.
    """
    metric = spec.metric.name
    if trial.state is TrialState.FAIL:
        error = trial.user_attrs.get(ATTR_ERROR, "unknown error")
        return BaselineOutcome(False, f"the baseline run failed: {error}", None, None)
    if trial.state is not TrialState.COMPLETE or trial.value is None:
        reason = trial.user_attrs.get(ATTR_PRUNED_REASON, trial.state.name)
        message = f"the baseline run did not finish ({reason}): the pipeline is broken"
        return BaselineOutcome(False, message, None, None)
    trivial = trial.user_attrs.get(f"{TRIVIAL_PREFIX}{metric}")
    if trivial is None:
        message = f"baseline {metric} {trial.value:g}; the task has no trivial predictor"
        return BaselineOutcome(True, message, trial.value, None)
    verdict = compare_to_trivial(trial.value, trivial, spec.metric.direction, metric=metric)
    return BaselineOutcome(verdict.beats_trivial, verdict.message, trial.value, trivial)


def _after_baseline(campaign: Campaign, latest: optuna.Study) -> bool:
    spec = campaign.spec
    finished = [t for t in latest.get_trials(deepcopy=False) if t.state.is_finished()]
    outcome = baseline_outcome(finished[-1], spec)
    latest.set_user_attr(ATTR_BASELINE, outcome.to_attr())
    if not outcome.passed:
        return _stop(latest, outcome.message)
    steps = campaign.max_train_steps
    assert steps is not None  # the baseline runs once max_train_steps is known
    publish_stage_study(_open_next(campaign, tuning_plan(spec, 0, steps)), spec)
    return True


# --- promotion -----------------------------------------------------------------------------


def adapted_round_steps(
    planned: int, parent_steps: int, analysis: BestStepAnalysis, eval_interval: int
) -> tuple[int, str]:
    """The next round's steps with the best-step advice applied, and what was done.

    The advice for the parent round's budget scales the planned budget by the same factor,
    rounded to eval_interval, never below the parent's steps.
    """
    suggested = analysis.suggested_max_train_steps
    if analysis.recommendation not in (StepRecommendation.FEWER, StepRecommendation.MORE):
        return planned, f"kept {planned} steps: {analysis.reason}"
    assert suggested is not None  # FEWER and MORE always suggest
    scaled = round(planned * suggested / parent_steps / eval_interval) * eval_interval
    steps = max(parent_steps, eval_interval, scaled)
    change = f"{planned} -> {steps} steps ({analysis.recommendation.value})"
    return steps, f"{change}: {analysis.reason}"


def _after_round(campaign: Campaign, latest: optuna.Study) -> bool:
    """Round 1: bounds and the next stage; then promotion; then the re-evaluation."""
    spec = campaign.spec
    round_number = Campaign.round_of(latest)
    if round_number == 1 and after_tuning_round_one(campaign, latest):
        return True
    if round_number >= len(spec.rounds):
        return start_reevaluation(campaign, latest, datetime.date.today())
    parents = top_k(
        latest.get_trials(deepcopy=False), _top_k(spec, round_number + 1), spec.metric.direction
    )
    if not parents:
        return False
    total = campaign.max_train_steps
    assert total is not None  # rounds run once max_train_steps is known
    parent_steps = Campaign.steps_of(latest)
    steps, advice = spec.round_steps(round_number + 1, total), None
    if spec.apply_step_advice:
        steps, advice = adapted_round_steps(
            steps, parent_steps, campaign.best_steps(latest), spec.eval_interval
        )
    plan = StudyPlan(
        Stage.JOINT,
        round_number + 1,
        len(parents),
        steps,
        total,
        name=latest.user_attrs[ATTR_STAGE_NAME],
        stage_index=latest.user_attrs[ATTR_STAGE_INDEX],
        stage_fixed=latest.user_attrs[ATTR_STAGE_FIXED],
        distributions=latest.user_attrs[ATTR_DISTRIBUTIONS],
    )
    study = _open_next(campaign, plan)
    if advice is not None:
        study.set_user_attr(ATTR_STEP_ADVICE, advice)
    done = {t.user_attrs.get(ATTR_PARENT_TRIAL) for t in study.get_trials(deepcopy=False)}
    for parent in parents:
        if parent.number not in done:
            attrs = promoted_trial_attrs(spec, parent, latest, steps)
            study.enqueue_trial(parent.params, user_attrs=attrs)
    publish_stage_study(study, spec)
    return True


def _top_k(spec: StudySpec, round_number: int) -> int:
    top = spec.rounds[round_number - 1].top_k
    assert top is not None  # validated by the spec: every later round has top_k
    return top
