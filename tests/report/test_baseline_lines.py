"""The baseline in words: a loss at round 1's length that the full-length recheck cleared
reads as numbers, not as a broken pipeline; rounds are compared with the baseline run at
their own length where there is one."""

from __future__ import annotations

from pathlib import Path

from optuna.distributions import FloatDistribution
from optuna.trial import create_trial
import pytest

from autotune.campaign import TUNING_PERIOD
from autotune.campaign import Campaign
from autotune.campaign import Stage
from autotune.campaign import advance
from autotune.campaign import create_campaign
from autotune.campaign import load_campaign
from autotune.campaign._trial_attrs import ATTR_MAX_TRAIN_STEPS
from autotune.campaign._trial_attrs import ATTR_PERIOD_INDEX
from autotune.report._report import write_report
from autotune.report._summary import study_lines
from autotune.spec import load_study_spec
from autotune.storage import open_storage
from autotune.worker._defaults import task_defaults
from tests.conftest import write_study


def _baseline_run(campaign: Campaign, value: float) -> Campaign:
    campaign.optuna_study(campaign.current).add_trial(
        create_trial(value=value, user_attrs={"trivial_val_loss": 0.7, "seed": 1})
    )
    advance(campaign.name, campaign.storage)
    return load_campaign(campaign.name, campaign.storage)


def test_a_baseline_cleared_by_its_recheck_reads_as_numbers_and_rounds_compare_at_length(
    storage_url: str, tmp_path: Path
) -> None:
    rounds = "rounds: [{budget_fraction: 0.5}, {budget_fraction: 1.0, top_k: 2}]\n"
    path = write_study(tmp_path, "recheck", trials=3, baseline=True, extra=rounds)
    spec = load_study_spec(path)
    campaign, _ = create_campaign(spec, open_storage(storage_url), task_defaults(spec))
    campaign = _baseline_run(campaign, 0.71)  # loses at round 1's 60 steps of 120
    campaign = _baseline_run(campaign, 0.64)  # the recheck at the full 120 passes
    short, full = campaign.stage_studies(Stage.BASELINE)
    assert campaign.stage_studies("baseline") == [short, full]  # the stage's value too
    with pytest.raises(ValueError, match=r"stage 'baselin' is invalid; allowed: .*baseline"):
        campaign.stage_studies("baselin")
    (lost,) = study_lines(campaign, short)
    assert lost == (
        "baseline at 60 steps: val_loss 0.71 does not beat the trivial predictor's 0.7; "
        "rechecked at the full length (below)"
    )
    assert "broken" not in lost
    (passed,) = study_lines(campaign, full)
    assert passed.startswith("baseline at 120 steps: the baseline beats the trivial predictor")
    report = write_report(campaign, tmp_path / "report").markdown  # its Baseline section too
    assert lost in report and "broken" not in report

    round_one = campaign.optuna_study(campaign.current)
    for lr, loss in ((0.01, 0.62), (0.1, 0.6), (0.001, 0.66)):
        round_one.add_trial(
            create_trial(
                value=loss,
                params={"learning_rate": lr},
                distributions={"learning_rate": FloatDistribution(1e-5, 1.0, log=True)},
                intermediate_values={20: 2 * loss, 60: loss},
            )
        )
    campaign = load_campaign("recheck", campaign.storage)
    versus = [line for line in study_lines(campaign, campaign.current) if "vs baseline" in line]
    # round 1 runs 60 steps: the 60-step baseline, named with its length (not the 120-step one)
    assert versus == ["round 1 best val_loss 0.6 vs baseline 0.71 (-15.5%)"]

    advance("recheck", campaign.storage)  # round 2: the best 2 at the full 120 steps
    campaign = load_campaign("recheck", campaign.storage)
    campaign.optuna_study(campaign.current).add_trial(create_trial(value=0.55))
    campaign = load_campaign("recheck", campaign.storage)
    versus = [line for line in study_lines(campaign, campaign.current) if "vs baseline" in line]
    assert versus == ["round 2 best val_loss 0.55 vs baseline 0.64 (-14.1%)"]  # the recheck's


def test_the_last_round_compares_with_the_defaults_full_length_run_once_re_evaluated(
    storage_url: str, tmp_path: Path
) -> None:
    """The baseline ran at round 1's 60 steps; the re-evaluation runs the task's defaults
    on the tuning period at the full 120, and round 2 then compares with that run (a
    330-step round read "-36.2%" against an 80-step baseline, within 2% at equal length)."""
    rounds = "rounds: [{budget_fraction: 0.5}, {budget_fraction: 1.0, top_k: 2}]\n"
    path = write_study(tmp_path, "fair", trials=3, baseline=True, reevaluation=True, extra=rounds)
    design = "reevaluation: {periods: 2, period_seed: 1}"
    path.write_text(path.read_text().replace("reevaluation: {enabled: true}", design))
    spec = load_study_spec(path)
    campaign, _ = create_campaign(spec, open_storage(storage_url), task_defaults(spec))
    campaign = _baseline_run(campaign, 0.65)  # passes at 60 steps: no recheck
    distribution = {"learning_rate": FloatDistribution(1e-5, 1.0, log=True)}
    for lr, loss in ((0.01, 0.62), (0.1, 0.6), (0.001, 0.66)):
        campaign.optuna_study(campaign.current).add_trial(
            create_trial(
                value=loss,
                params={"learning_rate": lr},
                distributions=distribution,
                intermediate_values={20: 2 * loss, 40: 1.5 * loss, 60: loss},
            )
        )
    advance("fair", campaign.storage)  # round 2: the best 2 at the full 120 steps
    campaign = load_campaign("fair", campaign.storage)
    promoted = campaign.optuna_study(campaign.current)
    for loss in (0.55, 0.58):  # the queued promotions, run as a worker would
        trial = promoted.ask()
        for step in range(20, 121, 20):
            trial.report(loss * 120 / step, step)
        promoted.tell(trial, loss)
    campaign = load_campaign("fair", campaign.storage)
    round_two = campaign.current
    before = [line for line in study_lines(campaign, round_two) if "vs baseline" in line]
    assert before == ["round 2 best val_loss 0.55 vs baseline 0.65 at 60 steps (-15.4%)"]

    advance("fair", campaign.storage)  # the re-evaluation, the defaults' tuning run queued
    campaign = load_campaign("fair", campaign.storage)
    reevaluation = campaign.optuna_study(campaign.current)
    while (trial := reevaluation.ask()).user_attrs[ATTR_PERIOD_INDEX] != TUNING_PERIOD:
        pass
    trial.set_user_attr(ATTR_MAX_TRAIN_STEPS, 120)
    for step, value in ((20, 0.9), (60, 0.57), (120, 0.6)):
        trial.report(value, step)
    reevaluation.tell(trial, 0.6)
    campaign = load_campaign("fair", campaign.storage)
    after = [line for line in study_lines(campaign, round_two) if "vs baseline" in line]
    assert after == ["round 2 best val_loss 0.55 vs baseline 0.57 (-3.5%)"]  # its best, at 120
