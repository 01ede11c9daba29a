"""The answer's cautions: what a recipe's numbers cannot show."""

from autotune.campaign import Recipe
from autotune.report._answer import _params_text
from autotune.report._answer import recipe_cautions
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
