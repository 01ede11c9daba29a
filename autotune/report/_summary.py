"""A campaign in words: the planned pipeline, and each stage's outcome so far."""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
import math
import operator

from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from autotune.analysis import TEST_LABELS
from autotune.analysis import BestStepAnalysis
from autotune.analysis import RankAgreement
from autotune.analysis import StepRecommendation
from autotune.analysis import min_pairs_to_reach
from autotune.analysis import stable_points
from autotune.campaign import BaselineOutcome
from autotune.campaign import Campaign
from autotune.campaign import CampaignStudy
from autotune.campaign import Progress
from autotune.campaign import Stage
from autotune.campaign import on_tuning_period
from autotune.campaign import sweep_points
from autotune.campaign._budget import reevaluation_floor
from autotune.campaign._reevaluation import MAX_PERIOD_FACTOR
from autotune.campaign._trial_attrs import ATTR_MAX_TRAIN_STEPS
from autotune.campaign._trial_attrs import ATTR_PARENT_STUDY
from autotune.campaign._trial_attrs import ATTR_PARENT_TRIAL
from autotune.campaign._trial_attrs import ATTR_RECOVERY_ERROR
from autotune.campaign._trial_attrs import ATTR_RESUME
from autotune.campaign._trial_attrs import ATTR_RESUMED_FROM
from autotune.report._answer import answer_lines
from autotune.report._coordination import coordination_lines
from autotune.report._coordination import coordination_of
from autotune.report._failures import failure_lines
from autotune.report._progress import TableRow
from autotune.report._progress import format_best
from autotune.report._progress import progress_table
from autotune.spec import Direction
from autotune.spec import StudySpec
from autotune.storage import CheckpointRef


def pipeline_text(spec: StudySpec, most_periods: int | None = None) -> str:
    """The stages a spec runs, e.g. "baseline; round 1: 60 trials x 150 steps; ..."
    (``most_periods`` as for `pipeline_parts`)."""
    return "; ".join(pipeline_parts(spec, most_periods))


def pipeline_parts(spec: StudySpec, most_periods: int | None = None) -> list[str]:
    """The stages a spec runs, one phrase each (one line each where lines are short);
    ``most_periods``: the most re-evaluation periods the campaign's task gives."""
    parts = []
    if spec.measures_max_train_steps:
        sweep = spec.steps_sweep
        parts.append(
            f"max_train_steps measured by a sweep of {sweep.count} learning rates "
            f"x up to {sweep.steps} steps"
        )
        rounds = [f"{r.budget_fraction:g} of it" for r in spec.rounds]
    else:
        rounds = [f"{spec.round_steps(n)} steps" for n in range(1, len(spec.rounds) + 1)]
    if spec.baseline:
        parts.append("baseline")
    stages = spec.tuning_stages
    if len(stages) > 1:
        parts += [
            f"stage {stage.label}: {_round_one(spec, spec.stage_trials(stage), rounds[0])}"
            for stage in stages[:-1]
        ]
    last = stages[-1] if len(stages) > 1 else None
    prefix = f"stage {last.label} " if last else ""
    trials = spec.stage_trials(last) if last else spec.trials
    parts.append(f"{prefix}round 1: {_round_one(spec, trials, rounds[0])}")
    parts += [
        f"round {n}: {_promoted(spec, r.top_k)} x {rounds[n - 1]}"
        for n, r in enumerate(spec.rounds[1:], 2)
    ]
    if spec.fast_mode.enabled:
        parts.append(f"fast mode: round 1 on the last {spec.fast_mode.train_fraction:.0%} of rows")
    if spec.reevaluation.enabled:
        design = spec.reevaluation
        beside = (
            " and the task's defaults" if spec.reevaluation_candidates > design.finalists else ""
        )
        parts.append(
            f"re-evaluation: {design.finalists} finalists{beside} x "
            f"{_periods(spec, most_periods)} x {design.seeds} seed(s)"
            f"{_too_few_runs(spec, most_periods)}"
        )
    return parts


# With a budget the trials, promotions and periods are sized by the plan once the steps are
# known (docs/method.md §13): the header says how, not the spec's nominal counts.


def _round_one(spec: StudySpec, trials: int, length: str) -> str:
    if spec.budget is None:
        return f"{trials} trials x {length}"
    sized = f"trials of {length}, sampled while its share of the budget lasts"
    if spec.measures_max_train_steps:
        return sized  # measured: the budget sizes the runs' length to the trials
    return f"{sized} (under a budget the spec's {trials} trials are no cap)"


def _promoted(spec: StudySpec, top_k: int | None) -> str:
    if spec.budget is None:
        return f"top {top_k}"
    return f"the best (at least {top_k}, as many as its share buys)"


def _periods(spec: StudySpec, gives: int | None) -> str:
    """How many periods the re-evaluation runs, as the campaign sizes them (its task may
    give fewer than the spec's default 12 or a budget's 3x: it said "2-36" of a task that
    gives 10)."""
    most = _most_periods(spec, gives)
    listed = spec.periods is not None and spec.periods.heldout is not None
    if listed or spec.budget is None:
        return f"{most} periods"
    capped = "" if gives is None else f"; the task gives {gives}"
    return f"{min(reevaluation_floor(spec), most)}-{most} periods (what the budget leaves{capped})"


def _most_periods(spec: StudySpec, gives: int | None) -> int:
    """The most periods the re-evaluation can run: the listed ones, else the spec's (up to
    3x with a budget), no more than the task gives."""
    design = spec.reevaluation
    if spec.periods is not None and spec.periods.heldout is not None:
        return design.periods
    most = design.periods if spec.budget is None else MAX_PERIOD_FACTOR * design.periods
    return most if gives is None else min(most, gives)


def _too_few_runs(spec: StudySpec, gives: int | None) -> str:
    """A warning when the re-evaluation can never tell its finalists apart, whatever the
    results: its test needs a number of pairs (7 for the default design) that fewer runs
    per finalist cannot reach. Said before the budget is spent, not only in the verdict."""
    design = spec.reevaluation
    runs = _most_periods(spec, gives) * design.seeds + 1  # at most: its tuning run counts
    needed = min_pairs_to_reach(design.alpha, design.test, spec.reevaluation_candidates - 1)
    if runs >= needed:
        return ""
    return (
        f" (WARNING: at most {runs} runs per finalist, and the {TEST_LABELS[design.test]} "
        f"test needs {needed} to tell {spec.reevaluation_candidates} candidates apart at "
        f"alpha={design.alpha:g}: the answer will be the best mean, never a significant "
        "one; more periods, or fewer finalists, would let it tell)"
    )


def study_lines(campaign: Campaign, study: CampaignStudy) -> list[str]:
    """What a finished stage decided: the sweep's steps, the baseline verdict, best steps."""
    facts, lines = study.facts, []
    if facts.sweep is not None:
        lines.append(f"max_train_steps: {facts.sweep.reason}")
    if facts.baseline is not None:
        lines.append(baseline_line(campaign, study, facts.baseline))
    if facts.significance is not None:
        lines += [f"re-evaluation: {line}" for line in facts.significance.summary]
    if facts.rank_agreement is not None:
        lines.append(agreement_line(campaign, facts.rank_agreement))
    if study.stage is Stage.JOINT:
        lines += _round_lines(campaign, study)
    return lines


def _round_lines(campaign: Campaign, study: CampaignStudy) -> list[str]:
    facts, label = study.facts, study.label
    lines = []
    if facts.boundaries is not None:
        lines += [f"{label} bounds: {finding.message}" for finding in facts.boundaries.hits]
    if facts.skipped is not None:
        lines.append(facts.skipped.reason)
    versus = _versus_baseline(campaign, study)
    if versus:
        lines.append(versus)
    if facts.step_advice is not None:
        lines.append(f"{label} steps: {facts.step_advice.note}")
    if facts.horizon is not None:
        lines.append(f"{label} short vs long runs: {facts.horizon.message}")
    lines.append(
        best_steps_line(
            label, campaign.best_steps(study), study.max_train_steps, campaign.max_train_steps
        )
    )
    saved = steps_saved(campaign, study)
    if saved:
        lines.append(
            f"{label}: {saved} training steps saved by resuming promoted trials from their "
            "parents' checkpoints"
        )
    return lines


def best_steps_line(label: str, analysis: BestStepAnalysis, steps: int, total: int | None) -> str:
    """Where a round's trials peaked, as a sentence: the analysis's reason speaks of the
    round's own budget, which a shortened round says it is (the last round trains more)."""
    if total is None or steps >= total:
        return f"{label} best steps: {analysis.reason}"
    line = f"{label} best steps of its {steps}-step budget: {analysis.reason}"
    if analysis.recommendation is StepRecommendation.MORE:
        line += f" (the last round trains {total} steps)"
    return line


def baseline_line(campaign: Campaign, study: CampaignStudy, outcome: BaselineOutcome) -> str:
    """The baseline's verdict; one that lost at round 1's length and was rechecked at the
    full one says so in numbers, not as a broken pipeline (the recheck's line follows)."""
    steps = study.max_train_steps
    rechecked = any(
        s.round_number > study.round_number for s in campaign.stage_studies(Stage.BASELINE)
    )
    if outcome.passed or not rechecked or None in (outcome.value, outcome.trivial_value):
        return f"baseline at {steps} steps: {outcome.message}"
    metric = campaign.spec.metric.name
    return (
        f"baseline at {steps} steps: {metric} {outcome.value:g} does not beat the trivial "
        f"predictor's {outcome.trivial_value:g}; rechecked at the full length (below)"
    )


def _versus_baseline(campaign: Campaign, study: CampaignStudy) -> str | None:
    """The round's best value against the baseline's, the reference of every stage: its
    run at the round's length where there is one (a full-length recheck), else the longest
    shorter one, named with its steps (a 1,000-step round read "-1.5%" against a 250-step
    baseline, "-0.4%" at equal steps)."""
    baseline = baseline_at_length(campaign, study.max_train_steps)
    best = campaign.progress(study).best_value
    if baseline is None or best is None:
        return None
    steps, reference = baseline
    at = "" if steps == study.max_train_steps else f" at {steps} steps"
    change = "" if reference == 0 else f" ({(best - reference) / abs(reference):+.1%})"
    metric = campaign.spec.metric.name
    return f"{study.label} best {metric} {best:.5g} vs baseline {reference:.5g}{at}{change}"


def baseline_at_length(campaign: Campaign, steps: int) -> tuple[int, float] | None:
    """The baseline run to compare runs of ``steps`` with, as (its steps, its value): the
    longest at or below ``steps`` (a full-length recheck, or the task's defaults' run on
    the tuning period in the re-evaluation, where one ran), else the shortest; None before
    any baseline value. A 330-step round read "-36.2%" against an 80-step baseline, where
    the defaults at 330 steps were within 2% of it."""
    runs = [
        (s.max_train_steps, s.facts.baseline.value)
        for s in campaign.stage_studies(Stage.BASELINE)
        if s.facts.baseline is not None and s.facts.baseline.value is not None
    ]
    runs += _defaults_on_the_tuning_period(campaign)
    if not runs:
        return None
    shorter = [run for run in runs if run[0] <= steps]
    steps_of = operator.itemgetter(0)  # of equal lengths, the first: the baseline's own run
    return max(shorter, key=steps_of) if shorter else min(runs, key=steps_of)


def _defaults_on_the_tuning_period(campaign: Campaign) -> list[tuple[int, float]]:
    """The re-evaluation's runs of the task's defaults on the tuning period, as (steps, best
    value): a baseline run at the full length, valued as tuning runs are (their best)."""
    best = max if campaign.spec.metric.direction is Direction.MAXIMIZE else min
    return [
        (int(t.user_attrs[ATTR_MAX_TRAIN_STEPS]), float(best(t.intermediate_values.values())))
        for study in campaign.stage_studies(Stage.REEVALUATION)
        for t in campaign.trials_of(study)
        if t.state is TrialState.COMPLETE
        and t.intermediate_values
        and on_tuning_period(t)
        and ATTR_MAX_TRAIN_STEPS in t.user_attrs
    ]


def steps_saved(campaign: Campaign, study: CampaignStudy) -> int:
    """Training steps promoted trials did not re-run because they resumed a checkpoint."""
    return steps_saved_by_promotion(campaign.trials_of(study))


def steps_saved_by_promotion(trials: Sequence[FrozenTrial]) -> int:
    """The parent's checkpoint step, once per promoted configuration that resumed from it.

    A retry inherits its configuration's parent checkpoint and resumes from its own
    recovery checkpoint instead: those steps were trained (and counted) by the attempt
    before it, and a recovery checkpoint of a resumed run already holds the parent's steps.
    """
    saved: dict[tuple[object, object], int] = {}
    for trial in trials:
        attrs = trial.user_attrs
        parent = CheckpointRef.from_attr(attrs.get(ATTR_RESUME))
        resumed = int(attrs.get(ATTR_RESUMED_FROM) or 0)
        if parent is not None and resumed >= parent.step:
            saved[attrs.get(ATTR_PARENT_STUDY), attrs.get(ATTR_PARENT_TRIAL)] = parent.step
    return sum(saved.values())


def campaign_lines(campaign: Campaign) -> list[str]:
    """Every stage's decisions, then why the campaign stopped if it did."""
    lines = [line for study in campaign.studies for line in study_lines(campaign, study)]
    if campaign.stopped is not None:
        lines.append(f"STOPPED: {campaign.stopped}")
    return lines


def _interrupted(progress: Progress) -> str:
    """Trials a worker stopped: each retried by a copy, so counted apart from failures."""
    count = progress.interrupted
    return f", {count} interrupted and retried" if count else ""


def _out_of(progress: Progress) -> str:
    """What the counts are out of: the study's trials, or its share of the step budget (a
    widened study's carried copies named apart: they ran in the study it widens)."""
    carried = f", and {progress.carried} carried over" if progress.carried else ""
    if progress.step_share is None:
        return f"of {progress.budget}{carried}"
    return f"within its share of {progress.step_share:,} steps{carried}"


def run_summary(campaign: Campaign, autotune: str = "autotune", where: str = "") -> list[str]:
    """The end of ``autotune run``: every study's counts, the decisions, the best trial
    (``autotune``, ``where``: how the reader calls the command in the hints)."""
    spec = campaign.spec
    lines = [f"campaign {spec.name}:"]
    for study in campaign.studies:
        progress = study_progress(campaign, study)
        lines.append(
            f"  {study.label}, {study.max_train_steps} steps: "
            f"{progress.complete} complete, {progress.pruned} pruned, {progress.failed} failed"
            f"{_interrupted(progress)} {_out_of(progress)}; "
            f"{format_best(progress, campaign.value_name(study))}"
        )
    rounds_run = len(campaign.stage_studies(Stage.JOINT))
    if campaign.stopped is None and rounds_run < len(spec.rounds):
        missing = len(spec.rounds) - rounds_run
        lines.append(f"  {missing} round(s) not reached (no completed trial to promote?)")
    lines += [f"  {line}" for line in (*budget_lines(campaign), *campaign_lines(campaign))]
    failures = failure_lines(spec.name, campaign.failures(), autotune, where)
    lines += [f"  {line}" for line in failures]
    answer = answer_lines(campaign, autotune, where)
    best = campaign.best()
    if answer:
        lines += answer
    elif best is not None:
        trial = f"{best.study} #{best.trial_number}"
        lines.append(
            f"best so far: {spec.metric.name} {best.value:.5g} ({trial}); no recommendation yet"
        )
    return lines


def study_progress(campaign: Campaign, study: CampaignStudy) -> Progress:
    """A study's progress as people should read it: a re-evaluation's runs are on different
    periods, so their minimum means nothing; its best is the answer's mean, once chosen. A
    sweep's best is the rate its decision took, once taken: without a fit threshold a rate
    that levels off early but too high is no fit, so the fewest steps may not be it."""
    progress = campaign.progress(study)
    if study.stage is Stage.STEPS_SWEEP:
        return _sweep_progress(campaign, study, progress)
    if study.stage is not Stage.REEVALUATION:
        return progress
    answer = study.facts.recommendation
    value = None if answer is None else answer.value
    return dataclasses.replace(progress, best_value=value, best_number=None)


def _sweep_progress(campaign: Campaign, study: CampaignStudy, progress: Progress) -> Progress:
    decisions = [s.facts.sweep for s in campaign.stage_studies(Stage.STEPS_SWEEP)]
    rate = next((d.fastest_learning_rate for d in decisions if d is not None), None)
    if rate is None:  # not decided (or none fitted): the fastest that counts as fitted
        return _fastest_stable(campaign, study, progress)
    chosen = [
        t
        for t in campaign.trials_of(study, states=(TrialState.COMPLETE,))
        if t.params.get("learning_rate") == rate
    ]
    if not chosen:  # the rate is another sweep study's (a widening's)
        return dataclasses.replace(progress, best_value=None, best_number=None)
    steps = chosen[0].value
    if steps is None or not math.isfinite(steps):  # still falling at N: it trains N
        steps = float(study.max_train_steps)
    return dataclasses.replace(progress, best_value=steps, best_number=chosen[0].number)


def _fastest_stable(campaign: Campaign, study: CampaignStudy, progress: Progress) -> Progress:
    """The fewest steps to fit among the rates that count as fitted so far: a rate levelling
    off far above the lowest loss is none (the row said "best 120" beside "no rate fitted")."""
    trials = campaign.trials_of(study, states=(TrialState.COMPLETE,))
    stable = stable_points(sweep_points(trials, study.max_train_steps))
    if not stable:
        return dataclasses.replace(progress, best_value=None, best_number=None)
    fastest = min(stable, key=lambda p: (p.steps_to_fit, p.learning_rate))
    rate, steps = fastest.learning_rate, float(fastest.steps_to_fit or 0)
    number = next(t.number for t in trials if t.params.get("learning_rate") == rate)
    return dataclasses.replace(progress, best_value=steps, best_number=number)


def status_lines(
    campaign: Campaign,
    autotune: str = "autotune",
    round_trip_ms: float | None = None,
    where: str = "",
) -> list[str]:
    """``autotune status NAME``: the plan, a row per study, the decisions, the answer
    (``autotune``, ``where``: how the reader calls the command in the hints;
    ``round_trip_ms``: the storage's latency as measured by the caller, shown while workers
    run)."""
    spec = campaign.spec
    rows = [
        TableRow(
            study.name,
            study.max_train_steps,
            study_progress(campaign, study),
            "steps" if study.stage is Stage.STEPS_SWEEP else "",  # to fit, not the metric
        )
        for study in campaign.studies
    ]
    head = "\n".join(
        [
            f"campaign {spec.name}: task {spec.task}, {spec.metric.direction.value} "
            f"{spec.metric.name}",
            *(f"  {part}" for part in pipeline_parts(spec, campaign.task_defaults.most_periods)),
        ]
    )
    table = progress_table(rows, spec.metric.name)
    return [
        head,
        table,
        *budget_lines(campaign),
        *campaign_lines(campaign),
        *worker_lines(campaign, round_trip_ms),
        *failure_lines(spec.name, campaign.failures(), autotune, where),
        *recovery_lines(campaign),
        *answer_lines(campaign, autotune, where),
    ]


def worker_lines(campaign: Campaign, round_trip_ms: float | None) -> list[str]:
    """While workers run the latest study: how long they wait for a trial, the storage's
    round trip, and a warning when either slows the campaign (see `coordination_lines`)."""
    trials = campaign.trials_of(campaign.current)
    if not any(t.state is TrialState.RUNNING for t in trials):
        return []
    return coordination_lines(coordination_of(campaign.current.name, trials), round_trip_ms)


def recovery_lines(campaign: Campaign) -> list[str]:
    """A warning when trials could not write their recovery checkpoints (a full or
    read-only artifact store): killed, they restart from scratch."""
    failed = [
        (study.name, t.number, t.user_attrs[ATTR_RECOVERY_ERROR])
        for study in campaign.studies
        for t in campaign.trials_of(study)
        if ATTR_RECOVERY_ERROR in t.user_attrs
    ]
    if not failed:
        return []
    study, number, reason = failed[-1]
    return [
        f"WARNING: recovery checkpoints are failing: {len(failed)} trial(s) could not write "
        f"one (latest: trial {number} of {study}, {reason}); a killed run restarts from "
        "scratch: check the artifact store's space and permissions (--artifacts)"
    ]


def budget_lines(campaign: Campaign) -> list[str]:
    """Steps trained (one number, every campaign), against the total budget if there is one,
    and how the budget was shared out."""
    budget = campaign.spec.budget
    spent = campaign.steps_spent()
    if budget is None:
        return [f"steps trained: {spent:,} (no total budget set)"]
    lines = [f"steps trained: {spent:,} of the {budget.steps:,}-step budget"]
    plan = campaign.budget_plan()
    return lines + (
        plan.lines()
        if plan is not None
        else ["  (planned once the sweep has measured max_train_steps)"]
    )


def agreement_line(campaign: Campaign, agreement: RankAgreement) -> str:
    """Whether round 1's short runs ranked the finalists as their full re-evaluation did,
    with the knob that acts on it."""
    if campaign.spec.fast_mode.enabled:
        return f"fast mode: {agreement.message}"
    if agreement.agrees:
        return f"short round 1: {agreement.message.replace('fast-mode', 'round-1')}"
    return (
        f"short round 1: round-1 ranks do not reliably agree with full runs (Spearman "
        f"rho={agreement.rho:.2g} over {agreement.n} finalists, p={agreement.p_value:.2g}): "
        "lengthen round 1 (rounds[0].budget_fraction) or promote more (top_k)"
    )
