"""Is the best really better? Finalists re-trained on several periods x seeds (docs/method.md §11).

The finalists (top-k of the last round) are re-trained on P periods, each with S seeds;
every run is a queued trial of a re-evaluation study, so all workers share the work. The
periods rotate with the calendar month (a new month picks new periods, against overfitting
the periods by extensive tuning) unless the spec pins them. Each run trains the finalist's
whole schedule; the finalist's stop is the step where its mean over the runs is best
(`shared_best_step`), not the step one tuning run happened to peak at, and its value on each
period is the value there. The finalist's own full-length tuning run is one more run of the
same recipe, on the tuning period, and counts as one (`TUNING_PERIOD`): replayed on stored
curves it picked better answers on every benchmark task, also under round 1's selection on
that period (BENCHMARKS.md §2, `stop_rules.py` designs). The verdict compares each finalist
with the best, paired by period and seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import datetime

from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from autotune.analysis import compare_finalists
from autotune.analysis import compare_with_trivial
from autotune.analysis import rank_agreement
from autotune.analysis import ranked_runs
from autotune.analysis import ranking_means
from autotune.analysis import shared_best_step
from autotune.analysis import top_k
from autotune.campaign._budget import leftover
from autotune.campaign._budget import reevaluation_floor
from autotune.campaign._plan import NewStudy
from autotune.campaign._plan import QueuedTrial
from autotune.campaign._recipe import chosen
from autotune.campaign._recipe import recipe_of
from autotune.campaign._recipe import trial_label
from autotune.campaign._records import TUNING_PERIOD
from autotune.campaign._records import BaselineOutcome
from autotune.campaign._records import Fact
from autotune.campaign._records import Finalist
from autotune.campaign._records import Recipe
from autotune.campaign._records import ReevaluationDesign
from autotune.campaign._records import Significance
from autotune.campaign._records import Stage
from autotune.campaign._records import StudyPlan
from autotune.campaign._snapshot import CampaignSnapshot
from autotune.campaign._trial_attrs import ATTR_ERROR_TRACEBACK
from autotune.campaign._trial_attrs import ATTR_FINALIST
from autotune.campaign._trial_attrs import ATTR_HPARAMS
from autotune.campaign._trial_attrs import ATTR_MAX_TRAIN_STEPS
from autotune.campaign._trial_attrs import ATTR_PARENT_STUDY
from autotune.campaign._trial_attrs import ATTR_PARENT_TRIAL
from autotune.campaign._trial_attrs import ATTR_PARENT_VALUE
from autotune.campaign._trial_attrs import ATTR_PERIOD_COUNT
from autotune.campaign._trial_attrs import ATTR_PERIOD_INDEX
from autotune.campaign._trial_attrs import ATTR_PERIOD_NAME
from autotune.campaign._trial_attrs import ATTR_PERIOD_SEED
from autotune.campaign._trial_attrs import ATTR_PRUNED_REASON
from autotune.campaign._trial_attrs import ATTR_REPLICATE
from autotune.campaign._trial_attrs import ATTR_RESUMED_FROM
from autotune.campaign._trial_attrs import ATTR_SEED
from autotune.campaign._trial_attrs import ATTR_STEPS_DONE
from autotune.campaign._trial_attrs import ATTR_TRAIN_FRACTION
from autotune.campaign._trial_attrs import TRIVIAL_PREFIX
from autotune.spec import Direction

SEED_STRIDE = 1_000_003
MAX_PERIOD_FACTOR = 3  # extra periods from a budget's leftover, at most
MAX_REASONS_SHOWN = 2  # why runs did not finish, in a caution
MIN_FINALISTS_FOR_AGREEMENT = 5  # fewer can never agree significantly (2/4! > 0.05)


def rotating_period_seed(today: datetime.date) -> int:
    """The period seed of a calendar month, e.g. 202611: a new month picks new periods."""
    return today.year * 100 + today.month


def finalists_of(snapshot: CampaignSnapshot) -> list[FrozenTrial]:
    """The last round's best trials, the re-evaluation's candidates."""
    spec = snapshot.spec
    trials = list(snapshot.latest.trials)
    return top_k(trials, spec.reevaluation.finalists, spec.metric.direction)


def reevaluation_runs(
    finalists: list[Finalist], period_count: int, period_seed: int, replicates: int, seed: int
) -> tuple[QueuedTrial, ...]:
    """The queued runs of every finalist x period x seed replicate (the period resolved by
    the worker from its index, count and seed); the defaults' tuning-period run is apart
    (`defaults_tuning_run`)."""
    return tuple(
        QueuedTrial(
            f"{finalist.label}/period {index}/replicate {replicate}",
            {},
            {
                ATTR_FINALIST: finalist.label,
                ATTR_HPARAMS: finalist.recipe.hyperparameters,
                ATTR_PERIOD_INDEX: index,
                ATTR_PERIOD_COUNT: period_count,
                ATTR_PERIOD_SEED: period_seed,
                ATTR_REPLICATE: replicate,
                ATTR_SEED: seed + SEED_STRIDE * (replicate + 1),
            },
        )
        for finalist in finalists
        for index in range(period_count)
        for replicate in range(replicates)
    )


def reevaluation_study(snapshot: CampaignSnapshot) -> NewStudy:
    """The re-evaluation study of the last round's finalists, every run queued."""
    spec, last = snapshot.spec, snapshot.latest
    design = spec.reevaluation
    pinned = design.period_seed is not None
    period_seed = design.period_seed if pinned else rotating_period_seed(snapshot.today)
    defaults = snapshot.task_defaults.hyperparameters
    chosen_trials = finalists_of(snapshot)
    runs_of = tuning_runs(snapshot, chosen_trials)
    finalists = tuple(
        _finalist(last.name, t, recipe_of(spec, defaults, last.plan, t), run)
        for t, run in zip(chosen_trials, runs_of, strict=True)
    )
    candidate = defaults_candidate(snapshot)
    finalists += () if candidate is None else (candidate,)
    extra = ()  # where the finalists' tuning runs count, the defaults' run beside them
    if candidate is not None and all(runs_of):
        extra = (defaults_tuning_run(candidate, spec.seed + SEED_STRIDE),)
    periods = _periods(snapshot, finalists, len(extra) * last.plan.max_train_steps)
    record = ReevaluationDesign(last.name, finalists, periods, period_seed, pinned, design.seeds)
    runs = reevaluation_runs(list(finalists), periods, period_seed, design.seeds, spec.seed)
    runs += extra
    plan = StudyPlan(
        Stage.REEVALUATION,
        1,
        len(runs),
        last.plan.max_train_steps,
        last.plan.campaign_max_train_steps,
        sampling=False,
        sweep_steps=last.plan.sweep_steps,
    )
    return NewStudy(plan, runs, facts=(record,))


def defaults_candidate(snapshot: CampaignSnapshot) -> Finalist | None:
    """The baseline's configuration (the task's defaults with ``fixed``) as one more recipe
    to re-train beside the finalists, named by its baseline run; None without a baseline
    that completed, or with ``reevaluation.defaults`` off.

    The finalists were chosen as the best of many runs on one period, so their values
    flatter them; the defaults were chosen by nothing. Its baseline run is shorter than the
    schedule, so where the finalists' own tuning runs count, the defaults get one more run,
    on the tuning period (`defaults_tuning_run`): candidates are ranked by their means, and
    periods differ far more than candidates do (a cancer-mlp fold's loss 0.14, another's
    0.026), so a mean over other periods than the finalists' chose the defaults by the
    tuning period's difficulty (BENCHMARKS §2)."""
    spec, last = snapshot.spec, snapshot.latest
    if not spec.defaults_reevaluated:
        return None
    runs = [
        (study, trial)
        for study in snapshot.stage_studies(Stage.BASELINE)
        for trial in study.trials
        if trial.state is TrialState.COMPLETE
    ]
    if not runs:
        return None
    study, trial = runs[-1]
    steps = last.plan.max_train_steps  # the finalists' schedule, not the baseline's
    recipe = recipe_of(spec, snapshot.task_defaults.hyperparameters, study.plan, trial)
    recipe = dataclasses.replace(recipe, max_train_steps=steps, stop_at_step=steps)
    return Finalist(trial_label(study.name, trial.number), trial.number, None, None, {}, recipe)


def defaults_tuning_run(candidate: Finalist, fallback_seed: int) -> QueuedTrial:
    """The task's defaults on the tuning period, the period the finalists' own runs count
    (`TUNING_PERIOD`), so that every candidate's mean is over the same periods. With its
    recipe's seed (the baseline run's), as a finalist's tuning run has its recipe's: what
    `autotune train` of the defaults retrains, digit for digit."""
    seed = fallback_seed if candidate.recipe.seed is None else candidate.recipe.seed
    return QueuedTrial(
        f"{candidate.label}/{TUNING_PERIOD} period",
        {},
        {
            ATTR_FINALIST: candidate.label,
            ATTR_HPARAMS: candidate.recipe.hyperparameters,
            ATTR_PERIOD_INDEX: TUNING_PERIOD,
            ATTR_REPLICATE: 0,
            ATTR_SEED: seed,
        },
    )


def _periods(
    snapshot: CampaignSnapshot, finalists: tuple[Finalist, ...], queued_steps: int
) -> int:
    """The spec's periods; under a budget, as many as what is left affords (every run
    trains its whole schedule): up to 3x the spec's (and the most the task gives), each
    sharpening the choice, and never fewer than the floor the plan kept room for, after
    ``queued_steps`` (the defaults' tuning-period run). Periods the spec lists are all
    there is."""
    spec = snapshot.spec
    design = spec.reevaluation
    listed = spec.periods is not None and spec.periods.heldout is not None
    if listed:
        return design.periods
    gives = snapshot.task_defaults.most_periods  # a dated task's history runs out

    def given(count: int) -> int:
        return count if gives is None else min(count, gives)

    if spec.budget is None or not finalists:
        return given(design.periods)
    per_period = design.seeds * sum(f.recipe.max_train_steps for f in finalists)
    affordable = (leftover(spec, snapshot.steps_spent, 0) - queued_steps) // per_period
    most = MAX_PERIOD_FACTOR * design.periods
    return given(max(reevaluation_floor(spec), min(affordable, most)))


def _stopped(recipe: Recipe, step: int | None) -> Recipe:
    """The finalist's recipe, stopping where the re-evaluation found it best."""
    return recipe if step is None else dataclasses.replace(recipe, stop_at_step=step)


def _finalist(
    study: str, trial: FrozenTrial, recipe: Recipe, tuning_run: tuple[tuple[int, float], ...]
) -> Finalist:
    return Finalist(
        trial_label(study, trial.number),
        trial.number,
        trial.value,
        trial.user_attrs.get(ATTR_PARENT_VALUE, trial.value),
        dict(trial.params),
        recipe,
        tuning_run,
    )


def tuning_runs(
    snapshot: CampaignSnapshot, finalists: list[FrozenTrial]
) -> list[tuple[tuple[int, float], ...]]:
    """Each finalist's own run on the tuning period as (step, value) pairs, for all of them
    or for none (a run that is missing for one finalist would leave the finalists compared
    on different periods)."""
    trials = {s.name: {t.number: t for t in s.trials} for s in snapshot.studies}
    interval = snapshot.spec.run_eval_interval(snapshot.latest.plan.campaign_max_train_steps)
    curves = [_tuning_curve(t, trials, interval) for t in finalists]
    return curves if all(curves) else [()] * len(finalists)


def _tuning_curve(
    trial: FrozenTrial, trials: Mapping[str, Mapping[int, FrozenTrial]], eval_interval: int
) -> tuple[tuple[int, float], ...]:
    """The trial's evaluations, with its parent's up to the step it resumed from (the same
    run: its seed, and learning rates that agree up to there); () when that is not one
    whole run of the recipe on every training row: fast mode's window, a parent not read,
    or a gap (a retry resumed from its own checkpoint)."""
    attrs = trial.user_attrs
    if float(attrs.get(ATTR_TRAIN_FRACTION) or 1.0) < 1.0:
        return ()
    curve = dict(trial.intermediate_values)
    resumed = int(attrs.get(ATTR_RESUMED_FROM) or 0)
    if resumed:
        parent = trials.get(str(attrs.get(ATTR_PARENT_STUDY)), {}).get(
            attrs.get(ATTR_PARENT_TRIAL)
        )
        if parent is None:
            return ()
        earlier = {s: v for s, v in parent.intermediate_values.items() if s <= resumed}
        curve = earlier | curve
    steps = sorted(curve)
    whole = steps[:-1] == [eval_interval * k for k in range(1, len(steps))]  # the last: its end
    return tuple((step, float(curve[step])) for step in steps) if steps and whole else ()


def tuning_runs_of(design: ReevaluationDesign | None) -> dict[str, dict[int, float]]:
    """finalist -> its tuning run's curve, as the design recorded it (none: no design, or
    runs that do not count)."""
    if design is None:
        return {}
    return {f.label: dict(f.tuning_run) for f in design.finalists if f.tuning_run}


def _finished_runs(trials: list[FrozenTrial]) -> dict[str, list[FrozenTrial]]:
    """finalist -> its COMPLETE re-evaluation runs."""
    runs: dict[str, list[FrozenTrial]] = {}
    for trial in trials:
        if trial.state is TrialState.COMPLETE and trial.value is not None:
            runs.setdefault(str(trial.user_attrs[ATTR_FINALIST]), []).append(trial)
    return runs


def reevaluation_stops(
    trials: list[FrozenTrial],
    direction: Direction,
    tuning: Mapping[str, Mapping[int, float]] | None = None,
) -> dict[str, int]:
    """finalist -> the step of its recipe's stop: where its mean over the finished runs
    (and its ``tuning`` run, `tuning_runs_of`) is best; runs without a curve, from older
    campaigns, count at the step they stopped."""
    stops: dict[str, int] = {}
    for label, runs in _finished_runs(trials).items():
        own = (tuning or {}).get(label)
        curves = [_curve(run) for run in runs] + ([own] if own else [])
        step = shared_best_step(curves, direction)
        if step is not None:
            stops[label] = step
    return stops


def reevaluation_results(
    trials: list[FrozenTrial],
    direction: Direction,
    tuning: Mapping[str, Mapping[int, float]] | None = None,
) -> dict[str, dict[tuple[str, int], float]]:
    """finalist -> (period index as text, replicate) -> value at the finalist's stop, from
    the finished runs, and its ``tuning`` run as period `TUNING_PERIOD`.

    Runs pair by period index (the same index, count and seed is the same period for
    every finalist); the period's name is what the worker recorded when it ran it.
    """
    stops = reevaluation_stops(trials, direction, tuning)
    results: dict[str, dict[tuple[str, int], float]] = {}
    for label, runs in _finished_runs(trials).items():
        for run in runs:
            key = run_key(run)
            value = _curve(run).get(stops[label], run.value) if label in stops else run.value
            results.setdefault(label, {})[key] = float(value)
        own = (tuning or {}).get(label, {})
        if stops.get(label) in own:
            results[label][(TUNING_PERIOD, 0)] = float(own[stops[label]])
    return results


def _curve(run: FrozenTrial) -> dict[int, float]:
    """A run's evaluations by step; a run that reported none, its value at its end."""
    if run.intermediate_values:
        return dict(run.intermediate_values)
    assert run.value is not None  # finished runs only
    attrs = run.user_attrs
    return {int(attrs.get(ATTR_STEPS_DONE) or attrs.get(ATTR_MAX_TRAIN_STEPS) or 0): run.value}


def run_key(run: FrozenTrial) -> tuple[str, int]:
    """A re-evaluation run's (period index as text, replicate): how runs pair."""
    return str(run.user_attrs[ATTR_PERIOD_INDEX]), int(run.user_attrs[ATTR_REPLICATE])


def unfinished_runs_caution(label: str, runs: Sequence[FrozenTrial]) -> str | None:
    """A caution when some of ``label``'s re-evaluation runs never finished (a retry that
    did counts): the ranking and the answer's mean are over the runs every candidate
    finished (`ranking_means`), so a recipe that diverged on a period reads as well as one
    that did not. The reasons: a pruned run's, or a failed run's last traceback line."""
    own = [run for run in runs if run.user_attrs.get(ATTR_FINALIST) == label]
    finished = {run_key(run) for run in own if run.state is TrialState.COMPLETE}
    unfinished = {run_key(run): run for run in own if run_key(run) not in finished}
    if not unfinished:
        return None
    reasons = sorted({_why_unfinished(run) for run in unfinished.values()})
    shown = "; ".join(reasons[:MAX_REASONS_SHOWN]) + (
        "; ..." if len(reasons) > MAX_REASONS_SHOWN else ""
    )
    return (
        f"{len(unfinished)} of its {len(unfinished) + len(finished)} re-evaluation runs did "
        f"not finish ({shown}): its mean leaves them out, and a recipe that failed on some "
        "periods may fail on yours"
    )


def _why_unfinished(run: FrozenTrial) -> str:
    attrs = run.user_attrs
    traceback = str(attrs.get(ATTR_ERROR_TRACEBACK) or "").strip().splitlines()
    return str(attrs.get(ATTR_PRUNED_REASON) or (traceback[-1] if traceback else run.state.name))


def on_tuning_period(run: FrozenTrial) -> bool:
    """Whether a re-evaluation run is the task's defaults' on the tuning period
    (`defaults_tuning_run`), not one of the re-evaluation's own periods."""
    return run.user_attrs.get(ATTR_PERIOD_INDEX) == TUNING_PERIOD


def period_names(runs: Sequence[FrozenTrial]) -> dict[int, str]:
    """Period index -> name, as the workers that ran the periods recorded them (not the
    tuning period's: the defaults' run there is named as the finalists' own runs are)."""
    return {
        int(t.user_attrs[ATTR_PERIOD_INDEX]): str(t.user_attrs[ATTR_PERIOD_NAME])
        for t in runs
        if ATTR_PERIOD_NAME in t.user_attrs
        and ATTR_PERIOD_INDEX in t.user_attrs
        and not on_tuning_period(t)
    }


def tuning_trivial(baselines: Sequence[BaselineOutcome | None]) -> float | None:
    """The trivial predictor's value on the tuning period, as a baseline recorded it."""
    return next((b.trivial_value for b in baselines if b and b.trivial_value is not None), None)


def trivial_results(snapshot: CampaignSnapshot) -> dict[tuple[str, int], float]:
    """(period index as text, replicate) -> the trivial predictor's value there, as the
    latest study's runs recorded it, and on the tuning period as the baseline did."""
    baselines = [s.facts.baseline for s in snapshot.stage_studies(Stage.BASELINE)]
    tuning = tuning_trivial(baselines)
    return trivial_values(snapshot.latest.trials, snapshot.spec.metric.name, tuning)


def trivial_values(
    runs: Sequence[FrozenTrial], metric: str, tuning: float | None
) -> dict[tuple[str, int], float]:
    """The trivial predictor's ``metric`` keyed like `reevaluation_results`, so the answer's
    runs pair with it: each finished run's period as it recorded it, and ``tuning`` (the
    baseline's, when it ran) as `TUNING_PERIOD`."""
    attr = f"{TRIVIAL_PREFIX}{metric}"
    values = {
        run_key(run): float(run.user_attrs[attr])
        for run in runs
        if run.state is TrialState.COMPLETE and attr in run.user_attrs
    }
    if tuning is not None:
        values[(TUNING_PERIOD, 0)] = tuning
    return values


def verdict_facts(snapshot: CampaignSnapshot) -> tuple[tuple[str, Fact], ...]:
    """The significance verdict and the fast-vs-full rank agreement of a finished study."""
    spec, study = snapshot.spec, snapshot.latest
    recorded = study.facts.design
    assert recorded is not None  # written with the study
    tuning = tuning_runs_of(recorded)
    results = reevaluation_results(list(study.trials), spec.metric.direction, tuning)
    usable = {k: v for k, v in results.items() if len(v) >= 2}
    if len(usable) < 2:
        return ((study.name, Significance(None, ("too few finished runs to compare",))),)
    design = spec.reevaluation
    report = compare_finalists(
        usable, spec.metric.direction, design.alpha, design.test, given=((TUNING_PERIOD, 0),)
    )
    facts: list[tuple[str, Fact]] = [(study.name, Significance(report, report.summary))]
    stops = reevaluation_stops(list(study.trials), spec.metric.direction, tuning)
    recipes = {f.label: _stopped(f.recipe, stops.get(f.label)) for f in recorded.finalists}
    unselected = {key: v for key, v in usable[report.best].items() if key[0] != TUNING_PERIOD}
    trivial = compare_with_trivial(  # not on the tuning run, where the answer was chosen
        unselected,
        trivial_results(snapshot),
        spec.metric.direction,
        design.alpha,
        design.test,
        metric=spec.metric.name,
    )
    names = {str(index): name for index, name in period_names(list(study.trials)).items()}
    answer = chosen(report, ranked_runs(usable), recipes, trivial, names)  # as it was ranked
    unfinished = unfinished_runs_caution(answer.finalist, list(study.trials))
    if unfinished is not None:
        answer = dataclasses.replace(answer, cautions=(*answer.cautions, unfinished))
    facts.append((study.name, answer))
    fast = {f.label: f.fast_value for f in recorded.finalists if f.fast_value is not None}
    full = ranking_means(usable)  # over the runs all finished, as the ranking's
    if len(set(fast) & set(full)) >= MIN_FINALISTS_FOR_AGREEMENT:
        facts.append((study.name, rank_agreement(fast, full, spec.metric.direction)))
    return tuple(facts)
