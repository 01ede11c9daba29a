"""A trial as a recipe, and the campaign's recommendation among its finalists."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optuna.trial import FrozenTrial

from autotune.analysis import TEST_LABELS
from autotune.analysis import SignificanceReport
from autotune.analysis import TrivialComparison
from autotune.analysis import mean_interval
from autotune.campaign._hparams import stage_base_hparams
from autotune.campaign._hparams import trial_hparams
from autotune.campaign._records import TUNING_PERIOD
from autotune.campaign._records import Recipe
from autotune.campaign._records import Recommendation
from autotune.campaign._records import StudyPlan
from autotune.campaign._trial_attrs import ATTR_BEST_STEP
from autotune.campaign._trial_attrs import ATTR_MAX_TRAIN_STEPS
from autotune.campaign._trial_attrs import ATTR_SEED
from autotune.spec import Direction
from autotune.spec import StudySpec

EARLY_STOPPING = "early_stopping_patience"
CHOSEN_BY = "the best mean over the re-evaluation's runs"
MIN_RUNS_TO_WEIGH = 4  # fewer runs: one of them outweighing the rest is no news


def trial_label(study_name: str, number: int) -> str:
    """How a trial is named everywhere people read it: with its study."""
    return f"{study_name} #{number}"


def recipe_of(
    spec: StudySpec, task_defaults: Mapping[str, Any], plan: StudyPlan, trial: FrozenTrial
) -> Recipe:
    """The recipe whose value ``trial``'s value is: its whole configuration, trained to
    its best step on the schedule it ran, early stopping off."""
    base = stage_base_hparams(spec, task_defaults, plan.stage_fixed)
    hparams = {**trial_hparams(base, trial.params, trial.user_attrs), EARLY_STOPPING: 0}
    budget = int(trial.user_attrs.get(ATTR_MAX_TRAIN_STEPS) or plan.max_train_steps)
    stop = min(int(trial.user_attrs.get(ATTR_BEST_STEP) or budget), budget)
    seed = trial.user_attrs.get(ATTR_SEED)
    return Recipe(
        task=spec.task,
        hyperparameters=hparams,
        batch_size=spec.batch_size,
        gradient_accumulation_steps=spec.gradient_accumulation_steps,
        max_train_steps=budget,
        stop_at_step=stop,
        eval_interval=spec.run_eval_interval(plan.campaign_max_train_steps),
        metric=spec.metric.name,
        direction=spec.metric.direction,
        seed=None if seed is None else int(seed),
    )


def unverified(label: str, recipe: Recipe, value: float, why: str) -> Recommendation:
    """The last round's best single run, when no re-evaluation chose among finalists."""
    verdict = f"unverified: {why}; its value is one run on the tuning period"
    return Recommendation(label, recipe, False, value, None, None, 1, verdict)


def chosen(
    report: SignificanceReport,
    results: Mapping[str, Mapping[tuple[str, int], float]],
    recipes: Mapping[str, Recipe],
    against_trivial: TrivialComparison | None = None,
    period_names: Mapping[str, str] | None = None,
) -> Recommendation:
    """The re-evaluation's choice: the finalist with the best mean, whether it is
    distinguishable from the others (paired tests, Holm-corrected), and how it compares
    with the trivial predictor on the same periods. ``results``: each finalist's runs as
    the ranking counted them (`ranked_runs`), so the answer's mean is the one it won by."""
    best = report.best
    values = list(results[best].values())
    loss = recipes[best].direction is Direction.MINIMIZE and min(values) >= 0
    interval = mean_interval(values, floor=0.0 if loss else None)  # a loss is never below 0
    tied = [c.finalist for c in report.comparisons if not c.significant]
    tuning = any(period == TUNING_PERIOD for period, _ in results[best])
    periods = len({period for period, _ in results[best] if period != TUNING_PERIOD})
    seeds = len({seed for _, seed in results[best]})
    own = ", and its own run on the tuning period" if tuning else ""
    runs = f"{interval.n} run(s) ({periods} period(s) x {seeds} seed(s){own})"
    if not tied:
        verdict = (
            f"{best} is better than every other finalist over {runs}: each paired "
            f"{TEST_LABELS[report.test]} test significant at alpha={report.alpha} (Holm)"
        )
    else:
        verdict = (
            f"{best} has the best mean over {runs}, but it is not distinguishable from "
            f"{', '.join(tied)} at alpha={report.alpha}; chosen by the rule: {CHOSEN_BY}"
        )
    recipe = recipes[best]
    outweighed = outweighing_run_caution(
        results[best], recipe.metric, recipe.direction, period_names or {}
    )
    return Recommendation(
        best,
        recipe,
        True,
        interval.mean,
        interval.low,
        interval.high,
        interval.n,
        verdict,
        against_trivial,
        () if outweighed is None else (outweighed,),
    )


def outweighing_run_caution(
    runs: Mapping[tuple[str, int], float],
    metric: str,
    direction: Direction,
    period_names: Mapping[str, str],
) -> str | None:
    """A caution when one run's loss outweighs all the others' together, or None. The mean
    over periods chooses the stop and the finalist; where one period's losses dwarf the
    others' (a crisis among calm quarters), that period chooses them: a macro forecaster
    stopped where it was best in 2008-09 (26.6 against 1.6-7.5) lost to the trivial
    predictor on 4 of its 7 periods. Losses only (minimized, at or above 0), at least
    4 runs; the numbers stay as the rule chose them. ``period_names``: index -> name."""
    values = list(runs.values())
    if direction is not Direction.MINIMIZE or len(values) < MIN_RUNS_TO_WEIGH:
        return None
    if min(values) < 0:
        return None
    (period, replicate), top = max(runs.items(), key=lambda item: item[1])
    rest = sum(values) - top
    if top <= rest:
        return None
    others = sorted(v for key, v in runs.items() if key != (period, replicate))
    name = period_names.get(period, period)
    where = "the tuning period" if period == TUNING_PERIOD else f"period {name}"
    again = "" if replicate == 0 else f" (replicate {replicate})"
    return (
        f"one run outweighs all the others: {where}{again} has {metric} {top:.4g}, the "
        f"other {len(others)} together {rest:.4g} ({others[0]:.4g}-{others[-1]:.4g}); the "
        "mean, and with it the recipe's stop and the choice among finalists, follow that "
        "period more than all the others (the report shows each period's values)"
    )
