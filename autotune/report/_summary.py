"""A campaign in words: the planned pipeline, and each stage's outcome so far."""

from __future__ import annotations

import optuna

from autotune.campaign._campaign import Campaign
from autotune.campaign._campaign import Stage
from autotune.campaign._pipeline import ATTR_BASELINE
from autotune.campaign._pipeline import ATTR_STEP_ADVICE
from autotune.campaign._pipeline import ATTR_SWEEP_DECISION
from autotune.campaign._reevaluation import ATTR_RANK_AGREEMENT
from autotune.campaign._reevaluation import ATTR_SIGNIFICANCE
from autotune.campaign._reevaluation import ATTR_SKIPPED
from autotune.campaign._staging import ATTR_BOUNDARIES
from autotune.spec import StudySpec
from autotune.worker._objectives import ATTR_RESUMED_FROM


def pipeline_text(spec: StudySpec) -> str:
    """The stages a spec runs, e.g. "baseline; round 1: 60 trials x 150 steps; ..."."""
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
            f"stage {stage.label}: {spec.stage_trials(stage)} trials x {rounds[0]}"
            for stage in stages[:-1]
        ]
    last = stages[-1] if len(stages) > 1 else None
    prefix = f"stage {last.label} " if last else ""
    trials = spec.stage_trials(last) if last else spec.trials
    parts.append(f"{prefix}round 1: {trials} trials x {rounds[0]}")
    parts += [
        f"round {n}: top {r.top_k} x {rounds[n - 1]}" for n, r in enumerate(spec.rounds[1:], 2)
    ]
    if spec.fast_mode.enabled:
        parts.append(f"fast mode: round 1 on the last {spec.fast_mode.train_fraction:.0%} of rows")
    if spec.reevaluation.enabled:
        design = spec.reevaluation
        parts.append(
            f"re-evaluation: {design.finalists} finalists x {design.periods} periods x "
            f"{design.seeds} seed(s)"
        )
    return "; ".join(parts)


def study_lines(campaign: Campaign, study: optuna.Study) -> list[str]:
    """What a finished stage decided: the sweep's steps, the baseline verdict, best steps."""
    attrs, stage = study.user_attrs, Campaign.stage_of(study)
    lines = []
    if stage is Stage.STEPS_SWEEP and ATTR_SWEEP_DECISION in attrs:
        lines.append(f"max_train_steps: {attrs[ATTR_SWEEP_DECISION]['reason']}")
    if stage is Stage.BASELINE and ATTR_BASELINE in attrs:
        lines.append(f"baseline: {attrs[ATTR_BASELINE]['message']}")
    if stage is Stage.REEVALUATION:
        significance = attrs.get(ATTR_SIGNIFICANCE) or {}
        lines += [f"re-evaluation: {line}" for line in significance.get("summary", [])]
        agreement = attrs.get(ATTR_RANK_AGREEMENT)
        if agreement is not None:
            lines.append(f"fast mode: {agreement['message']}")
    if stage is Stage.JOINT:
        lines += [
            f"{Campaign.label_of(study)} bounds: {record['message']}"
            for record in attrs.get(ATTR_BOUNDARIES) or []
            if record.get("hit")
        ]
        if ATTR_SKIPPED in attrs:
            lines.append(attrs[ATTR_SKIPPED])
        versus = _versus_baseline(campaign, study)
        if versus:
            lines.append(versus)
        if ATTR_STEP_ADVICE in attrs:
            lines.append(f"{Campaign.label_of(study)} steps: {attrs[ATTR_STEP_ADVICE]}")
        analysis = campaign.best_steps(study)
        steps, total = Campaign.steps_of(study), campaign.max_train_steps
        shortened = "" if total is None or steps >= total else f" of its {steps}-step budget"
        lines.append(
            f"{Campaign.label_of(study)} best steps{shortened}: "
            f"{analysis.recommendation.value} — {analysis.reason}"
        )
        saved = steps_saved(study)
        if saved:
            lines.append(
                f"{Campaign.label_of(study)}: {saved} training steps saved by resuming "
                "promoted trials from their parents' checkpoints"
            )
    return lines


def _versus_baseline(campaign: Campaign, study: optuna.Study) -> str | None:
    """The round's best value against the baseline's, the reference of every stage."""
    baselines = campaign.stage_studies(Stage.BASELINE)
    outcome = baselines[0].user_attrs.get(ATTR_BASELINE) if baselines else None
    best = campaign.progress(study).best_value
    if outcome is None or outcome.get("value") is None or best is None:
        return None
    metric, reference = campaign.spec.metric.name, outcome["value"]
    change = "" if reference == 0 else f" ({(best - reference) / abs(reference):+.1%})"
    label = Campaign.label_of(study)
    return f"{label} best {metric} {best:.5g} vs baseline {reference:.5g}{change}"


def steps_saved(study: optuna.Study) -> int:
    """Training steps promoted trials did not re-run because they resumed a checkpoint."""
    return sum(
        int(t.user_attrs.get(ATTR_RESUMED_FROM) or 0) for t in study.get_trials(deepcopy=False)
    )


def campaign_lines(campaign: Campaign) -> list[str]:
    """Every stage's decisions, then why the campaign stopped if it did."""
    lines = [line for study in campaign.studies for line in study_lines(campaign, study)]
    if campaign.stopped is not None:
        lines.append(f"STOPPED: {campaign.stopped}")
    return lines
