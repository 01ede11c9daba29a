"""A campaign's progress in words: the live line, fitted to the terminal, and the status table.

The line's parts are ranked: a narrow terminal gets their short forms, then loses the least
useful ones, so it never wraps. Its ETA is the whole campaign's: the steps still planned
(every stage not reached yet, and what is left of the current one) at the rate the steps
have been trained so far.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from autotune.campaign import Campaign
from autotune.campaign import CampaignStudy
from autotune.campaign import Progress
from autotune.campaign import Stage
from autotune.campaign import StudyPlan
from autotune.campaign._budget import BudgetPlan
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
    """Whether the campaign has nothing left to run: stopped, or its answer chosen."""
    return campaign.stopped is not None or campaign.recommendation() is not None


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
        runs = design.finalists * design.periods * design.seeds * max_train_steps
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
    """Steps still to train: the parts not reached yet and the current study's rest, never
    more than the budget has left."""
    left = current_left + sum(steps for key, steps in parts if key not in reached)
    return left if budget_left is None else min(left, budget_left)


def eta_seconds(steps_left: int | None, steps_trained: int, elapsed_s: float) -> float | None:
    """Time to train ``steps_left`` at the rate of the ``steps_trained`` in ``elapsed_s``;
    None until that rate means something."""
    if steps_left is None or steps_trained <= 0 or elapsed_s < MIN_ETA_ELAPSED_S:
        return None
    return steps_left * elapsed_s / steps_trained


@dataclass(frozen=True)
class CampaignSteps:
    """Steps trained so far and still to train (None: not known before the sweep, when no
    budget bounds them)."""

    spent: int
    left: int | None
    budget: int | None


def campaign_steps(campaign: Campaign) -> CampaignSteps:
    """The campaign's steps trained and left (reads every study's trials once)."""
    spec, steps = campaign.spec, campaign.max_train_steps
    spent_by_study = {
        s.name: steps_spent(campaign.trials_of(s), s.max_train_steps, carried=False)
        for s in campaign.studies
    }
    spent = sum(spent_by_study.values())
    budget = None if spec.budget is None else spec.budget.steps
    budget_left = None if budget is None else max(budget - spent, 0)
    if campaign_finished(campaign):
        return CampaignSteps(spent, 0, budget)
    if steps is None:  # the sweep has not measured max_train_steps yet
        return CampaignSteps(spent, budget_left, budget)
    current = campaign.current
    current_left = study_steps_left(
        campaign.progress(current), spent_by_study[current.name], current.plan
    )
    parts = planned_parts(spec, steps, campaign.budget_plan())
    reached = {part_key(s.plan) for s in campaign.studies}
    return CampaignSteps(
        spent, campaign_steps_left(parts, reached, current_left, budget_left), budget
    )


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
    done = p.complete + p.pruned
    counts = [f"running {p.running}", f"pruned {p.pruned}"]
    counts += [f"failed {p.failed}"] if p.failed else []
    steps = f"steps {state.steps.spent:,}"
    if state.steps.budget is not None:
        steps += f"/{state.steps.budget:,}"
    eta = format_duration(state.eta_s)
    return [
        LinePart(state.label, 10),
        LinePart(f"{done}/{p.budget} trials", 9),
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


def live_state(campaign: Campaign, elapsed_s: float, spent_at_start: int | None) -> LiveState:
    """The live line's state now; ``spent_at_start``: the steps trained before this watch
    began (a resumed campaign's earlier steps say nothing of this run's rate; None: this
    is the first look)."""
    study = campaign.current
    steps = campaign_steps(campaign)
    trained = 0 if spent_at_start is None else steps.spent - spent_at_start
    reevaluation = study.stage is Stage.REEVALUATION  # runs on different periods: no best
    return LiveState(
        stage_label(campaign.spec, study),
        campaign.progress(study),
        None if reevaluation else campaign.value_name(study),
        steps,
        elapsed_s,
        eta_seconds(steps.left, trained, elapsed_s),
    )


@dataclass(frozen=True)
class TableRow:
    """One study in the status table; ``unit`` follows a value that is not the metric."""

    name: str
    progress: Progress
    unit: str = ""


def progress_table(rows: Sequence[TableRow], metric: str) -> str:
    """A fixed-width table, one row per study (a sweep's best is in steps, and says so)."""
    header = ("study", "done/budget", "complete", "pruned", "failed", "running", "waiting")
    lines = [(*header, f"best {metric}")]
    for row in rows:
        p = row.progress
        best = "—" if p.best_value is None else f"{p.best_value:.5g}"
        best += "" if p.best_value is None or not row.unit else f" {row.unit}"
        best += "" if p.best_number is None else f" (#{p.best_number})"
        lines.append(
            (
                row.name,
                f"{p.complete + p.pruned}/{p.budget}",
                str(p.complete),
                str(p.pruned),
                str(p.failed),
                str(p.running),
                str(p.waiting),
                best,
            )
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in lines
    )
