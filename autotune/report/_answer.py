"""The campaign's answer in words and as data: the recommended recipe, and its trust."""

from __future__ import annotations

from typing import Any

from autotune.campaign import TUNING_PERIOD
from autotune.campaign import Campaign
from autotune.campaign import Recipe
from autotune.campaign import Recommendation
from autotune.campaign import Stage
from autotune.campaign import period_names
from autotune.campaign import reevaluation_results
from autotune.campaign import tuning_runs_of
from autotune.campaign._plain import plain


def recorded_on(campaign: Campaign, period_name: str | None) -> float | None:
    """The verified answer's value where the re-evaluation measured it on one period
    (``period_name``; None: the tuning data, its own tuning run): the mean of its runs there
    at the recipe's stop. None where it has no run there, or no re-evaluation chose it."""
    answer = campaign.recommendation()
    studies = campaign.stage_studies(Stage.REEVALUATION)
    if answer is None or not answer.verified or not studies:
        return None
    study, direction = studies[0], campaign.spec.metric.direction
    trials = campaign.trials_of(study)
    tuning = tuning_runs_of(study.facts.design)
    runs = reevaluation_results(trials, direction, tuning).get(answer.finalist, {})
    if period_name is None:
        wanted = TUNING_PERIOD
    else:
        indices = {name: str(index) for index, name in period_names(trials).items()}
        wanted = indices.get(period_name, "")
    values = [value for (period, _), value in runs.items() if period == wanted]
    return sum(values) / len(values) if values else None


def recipe_dict(recipe: Recipe) -> dict[str, Any]:
    """The recipe as plain data (what ``autotune export`` writes), with its stopping rule."""
    return {**plain(recipe), "stopping_rule": recipe.stopping_rule}


def answer_dict(campaign: Campaign) -> dict[str, Any]:
    """``autotune best``: the recommendation, or the best trial so far marked as such."""
    answer = campaign.recommendation()
    if answer is not None:
        return {
            "campaign": campaign.name,
            "finalist": answer.finalist,
            "task_defaults": is_defaults(answer.finalist),
            "verified": answer.verified,
            "metric": answer.recipe.metric,
            "value": answer.value,
            "interval_95": None if answer.ci_low is None else [answer.ci_low, answer.ci_high],
            "runs": answer.runs,
            "verdict": answer.verdict,
            "against_trivial": _trivial_dict(answer),
            "cautions": list(answer_cautions(answer)),
            "recipe": recipe_dict(answer.recipe),
        }
    best = campaign.best()
    if best is None:
        return {"campaign": campaign.name, "finished": False, "best_so_far": None}
    return {
        "campaign": campaign.name,
        "finished": False,
        "best_so_far": {**best.to_json_dict(), "trial": f"{best.study} #{best.trial_number}"},
        "note": "no recommendation yet: the campaign has not finished its last stage",
    }


def answer_lines(campaign: Campaign, autotune: str = "autotune", where: str = "") -> list[str]:
    """The answer as the run summary, status and report state it (empty before it);
    ``autotune``: how the reader calls the command (see ``runnable_command``); ``where``:
    the storage options the hints need (" --state-dir DIR" off the default)."""
    answer = campaign.recommendation()
    if answer is None:
        return []
    trivial = answer.against_trivial
    return [
        f"answer: {answer.finalist}{_defaults_note(answer.finalist)}, {_value_text(answer)}",
        f"  {answer.verdict}",
        *([] if trivial is None else [f"  {trivial.sentence}"]),
        f"  recipe: {answer.recipe.stopping_rule}; batch size {answer.recipe.batch_size}",
        *[f"  caution: {caution}" for caution in answer_cautions(answer)],
        f"  hyperparameters: {_params_text(answer.recipe.hyperparameters)}",
        f"  train it: {autotune} train {campaign.name}{where}; "
        f"export it: {autotune} export {campaign.name}{where}",
    ]


def is_defaults(finalist: str) -> bool:
    """Whether a finalist label names the baseline's run: the task's default configuration
    re-evaluated beside the tuned finalists (``reevaluation.defaults``)."""
    study = finalist.rpartition(" #")[0]
    return study.split("/")[-2:-1] == [Stage.BASELINE.value]


def _defaults_note(finalist: str) -> str:
    return " (the task's defaults: no tuned finalist beat them)" if is_defaults(finalist) else ""


def answer_cautions(answer: Recommendation) -> tuple[str, ...]:
    """What the answer's numbers cannot show: its recipe's, then its runs'."""
    return recipe_cautions(answer.recipe) + answer.cautions


def recipe_cautions(recipe: Recipe) -> tuple[str, ...]:
    """What the recipe's numbers cannot show. A stop at the first evaluation is a boundary
    of the step grid, as a best value at a range's end is of a search space: the best step
    may lie earlier, and a model that little trained may owe its score to its starting
    point rather than to what it learned (a weak-signal task's near-untrained answers)."""
    first = recipe.eval_interval
    if recipe.stop_at_step > first or recipe.stop_at_step >= recipe.max_train_steps:
        return ()
    return (
        f"it stops at its first evaluation (step {recipe.stop_at_step} of "
        f"{recipe.max_train_steps}): the best step may lie earlier than the evaluations "
        "show, and a model trained this little may owe its score to where it started; "
        "a smaller eval_interval would show where it peaks",
    )


def _trivial_dict(answer: Recommendation) -> dict[str, Any] | None:
    """The answer against the trivial predictor on the same runs, as data."""
    trivial = answer.against_trivial
    if trivial is None:
        return None
    return {
        "outcome": trivial.outcome.value,
        "runs": trivial.runs,
        "answer_mean": trivial.answer_mean,
        "trivial_mean": trivial.trivial_mean,
        "answer_better_in": trivial.wins,
        "answer_worse_in": trivial.losses,
        "test": trivial.test.value,
        "p_value": trivial.p_value,
        "sentence": trivial.sentence,
    }


def _value_text(answer: Recommendation) -> str:
    metric = answer.recipe.metric
    if answer.ci_low is None:
        return f"{metric} {answer.value:.5g} (one run, unverified)"
    return (
        f"{metric} {answer.value:.5g}, 95% interval [{answer.ci_low:.5g}, {answer.ci_high:.5g}] "
        f"over {answer.runs} runs of the recipe"
    )


def _params_text(params: dict[str, Any]) -> str:
    """The hyperparameters as people read them: unset values (None) and a schedule
    fraction its steps replaced (a promotion keeps ``warmup_steps`` beside a
    ``warmup_fraction`` of 0) left out; ``autotune export`` writes them all."""
    shown = {
        key: value
        for key, value in params.items()
        if value is not None and not _replaced_fraction(key, value, params)
    }
    return ", ".join(f"{k}={format_value(v)}" for k, v in sorted(shown.items()))


def _replaced_fraction(key: str, value: Any, params: dict[str, Any]) -> bool:
    steps = key.removesuffix("_fraction") + "_steps"
    return key.endswith("_fraction") and not value and params.get(steps) is not None


def format_value(value: Any) -> str:
    """A hyperparameter value as people read it: floats to 4 significant digits."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)
