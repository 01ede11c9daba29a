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
from autotune.spec import StudySpec

EARLY_STOPPING = "early_stopping_patience"
CHOSEN_BY = "the best mean over the re-evaluation's runs"


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
) -> Recommendation:
    """The re-evaluation's choice: the finalist with the best mean, whether it is
    distinguishable from the others (paired tests, Holm-corrected), and how it compares
    with the trivial predictor on the same periods."""
    best = report.best
    interval = mean_interval(list(results[best].values()))
    tied = [c.finalist for c in report.comparisons if not c.significant]
    tuning = any(period == TUNING_PERIOD for period, _ in results[best])
    periods = report.n_periods - tuning
    own = ", and its own run on the tuning period" if tuning else ""
    runs = f"{interval.n} run(s) ({periods} period(s) x {report.n_seeds} seed(s){own})"
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
    return Recommendation(
        best,
        recipes[best],
        True,
        interval.mean,
        interval.low,
        interval.high,
        interval.n,
        verdict,
        against_trivial,
    )
