"""A total step budget: planned before the first trial, never exceeded."""

from __future__ import annotations

import math
import re
from typing import Any

from optuna.trial import FrozenTrial
from optuna.trial import TrialState
from optuna.trial import create_trial
import pytest

from autotune.campaign import TransitionKind
from autotune.campaign._budget import BudgetTooSmallError
from autotune.campaign._budget import afforded_max_train_steps
from autotune.campaign._budget import plan_budget
from autotune.spec import StudySpec
from tests.campaign.replay import Replay
from tests.campaign.replay import bowl
from tests.campaign.replay import campaign_steps
from tests.campaign.replay import spec_of

K = TransitionKind


@pytest.mark.parametrize("steps", [40_000, 60_000, 120_000])
def test_a_campaign_spends_its_budget_and_never_more(steps: int) -> None:
    spec = spec_of(budget={"steps": steps})
    replay = Replay(spec)
    kinds = replay.run()
    assert kinds[-1] is K.FINISHED and replay.latest.facts.recommendation is not None
    spent = campaign_steps(replay)
    assert spent <= steps
    assert replay.latest.facts.design.period_count >= 2  # the floor the plan kept room for
    assert spent >= 0.8 * steps  # what widening and the recheck left buys promotions, periods
    round_one = replay.study("replay/joint/1")
    planned = plan_budget(spec, 400, steps, 0).round_one[0]
    assert len(round_one.trials) == planned // 100  # full-length round-1 trials that fit


def _sweep_spec(budget: int, sweep_steps: int = 2_000) -> StudySpec:
    sweep = {"low": 1e-3, "high": 1e-1, "count": 3, "steps": sweep_steps, "max_widenings": 2}
    return spec_of(max_train_steps="auto", steps_sweep=sweep, budget={"steps": budget})


def _middle_rate_fits_first(rate: float) -> int:
    """The middle rate of the grid fits in 100 steps, the others in 200; it runs first, so
    they stop at 100 (300 in all, not 500)."""
    return 100 + round(100 * abs(math.log10(rate) + 2))


def test_the_plan_takes_off_what_the_sweep_cost_not_the_most_it_could() -> None:
    # the sweep's grid and widenings could train 14,000 steps, which alone would not fit
    spec = _sweep_spec(12_000)
    replay = Replay(spec, steps_to_fit=_middle_rate_fits_first)
    kinds = replay.run()
    assert kinds[0] is K.STEPS_MEASURED and kinds[-1] is K.FINISHED
    assert replay.study("replay/baseline/1").facts.plan.sweep_steps == 300
    assert replay.latest.facts.plan.sweep_steps == 300  # every later study plans with it
    assert plan_budget(spec, 100, 12_000, 300).sweep == 300
    assert 0.8 * 12_000 <= campaign_steps(replay) <= 12_000


def test_a_budget_beyond_the_trials_buys_longer_runs_not_more_trials() -> None:
    spec = _sweep_spec(12_000)  # trials: 12 per stage's round 1
    afforded = afforded_max_train_steps(spec, 100, 300)  # what the replayed sweep costs
    assert afforded > afforded_max_train_steps(spec, 100, 500)  # a cheaper sweep: longer runs
    assert afforded > 100 and afforded % spec.eval_interval == 0
    for steps, fits in ((afforded, True), (afforded + spec.eval_interval, False)):
        plan = plan_budget(spec, steps, 12_000, 300)
        first = spec.round_steps(1, steps)
        assert all(share >= 12 * first for share in plan.round_one) is fits
    replay = Replay(spec, steps_to_fit=_middle_rate_fits_first)
    replay.run()
    sweep = replay.study("replay/steps/1").facts.sweep
    assert sweep.max_train_steps == afforded and "the budget affords" in sweep.reason
    assert len(replay.study("replay/joint/1").trials) >= 12


def test_the_afforded_steps_stay_within_the_sweep_horizon_and_above_its_measure() -> None:
    assert afforded_max_train_steps(_sweep_spec(12_000, sweep_steps=300), 100, 500) == 300
    assert afforded_max_train_steps(_sweep_spec(2_000_000), 100, 500) == 2_000
    assert afforded_max_train_steps(_sweep_spec(2_000), 100, 500) == 100  # no room: measured


def test_a_budget_too_small_for_the_measured_length_runs_shorter_instead_of_stopping() -> None:
    """goog-volatility in automatic mode: the sweep measured 630 steps, a 12,000-step budget
    planned the pipeline only at shorter runs, and the campaign stopped after the sweep."""
    spec = _sweep_spec(4_000)
    afforded = afforded_max_train_steps(spec, 600, 600)
    assert 100 < afforded < 600 and afforded % spec.eval_interval == 0
    plan_budget(spec, afforded, 4_000, 600)  # fits
    with pytest.raises(BudgetTooSmallError):
        plan_budget(spec, afforded + spec.eval_interval, 4_000, 600)
    replay = Replay(spec, steps_to_fit=lambda rate: 600 if rate < 0.05 else None)
    kinds = replay.run()
    assert kinds[:2] == [K.STEPS_MEASURED, K.BASELINE_PASSED] and kinds[-1] is K.FINISHED
    sweep = replay.study("replay/steps/1").facts.sweep  # its sweep cost more than 600
    assert 100 < sweep.max_train_steps < afforded
    assert f"the budget affords only {sweep.max_train_steps} steps per run" in sweep.reason
    assert campaign_steps(replay) <= 4_000
    # A tenth of the measured steps at the least: 1,300 steps buy 50-step runs, too short.
    assert afforded_max_train_steps(_sweep_spec(2_000), 600, 600) == 90
    assert afforded_max_train_steps(_sweep_spec(1_300), 600, 600) == 600  # it stops
    stopped = Replay(_sweep_spec(1_000), steps_to_fit=lambda rate: 600 if rate < 0.05 else None)
    assert stopped.run()[-1] is K.STOP and "too small" in stopped.snapshot().stopped


def test_widening_draws_from_the_stage_share_kept_for_it() -> None:
    spec = spec_of(budget={"steps": 60_000}, baseline=False)
    replay = Replay(spec, objective=bowl(math.log(3.0)))  # best above the range: widen
    kinds = replay.run()
    assert K.WIDEN_STAGE in kinds
    plan = plan_budget(spec, 400, 60_000, 0)
    widened = replay.study("replay/joint/1-widened1").facts.plan
    assert widened.step_budget == plan.round_one[0] + plan.widening[0]
    assert campaign_steps(replay) <= 60_000


def test_the_printed_plan_adds_up_to_the_budget() -> None:
    """It left the quarter kept for widening out: 8,363 + ... summed to 27,213 of 30,000."""
    staged = [{"groups": ["learning_rate"]}, {"groups": ["model"]}]
    rounds = [{"budget_fraction": 0.25}, {"budget_fraction": 1.0, "top_k": 2}]
    for spec in (
        spec_of(budget={"steps": 30_000}),
        spec_of(budget={"steps": 30_000}, stages=staged, rounds=rounds),
    ):
        line = plan_budget(spec, 400, 30_000, 500).lines()[0]
        parts = line.split("steps: ", 1)[1].replace("round 1 ", "round one ")
        total = sum(int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", parts))
        assert 30_000 - len(spec.tuning_stages) < total <= 30_000, line


def test_a_budget_too_small_for_the_pipeline_names_what_it_needs() -> None:
    spec = spec_of(budget={"steps": 4_800})
    # baseline 100 + 400, round 2 3 x 400, re-evaluation (3 finalists and the task's
    # defaults x 2 periods, and the defaults on the tuning period) x 400, and 8 round-1
    # trials of 100 steps
    assert spec.reevaluation_candidates == 4
    with pytest.raises(BudgetTooSmallError, match=r"raise it to at least 6,100") as raised:
        plan_budget(spec, 400, 4_800, 0)
    # only what this pipeline has (no sweep here)
    assert "the baseline, longer rounds and the re-evaluation take 5,300 steps" in str(
        raised.value
    )
    assert plan_budget(spec, 400, 6_100, 0).reevaluation == (4 * 2 + 1) * 400


def test_a_budgeted_round_promotes_what_its_share_buys() -> None:
    spec = spec_of(budget={"steps": 40_000})  # top_k 3
    replay = Replay(spec)
    kinds = replay.run()
    assert K.WIDEN_STAGE not in kinds and K.PROMOTE_MORE not in kinds
    plan = plan_budget(spec, 400, 40_000, 0)
    free = 40_000 - plan.baseline - plan.reevaluation
    assert plan.later_rounds == (free // 2,)  # as much as round 1: an equal split
    first, second = replay.study("replay/joint/1"), replay.study("replay/joint/2")
    later_runs = len(second.trials) + len(replay.latest.trials)  # round 2, re-evaluation
    before = campaign_steps(replay) - 400 * later_runs
    affordable = (40_000 - before - plan.reevaluation) // 400
    selective = math.ceil(len(first.trials) / 3)
    assert len(second.trials) == min(affordable, selective) > 3  # more than top_k
    horizon = second.facts.horizon
    assert horizon is not None and not horizon.misranked
    design = replay.latest.facts.design
    assert 2 <= design.period_count <= 12  # at least the plan's floor
    assert campaign_steps(replay) <= 40_000


def test_a_budgeted_round_promotes_at_most_a_third_of_the_round_before() -> None:
    spec = spec_of(
        budget={"steps": 40_000},
        rounds=[{"budget_fraction": 0.5}, {"budget_fraction": 1.0, "top_k": 3}],
    )
    replay = Replay(spec)
    replay.run()
    first, second = replay.study("replay/joint/1"), replay.study("replay/joint/2")
    assert len(second.trials) == math.ceil(len(first.trials) / 3)  # the budget buys more
    assert campaign_steps(replay) <= 40_000


def test_without_a_budget_a_round_promotes_its_top_k() -> None:
    replay = Replay(spec_of(seed=0))
    replay.run()
    assert len(replay.study("replay/joint/2").trials) == 3


def test_listed_heldout_periods_are_all_a_budget_buys() -> None:
    heldout = [
        {"train": ["2000-01-01", "2005-12-31"], "validation": [f"{y}-01-01", f"{y}-12-31"]}
        for y in (2006, 2007, 2008)
    ]
    spec = spec_of(
        budget={"steps": 40_000},
        periods={"heldout": heldout},
        reevaluation={"finalists": 3},
    )
    replay = Replay(spec)
    replay.run()
    design = replay.latest.facts.design
    assert design.period_count == 3  # the leftover would buy more, but there are 3
    # each candidate (the task's defaults too) on each, and the defaults on the tuning period
    assert len(replay.latest.trials) == 3 * spec.reevaluation_candidates + 1


def test_a_task_that_gives_fewer_periods_caps_what_a_budget_buys_and_the_default() -> None:
    """The volatility example gives 9 disjoint quarters: 12 (the default) or a budget's
    36 failed every re-evaluation run after all the tuning."""
    budgeted = Replay(spec_of(budget={"steps": 40_000}), most_periods=4)
    budgeted.run()
    design = budgeted.latest.facts.design
    assert design.period_count == 4  # the leftover would buy more, the task gives 4
    assert len(budgeted.latest.trials) == 4 * len(design.finalists) + 1  # + the defaults'
    plain = Replay(spec_of(reevaluation={"finalists": 2}), most_periods=5)  # default 12
    plain.run()
    assert plain.latest.facts.design.period_count == 5


def rewards_dropout(hparams: dict[str, Any]) -> float:
    """Long runs reward the dropout that short runs penalise (METHOD §1's short horizon)."""
    return bowl()(hparams) - 2 * float(hparams.get("dropout", 0.0))


def test_when_short_runs_misrank_the_next_best_are_promoted_within_the_budget() -> None:
    spec = spec_of(  # round 1 at half length: a third of it is less than round 2's share
        budget={"steps": 40_000},
        rounds=[{"budget_fraction": 0.5}, {"budget_fraction": 1.0, "top_k": 3}],
    )
    replay = Replay(spec, long_objective=rewards_dropout)
    kinds = replay.run()
    assert kinds.count(K.PROMOTE_MORE) == 1
    second = replay.study("replay/joint/2")
    horizon = second.facts.horizon
    assert horizon is not None and horizon.misranked and horizon.best_short_rank > 2
    first_promotion = math.ceil(len(replay.study("replay/joint/1").trials) / 3)
    assert horizon.more_promoted == 3  # top_k more, what the leftover buys
    assert len(second.trials) == first_promotion + 3 == second.facts.plan.trials
    parents = [t.user_attrs["parent_trial"] for t in second.trials]
    assert len(set(parents)) == len(parents)  # the next-best, never a configuration twice
    assert "promoted too" in horizon.message
    assert campaign_steps(replay) <= 40_000


def test_a_ranking_that_held_says_by_which_rule() -> None:
    """ "#19 of 49: the short round's ranking held" read as strong agreement; it is the rule
    (the long round's best in the short round's top half), and it keeps the cut."""
    replay = Replay(spec_of(seed=0))  # short and long runs rank alike
    replay.run()
    horizon = replay.study("replay/joint/2").facts.horizon
    assert horizon is not None and not horizon.misranked
    half = math.ceil(horizon.compared / 2)
    assert f"in the short round's top half (the rule: #{half} or better)" in horizon.message


def test_without_a_budget_a_misranking_is_reported_not_acted_on() -> None:
    replay = Replay(spec_of(seed=0), long_objective=rewards_dropout)
    kinds = replay.run()
    assert K.PROMOTE_MORE not in kinds
    horizon = replay.study("replay/joint/2").facts.horizon
    assert horizon is not None and horizon.misranked and horizon.more_promoted == 0
    assert "set a budget" in horizon.message


def _pruned(trial: FrozenTrial) -> FrozenTrial:
    pruned = create_trial(
        state=TrialState.PRUNED,
        params=trial.params,
        distributions=trial.distributions,
        user_attrs=trial.user_attrs,
        intermediate_values=trial.intermediate_values,
    )
    pruned.number = trial.number
    return pruned


def test_a_misranking_with_every_configuration_promoted_says_so() -> None:
    """It advised "raise top_k" when round 2 held every configuration round 1 finished."""
    spec = spec_of(budget={"steps": 40_000})
    replay = Replay(spec, long_objective=lambda hparams: -bowl()(hparams))  # order reversed
    replay.train_latest()  # the baseline
    replay.step()
    replay.train_latest()  # round 1: all but 3 of its trials pruned
    round_one = replay.latest
    round_one.trials = [t if k < 3 else _pruned(t) for k, t in enumerate(round_one.trials)]
    replay.run()
    horizon = replay.study("replay/joint/2").facts.horizon
    assert horizon is not None and horizon.misranked and horizon.more_promoted == 0
    assert "every finished configuration of the short round is promoted already" in (
        horizon.message
    )
    assert "top_k" not in horizon.message


def test_the_reevaluation_plans_at_most_a_fifth_of_the_budget_and_its_floor() -> None:
    spec = spec_of(budget={"steps": 20_000}, reevaluation={"finalists": 3, "periods": 12})
    plan = plan_budget(spec, 400, 20_000, 0)  # half of 12 periods would take 36%
    runs = spec.reevaluation_candidates  # 3 finalists and the task's defaults, per period
    tuning = 400  # the defaults' run on the tuning period
    assert plan.reevaluation == runs * 2 * 400 + tuning <= 0.2 * 20_000
    half = runs * 6 * 400 + tuning  # half the periods
    assert plan_budget(spec, 400, 90_000, 0).reevaluation == half
    assert plan_budget(spec, 400, 12_000, 0).reevaluation == runs * 2 * 400 + tuning  # floor: 2
    replay = Replay(spec)
    replay.run()
    assert replay.latest.facts.design.period_count >= 2
    assert campaign_steps(replay) <= 20_000


def _listed_periods(count: int) -> dict[str, object]:
    """A dated spec's tuning period and ``count`` held-out periods, a year each."""
    heldout = [
        {
            "train": ["1960-01-01", f"{1995 + 2 * k}-12-31"],
            "validation": [f"{1996 + 2 * k}-01-01", f"{1997 + 2 * k}-12-31"],
        }
        for k in range(count)
    ]
    tuning = {"train": ["1960-01-01", "1984-12-31"], "validation": ["1985-01-01", "1995-12-31"]}
    return {"tuning": tuning, "heldout": heldout}


def test_listed_periods_are_all_reserved_so_the_budget_holds() -> None:
    """Six listed periods ran in full while the plan kept room for three: 46,800 steps
    trained of a 40,000-step budget."""
    steps = 40_000
    spec = spec_of(
        budget={"steps": steps}, periods=_listed_periods(6), reevaluation={"finalists": 3}
    )
    assert spec.reevaluation.periods == 6
    every_run = 6 * spec.reevaluation_candidates + 1  # + the defaults on the tuning period
    assert plan_budget(spec, 400, steps, 0).reevaluation == every_run * 400
    replay = Replay(spec)
    assert replay.run()[-1] is K.FINISHED
    assert replay.latest.facts.design.period_count == 6
    assert campaign_steps(replay) <= steps
