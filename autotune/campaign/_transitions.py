"""The pipeline as one pure function: ``next_transition(snapshot) -> Transition``.

sweep → baseline → round 1 of each tuning stage (boundary check, widening) → promotion to
longer rounds → re-evaluation of the finalists on several periods → verdict. No I/O here:
``apply`` writes a transition; replaying synthetic trial histories through this function
tests the whole pipeline in milliseconds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
import dataclasses
from dataclasses import dataclass
import enum
import math

from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from autotune.analysis import BoundarySide
from autotune.analysis import SweepDecision
from autotune.analysis import choose_max_train_steps
from autotune.analysis import compare_to_trivial
from autotune.analysis import top_k
from autotune.campaign._boundaries import boundary_check
from autotune.campaign._boundaries import narrowed_learning_rate
from autotune.campaign._boundaries import widened_distributions
from autotune.campaign._boundaries import widened_trials
from autotune.campaign._budget import BudgetTooSmallError
from autotune.campaign._budget import afforded_max_train_steps
from autotune.campaign._budget import plan_budget
from autotune.campaign._budget import steps_spent
from autotune.campaign._budget import sweep_may_widen
from autotune.campaign._horizon import horizon_check
from autotune.campaign._hparams import stage_base_hparams
from autotune.campaign._plan import NewStudy
from autotune.campaign._plan import space_distributions
from autotune.campaign._plan import study_after_steps
from autotune.campaign._plan import sweep_study
from autotune.campaign._plan import tuning_study
from autotune.campaign._promotion import promoted_study
from autotune.campaign._recipe import recipe_of
from autotune.campaign._recipe import trial_label
from autotune.campaign._recipe import unverified
from autotune.campaign._records import BaselineOutcome
from autotune.campaign._records import BoundaryCheck
from autotune.campaign._records import Fact
from autotune.campaign._records import Recommendation
from autotune.campaign._records import ReevaluationSkipped
from autotune.campaign._records import Stage
from autotune.campaign._records import Stopped
from autotune.campaign._records import StudyPlan
from autotune.campaign._records import SweepResult
from autotune.campaign._records import distributions_to_json
from autotune.campaign._reevaluation import finalists_of
from autotune.campaign._reevaluation import reevaluation_study
from autotune.campaign._reevaluation import verdict_facts
from autotune.campaign._snapshot import CampaignSnapshot
from autotune.campaign._snapshot import StudySnapshot
from autotune.campaign._sweep import sweep_points
from autotune.campaign._trial_attrs import ATTR_PRUNED_REASON
from autotune.campaign._trial_attrs import TRIVIAL_PREFIX
from autotune.campaign._trial_budget import ATTR_ERROR
from autotune.campaign._trial_budget import NextStep
from autotune.campaign._trial_budget import next_step
from autotune.campaign._trial_budget import unretried_failures
from autotune.spec import StudySpec

WIDENING_POINTS = 2  # sweep grid points added beyond the boundary per widening
LEARNING_RATE = "learning_rate"


class TransitionKind(enum.Enum):
    """The closed set of things that can happen to a campaign between two studies."""

    WAIT = "wait"  # the latest study still has trials to run
    FINISHED = "finished"  # nothing left to do: finished or stopped
    STOP = "stop"  # the campaign stops, with its reason
    WIDEN_SWEEP = "widen_sweep"  # the fastest sweep rate is an end of the grid
    STEPS_MEASURED = "steps_measured"  # the sweep's max_train_steps; baseline or round 1
    BASELINE_PASSED = "baseline_passed"  # round 1 of the first stage
    RECHECK_BASELINE = "recheck_baseline"  # lost at round 1's budget: try the full one
    WIDEN_STAGE = "widen_stage"  # a hit bound moved out; the stage goes on
    NEXT_STAGE = "next_stage"  # the next groups, earlier bests fixed
    PROMOTE = "promote"  # the top-k at a longer budget
    PROMOTE_MORE = "promote_more"  # short runs misranked: the next-best promoted too
    REEVALUATE = "reevaluate"  # the finalists on several periods
    SKIP_REEVALUATION = "skip_reevaluation"  # fewer than 2 finalists
    RECORD = "record"  # the last checks and the verdict, nothing more to run


@dataclass(frozen=True)
class Transition:
    """What to write: facts on existing studies (by name) and at most one new study."""

    kind: TransitionKind
    facts: tuple[tuple[str, Fact], ...] = ()
    new_study: NewStudy | None = None

    @property
    def writes(self) -> bool:
        return bool(self.facts) or self.new_study is not None


def next_transition(snapshot: CampaignSnapshot) -> Transition:
    """The campaign's next step, decided on the snapshot alone (idempotent: a finished
    transition's facts are in the snapshot, so it is not decided twice)."""
    latest = snapshot.latest
    if snapshot.stopped is not None:
        return Transition(TransitionKind.FINISHED)
    if not stage_is_finished(latest, snapshot.max_retry):
        return Transition(TransitionKind.WAIT)
    stage = latest.plan.stage
    if stage is Stage.STEPS_SWEEP:
        return _after_sweep(snapshot)
    if stage is Stage.BASELINE:
        return _after_baseline(snapshot)
    if stage is Stage.JOINT:
        return _after_round(snapshot)
    return _after_reevaluation(snapshot)


def stage_is_finished(study: StudySnapshot, max_retry: int | None) -> bool:
    """Whether nothing of the study is left to run, running, or waiting for a retry."""
    if unretried_failures(study.trials, max_retry):
        return False  # the next worker to look for a trial queues the retry
    plan = study.plan
    step = next_step(
        study.trials, plan.trials, plan.sampling, plan.step_budget, plan.max_train_steps
    )
    return step == NextStep.DONE


def _stop(study: StudySnapshot, reason: str, *facts: tuple[str, Fact]) -> Transition:
    return Transition(TransitionKind.STOP, (*facts, (study.name, Stopped(reason))))


# --- the max_train_steps sweep ------------------------------------------------------------


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


def _after_sweep(snapshot: CampaignSnapshot) -> Transition:
    spec, latest = snapshot.spec, snapshot.latest
    sweeps = snapshot.stage_studies(Stage.STEPS_SWEEP)
    trials = [t for s in sweeps for t in s.trials]
    points = sweep_points(trials, latest.plan.max_train_steps)
    if len({p.learning_rate for p in points}) < 2:
        return _stop(latest, "max_train_steps sweep: fewer than 2 sweep trials finished")
    decision = choose_max_train_steps(points, spec.eval_interval)
    if decision.max_train_steps is None:
        return _stop(latest, f"max_train_steps sweep: {decision.reason}")
    widenings = len(sweeps) - 1
    side = decision.on_boundary
    cost = sum(steps_spent(s.trials, s.plan.max_train_steps, carried=False) for s in sweeps)
    may_widen = side is not BoundarySide.NONE and widenings < spec.steps_sweep.max_widenings
    widening = WIDENING_POINTS * latest.plan.max_train_steps
    if may_widen and sweep_may_widen(spec, cost, widening):
        rates = widened_rates([p.learning_rate for p in points], side, WIDENING_POINTS)
        to_beat = next(
            p.steps_to_fit for p in points if p.learning_rate == decision.fastest_learning_rate
        )
        study = sweep_study(spec, rates, len(sweeps) + 1, to_beat=to_beat)
        return Transition(TransitionKind.WIDEN_SWEEP, new_study=study)
    measured = resolved_max_train_steps(decision.max_train_steps, spec)
    steps = measured if spec.budget is None else afforded_max_train_steps(spec, measured, cost)
    result = sweep_result(spec, decision, measured, widenings, steps, budget_cut=may_widen)
    if spec.budget is not None:
        try:
            plan_budget(spec, steps, spec.budget.steps, cost)
        except BudgetTooSmallError as error:
            return _stop(latest, f"after the sweep: {error}", (latest.name, result))
    return Transition(
        TransitionKind.STEPS_MEASURED,
        ((latest.name, result),),
        study_after_steps(spec, steps, cost),
    )


def sweep_result(
    spec: StudySpec,
    decision: SweepDecision,
    measured: int,
    widenings: int,
    afforded: int,
    budget_cut: bool = False,
) -> SweepResult:
    """The sweep's decision and reasoning, as stored with the campaign: max_train_steps is
    ``afforded``, what the budget buys at or above the ``measured`` first guess (and, with
    the spec's ``evaluations_per_run``, how often runs of that length evaluate);
    ``budget_cut``: a widening was due and the budget left no room for it."""
    reason = decision.reason
    if decision.on_boundary is not BoundarySide.NONE:
        why = "the most the budget leaves room for" if budget_cut else "the maximum"
        reason += (
            f" (after {widenings} widening(s), {why}: treat max_train_steps as an upper estimate)"
        )
    if measured != decision.max_train_steps:
        reason += f"; raised to {measured} for one eval interval and the first rung"
    if afforded < measured:
        reason += (
            f"; the budget affords only {afforded} steps per run for the whole pipeline, so "
            "runs are that long: compute-bound at this budget (docs/method.md §3), raise "
            "budget.steps for longer runs"
        )
    elif afforded > measured:
        reason += (
            f"; the budget affords {afforded} steps per run with every stage's round-1 "
            "trials at full length, so runs are that long (a tuned, regularized model needs "
            "more steps than the fastest untuned one; docs/method.md §3)"
        )
    if spec.evaluations_per_run is not None:
        reason += (
            f"; runs evaluate every {spec.run_eval_interval(afforded)} steps (about "
            f"{spec.evaluations_per_run} evaluations a run; docs/method.md §3)"
        )
    return SweepResult(
        afforded, decision.fastest_learning_rate, decision.on_boundary, widenings, reason
    )


# --- the baseline -------------------------------------------------------------------------


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


def _after_baseline(snapshot: CampaignSnapshot) -> Transition:
    spec, latest = snapshot.spec, snapshot.latest
    finished = [t for t in latest.trials if t.state.is_finished()]
    outcome = baseline_outcome(finished[-1], spec)
    recorded = (latest.name, outcome)
    steps = latest.plan.campaign_max_train_steps
    assert steps is not None  # the baseline runs once max_train_steps is known
    if outcome.passed:
        first_round = tuning_study(spec, 0, steps, latest.plan.sweep_steps)
        return Transition(TransitionKind.BASELINE_PASSED, (recorded,), first_round)
    short = latest.plan.max_train_steps
    if outcome.value is not None and short < steps and latest.plan.round_number == 1:
        full = dataclasses.replace(latest.plan, round_number=2, max_train_steps=steps)
        return Transition(TransitionKind.RECHECK_BASELINE, (recorded,), NewStudy(full))
    if outcome.value is None:  # it failed or did not finish: nothing was compared
        return _stop(latest, f"{outcome.message} (at {short} steps)", recorded)
    first = snapshot.stage_studies(Stage.BASELINE)[0].plan.max_train_steps
    where = f"{short} steps" if first == short else f"{first} steps and at the full {short}"
    return _stop(latest, f"{outcome.message} (lost at {where})", recorded)


# --- tuning rounds ------------------------------------------------------------------------


def failures_of(study: StudySnapshot, shown: int = 3) -> str:
    """Why a study's trials did not complete, the commonest reasons first, counted."""
    reasons = Counter(
        str(t.user_attrs.get(ATTR_ERROR) or t.user_attrs.get(ATTR_PRUNED_REASON) or t.state.name)
        for t in study.trials
        if t.state in (TrialState.FAIL, TrialState.PRUNED)
    )
    if not reasons:
        return "it ran no trial"
    counted = [f"{count} x {reason}" for reason, count in reasons.most_common(shown)]
    rest = len(reasons) - shown
    return "; ".join(counted) + (f"; and {rest} other reason(s)" if rest > 0 else "")


def _after_round(snapshot: CampaignSnapshot) -> Transition:
    """Round 1: bounds, widening, the next stage; then promotion; then the re-evaluation."""
    spec, latest = snapshot.spec, snapshot.latest
    if not any(t.state is TrialState.COMPLETE for t in latest.trials):
        return _stop(latest, f"no trial of {latest.name} completed: {failures_of(latest)}")
    facts: tuple[tuple[str, Fact], ...] = ()
    if latest.plan.round_number == 1:
        check = boundary_check(spec, latest)
        if latest.facts.boundaries is None:
            facts = ((latest.name, check),)
        after = _after_round_one(snapshot, check)
        if after is not None:
            kind, new_study = after
            return Transition(kind, facts, new_study)
    if latest.plan.round_number < len(spec.rounds):
        promoted = promoted_study(snapshot)
        if promoted is not None:
            return Transition(TransitionKind.PROMOTE, facts, promoted)
        return Transition(TransitionKind.RECORD if facts else TransitionKind.FINISHED, facts)
    if latest.plan.round_number > 1 and latest.facts.horizon is None:
        check, more = horizon_check(snapshot)
        facts = (*facts, (latest.name, check))
        if more is not None:
            return Transition(TransitionKind.PROMOTE_MORE, facts, more)
    return _start_reevaluation(snapshot, facts)


def _after_round_one(
    snapshot: CampaignSnapshot, check: BoundaryCheck
) -> tuple[TransitionKind, NewStudy] | None:
    """Widen a hit bound, or open the next stage; None: the stages are done."""
    spec, latest = snapshot.spec, snapshot.latest
    plan = latest.plan
    if spec.boundary.widen and plan.widening < spec.boundary.max_widenings:
        widened = widened_distributions(spec, plan.decoded_distributions(), check)
        if widened is not None:
            return TransitionKind.WIDEN_STAGE, _widened_study(spec, latest, widened)
    if plan.stage_index + 1 >= len(spec.tuning_stages):
        return None
    best = top_k(list(latest.trials), 1, spec.metric.direction)
    if not best:
        return None
    return TransitionKind.NEXT_STAGE, _next_stage(snapshot, best[0])


def _widened_study(
    spec: StudySpec, latest: StudySnapshot, distributions: dict[str, BaseDistribution]
) -> NewStudy:
    plan = latest.plan
    carried = widened_trials(latest.trials, distributions)
    stage = spec.tuning_stages[plan.stage_index]
    new_trials = spec.boundary.trials or max(1, spec.stage_trials(stage) // 2)
    step_budget = plan.step_budget
    if step_budget is not None:  # the stage's kept share: its copies count what they cost
        assert spec.budget is not None  # a step budget comes from the spec's budget
        total = _campaign_steps(plan)
        shares = plan_budget(spec, total, spec.budget.steps, plan.sweep_steps)
        kept = shares.widening[plan.stage_index]
        step_budget += kept
        new_trials = max(1, kept // spec.round_steps(1, total))
    new_plan = dataclasses.replace(
        plan,
        trials=len(carried) + new_trials,
        widening=plan.widening + 1,
        distributions=distributions_to_json(distributions),
        sampling=True,
        step_budget=step_budget,
    )
    return NewStudy(new_plan, carried=carried)


def _next_stage(snapshot: CampaignSnapshot, best: FrozenTrial) -> NewStudy:
    spec, plan = snapshot.spec, snapshot.latest.plan
    index = plan.stage_index + 1
    stage = spec.tuning_stages[index]
    fixed = dict(plan.stage_fixed) | {k: v for k, v in best.params.items() if k != LEARNING_RATE}
    base = stage_base_hparams(spec, snapshot.task_defaults.hyperparameters, plan.stage_fixed)
    learning_rate = best.params.get(LEARNING_RATE, base.get(LEARNING_RATE))
    distributions = {LEARNING_RATE: narrowed_learning_rate(spec, float(learning_rate))}
    distributions |= space_distributions(spec.search_space.group_params(stage.groups))
    return tuning_study(spec, index, _campaign_steps(plan), plan.sweep_steps, fixed, distributions)


def _campaign_steps(plan: StudyPlan) -> int:
    steps = plan.campaign_max_train_steps
    assert steps is not None  # tuning runs once max_train_steps is known
    return steps


# --- re-evaluation ------------------------------------------------------------------------


def _start_reevaluation(
    snapshot: CampaignSnapshot, facts: tuple[tuple[str, Fact], ...]
) -> Transition:
    """Re-evaluate the finalists; with fewer than 2 (or none asked for), recommend the
    last round's best run, unverified."""
    spec, latest = snapshot.spec, snapshot.latest
    nothing = TransitionKind.RECORD if facts else TransitionKind.FINISHED
    if latest.facts.recommendation is not None:
        return Transition(nothing, facts)
    finalists = finalists_of(snapshot)
    if spec.reevaluation.enabled and len(finalists) >= 2:
        return Transition(TransitionKind.REEVALUATE, facts, reevaluation_study(snapshot))
    if not finalists:
        return Transition(nothing, facts)
    if not spec.reevaluation.enabled:
        answer = _unverified(snapshot, finalists[0], "the spec turns the re-evaluation off")
        return Transition(TransitionKind.RECORD, (*facts, (latest.name, answer)))
    reason = (
        f"re-evaluation skipped: {len(finalists)} complete trial(s) in {latest.name}, "
        "at least 2 finalists are needed"
    )
    answer = _unverified(snapshot, finalists[0], reason)
    recorded = ((latest.name, ReevaluationSkipped(reason)), (latest.name, answer))
    return Transition(TransitionKind.SKIP_REEVALUATION, (*facts, *recorded))


def _unverified(snapshot: CampaignSnapshot, best: FrozenTrial, why: str) -> Recommendation:
    spec, latest = snapshot.spec, snapshot.latest
    recipe = recipe_of(spec, snapshot.task_defaults.hyperparameters, latest.plan, best)
    assert best.value is not None  # a finalist is COMPLETE
    return unverified(trial_label(latest.name, best.number), recipe, best.value, why)


def _after_reevaluation(snapshot: CampaignSnapshot) -> Transition:
    latest = snapshot.latest
    if latest.facts.significance is not None:
        return Transition(TransitionKind.FINISHED)
    return Transition(TransitionKind.RECORD, verdict_facts(snapshot))
