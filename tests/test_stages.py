"""Stages before and between rounds: the max_train_steps sweep, the baseline, resuming."""

from __future__ import annotations

import math
from pathlib import Path
import re

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState
from optuna.trial import create_trial
import pytest
import torch

import autotune
from autotune import training
from autotune.analysis import BestStepAnalysis
from autotune.analysis import BoundarySide
from autotune.analysis import StepRecommendation
from autotune.campaign import Stage
from autotune.campaign import promotion_overrides
from autotune.campaign import sweep_points
from autotune.campaign._promotion import adapted_round_steps
from autotune.campaign._transitions import baseline_outcome
from autotune.campaign._transitions import resolved_max_train_steps
from autotune.campaign._transitions import widened_rates
from autotune.spec import SpecError
from autotune.spec import load_study_spec
from autotune.worker._objectives import sweep_hparams
from autotune.worker._task_checks import load_checked_study_spec
from tests.conftest import REPO_ROOT
from tests.conftest import run_autotune
from tests.conftest import run_workers
from tests.conftest import space_without_early_stopping
from tests.conftest import write_study

TWO_ROUNDS = "rounds:\n  - {budget_fraction: 0.5}\n  - {budget_fraction: 1.0, top_k: 2}\n"


def spec_of(tmp_path: Path, extra: str = "", **options: object):  # noqa: ANN201
    return load_study_spec(write_study(tmp_path, "s", trials=6, extra=extra, **options))


# --- pure decisions -------------------------------------------------------------------------


def test_widening_continues_the_grid_spacing_beyond_the_hit_side() -> None:
    rates = [1e-3, 1e-2, 1e-1]
    assert widened_rates(rates, BoundarySide.HIGH, 2) == pytest.approx([1.0, 10.0])
    assert widened_rates(rates, BoundarySide.LOW, 2) == pytest.approx([1e-4, 1e-5])


def test_measured_steps_cover_one_eval_and_the_first_rung(tmp_path: Path) -> None:
    spec = spec_of(tmp_path, eval_interval=20)
    assert resolved_max_train_steps(300, spec) == 300
    assert resolved_max_train_steps(5, spec) == 20


def sweep_trial(rate: float, steps_to_fit: int | None) -> optuna.trial.FrozenTrial:
    return create_trial(
        value=math.inf if steps_to_fit is None else float(steps_to_fit),
        params={"learning_rate": rate},
        distributions={"learning_rate": FloatDistribution(1e-8, 1e3, log=True)},
        user_attrs={"steps_to_fit": steps_to_fit},
    )


def test_sweep_points_read_steps_to_fit_and_skip_unfinished() -> None:
    running = create_trial(
        state=TrialState.RUNNING,
        params={"learning_rate": 0.5},
        distributions={"learning_rate": FloatDistribution(1e-8, 1e3, log=True)},
    )
    points = sweep_points([sweep_trial(0.1, 90), sweep_trial(1.0, None), running], 300)
    assert [(p.learning_rate, p.steps_to_fit, p.sweep_steps) for p in points] == [
        (0.1, 90, 300),
        (1.0, None, 300),
    ]


def analysis(recommendation: StepRecommendation, suggested: int | None) -> BestStepAnalysis:
    return BestStepAnalysis((), None, None, None, recommendation, suggested, "why")


@pytest.mark.parametrize(
    ("recommendation", "suggested", "expected"),
    [
        (StepRecommendation.MORE, 120, 240),  # twice the parent's budget: twice the plan
        (StepRecommendation.FEWER, 30, 60),  # a quarter, but never below the parent's 60
        (StepRecommendation.FEWER, 45, 90),
        (StepRecommendation.KEEP, None, 120),
        (StepRecommendation.INSUFFICIENT_DATA, None, 120),
    ],
)
def test_step_advice_scales_the_next_round(
    recommendation: StepRecommendation, suggested: int | None, expected: int, tmp_path: Path
) -> None:
    spec = spec_of(tmp_path, eval_interval=30)
    advice = adapted_round_steps(120, 60, analysis(recommendation, suggested), spec.eval_interval)
    assert advice.steps == expected and advice.planned_steps == 120
    changed = expected != 120 or recommendation is StepRecommendation.MORE
    assert ("->" in advice.note) == changed
    assert recommendation.value not in advice.note.split(":")[0]  # words, not the enum's value


def baseline_trial(state: TrialState, value: float | None, **attrs: object):  # noqa: ANN201
    return create_trial(state=state, value=value, user_attrs=attrs)


def test_baseline_outcomes(tmp_path: Path) -> None:
    spec = spec_of(tmp_path)
    beats = baseline_outcome(baseline_trial(TrialState.COMPLETE, 0.3, trivial_val_loss=2.3), spec)
    assert beats.passed and "beats the trivial predictor" in beats.message
    loses = baseline_outcome(baseline_trial(TrialState.COMPLETE, 2.4, trivial_val_loss=2.3), spec)
    assert not loses.passed and "does NOT beat" in loses.message
    unchecked = baseline_outcome(baseline_trial(TrialState.COMPLETE, 0.3), spec)
    assert unchecked.passed and "no trivial predictor" in unchecked.message
    failed = baseline_outcome(baseline_trial(TrialState.FAIL, None, error="OSError: x"), spec)
    assert not failed.passed and "OSError: x" in failed.message
    diverged = baseline_trial(TrialState.PRUNED, None, pruned_reason="loss became nan")
    assert "loss became nan" in baseline_outcome(diverged, spec).message


def test_sweep_configuration_is_constant_and_unregularized(tmp_path: Path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(WSD_SPACE)
    fixed = "{weight_decay: 0.1, warmup_fraction: 0.1, momentum: 0.8}"
    spec = spec_of(tmp_path, fixed=fixed, space=space)
    hparams = sweep_hparams(spec, training.get_task("digits-mlp"), 0.05)
    assert hparams["learning_rate"] == 0.05 and hparams["schedule"] == "constant"
    assert hparams["weight_decay"] == 0.0 and hparams["dropout"] == 0.0
    assert "warmup_fraction" not in hparams and hparams["momentum"] == 0.8


def test_auto_steps_needs_the_sweeps_steps(tmp_path: Path) -> None:
    path = write_study(tmp_path, "auto", trials=4)
    path.write_text(path.read_text().replace("max_train_steps: 120", "max_train_steps: auto"))
    with pytest.raises(SpecError, match="steps_sweep.steps"):
        load_study_spec(path)
    path.write_text(path.read_text() + "steps_sweep: {low: 0.1, high: 0.01, steps: 100}\n")
    with pytest.raises(SpecError, match=r"low \(0.1\) must be below high"):
        load_study_spec(path)


# --- real workers on PostgreSQL -------------------------------------------------------------


@pytest.mark.e2e
def test_auto_steps_sweep_widens_then_baseline_then_rounds(
    storage_url: str, tmp_path: Path
) -> None:
    """A grid whose fastest rate is its top end is widened before its estimate is used."""
    path = write_study(
        tmp_path,
        "auto",
        trials=4,
        eval_interval=30,
        baseline=True,
        extra=TWO_ROUNDS
        + "steps_sweep: {low: 0.001, high: 0.01, count: 2, steps: 300, max_widenings: 1}\n",
    )
    path.write_text(path.read_text().replace("max_train_steps: 120", "max_train_steps: auto"))
    assert run_autotune("create", str(path), "--storage", storage_url).returncode == 0
    run_workers("auto", storage_url, count=2)

    campaign = autotune.load("auto", storage=storage_url)
    labels = [s.label for s in campaign.studies]
    assert labels == ["steps sweep", "steps sweep (widened 1x)", "baseline", "round 1", "round 2"]
    sweep, widened = campaign.stage_studies(Stage.STEPS_SWEEP)
    sweep_trials = campaign.trials_of(sweep) + campaign.trials_of(widened)
    rates = sorted(t.params["learning_rate"] for t in campaign.trials_of(widened))
    assert rates == pytest.approx([0.1, 1.0])
    decision = widened.facts.sweep
    fastest = min(
        (t for t in sweep_trials if t.user_attrs.get("steps_to_fit")),
        key=lambda t: (t.value, t.params["learning_rate"]),
    )
    assert decision.fastest_learning_rate == fastest.params["learning_rate"]
    assert decision.max_train_steps == max(fastest.user_attrs["steps_to_fit"], 30)
    for trial in sweep_trials:  # a rate unfitted when another had fitted stopped there
        if trial.state is TrialState.PRUNED:
            outpaced_by = trial.user_attrs["sweep_outpaced_by"]  # at its first eval after
            assert trial.user_attrs["steps_done"] >= outpaced_by  # (they may run side by side)
            assert outpaced_by >= fastest.user_attrs["steps_to_fit"]
        else:
            assert trial.state is TrialState.COMPLETE
    assert campaign.max_train_steps == decision.max_train_steps
    baseline, *rounds = campaign.studies[2:]
    assert baseline.facts.baseline.passed
    assert baseline.max_train_steps == rounds[0].max_train_steps
    assert rounds[1].max_train_steps == campaign.max_train_steps
    assert all(t.state is TrialState.COMPLETE for t in campaign.trials_of(rounds[1]))

    status = run_autotune("status", "auto", "--storage", storage_url)
    assert "max_train_steps: the fastest learning rate" in status.stdout
    assert "steps: the baseline beats the trivial predictor" in status.stdout


@pytest.mark.e2e
def test_a_baseline_that_loses_to_the_trivial_predictor_stops_the_campaign(
    tmp_path: Path,
) -> None:
    path = REPO_ROOT / "studies" / "user_task_example.yaml"
    text = path.read_text().replace(
        "examples.sine_task:make_task", "tests.tasks.broken:misaligned_sine"
    )
    spec = tmp_path / "broken.yaml"
    text = re.sub(r"^name: .*$", "name: broken", text, count=1, flags=re.MULTILINE)
    spec.write_text(text.replace("trials: 30", "trials: 4"))
    result = run_autotune("run", str(spec), "--state-dir", str(tmp_path / "state"))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "campaign stopped: the baseline does NOT beat the trivial predictor" in result.stderr
    assert "Traceback" not in result.stderr
    campaign = autotune.load("broken", state_dir=str(tmp_path / "state"))  # a str will do
    assert [s.stage for s in campaign.studies] == [Stage.BASELINE]  # at the full budget
    assert campaign.stopped is not None and "pipeline or the data is broken" in campaign.stopped


def test_a_fixed_model_value_the_user_task_cannot_build_is_a_spec_error(tmp_path: Path) -> None:
    """A user task's model hyperparameters have no domains: a fixed hidden_units "big"
    passed create and stopped the campaign at its baseline run."""
    text = (REPO_ROOT / "studies" / "user_task_example.yaml").read_text()
    text = text.replace(
        "        hidden_units: {type: int, low: 16, high: 128, log: true}\n", ""
    ).replace("  optimizer: adamw\n", "  optimizer: adamw\n  hidden_units: big\n")
    spec = tmp_path / "fixed.yaml"
    spec.write_text(text)
    with pytest.raises(SpecError) as raised:
        load_checked_study_spec(spec)
    message = str(raised.value)
    assert "fixed: task 'examples.sine_task:make_task' cannot build its model with " in message
    assert "the spec's fixed hidden_units='big': ValueError: invalid literal" in message
    load_checked_study_spec(REPO_ROOT / "studies" / "user_task_example.yaml")  # as shipped


def test_a_user_task_whose_evaluate_misnames_a_metric_is_a_spec_error(tmp_path: Path) -> None:
    """Its evaluate() returned "loss" for "val_loss": create passed, every sweep trial
    failed and the campaign stopped (exit 3)."""
    text = (REPO_ROOT / "studies" / "user_task_example.yaml").read_text()
    spec = tmp_path / "misnamed.yaml"
    spec.write_text(
        text.replace("examples.sine_task:make_task", "tests.tasks.broken:misnamed_metric")
    )
    with pytest.raises(
        SpecError,
        match="cannot evaluate its untrained default model: .*"
        r"did not return val_loss; allowed: an evaluate\(model, data\) that runs",
    ):
        load_checked_study_spec(spec)


WSD_SPACE = """\
name: lr-only
groups:
  - name: learning_rate
    params:
      learning_rate: {type: float, low: 1.0e-3, high: 3.0e-2, log: true}
"""


@pytest.mark.e2e
def test_promoted_wsd_trials_resume_from_their_parents_checkpoints(
    storage_url: str, tmp_path: Path
) -> None:
    """Round 2 continues each parent's run from its constant phase: the same result as a
    from-scratch run of the longer schedule, with fewer steps trained."""
    space = tmp_path / "space.yaml"
    space.write_text(WSD_SPACE)
    path = write_study(
        tmp_path,
        "wsd",
        trials=5,
        space=space,
        sampler="{type: random}",
        fixed="{schedule: wsd, decay_fraction: 0.2, optimizer: adamw}",
        extra=TWO_ROUNDS,
    )
    assert run_autotune("create", str(path), "--storage", storage_url).returncode == 0
    run_workers("wsd", storage_url, count=2)

    campaign = autotune.load("wsd", storage=storage_url)
    first, second = campaign.studies
    parents = {t.number: t for t in campaign.trials_of(first)}
    spec = campaign.spec
    promoted = campaign.trials_of(second)
    for trial in promoted:
        parent = parents[trial.user_attrs["parent_trial"]]
        # Round 1 trains 60 steps, decaying over the last 12: constant up to step 48, so the
        # checkpoint of eval step 40 is the one a 120-step run shares.
        assert parent.user_attrs["checkpoint"]["step"] == 40
        assert trial.user_attrs["resumed_from_step"] == 40
        assert "resume_error" not in trial.user_attrs
        hparams = {**spec.fixed, **trial.params, **trial.user_attrs["schedule_overrides"]}
        assert hparams == {**spec.fixed, **parent.params, **promotion_overrides(
            {**spec.fixed, **parent.params}, 60
        )}  # fmt: skip
        torch.set_num_threads(1)
        scratch = training.train(
            hparams,
            training.get_task("digits-mlp"),
            training.Budget(
                max_train_steps=120, eval_interval=20, batch_size=32, seed=trial.user_attrs["seed"]
            ),
            lambda evaluation: None,
            "val_loss",
        )
        assert trial.value == scratch.best.metrics["val_loss"]
        assert trial.user_attrs["final_val_loss"] == scratch.final.metrics["val_loss"]
        assert {s: v for s, v in trial.intermediate_values.items() if s <= 40} == {
            s: v for s, v in parent.intermediate_values.items() if s <= 40
        }
    status = run_autotune("status", "wsd", "--storage", storage_url)
    saved = 40 * len(promoted)
    assert f"round 2: {saved} training steps saved by resuming" in status.stdout
    horizon = second.facts.horizon  # the short-vs-long check of the last round, shown
    assert horizon is not None and horizon.compared == len(promoted)
    assert f"round 2 short vs long runs: {horizon.message}" in status.stdout


@pytest.mark.e2e
def test_step_advice_is_applied_to_the_next_round_when_asked(
    storage_url: str, tmp_path: Path
) -> None:
    path = write_study(
        tmp_path,
        "advised",
        trials=6,
        space=space_without_early_stopping(tmp_path),  # every trial trains its whole budget
        extra=TWO_ROUNDS + "apply_step_advice: true\n",
    )
    assert run_autotune("create", str(path), "--storage", storage_url).returncode == 0
    run_workers("advised", storage_url, count=2)
    campaign = autotune.load("advised", storage=storage_url)
    first, second = campaign.studies
    advice = adapted_round_steps(120, 60, campaign.best_steps(first), campaign.spec.eval_interval)
    expected = advice.steps
    assert second.max_train_steps == expected
    assert second.facts.step_advice == advice
    # Every run gets the advised budget; a promoted run may still diverge (pruned, NaN).
    ran = [t for t in campaign.trials_of(second) if t.state != TrialState.FAIL]
    assert {t.user_attrs["max_train_steps"] for t in ran} == {expected}
    trained = [t for t in ran if t.state == TrialState.COMPLETE]
    assert trained and {t.user_attrs["steps_done"] for t in trained} == {expected}


def test_a_searched_model_range_the_user_task_cannot_build_is_a_spec_error(
    tmp_path: Path,
) -> None:
    """A dropout range of [1.05, 1.4] passed create and failed every trial at run time."""
    text = (REPO_ROOT / "studies" / "user_task_example.yaml").read_text()
    shipped = "        activation: {type: categorical, choices: [tanh, relu]}\n"
    assert shipped in text
    dropout = "        dropout: {type: float, low: 0.2, high: 1.4}\n"
    spec = tmp_path / "dropout.yaml"
    spec.write_text(text.replace(shipped, shipped + dropout))
    with pytest.raises(SpecError) as raised:
        load_checked_study_spec(spec)
    message = str(raised.value)
    assert "search_space.dropout: task 'examples.sine_task:make_task' cannot build" in message
    assert "dropout=1.4 (its high end;" in message and "dropout=0.2" not in message
