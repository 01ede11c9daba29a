"""What the answer and the summary say beyond the numbers: cautions, shown hyperparameters,
the steps promotion saved."""

from optuna.trial import FrozenTrial
from optuna.trial import TrialState
from optuna.trial import create_trial

from autotune.campaign import Recipe
from autotune.campaign import Recommendation
from autotune.campaign._plain import from_plain
from autotune.campaign._plain import plain
from autotune.campaign._recipe import outweighing_run_caution
from autotune.campaign._trial_attrs import ATTR_PARENT_STUDY
from autotune.campaign._trial_attrs import ATTR_PARENT_TRIAL
from autotune.campaign._trial_attrs import ATTR_RESUME
from autotune.campaign._trial_attrs import ATTR_RESUMED_FROM
from autotune.report._answer import _params_text
from autotune.report._answer import answer_cautions
from autotune.report._answer import recipe_cautions
from autotune.report._summary import steps_saved_by_promotion
from autotune.spec import Direction


def _recipe(stop_at_step: int, max_train_steps: int = 400, eval_interval: int = 20) -> Recipe:
    return Recipe(
        "examples.volatility_task:make_task",
        {"learning_rate": 1e-4},
        32,
        1,
        max_train_steps,
        stop_at_step,
        eval_interval,
        "val_mse_pct2",
        Direction.MINIMIZE,
        0,
    )


def test_a_stop_at_the_first_evaluation_is_cautioned_with_the_knob_that_shows_more():
    (caution,) = recipe_cautions(_recipe(stop_at_step=20))
    assert "first evaluation (step 20 of 400)" in caution
    assert "eval_interval" in caution


def test_a_stop_after_the_first_evaluation_or_at_the_end_needs_no_caution():
    assert recipe_cautions(_recipe(stop_at_step=40)) == ()
    assert recipe_cautions(_recipe(stop_at_step=400)) == ()
    assert recipe_cautions(_recipe(stop_at_step=20, max_train_steps=20)) == ()


def test_one_period_outweighing_the_rest_of_the_mean_is_cautioned_and_stored() -> None:
    """A macro forecaster's 2008-09 period (26.6 against 1.6-7.5) chose its stop at step 1700
    of 2000, where it lost to the trivial predictor on 4 of 7 periods."""
    values = [1.57, 1.86, 2.39, 3.0, 4.1, 8.0, 26.6]
    runs = {("tuning", 0): values[0]} | {(str(k), 0): v for k, v in enumerate(values[1:])}
    names = {"5": "2008-01-01..2009-09-30"}
    caution = outweighing_run_caution(runs, "val_mse", Direction.MINIMIZE, names)
    assert caution is not None
    assert "period 2008-01-01..2009-09-30 has val_mse 26.6, the other 6 together 20.92" in caution
    assert "(1.57-8)" in caution
    even = {key: 3.0 + 0.1 * k for k, key in enumerate(runs)}
    assert outweighing_run_caution(even, "val_mse", Direction.MINIMIZE, names) is None
    # two large runs among small ones: neither outweighs the rest, so neither is named
    two = {(str(k), 0): v for k, v in enumerate([10, 10, 1, 1, 1, 1, 1, 1])}
    assert outweighing_run_caution(two, "val_mse", Direction.MINIMIZE, {}) is None
    assert outweighing_run_caution(runs, "accuracy", Direction.MAXIMIZE, names) is None
    few = dict(list(runs.items())[-3:])
    assert outweighing_run_caution(few, "val_mse", Direction.MINIMIZE, names) is None
    answer = Recommendation("s/2 #6", _recipe(40), True, 6.8, 0.0, 15.0, 7, "v", None, (caution,))
    assert answer_cautions(answer) == (caution,)
    assert from_plain(Recommendation, plain(answer)) == answer  # stored with the campaign
    stored_before = {k: v for k, v in plain(answer).items() if k != "cautions"}
    assert from_plain(Recommendation, stored_before).cautions == ()  # an older campaign's


def test_the_answers_hyperparameters_leave_out_what_training_does_not_read() -> None:
    """A promoted recipe showed "decay_fraction=None ... warmup_fraction=0, warmup_steps=26",
    which read as a contradiction."""
    params = {
        "decay_fraction": None,
        "decay_steps": 40,
        "learning_rate": 0.01535,
        "warmup_fraction": 0.0,
        "warmup_steps": 26,
    }
    assert _params_text(params) == "decay_steps=40, learning_rate=0.01535, warmup_steps=26"
    assert _params_text({"warmup_fraction": 0.1}) == "warmup_fraction=0.1"
    assert _params_text({"warmup_fraction": 0.0}) == "warmup_fraction=0"


def _promoted(parent_trial: int, resumed_from: int, parent_step: int = 3000) -> FrozenTrial:
    return create_trial(
        state=TrialState.COMPLETE,
        value=0.1,
        user_attrs={
            ATTR_PARENT_STUDY: "rr/joint/1",
            ATTR_PARENT_TRIAL: parent_trial,
            ATTR_RESUME: {"artifact_id": f"a{parent_trial}", "step": parent_step},
            ATTR_RESUMED_FROM: resumed_from,
        },
    )


def test_steps_saved_count_each_promoted_configuration_once() -> None:
    """19,600 "saved" where the parents' checkpoints saved 6,000: retries that resumed from
    their own recovery checkpoints (4,000; 9,600 holding the parent's 3,000) counted too."""
    trials = [
        _promoted(0, 3000),
        _promoted(4, 3000),
        _promoted(0, 4000),  # a retry of #0, from its recovery checkpoint
        _promoted(4, 9600),  # a retry of #4
        _promoted(7, 0),  # its parent's checkpoint was unusable: trained from scratch
        create_trial(state=TrialState.COMPLETE, value=0.1, user_attrs={ATTR_RESUMED_FROM: 1000}),
    ]
    assert steps_saved_by_promotion(trials) == 6000
