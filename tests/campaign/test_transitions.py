"""The whole pipeline replayed on synthetic trial histories: every transition, no database."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from optuna.distributions import FloatDistribution
from optuna.trial import TrialState
from optuna.trial import create_trial
import pytest

from autotune.analysis import BoundarySide
from autotune.analysis import TrivialOutcome
from autotune.campaign import TUNING_PERIOD
from autotune.campaign import BoundaryAction
from autotune.campaign import Stage
from autotune.campaign import TransitionKind
from autotune.campaign import next_transition
from autotune.campaign import reevaluation_results
from autotune.campaign import tuning_runs_of
from autotune.campaign._budget import least_total
from autotune.campaign._budget import shortest_afforded
from autotune.campaign._trial_attrs import ATTR_CHECKPOINT
from autotune.campaign._trial_attrs import ATTR_FINALIST
from autotune.campaign._trial_attrs import ATTR_OVERRIDES
from autotune.campaign._trial_attrs import ATTR_PARENT_TRIAL
from autotune.campaign._trial_attrs import ATTR_PERIOD_INDEX
from autotune.campaign._trial_attrs import ATTR_RESUME
from autotune.campaign._trial_attrs import ATTR_SEED
from autotune.spec import Direction
from tests.campaign.replay import Replay
from tests.campaign.replay import bowl
from tests.campaign.replay import carried_numbers
from tests.campaign.replay import spec_of

K = TransitionKind


def test_baseline_rounds_and_reevaluation_end_in_a_verdict() -> None:
    replay = Replay(spec_of(boundary={"widen": False}))
    kinds = replay.run()
    assert kinds == [K.BASELINE_PASSED, K.PROMOTE, K.REEVALUATE, K.RECORD, K.FINISHED]
    names = [s.name for s in replay.studies]
    assert names == ["replay/baseline/1", "replay/joint/1", "replay/joint/2", "replay/reeval/1"]
    assert replay.study("replay/baseline/1").facts.baseline.passed
    round_two = replay.study("replay/joint/2")
    assert round_two.facts.plan.max_train_steps == 400 and round_two.facts.plan.trials == 3
    reeval = replay.latest
    design = reeval.facts.design
    assert design.period_count == 4 and design.period_seed == 11 and design.periods_pinned
    assert len(design.finalists) == 3 + 1  # and the defaults
    # each candidate on each period, and the defaults on the tuning period
    assert len(reeval.trials) == 4 * 4 + 1
    indices = {t.user_attrs[ATTR_PERIOD_INDEX] for t in reeval.trials}
    assert indices == {0, 1, 2, 3, TUNING_PERIOD}
    assert reeval.facts.significance is not None and reeval.facts.significance.report
    assert replay.snapshot().stopped is None
    answer = reeval.facts.recommendation
    # 4 periods and each finalist's own run on the tuning period (round 2's trial)
    assert answer.verified and answer.runs == 5 and answer.ci_low < answer.value < answer.ci_high
    assert "4 period(s) x 1 seed(s), and its own run on the tuning period" in answer.verdict
    finalist = next(f for f in design.finalists if f.label == answer.finalist)
    assert answer.finalist.startswith("replay/joint/2 #") and answer.recipe == finalist.recipe
    tuned = [f for f in design.finalists if f.label.startswith("replay/joint/2 #")]
    assert len(tuned) == 3  # the defaults' candidate has no run of the schedule's length
    for f in tuned:
        own = next(t for t in round_two.trials if t.number == f.trial)
        assert dict(f.tuning_run) == own.intermediate_values
    results = reevaluation_results(list(reeval.trials), Direction.MINIMIZE, tuning_runs_of(design))
    # every candidate has the same periods: the defaults' queued run on the tuning period
    assert all(set(v) == set(results["replay/baseline/1 #0"]) for v in results.values())
    assert all((TUNING_PERIOD, 0) in v for v in results.values())
    means = {label: sum(v.values()) / len(v) for label, v in results.items()}
    assert answer.value == pytest.approx(min(means.values()))  # the best mean is the answer
    assert answer.finalist == min(means, key=means.get)


def test_the_answer_is_compared_with_the_trivial_predictor_on_the_same_runs() -> None:
    spec = spec_of(boundary={"widen": False}, reevaluation={"periods": 6, "period_seed": 11})
    replay = Replay(spec, trivial=5.0)
    replay.run()
    answer = replay.latest.facts.recommendation
    versus = answer.against_trivial
    # the 6 periods (the runs' recorded trivial values), not the tuning run it was chosen on
    assert versus is not None and versus.outcome is TrivialOutcome.BETTER
    assert (versus.runs, versus.wins) == (6, 6)
    runs = reevaluation_results(replay.latest.trials, Direction.MINIMIZE)[answer.finalist]
    assert versus.answer_mean == pytest.approx(sum(runs.values()) / 6)
    assert versus.trivial_mean == pytest.approx(5.0 + 0.01 * sum(range(6)) / 6)


def test_a_finalist_better_than_every_other_says_so_with_the_tests_name() -> None:
    spec = spec_of(boundary={"widen": False}, reevaluation={"periods": 12, "period_seed": 11})
    replay = Replay(spec)  # the bowl: finalists differ alike in every period
    replay.run()
    verdict = replay.latest.facts.recommendation.verdict
    assert "is better than every other finalist over 13 run(s)" in verdict
    assert "each paired Wilcoxon test significant at alpha=0.05 (Holm)" in verdict


def test_defaults_better_on_every_period_are_the_answer_though_the_tuning_period_is_easiest() -> (
    None
):
    """The replay's tuning period is its easiest (the others add 0.01 x (index + 1)). With
    the finalists' mean over it and the defaults' over the others alone, the finalists won
    by the period, not by their values."""

    def level(hparams: dict[str, Any]) -> float:  # the defaults (width 0) best, by 1e-3 at least
        return 4.99 + 1e-4 * hparams.get("width", 0)

    replay = Replay(spec_of(boundary={"widen": False}), objective=level)
    replay.run()
    answer = replay.latest.facts.recommendation
    assert answer.finalist == "replay/baseline/1 #0"
    assert answer.runs == 5  # 4 periods and the tuning period, as every finalist's


def test_an_answer_better_only_on_its_tuning_run_is_flagged_worse() -> None:
    """The tuning run is where the answer was chosen: it counts among the finalists (all
    were chosen there), not as evidence of skill. Counted, this answer read "NOT
    distinguishable from the trivial predictor on the same 7 runs". (The task's defaults,
    width 0, would be the answer here: they are left out.)"""
    design = {"periods": 6, "period_seed": 11, "defaults": False}
    spec = spec_of(boundary={"widen": False}, reevaluation=design)

    def level(hparams: dict[str, Any]) -> float:  # the periods add 0.01 x (index + 1)
        return 4.99 + 1e-4 * hparams.get("width", 0)  # below 5.0 only on the tuning period

    replay = Replay(spec, objective=level, trivial=5.0)
    replay.run()
    versus = replay.latest.facts.recommendation.against_trivial
    assert versus is not None and versus.outcome is TrivialOutcome.WORSE
    assert (versus.runs, versus.wins, versus.losses) == (6, 0, 6)
    assert "do not use it" in versus.sentence


def test_a_task_without_a_trivial_predictor_has_no_comparison() -> None:
    replay = Replay(spec_of(boundary={"widen": False}), trivial=None)
    replay.run()
    answer = replay.latest.facts.recommendation
    assert answer.verified and answer.against_trivial is None


def test_the_recipe_is_the_whole_configuration_stopped_at_its_best_step() -> None:
    spec = spec_of(boundary={"widen": False}, fixed={"momentum": 0.9})
    replay = Replay(spec)
    replay.run()
    (finalist, *_) = replay.latest.facts.design.finalists
    recipe = finalist.recipe
    trial = next(t for t in replay.study("replay/joint/2").trials if t.number == finalist.trial)
    assert recipe.hyperparameters == {
        **trial.params, "momentum": 0.9, "optimizer": "adamw", "schedule": "constant",
        "early_stopping_patience": 0, **trial.user_attrs[ATTR_OVERRIDES],
    }  # fmt: skip
    assert recipe.max_train_steps == 400 and recipe.stop_at_step == trial.user_attrs["best_step"]
    assert (recipe.batch_size, recipe.eval_interval, recipe.seed) == (
        32,
        10,
        trial.user_attrs["seed"],
    )
    runs = replay.latest.trials  # re-evaluation runs train the whole schedule
    assert all("stop_at_step" not in t.user_attrs for t in runs)


def test_the_answer_stops_where_its_reevaluation_runs_were_best_on_average() -> None:
    replay = Replay(spec_of(boundary={"widen": False}), reevaluation_peak=0.5)
    replay.run()
    answer = replay.latest.facts.recommendation
    finalist = next(f for f in replay.latest.facts.design.finalists if f.label == answer.finalist)
    assert finalist.recipe.stop_at_step == 400  # the tuning run improved to its end
    assert answer.recipe == dataclasses.replace(finalist.recipe, stop_at_step=200)
    runs = [t for t in replay.latest.trials if t.user_attrs[ATTR_FINALIST] == answer.finalist]
    values = [t.intermediate_values[200] for t in runs] + [dict(finalist.tuning_run)[200]]
    at_stop = sum(values) / len(values)  # its own tuning run is one more run of the recipe
    assert answer.value == pytest.approx(at_stop)  # the value of the model at the stop
    assert at_stop < sum(t.value for t in runs) / len(runs)


def test_runs_evaluate_about_evaluations_per_run_times_once_their_length_is_known() -> None:
    spec = spec_of(boundary={"widen": False}, evaluations_per_run=10)
    replay = Replay(spec)
    replay.run()
    assert replay.study("replay/joint/1").facts.plan.max_train_steps == 80  # 100 on 40s
    first_round = replay.study("replay/joint/1").trials
    assert all(sorted(t.intermediate_values) == [40, 80] for t in first_round)
    design = replay.latest.facts.design
    assert {f.recipe.eval_interval for f in design.finalists} == {40}
    tuning_runs = tuning_runs_of(design)  # the parent's curve and the child's, one grid
    assert tuning_runs and all(min(curve) == 40 for curve in tuning_runs.values())
    assert replay.latest.facts.recommendation.recipe.eval_interval == 40


def test_without_reevaluation_the_answer_is_the_best_run_unverified() -> None:
    replay = Replay(spec_of(boundary={"widen": False}, reevaluation={"enabled": False}))
    assert replay.run() == [K.BASELINE_PASSED, K.PROMOTE, K.RECORD, K.FINISHED]
    answer = replay.latest.facts.recommendation
    best = min(replay.latest.trials, key=lambda t: t.value)
    assert not answer.verified and answer.finalist == f"replay/joint/2 #{best.number}"
    assert answer.value == best.value and "unverified" in answer.verdict


def test_promotion_queues_the_top_k_with_their_seed_and_lineage() -> None:
    replay = Replay(spec_of(baseline=False, boundary={"widen": False}))
    replay.train_latest()
    round_one = replay.latest
    assert replay.step().kind is K.PROMOTE
    promoted = replay.latest.trials
    best = sorted((t for t in round_one.trials), key=lambda t: t.value)[:3]
    assert [t.user_attrs[ATTR_PARENT_TRIAL] for t in promoted] == [t.number for t in best]
    assert [t.user_attrs[ATTR_SEED] for t in promoted] == [t.user_attrs[ATTR_SEED] for t in best]
    assert all(t.state is TrialState.WAITING for t in promoted)
    assert all(t.params == p.params for t, p in zip(promoted, best, strict=True))


def test_a_promoted_wsd_trial_resumes_from_its_parents_checkpoint() -> None:
    spec = spec_of(
        baseline=False, boundary={"widen": False}, fixed={"schedule": "wsd", "decay_fraction": 0.2}
    )
    replay = Replay(spec)
    replay.train_latest()
    round_one = replay.latest
    round_one.trials = [
        _with_attrs(t, {ATTR_CHECKPOINT: {"artifact_id": f"ck{t.number}", "step": 50}})
        for t in round_one.trials
    ]
    replay.step()
    for trial in replay.latest.trials:
        assert trial.user_attrs[ATTR_RESUME]["step"] == 50
        assert trial.user_attrs[ATTR_OVERRIDES]["decay_steps"] == 20  # 0.2 of 100 steps, kept


def test_a_baseline_that_loses_at_both_budgets_stops_the_campaign() -> None:
    replay = Replay(spec_of(), trivial=0.01)
    kinds = replay.run()
    assert kinds == [K.RECHECK_BASELINE, K.STOP]
    recheck = replay.study("replay/baseline/2").facts.plan
    assert recheck.max_train_steps == 400  # the full budget, where tuning ends
    stopped = replay.snapshot().stopped
    assert "does NOT beat the trivial predictor" in stopped
    assert "lost at 100 steps and at the full 400" in stopped
    assert next_transition(replay.snapshot()).kind is K.FINISHED


def test_a_baseline_that_crashed_stops_without_a_recheck_and_is_not_said_to_have_lost() -> None:
    replay = Replay(spec_of())
    replay.train_latest()
    (run,) = replay.latest.trials
    crashed = create_trial(
        state=TrialState.FAIL, user_attrs={**run.user_attrs, "error": "ValueError: 'big'"}
    )
    crashed.number = run.number
    replay.latest.trials = [crashed]
    assert replay.step().kind is K.STOP
    stopped = replay.snapshot().stopped
    assert "the baseline run failed: ValueError: 'big' (at 100 steps)" in stopped
    assert "lost" not in stopped


def test_a_baseline_that_loses_only_at_the_short_budget_goes_on() -> None:
    replay = Replay(spec_of(boundary={"widen": False}), trivial=5.0)
    replay.objective = _worse_when_short(replay.objective)
    kinds = replay.run()
    assert kinds[:2] == [K.RECHECK_BASELINE, K.BASELINE_PASSED]
    assert not replay.study("replay/baseline/1").facts.baseline.passed
    assert replay.study("replay/baseline/2").facts.baseline.passed
    assert kinds[-1] is K.FINISHED


def test_a_hit_bound_is_widened_and_the_finished_trials_carried_over() -> None:
    replay = Replay(spec_of(baseline=False), objective=bowl(math.log(3.0)))  # best above 1.0
    replay.train_latest()
    assert replay.step().kind is K.WIDEN_STAGE
    first, widened = replay.studies[0], replay.latest
    finding = next(f for f in first.facts.boundaries.findings if f.name == "learning_rate")
    assert finding.hit and finding.side is BoundarySide.HIGH
    assert finding.action is BoundaryAction.WIDEN
    assert finding.lean_high is not None and finding.lean_high >= 4  # what the hit counted
    assert widened.name == "replay/joint/1-widened1"
    distribution = widened.facts.plan.decoded_distributions()["learning_rate"]
    assert distribution == FloatDistribution(1e-3, 3.0, log=True)
    assert carried_numbers(widened) == list(range(12))
    assert widened.facts.plan.trials == 12 + 6


def test_a_hit_hard_limit_is_reported_and_not_widened() -> None:
    space_limit = spec_of(baseline=False).search_space.model_dump()
    space_limit["groups"][0]["params"]["learning_rate"]["hard_high"] = 1.0
    replay = Replay(
        spec_of(baseline=False, search_space=space_limit), objective=bowl(math.log(3.0))
    )
    replay.train_latest()
    assert replay.step().kind is K.PROMOTE  # nothing to widen: round 2 follows
    finding = next(
        f for f in replay.studies[0].facts.boundaries.findings if f.name == "learning_rate"
    )
    assert finding.action is BoundaryAction.HARD_LIMIT
    assert "hard limit (the space's hard_high), not widened" in finding.message


def test_a_count_range_from_one_is_a_hard_limit_that_says_how_to_move_it() -> None:
    """It said "a hard limit of the space" of a space that set none."""
    space = spec_of().search_space.model_dump()
    space["groups"][1]["params"]["width"] |= {"low": 1, "high": 64}
    spec = spec_of(baseline=False, search_space=space)
    replay = Replay(spec, objective=lambda hparams: bowl()(hparams) + hparams["width"])
    replay.train_latest()
    replay.step()
    finding = next(f for f in replay.studies[0].facts.boundaries.findings if f.name == "width")
    assert finding.action is BoundaryAction.HARD_LIMIT
    assert "set hard_low in the space to widen past it" in finding.message


def test_a_hard_limit_at_the_end_of_the_values_training_accepts_asks_for_nothing_beyond() -> None:
    """No dropout below 0: "(the best may lie beyond)" asked for the impossible."""
    spec = spec_of(baseline=False, boundary={"tolerance": 0.45})  # the lower 45%: a hit
    replay = Replay(spec, objective=lambda hparams: 1.0 + float(hparams.get("dropout", 0.0)))
    replay.train_latest()
    replay.step()
    finding = next(f for f in replay.studies[0].facts.boundaries.findings if f.name == "dropout")
    assert finding.action is BoundaryAction.HARD_LIMIT and finding.side is BoundarySide.LOW
    assert "the values training accepts for it), not widened (nothing beyond" in finding.message
    assert "may lie beyond" not in finding.message


def _wants_dropout(hparams: dict[str, Any]) -> float:
    """Better the more dropout, nothing else matters: the best sits near the upper bound."""
    return 1.0 - float(hparams.get("dropout", 0.0))


WIDE_TOLERANCE = {
    "tolerance": 0.45,
    "max_widenings": 4,
}  # a best in the range's upper 55% counts as a hit


def _dropout_highs(task: str) -> list[float]:
    """The upper ends of dropout's range, study by study, of a campaign that wants more."""
    spec = spec_of(baseline=False, task=task, boundary=WIDE_TOLERANCE)
    replay = Replay(spec, objective=_wants_dropout)
    assert replay.run()[-1] is K.FINISHED
    ranges = [s.facts.plan.decoded_distributions().get("dropout") for s in replay.studies]
    return sorted({r.high for r in ranges if r is not None})


def test_widening_stays_inside_the_domain_training_accepts() -> None:
    """Dropout's domain is [0, 1): without a hard_high in the space, each widening goes at
    most halfway to 1 (the second used to reach 1.125, where every trial failed)."""
    assert _dropout_highs("synthetic") == [0.5, 0.75, 0.875, 0.9375]


def test_a_user_tasks_model_parameter_widens_without_a_built_in_domain() -> None:
    """A user task's ``dropout`` is its own business: only the space's limits hold it."""
    assert _dropout_highs("my_tasks:make")[:3] == [0.5, 0.75, 1.125]


def test_learning_rate_first_stages_fix_the_earlier_best_and_narrow_the_rate() -> None:
    stages = [{"groups": ["learning_rate"], "trials": 6}, {"groups": ["model"], "trials": 6}]
    replay = Replay(spec_of(baseline=False, stages=stages, boundary={"widen": False}))
    replay.train_latest()
    first = replay.latest
    assert replay.step().kind is K.NEXT_STAGE
    best = min(first.trials, key=lambda t: t.value)
    second = replay.latest.facts.plan
    assert second.stage_index == 1 and second.name == "model"
    narrowed = second.decoded_distributions()["learning_rate"]
    rate = best.params["learning_rate"]
    assert narrowed.low == pytest.approx(rate / 3) and narrowed.high == pytest.approx(rate * 3)
    assert set(second.decoded_distributions()) == {"learning_rate", "width", "dropout"}
    assert replay.run()[-1] is K.FINISHED


def test_a_grid_stage_queues_every_combination_and_samples_nothing() -> None:
    stages = [
        {"groups": ["learning_rate"], "sampler": "grid", "grid_points": 4},
        {"groups": ["model"]},
    ]
    replay = Replay(spec_of(baseline=False, stages=stages))
    plan = replay.latest.facts.plan
    assert not plan.sampling and plan.trials == len(replay.latest.trials) == 4
    rates = sorted(t.params["learning_rate"] for t in replay.latest.trials)
    assert rates == pytest.approx([1e-3, 1e-2, 1e-1, 1.0])


def test_the_steps_sweep_widens_its_grid_then_measures_max_train_steps() -> None:
    sweep = {"low": 1e-3, "high": 1e-1, "count": 3, "steps": 200, "max_widenings": 1}
    spec = spec_of(max_train_steps="auto", steps_sweep=sweep, boundary={"widen": False})
    replay = Replay(spec, steps_to_fit=_faster_when_higher)
    kinds = replay.run()
    assert kinds[:3] == [K.WIDEN_SWEEP, K.STEPS_MEASURED, K.BASELINE_PASSED]
    widened = replay.study("replay/steps/2")
    assert sorted(t.params["learning_rate"] for t in widened.trials) == pytest.approx([1.0, 10.0])
    result = widened.facts.sweep
    assert result.max_train_steps == 20 and result.on_boundary is BoundarySide.HIGH
    assert "upper estimate" in result.reason
    assert replay.study("replay/baseline/1").facts.plan.campaign_max_train_steps == 20


def test_a_sweep_widens_only_while_the_budget_leaves_the_pipeline_room() -> None:
    sweep = {"low": 1e-3, "high": 1e-1, "count": 3, "steps": 200, "max_widenings": 1}
    loose = spec_of(max_train_steps="auto", steps_sweep=sweep, boundary={"widen": False})
    shortest = shortest_afforded(loose, 200)
    just_the_grid = least_total(loose, shortest, 3 * 200)  # a widening's 2 x 200 do not fit
    spec = spec_of(
        max_train_steps="auto",
        steps_sweep=sweep,
        boundary={"widen": False},
        budget={"steps": just_the_grid},
    )
    replay = Replay(spec, steps_to_fit=_faster_when_higher)
    kinds = replay.run()
    assert kinds[0] is K.STEPS_MEASURED and K.WIDEN_SWEEP not in kinds
    reason = replay.study("replay/steps/1").facts.sweep.reason
    assert "after 0 widening(s), the most the budget leaves room for" in reason
    assert replay.snapshot().steps_spent <= just_the_grid


def test_the_sweep_says_how_often_runs_of_the_measured_length_evaluate() -> None:
    sweep = {"low": 1e-3, "high": 1e-1, "count": 3, "steps": 200}
    spec = spec_of(max_train_steps="auto", steps_sweep=sweep, evaluations_per_run=4)
    replay = Replay(spec, steps_to_fit=lambda rate: 120)  # the sweep evaluates every 10
    replay.run()
    result = replay.study("replay/steps/1").facts.sweep
    assert result.max_train_steps == 120
    assert "runs evaluate every 30 steps (about 4 evaluations a run" in result.reason
    assert replay.study("replay/joint/1").facts.plan.max_train_steps == 30  # 120 / 4


def test_a_sweep_where_nothing_fits_stops_the_campaign() -> None:
    sweep = {"low": 1e-3, "high": 1e-1, "count": 3, "steps": 200}
    replay = Replay(spec_of(max_train_steps="auto", steps_sweep=sweep))
    assert replay.run() == [K.STOP]
    assert "fitted the training set" in replay.snapshot().stopped


def test_the_stage_waits_while_trials_run_or_a_failure_awaits_its_retry() -> None:
    replay = Replay(spec_of(baseline=False, trials=3))
    replay.latest.trials = [create_trial(state=TrialState.RUNNING)]
    assert next_transition(replay.snapshot()).kind is K.WAIT
    stale = create_trial(state=TrialState.FAIL)
    done = create_trial(state=TrialState.COMPLETE, value=1.0)
    stale.number, done.number = 0, 1
    replay.latest.trials = [stale, done]
    assert next_transition(replay.snapshot()).kind is K.WAIT


def test_fewer_than_two_finalists_skip_the_reevaluation_once() -> None:
    replay = Replay(spec_of(baseline=False, rounds=[{"budget_fraction": 1.0}], trials=1))
    assert replay.run() == [K.SKIP_REEVALUATION, K.FINISHED]
    assert "at least 2 finalists" in replay.latest.facts.skipped.reason
    answer = replay.latest.facts.recommendation
    assert not answer.verified and "at least 2 finalists" in answer.verdict


def test_a_transition_is_decided_once() -> None:
    replay = Replay(spec_of(boundary={"widen": False}))
    replay.run()
    assert next_transition(replay.snapshot()).kind is K.FINISHED
    assert not next_transition(replay.snapshot()).writes


def test_reevaluation_runs_are_finalist_by_period_by_seed() -> None:
    spec = spec_of(
        baseline=False,
        boundary={"widen": False},
        reevaluation={"finalists": 2, "periods": 3, "seeds": 2, "period_seed": 5},
    )
    replay = Replay(spec)
    replay.run()
    runs = replay.study("replay/reeval/1").trials
    keys = {
        (t.user_attrs[ATTR_FINALIST], t.user_attrs[ATTR_PERIOD_INDEX], t.user_attrs["replicate"])
        for t in runs
    }
    assert len(runs) == len(keys) == 2 * 3 * 2
    assert replay.study("replay/reeval/1").facts.plan.stage is Stage.REEVALUATION


def _with_attrs(trial, attrs):  # noqa: ANN001, ANN202
    copy = create_trial(
        state=trial.state,
        value=trial.value,
        params=trial.params,
        distributions=trial.distributions,
        user_attrs={**trial.user_attrs, **attrs},
        intermediate_values=trial.intermediate_values,
    )
    copy.number = trial.number
    return copy


def _faster_when_higher(rate: float) -> int | None:
    steps = 20 + int(2 / rate)
    return steps if steps <= 200 else None


def _worse_when_short(objective):  # noqa: ANN001, ANN202
    """The baseline (no tuned parameters) loses to the trivial predictor in short runs only."""
    calls = {"n": 0}

    def value(hparams):  # noqa: ANN001, ANN202
        calls["n"] += 1
        return 10.0 if calls["n"] == 1 else objective(hparams)

    return value


def test_a_round_where_every_trial_failed_stops_the_campaign_with_the_reasons() -> None:
    replay = Replay(spec_of(baseline=False, trials=4))
    failed = []
    for number, error in enumerate(["ValueError: bad", "ValueError: bad", "OSError: disk"]):
        trial = create_trial(state=TrialState.FAIL, user_attrs={"error": error})
        trial.number = number
        failed.append(trial)
    pruned = create_trial(state=TrialState.PRUNED, user_attrs={"pruned_reason": "loss is nan"})
    pruned.number = 3
    replay.latest.trials = [*failed, pruned]
    transition = next_transition(replay.snapshot())
    assert transition.kind is K.STOP
    ((_, stopped),) = transition.facts
    assert stopped.reason.startswith("no trial of replay/joint/1 completed: 2 x ValueError: bad")
    assert "1 x OSError: disk" in stopped.reason and "loss is nan" in stopped.reason


def _fastest_above_the_grid(rate: float) -> int:
    """Steps to fit fall with the rate up to 0.3 (200 steps at 0.1), then rise again."""
    return 100 + round(100 * abs(math.log10(rate / 0.3)))


def test_the_sweep_runs_its_middle_first_and_stops_slower_rates_where_a_faster_fitted() -> None:
    sweep = {"low": 1e-3, "high": 1e-1, "count": 3, "steps": 2_000, "max_widenings": 1}
    replay = Replay(
        spec_of(max_train_steps="auto", steps_sweep=sweep), steps_to_fit=_fastest_above_the_grid
    )
    replay.train_latest()
    first = replay.latest
    assert [t.params["learning_rate"] for t in first.trials] == pytest.approx([0.01, 1e-3, 0.1])
    states = [(t.state, t.user_attrs.get("steps_to_fit")) for t in first.trials]
    assert states == [  # 0.01 fits in 248 steps; 1e-3 would need 348: stopped at 248
        (TrialState.COMPLETE, 248),
        (TrialState.PRUNED, None),
        (TrialState.COMPLETE, 148),
    ]
    assert first.trials[1].user_attrs["sweep_outpaced_by"] == 248
    step = replay.step()  # the fastest, 0.1, is the grid's top: widened beyond it
    assert step.kind is K.WIDEN_SWEEP
    widened = replay.latest
    assert [t.user_attrs["sweep_steps_to_beat"] for t in widened.trials] == [148, 148]
    replay.train_latest()
    # 1.0 would need 152 steps, 10 more: both stop at 148, and 0.1 is now inside the grid
    assert {t.state for t in widened.trials} == {TrialState.PRUNED}
    assert {t.user_attrs["sweep_outpaced_by"] for t in widened.trials} == {148}
    assert replay.step().kind is K.STEPS_MEASURED
    assert replay.latest.facts.plan.sweep_steps == 248 + 248 + 148 + 148 + 148


def test_the_tasks_defaults_are_re_evaluated_beside_the_finalists_and_can_be_the_answer() -> None:
    """Tuning that chases the tuning period's noise (short runs reward a high learning
    rate; full-length runs punish it) hands its finalists a flattering value; the task's
    defaults, chosen by nothing, are re-trained beside them and win on fresh periods."""

    def overfits(hparams: dict[str, Any]) -> float:  # full length: the defaults' 0.01 is best
        return 0.1 + abs(math.log(float(hparams["learning_rate"]) / 0.01))

    replay = Replay(spec_of(boundary={"widen": False}), objective=bowl(math.log(0.5)))
    replay.long_objective = overfits
    replay.run()
    design = replay.study("replay/reeval/1").facts.design
    labels = [f.label for f in design.finalists]
    # 3 finalists and the defaults, named by the baseline's last run (here its recheck)
    assert labels[-1] == "replay/baseline/2 #0" and len(labels) == 4
    defaults = design.finalists[-1]
    assert defaults.tuning_run == () and defaults.fast_value is None  # no run of its length
    assert defaults.recipe.hyperparameters["learning_rate"] == 0.01
    assert defaults.recipe.hyperparameters["early_stopping_patience"] == 0
    assert defaults.recipe.max_train_steps == 400
    answer = replay.study("replay/reeval/1").facts.recommendation
    assert answer is not None and answer.finalist == "replay/baseline/2 #0"
    assert answer.recipe.hyperparameters["learning_rate"] == 0.01

    off = spec_of(
        boundary={"widen": False}, reevaluation={"finalists": 3, "periods": 4, "defaults": False}
    )
    replay = Replay(off)
    replay.run()
    assert len(replay.study("replay/reeval/1").facts.design.finalists) == 3
    no_baseline = Replay(spec_of(baseline=False, boundary={"widen": False}))
    no_baseline.run()
    assert len(no_baseline.study("replay/reeval/1").facts.design.finalists) == 3
