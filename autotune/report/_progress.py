"""A campaign's progress in words: the live line, fitted to the terminal, and the status table.

The line's parts are ranked: a narrow terminal gets their short forms, then loses the least
useful ones, so it never wraps. Its ETA is the whole campaign's: the steps still planned
(every stage not reached yet, and what is left of the current one) at the rate the steps
have been trained so far.
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
from dataclasses import dataclass
import datetime

from autotune.campaign import Campaign
from autotune.campaign import CampaignStudy
from autotune.campaign import Progress
from autotune.campaign import Stage
from autotune.campaign import StudyPlan
from autotune.campaign import TransitionKind
from autotune.campaign import next_transition
from autotune.campaign import read_snapshot
from autotune.campaign._apply import max_retry
from autotune.campaign._budget import BudgetPlan
from autotune.campaign._budget import reevaluation_steps
from autotune.campaign._budget import steps_spent
from autotune.spec import StudySpec

SEPARATOR = " · "
ELLIPSIS = "…"
MIN_ETA_ELAPSED_S = 5.0  # a rate measured over less is mostly the running trials' reservation


@dataclass(frozen=True)
class LinePart:
    """One piece of a status line; ``priority``: higher is kept longer in a narrow terminal."""

    text: str
    priority: int
    short: str | None = None  # tried before the part is dropped


def fit_line(parts: Sequence[LinePart], width: int) -> str:
    """The parts joined, within ``width`` columns: the least important ones are shortened
    first, then dropped (the most important one never); a last resort cuts with "…"."""
    texts = [part.text for part in parts]
    kept = list(range(len(parts)))
    order = sorted(kept, key=lambda i: parts[i].priority)

    def joined() -> str:
        return SEPARATOR.join(texts[i] for i in kept)

    for index in order:
        if len(joined()) <= width:
            return joined()
        texts[index] = parts[index].short or texts[index]
    for index in order[:-1]:
        if len(joined()) <= width:
            return joined()
        kept.remove(index)
    line = joined()
    return line if len(line) <= width else line[: max(width - 1, 0)] + ELLIPSIS


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def format_best(progress: Progress, metric: str) -> str:
    if progress.best_value is None:
        return f"best {metric}: none yet"
    if progress.best_number is None:  # a re-evaluation: the answer's mean over its runs
        return f"answer's mean {metric} {progress.best_value:.5g}"
    return f"best {metric} {progress.best_value:.5g} (trial {progress.best_number})"


def stage_label(spec: StudySpec, study: CampaignStudy) -> str:
    """The study's place in the pipeline, with "/N" only where a stage has N > 1 rounds
    (only the last tuning stage has more than round 1) and the widening after it."""
    plan = study.plan
    if plan.stage is not Stage.JOINT:
        return study.label
    last = plan.stage_index == len(spec.tuning_stages) - 1
    rounds = len(spec.rounds) if last else 1
    number = f"{plan.round_number}/{rounds}" if rounds > 1 else str(plan.round_number)
    name = plan.study_component
    label = f"round {number}" if name == Stage.JOINT.value else f"{name} round {number}"
    return f"{label} (widened {plan.widening}x)" if plan.widening else label


def campaign_finished(campaign: Campaign) -> bool:
    """Whether the campaign has nothing left to do (stopped, or its answer chosen), as the
    workers decide it: an answer chosen before the spec grew (an extended campaign) is not
    the end, and neither is a last study whose decision is still to be recorded."""
    if campaign.stopped is None and campaign.recommendation() is None:
        return False  # the cheap answer, most of the time
    snapshot = read_snapshot(
        campaign.storage, campaign.name, datetime.date.today(), max_retry(campaign.storage)
    )
    return snapshot is None or next_transition(snapshot).kind is TransitionKind.FINISHED


# -- the whole campaign's ETA ------------------------------------------------------------

PartKey = tuple[Stage, int, int]
"""A planned part of the pipeline: stage kind, tuning stage, round (widenings included)."""


def part_key(plan: StudyPlan) -> PartKey:
    if plan.stage is Stage.JOINT:
        return plan.stage, plan.stage_index, plan.round_number
    return plan.stage, 0, 0


def planned_parts(
    spec: StudySpec, max_train_steps: int, budget: BudgetPlan | None
) -> list[tuple[PartKey, int]]:
    """The steps each part of the pipeline after the sweep is planned to train: its share
    of the budget plan, else its trials at full length (an upper bound: pruning saves)."""
    parts: list[tuple[PartKey, int]] = []
    first = spec.round_steps(1, max_train_steps)
    if spec.baseline:
        parts.append(((Stage.BASELINE, 0, 0), first))
    stages = spec.tuning_stages
    for index, stage in enumerate(stages):
        share = budget.round_one[index] if budget else spec.stage_trials(stage) * first
        parts.append(((Stage.JOINT, index, 1), share))
    for number, later in enumerate(spec.rounds[1:], 2):
        steps = (later.top_k or 0) * spec.round_steps(number, max_train_steps)
        parts.append(((Stage.JOINT, len(stages) - 1, number), steps))
    design = spec.reevaluation
    if design.enabled:
        runs = reevaluation_steps(spec, design.periods, max_train_steps)
        parts.append(((Stage.REEVALUATION, 0, 0), budget.reevaluation if budget else runs))
    return parts


def study_steps_left(progress: Progress, spent: int, plan: StudyPlan) -> int:
    """What the current study will still train: its step share's rest when it samples up
    to one, else its trials not started at the cost of those started so far."""
    if plan.step_budget is not None:
        return max(plan.step_budget - spent, 0)
    started = progress.complete + progress.pruned + progress.running
    per_trial = spent / started if started and spent else plan.max_train_steps
    return round(max(progress.budget - started, 0) * per_trial)


def campaign_steps_left(
    parts: Sequence[tuple[PartKey, int]],
    reached: set[PartKey],
    current_left: int,
    budget_left: int | None,
) -> int:
    """Steps still to train: the parts not reached yet and the current study's rest. Under a
    budget, what the budget has left while later stages remain: each takes what the ones
    before did not need (more promotions, up to three times the periods), so the plan's
    shares undercount them and the ETA jumped when the re-evaluation grew; in the last
    stage, its own rest."""
    later = [steps for key, steps in parts if key not in reached]
    if budget_left is None:
        return current_left + sum(later)
    return budget_left if later else min(current_left, budget_left)


@dataclass(frozen=True)
class StepRate:
    """The rate finished trials add steps at, measured from the first trial that finished
    while watching: the workers' start-up (seconds of imports) and a resumed campaign's
    earlier steps are not in it, nor the steps running trials have only reserved."""

    since_s: float
    since_steps: int
    now_s: float
    now_steps: int
    moved: bool = False  # a trial has finished since watching began

    @classmethod
    def start(cls, now_s: float, finished_steps: int) -> StepRate:
        return cls(now_s, finished_steps, now_s, finished_steps)

    def seen(self, now_s: float, finished_steps: int) -> StepRate:
        if not self.moved and finished_steps > self.since_steps:  # the rate starts here
            return StepRate(now_s, finished_steps, now_s, finished_steps, moved=True)
        return dataclasses.replace(self, now_s=now_s, now_steps=finished_steps)

    def eta_seconds(self, steps_left: int | None) -> float | None:
        """Time to train ``steps_left`` at this rate; None until it means something."""
        trained, elapsed = self.now_steps - self.since_steps, self.now_s - self.since_s
        if steps_left is None or trained <= 0 or elapsed < MIN_ETA_ELAPSED_S:
            return None
        return steps_left * elapsed / trained


@dataclass(frozen=True)
class CampaignSteps:
    """Steps trained so far and still to train (None: not known before the sweep, when no
    budget bounds them)."""

    spent: int  # running trials count their whole length (it is reserved)
    left: int | None
    budget: int | None
    finished: int = 0  # the finished trials' steps only: what a rate is measured on


def campaign_steps(campaign: Campaign) -> CampaignSteps:
    """The campaign's steps trained and left (reads every study's trials once)."""
    spec, steps = campaign.spec, campaign.max_train_steps
    spent_by_study, finished = {}, 0
    for study in campaign.studies:
        trials = campaign.trials_of(study)
        spent_by_study[study.name] = steps_spent(trials, study.max_train_steps, carried=False)
        done = [t for t in trials if t.state.is_finished()]
        finished += steps_spent(done, study.max_train_steps, carried=False)
    spent = sum(spent_by_study.values())
    budget = None if spec.budget is None else spec.budget.steps
    budget_left = None if budget is None else max(budget - spent, 0)
    if campaign_finished(campaign):
        return CampaignSteps(spent, 0, budget, finished)
    if steps is None:  # the sweep has not measured max_train_steps yet
        return CampaignSteps(spent, budget_left, budget, finished)
    current = campaign.current
    current_left = study_steps_left(
        campaign.progress(current), spent_by_study[current.name], current.plan
    )
    parts = planned_parts(spec, steps, campaign.budget_plan())
    reached = {part_key(s.plan) for s in campaign.studies}
    left = campaign_steps_left(parts, reached, current_left, budget_left)
    return CampaignSteps(spent, left, budget, finished)


# -- the lines ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveState:
    """What the live line shows: the current study's progress and the campaign's steps."""

    label: str
    progress: Progress
    value_name: str | None  # None: no best to show (a re-evaluation's runs)
    steps: CampaignSteps
    elapsed_s: float
    eta_s: float | None


def live_parts(state: LiveState) -> list[LinePart]:
    """The live line of a campaign, most important first in ``priority``."""
    p = state.progress
    counts = [f"running {p.running}", f"pruned {p.pruned}"]
    counts += [f"failed {p.failed}"] if p.failed else []
    steps = f"steps {state.steps.spent:,}"
    if state.steps.budget is not None:
        steps += f"/{state.steps.budget:,}"
    eta = format_duration(state.eta_s)
    return [
        LinePart(state.label, 10),
        LinePart(f"{p.trials_text} trials", 9),
        LinePart(", ".join(counts), 4, short=f"{p.pruned} pruned"),
        *_best_part(p, state.value_name),
        LinePart(steps, 3),
        LinePart(f"elapsed {format_duration(state.elapsed_s)}", 2),
        LinePart(f"campaign ETA {eta}", 8, short=f"ETA {eta}"),
    ]


def _best_part(progress: Progress, value_name: str | None) -> list[LinePart]:
    if value_name is None:
        return []
    best = format_best(progress, value_name)
    if progress.best_value is None:
        return [LinePart(best, 7)]
    return [LinePart(best, 7, short=f"best {value_name} {progress.best_value:.4g}")]


def live_state(
    campaign: Campaign, now_s: float, started_s: float, rate: StepRate | None
) -> tuple[LiveState, StepRate]:
    """The live line's state at ``now_s`` (monotonic seconds) of a watch begun at
    ``started_s``, and the step rate updated (``rate`` None: the first look)."""
    study = campaign.current
    steps = campaign_steps(campaign)
    if rate is None:
        rate = StepRate.start(now_s, steps.finished)
    else:
        rate = rate.seen(now_s, steps.finished)
    reevaluation = study.stage is Stage.REEVALUATION  # runs on different periods: no best
    state = LiveState(
        stage_label(campaign.spec, study),
        campaign.progress(study),
        None if reevaluation else campaign.value_name(study),
        steps,
        now_s - started_s,
        rate.eta_seconds(steps.left),
    )
    return state, rate


@dataclass(frozen=True)
class TableRow:
    """One study in the status table; ``unit`` follows a value that is not the metric."""

    name: str
    steps: int  # the trials' max_train_steps
    progress: Progress
    unit: str = ""


OPTIONAL_COLUMNS = ("failed", "running", "waiting")  # shown only where a study has some


def progress_table(rows: Sequence[TableRow], metric: str) -> str:
    """A fixed-width table, one row per study (a sweep's best is in steps, and says so);
    columns of zeros only are left out, so a finished campaign's fits 80 columns."""
    header = ("study", "steps", "done", "complete", "pruned", *OPTIONAL_COLUMNS)
    lines = [(*header, f"best {metric}")]
    for row in rows:
        p = row.progress
        best = "—" if p.best_value is None else f"{p.best_value:.5g}"
        best += "" if p.best_value is None or not row.unit else f" {row.unit}"
        best += "" if p.best_number is None else f" (#{p.best_number})"
        counts = (p.complete, p.pruned, p.failed, p.running, p.waiting)
        lines.append((row.name, str(row.steps), p.trials_text, *map(str, counts), best))
    shown = [
        i
        for i, name in enumerate(lines[0])
        if name not in OPTIONAL_COLUMNS or any(line[i] != "0" for line in lines[1:])
    ]
    widths = {i: max(len(line[i]) for line in lines) for i in shown}
    return "\n".join("  ".join(line[i].ljust(widths[i]) for i in shown).rstrip() for line in lines)
