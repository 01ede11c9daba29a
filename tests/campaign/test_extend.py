"""Extending a campaign: a spec that only grows sizes continues where the pipeline is."""

from __future__ import annotations

import pytest

from autotune._errors import CampaignExistsError
from autotune.campaign import TransitionKind
from autotune.campaign._extend import EXTENDABLE
from autotune.campaign._extend import Extension
from autotune.campaign._extend import extension
from autotune.campaign._extend import fact_updates
from autotune.campaign._records import StudyKey
from autotune.spec import StudySpec
from tests.campaign.replay import Replay
from tests.campaign.replay import spec_of

K = TransitionKind
ONE_ROUND = {"rounds": [{"budget_fraction": 1.0}], "reevaluation": {"enabled": False}}


def extend(replay: Replay, given: StudySpec) -> Extension:
    """Decide the extension on the replay's studies and apply it in memory, as
    create_or_extend_campaign writes it."""
    grown = extension([(s.name, s.facts) for s in replay.studies], replay.spec, given)
    for name, facts in grown.reopened:
        replay.study(name).facts = facts
    replay.spec = given
    return grown


def test_a_finished_one_round_campaign_runs_more_trials_and_answers_again() -> None:
    """The baseline is done and stays; round 1 is the latest study, so it takes more."""
    replay = Replay(spec_of(**ONE_ROUND, boundary={"widen": False}))
    assert replay.run()[-1] is K.FINISHED
    first_answer = replay.latest.facts.recommendation
    assert first_answer is not None and len(replay.latest.trials) == 12

    grown = extend(replay, spec_of(**ONE_ROUND, boundary={"widen": False}, trials=20))
    assert grown.message() == (
        "extended campaign 'replay' (trials: 12 -> 20): replay/joint/1 runs on to its new size"
    )
    assert replay.latest.facts.recommendation is None and replay.latest.facts.boundaries is None
    kinds = replay.run()[len(replay.transitions) - 2 :]
    assert [s.name for s in replay.studies] == ["replay/baseline/1", "replay/joint/1"]
    assert len(replay.latest.trials) == 20
    assert kinds[-2:] == [K.RECORD, K.FINISHED]
    answer = replay.latest.facts.recommendation
    assert answer is not None and replay.latest.facts.boundaries is not None
    assert answer.value <= first_answer.value  # the best of 20 trials includes the 12


def test_round_one_still_running_takes_more_trials_and_a_larger_top_k() -> None:
    replay = Replay(spec_of(baseline=False))
    rounds = [{"budget_fraction": 0.25}, {"budget_fraction": 1.0, "top_k": 4}]
    grown = extend(replay, spec_of(baseline=False, trials=16, rounds=rounds))
    assert [name for name, _ in grown.reopened] == ["replay/joint/1"]
    replay.run()
    assert len(replay.study("replay/joint/1").trials) == 16
    assert len(replay.study("replay/joint/2").trials) == 4


def test_a_campaign_past_round_one_says_what_can_be_extended() -> None:
    replay = Replay(spec_of())
    assert replay.run()[-1] is K.FINISHED  # round 2 and the re-evaluation ran
    with pytest.raises(CampaignExistsError) as refused:
        extension([(s.name, s.facts) for s in replay.studies], replay.spec, spec_of(trials=20))
    message = str(refused.value)
    assert "(stored -> given: trials: 12 -> 20): replay/joint/1 is done: the pipeline " in message
    assert f"can be extended by changing only {EXTENDABLE}, while the round" in message
    assert "autotune delete replay --yes" in message


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"eval_interval": 20}, "eval_interval: 10 -> 20)"),
        ({"trials": 8}, "trials: 12 -> 8): sizes can only grow"),
    ],
)
def test_other_changes_and_smaller_sizes_are_refused(overrides: dict, words: str) -> None:
    replay = Replay(spec_of())
    with pytest.raises(CampaignExistsError, match="exists already with a different spec") as e:
        extension([(s.name, s.facts) for s in replay.studies], replay.spec, spec_of(**overrides))
    assert words in str(e.value)


def test_more_workers_change_no_study() -> None:
    replay = Replay(spec_of())
    grown = extend(replay, spec_of(workers=4))
    assert grown.reopened == ()
    assert grown.message().endswith("(workers: 2 -> 4): no study changes size")


def test_a_larger_budget_grows_round_one_s_share() -> None:
    replay = Replay(spec_of(budget={"steps": 40_000}, baseline=False))
    before = replay.latest.facts.plan
    grown = extend(replay, spec_of(budget={"steps": 60_000}, baseline=False))
    ((name, facts),) = grown.reopened
    assert name == "replay/joint/1"
    assert facts.plan.step_budget > before.step_budget and facts.plan.trials > before.trials


def test_the_writes_set_the_new_plan_and_clear_the_decisions() -> None:
    replay = Replay(spec_of(**ONE_ROUND, boundary={"widen": False}))
    replay.run()
    old = replay.latest.facts
    grown = extension(
        [(s.name, s.facts) for s in replay.studies],
        replay.spec,
        spec_of(**ONE_ROUND, boundary={"widen": False}, trials=20),
    )
    updates = dict(fact_updates(old, grown.reopened[0][1]))
    assert updates[StudyKey.PLAN.value]["trials"] == 20
    assert updates[StudyKey.RECOMMENDATION.value] is None
    assert updates[StudyKey.BOUNDARIES.value] is None
