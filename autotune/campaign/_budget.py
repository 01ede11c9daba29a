"""A total compute budget, planned across every stage before the first trial.

``budget: {steps: N}`` caps the training steps of a whole campaign: the sweep, the baseline
(and its full-budget recheck), round 1 of every tuning stage with its widenings, the longer
rounds and the re-evaluation. The fixed-size stages are reserved first; round 1 of each
tuning stage samples trials until its share is spent (a pruned trial costs only the steps
it trained, so pruning buys more trials); a share of it is kept for widening. A sampling
study starts a trial only if its full length still fits, so the campaign never exceeds N.

The rounds get the split successive halving gives its rungs (Hyperband's brackets): what the
fixed stages leave is shared equally between each stage's round 1 and every longer round,
and a longer round promotes as many configurations as its share buys (its ``top_k`` at
least). Four full-length runs chosen by short runs inherit the short horizon's bias: in the
held-out benchmark every co2-lstm answer was one of the fastest learners of round 1, and ten
full-length candidates moved the answers' learning rates from 0.016-0.023 to 0.007-0.014.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
import math

from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from autotune.campaign._records import StudyPlan
from autotune.campaign._trial_attrs import ATTR_CARRIED_FROM
from autotune.campaign._trial_attrs import ATTR_MAX_TRAIN_STEPS
from autotune.campaign._trial_attrs import ATTR_RESUMED_FROM
from autotune.campaign._trial_attrs import ATTR_STEPS_DONE
from autotune.spec import StudySpec

WIDENING_SHARE = 0.25  # of a tuning stage's round-1 steps, kept for its widenings
MIN_ROUND_ONE_TRIALS = 8  # full-length round-1 trials a stage's share must at least fit
MIN_BUDGETED_PERIODS = 2  # re-evaluation periods a budget always keeps room for
REEVALUATION_MAX_SHARE = 0.2  # of the budget, the most the plan keeps for re-evaluation
# The shortest runs a budget may buy, of what the sweep measured: a tenth, the scale of
# METHOD's retrospective rule (best steps all in the first 10%: max_train_steps too high).
MIN_AFFORDED_FRACTION = 0.1


class BudgetTooSmallError(ValueError):
    """The budget cannot fit the pipeline the spec asks for."""


@dataclass(frozen=True)
class BudgetPlan:
    """Steps set aside for each part of the pipeline; ``round_one`` is per tuning stage."""

    total: int
    sweep: int
    baseline: int
    round_one: tuple[int, ...]
    widening: tuple[int, ...]  # per tuning stage, per widening
    later_rounds: tuple[int, ...]  # per round after the first (of the last tuning stage)
    reevaluation: int
    kept_for_widening: tuple[int, ...] = ()  # per tuning stage, all its widenings together

    def lines(self) -> list[str]:
        """The plan in a line whose parts add up to the total (what rounding leaves aside)."""
        stages = " + ".join(f"{s:,}" for s in self.round_one)
        kept = sum(self.kept_for_widening)
        widening = f", kept for widening {kept:,}" if kept else ""
        later = " + ".join(f"{s:,}" for s in self.later_rounds) or "0"
        return [
            f"budget {self.total:,} steps: sweep {self.sweep:,}, baseline {self.baseline:,}, "
            f"round 1 {stages}{widening}, longer rounds {later}, "
            f"re-evaluation {self.reevaluation:,} (planned up front; what a stage does not "
            "use goes to the next)"
        ]


def plan_budget(
    spec: StudySpec, max_train_steps: int, total: int, sweep_steps: int | None
) -> BudgetPlan:
    """Reserve the fixed-size stages, share the rest among round 1 of each tuning stage and
    the longer rounds. The plan is made once the sweep has run, so it takes off what the
    sweep cost (``sweep_steps``; None, a plan stored without it: the sweep's most).

    Raises BudgetTooSmallError naming what the budget must at least be.
    """
    first = spec.round_steps(1, max_train_steps)
    sweep = sweep_reserve(spec) if sweep_steps is None else sweep_steps
    baseline = first + max_train_steps if spec.baseline else 0
    reevaluation = _reevaluation_reserve(spec, max_train_steps, total)
    stages = len(spec.tuning_stages)
    floors = top_k_steps(spec, max_train_steps)
    minimum = stages * MIN_ROUND_ONE_TRIALS * first
    free = total - sweep - baseline - reevaluation
    later = later_round_shares(floors, free, stages, minimum)
    share = (free - sum(later)) // stages
    if share < MIN_ROUND_ONE_TRIALS * first:
        needed = sweep + baseline + sum(floors) + reevaluation + minimum
        parts = {
            "the sweep": sweep,
            "the baseline": baseline,
            "longer rounds": sum(floors),
            "the re-evaluation": reevaluation,
        }
        named = [name for name, steps in parts.items() if steps] or ["nothing"]
        reserved = ", ".join(named[:-1]) + (" and " if len(named) > 1 else "") + named[-1]
        raise BudgetTooSmallError(
            f"budget.steps ({total:,}) is too small for this pipeline at max_train_steps="
            f"{max_train_steps}: {reserved} take {needed - minimum:,} steps and each of "
            f"{stages} tuning stage(s) needs room for "
            f"{MIN_ROUND_ONE_TRIALS} round-1 trials of {first} steps; raise it to at least "
            f"{needed:,} (or fewer re-evaluation periods, finalists or top_k)"
        )
    widen = spec.boundary.widen and spec.boundary.max_widenings > 0
    kept = int(share * WIDENING_SHARE) if widen else 0
    per_widening = kept // spec.boundary.max_widenings if widen else 0
    return BudgetPlan(
        total,
        sweep,
        baseline,
        (share - kept,) * stages,
        (per_widening,) * stages,
        later,
        reevaluation,
        (kept,) * stages,
    )


def afforded_max_train_steps(spec: StudySpec, measured: int, sweep_steps: int) -> int:
    """The max_train_steps a budget affords once the sweep has measured ``measured``.

    The sweep measures the fastest untuned configuration (the first guess of
    docs/method.md §3); tuned ones, regularized, need more, and more steps make tuning
    easier and models better. The spec's ``trials`` say how many configurations each
    stage's round 1 should see, so a budget beyond them buys longer runs, not more trials:
    the longest schedule (on the eval grid, within the sweep's ``steps`` horizon) at which
    every stage's round 1 still fits its trials at full length. ``measured`` when even it
    does not (the budget then buys fewer trials), and shorter than ``measured`` (the longest
    on the eval grid the plan fits at) when the plan does not fit ``measured`` at all: a
    budget is the user's limit, and a workload short of steps is compute-bound, where the
    steps one can afford are the limit (docs/method.md §3); stopping after the sweep spent
    the steps of the sweep for nothing.
    """
    assert spec.budget is not None  # only a budget affords anything
    interval = spec.eval_interval
    horizon = max(measured, spec.steps_sweep.steps or measured)

    def fits(points: int) -> bool:
        steps = measured + points * interval
        plan = _plan_at(spec, steps, sweep_steps)
        first = spec.round_steps(1, steps)
        return plan is not None and all(
            share >= spec.stage_trials(stage) * first
            for share, stage in zip(plan.round_one, spec.tuning_stages, strict=True)
        )

    if fits(0):  # longer fits less: the longest that fits, up to the sweep's horizon
        return measured + largest_where(0, (horizon - measured) // interval, fits) * interval
    if _plan_at(spec, measured, sweep_steps) is not None:
        return measured
    return _shorter(spec, measured, sweep_steps)


def _plan_at(
    spec: StudySpec, steps: int, sweep_steps: int, total: int | None = None
) -> BudgetPlan | None:
    """The plan of a ``total`` budget (default: the spec's) at ``steps`` a run (None: it
    does not fit)."""
    if total is None:
        assert spec.budget is not None
        total = spec.budget.steps
    try:
        return plan_budget(spec, steps, total, sweep_steps)
    except BudgetTooSmallError:
        return None


def _shorter(spec: StudySpec, measured: int, sweep_steps: int) -> int:
    """The longest schedule on the eval grid below ``measured``, and at least
    ``MIN_AFFORDED_FRACTION`` of it, that the plan fits; ``measured`` when none does (the
    campaign then stops, naming the budget it needs)."""
    interval = spec.eval_interval
    shortest = shortest_afforded(spec, measured) // interval  # in grid points

    def planned(points: int) -> bool:
        return _plan_at(spec, points * interval, sweep_steps) is not None

    points = largest_where(shortest - 1, (measured - 1) // interval, planned)  # shortest - 1: none
    return points * interval if points >= shortest else measured


def shortest_afforded(spec: StudySpec, measured: int) -> int:
    """The shortest runs a budget buys after a sweep measured ``measured`` (`_shorter`)."""
    interval = spec.eval_interval
    return math.ceil(MIN_AFFORDED_FRACTION * measured / interval) * interval


def least_total(spec: StudySpec, max_train_steps: int, sweep_steps: int) -> int:
    """The smallest budget whose plan fits runs of ``max_train_steps`` after a sweep that
    cost ``sweep_steps`` (the plan's own minimum: its re-evaluation share grows with it)."""
    high = sweep_steps + max_train_steps * 10**4  # no pipeline asks this much

    def short(total: int) -> bool:
        return _plan_at(spec, max_train_steps, sweep_steps, total) is None

    return largest_where(0, high, short) + 1


def sweep_grid_steps(spec: StudySpec) -> int:
    """What the sweep trains when no rate stops early (the worst case: every rate trains
    its whole horizon), before any widening."""
    sweep = spec.steps_sweep
    assert sweep.steps is not None  # validated with "auto"
    return sweep.count * sweep.steps


def least_budget_with_sweep(spec: StudySpec) -> int:
    """The least budget that pays for a sweep in its worst case (every rate trains its
    whole horizon) and the pipeline after it."""
    return _least_after_sweep(spec, sweep_grid_steps(spec))


def sweep_may_widen(spec: StudySpec, spent: int, added: int) -> bool:
    """Whether a sweep widening of ``added`` steps still leaves the pipeline room (always
    without a budget): a widening must not spend what the tuning needs."""
    return spec.budget is None or spec.budget.steps >= _least_after_sweep(spec, spent + added)


def _least_after_sweep(spec: StudySpec, sweep_cost: int) -> int:
    """The least budget for a sweep costing ``sweep_cost`` and the pipeline after it at the
    shortest runs a budget buys, however long the sweep measures (at most its horizon)."""
    horizon = int(spec.steps_sweep.steps or 0)
    return least_total(spec, shortest_afforded(spec, horizon), sweep_cost)


def largest_where(low: int, high: int, holds: Callable[[int], bool]) -> int:
    """The largest point in [low, high] where ``holds``, which holds up to some point and
    not after it; ``low`` when none above it does (its own truth is not asked)."""
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if holds(middle) else (low, middle - 1)
    return low


def top_k_steps(spec: StudySpec, max_train_steps: int) -> tuple[int, ...]:
    """What each round after the first needs for its spec's top_k at its length."""
    return tuple(
        (spec.rounds[n - 1].top_k or 0) * spec.round_steps(n, max_train_steps)
        for n in range(2, len(spec.rounds) + 1)
    )


def later_round_shares(
    floors: tuple[int, ...], free: int, stages: int, round_one_minimum: int
) -> tuple[int, ...]:
    """Each longer round's share of ``free``: as much as each stage's round 1 gets (an equal
    split, as successive halving's rungs), at least its top_k's ``floors``, and never so
    much that round 1 falls below ``round_one_minimum``."""
    if not floors:
        return ()
    equal = free // (stages + len(floors))
    extra = [max(0, equal - floor) for floor in floors]
    room = max(0, free - round_one_minimum - sum(floors))
    scale = min(1.0, room / sum(extra)) if sum(extra) else 0.0
    return tuple(floor + int(e * scale) for floor, e in zip(floors, extra, strict=True))


def still_planned(
    spec: StudySpec, max_train_steps: int, after_round: int, sweep_steps: int | None
) -> int:
    """Steps the plan keeps for what follows ``after_round`` of the last tuning stage: the
    longer rounds after it (their budget shares, or their top_k without a budget) and the
    re-evaluation (what leftover must not eat into)."""
    if spec.budget is None:
        later = top_k_steps(spec, max_train_steps)
        return sum(later[after_round - 1 :]) + _reevaluation_reserve(spec, max_train_steps, None)
    plan = plan_budget(spec, max_train_steps, spec.budget.steps, sweep_steps)
    return sum(plan.later_rounds[after_round - 1 :]) + plan.reevaluation


def reevaluation_floor(spec: StudySpec) -> int:
    """The fewest periods a budgeted re-evaluation runs: two (a paired comparison needs
    two), or the spec's one."""
    return min(spec.reevaluation.periods, MIN_BUDGETED_PERIODS)


def _reevaluation_reserve(spec: StudySpec, max_train_steps: int, total: int | None) -> int:
    """What the plan keeps for the re-evaluation: half the spec's periods at full length
    (every run trains its whole schedule, where the recipe's stop is chosen), but no more
    periods than a fifth of the ``total`` budget buys, and at least the floor's. The
    re-evaluation sizes its periods to what is actually left (see `_reevaluation`), so
    steps the rounds did not need buy more periods. Reserving every period starved round
    1 (in the held-out benchmark, half of a quick run's budget went unspent); half of the
    default 12 periods took 60% of a 30-run budget, which the search needs more. Periods
    the spec lists are all reserved: the re-evaluation runs every one of them (reserving
    half of six listed periods overran a 40,000-step budget by 17%)."""
    design = spec.reevaluation
    if not design.enabled:
        return 0
    if spec.periods is not None and spec.periods.heldout is not None:
        # listed periods all run: none can be left out
        return reevaluation_steps(spec, design.periods, max_train_steps)
    periods = math.ceil(design.periods / 2)
    if total is not None:
        per_period = spec.reevaluation_candidates * design.seeds * max_train_steps
        share = int(REEVALUATION_MAX_SHARE * total) - reevaluation_steps(spec, 0, max_train_steps)
        periods = min(periods, share // per_period)
    return reevaluation_steps(spec, max(reevaluation_floor(spec), periods), max_train_steps)


def reevaluation_steps(spec: StudySpec, periods: int, max_train_steps: int) -> int:
    """What a re-evaluation on ``periods`` periods trains at most: every candidate on each
    with each seed, and the task's defaults once more on the tuning period, where the
    finalists' own tuning runs count (`defaults_tuning_run`; where they do not, the steps
    kept for it buy periods)."""
    runs = spec.reevaluation_candidates * spec.reevaluation.seeds * periods
    return (runs + int(spec.defaults_reevaluated)) * max_train_steps


def affordable_runs(
    spec: StudySpec, spent: int, plan: StudyPlan, after_round: int, steps: int
) -> int:
    """How many runs of ``steps`` the budget buys now, keeping what the plan (of the study
    ``plan`` belongs to) still needs after ``after_round`` (0 without a budget)."""
    total = plan.campaign_max_train_steps
    assert total is not None  # rounds run once max_train_steps is known
    reserved = still_planned(spec, total, after_round, plan.sweep_steps)
    return leftover(spec, spent, reserved) // steps


def leftover(spec: StudySpec, spent: int, reserved: int) -> int:
    """What the budget has left beyond ``reserved`` (0 without a budget): the steps a
    widening or baseline recheck did not need, and pruning saved, given to the next stage."""
    if spec.budget is None:
        return 0
    return max(0, spec.budget.steps - spent - reserved)


def sweep_reserve(spec: StudySpec) -> int:
    """The most the max_train_steps sweep can train: its grid and every widening (planned
    for a campaign stored before plans recorded what the sweep cost)."""
    if not spec.measures_max_train_steps:
        return 0
    sweep = spec.steps_sweep
    assert sweep.steps is not None  # validated with "auto"
    return (sweep.count + 2 * sweep.max_widenings) * sweep.steps


def trial_steps(trial: FrozenTrial, default_budget: int) -> int:
    """Training steps a trial has cost: what it trained (resumed steps not again); a
    running trial reserves its whole budget; a widened stage's copies cost nothing new."""
    attrs = trial.user_attrs
    if trial.state is TrialState.WAITING:
        return 0
    resumed = int(attrs.get(ATTR_RESUMED_FROM) or 0)
    if trial.state is TrialState.RUNNING:
        return int(attrs.get(ATTR_MAX_TRAIN_STEPS) or default_budget) - resumed
    done = attrs.get(ATTR_STEPS_DONE)
    if done is None:
        done = max(trial.intermediate_values, default=0)
    return max(0, int(done) - resumed)


def steps_trained(trial: FrozenTrial, default_budget: int) -> int:
    """The steps this trial trained itself, the number its ``steps_trained`` attribute
    records: `trial_steps`, but 0 for a widened stage's copy (its original trained them)."""
    return 0 if ATTR_CARRIED_FROM in trial.user_attrs else trial_steps(trial, default_budget)


def steps_spent(trials: Sequence[FrozenTrial], default_budget: int, carried: bool) -> int:
    """The steps a study's trials cost (``carried``: count a widened stage's copies too,
    the steps the stage spent before it widened); without, every step is counted once."""
    if carried:
        return sum(trial_steps(t, default_budget) for t in trials)
    return sum(steps_trained(t, default_budget) for t in trials)
