"""Learning-rate-first stages, widening a hit bound, re-evaluation on periods, the report."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
import re

from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
from optuna.trial import create_trial
import pytest

import autotune
from autotune import load_study_spec  # checked against the task, as create does
from autotune.campaign._campaign import Campaign
from autotune.campaign._campaign import Stage
from autotune.campaign._campaign import create_campaign
from autotune.campaign._pipeline import advance
from autotune.campaign._reevaluation import ATTR_DESIGN
from autotune.campaign._reevaluation import ATTR_SIGNIFICANCE
from autotune.campaign._reevaluation import rotating_period_seed
from autotune.campaign._staging import ATTR_BOUNDARIES
from autotune.campaign._staging import ATTR_CARRIED_FROM
from autotune.campaign._staging import ranked_at_a_rung
from autotune.campaign._staging import study_distributions
from autotune.spec import SpecError
from autotune.storage._open import open_storage
from tests.conftest import REPO_ROOT
from tests.conftest import run_autotune
from tests.conftest import run_workers
from tests.conftest import write_study

STAGED = """\
stages:
  - {groups: [learning_rate], trials: 6}
  - {groups: [optimizer, model, regularization], trials: 6}
rounds:
  - {budget_fraction: 0.5}
  - {budget_fraction: 1.0, top_k: 3}
boundary: {max_widenings: 1}
"""


# --- specs ----------------------------------------------------------------------------------


def test_automatic_mode_fills_the_staged_pipeline_from_the_task(tmp_path: Path) -> None:
    path = tmp_path / "auto.yaml"
    path.write_text(f"task: digits-cnn\nsearch_space: {REPO_ROOT / 'search_spaces/cnn.yaml'}\n")
    spec = load_study_spec(path)
    assert spec.name == "digits-cnn" and spec.max_train_steps == "auto"
    assert (spec.metric.name, spec.metric.direction.value) == ("val_loss", "minimize")
    assert [stage.groups for stage in spec.tuning_stages] == [
        ("learning_rate",),
        ("optimizer", "model", "regularization"),
    ]
    assert spec.reevaluation.enabled and len(spec.rounds) == 2


def test_automatic_mode_picks_the_built_in_space_of_the_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a spec and a working directory outside the checkout
    path = tmp_path / "auto.yaml"
    path.write_text("task: digits-mlp\n")
    spec = load_study_spec(path)
    assert spec.search_space.name == "mlp"


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ("[{groups: [model]}]", "must tune the 'learning_rate' group first"),
        ("[{groups: [learning_rate]}, {groups: [nosuch]}]", "no group 'nosuch'"),
        ("[{groups: [learning_rate, model]}, {groups: [model]}]", "group 'model' is tuned twice"),
    ],
)
def test_bad_stages_are_clear_errors(tmp_path: Path, stages: str, message: str) -> None:
    path = write_study(tmp_path, "s", trials=4, extra=f"stages: {stages}\n")
    with pytest.raises(SpecError, match=message):
        load_study_spec(path)


def test_hard_limits_must_enclose_the_range(tmp_path: Path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(
        "name: s\ngroups:\n  - name: learning_rate\n    params:\n"
        "      learning_rate: {type: float, low: 0.01, high: 0.1, log: true, hard_high: 0.05}\n"
    )
    with pytest.raises(SpecError, match="'hard_high' must not be below 'high'"):
        load_study_spec(write_study(tmp_path, "s", trials=4, space=space))


def test_periods_rotate_with_the_calendar_month() -> None:
    assert rotating_period_seed(datetime.date(2026, 11, 22)) == 202611
    assert rotating_period_seed(datetime.date(2026, 12, 1)) == 202612


# --- the pipeline on real workers -----------------------------------------------------------


@pytest.mark.e2e
def test_staged_campaign_runs_to_a_verdict_and_a_report(storage_url: str, tmp_path: Path) -> None:
    path = write_study(
        tmp_path,
        "staged",
        trials=6,
        max_train_steps=60,
        reevaluation=True,
        extra=STAGED
        + "reevaluation: {finalists: 2, periods: 3, seeds: 1, period_seed: 7}\n"
        + "fast_mode: {enabled: true, train_fraction: 0.5}\n",
    )
    text = path.read_text().replace("reevaluation: {enabled: true}\n", "")
    path.write_text(text)
    assert run_autotune("create", str(path), "--storage", storage_url).returncode == 0
    run_workers("staged", storage_url, count=2)

    campaign = autotune.load("staged", storage=storage_url)
    tuning = campaign.stage_studies(Stage.JOINT)
    first = [s for s in tuning if s.user_attrs["autotune.stage_index"] == 0]
    second = [s for s in tuning if s.user_attrs["autotune.stage_index"] == 1]
    assert first and second and Campaign.round_of(second[-1]) == 2
    stage_one_best = min(
        (t for t in first[-1].trials if t.state is TrialState.COMPLETE), key=lambda t: t.value
    )
    fixed = second[0].user_attrs["autotune.stage_fixed"]
    assert fixed == {k: v for k, v in stage_one_best.params.items() if k != "learning_rate"}
    narrowed = study_distributions(second[0])["learning_rate"]
    best_rate = stage_one_best.params["learning_rate"]
    assert narrowed.low == pytest.approx(max(best_rate / 3, 1e-6))
    assert narrowed.high == pytest.approx(min(best_rate * 3, 3.0))
    assert all(ATTR_BOUNDARIES in s.user_attrs for s in tuning if Campaign.round_of(s) == 1)
    for study in tuning:  # fast mode: round 1 on half the training rows, round 2 on all
        complete = study.get_trials(states=(TrialState.COMPLETE,))
        fractions = {t.user_attrs.get("train_fraction") for t in complete}
        assert fractions == ({0.5} if Campaign.round_of(study) == 1 else {None})

    (reevaluation,) = campaign.stage_studies(Stage.REEVALUATION)
    design = reevaluation.user_attrs[ATTR_DESIGN]
    assert design["period_seed"] == 7 and design["periods_pinned"] and len(design["periods"]) == 3
    assert len(design["finalists"]) == 2
    runs = reevaluation.trials
    assert len(runs) == 6 and all(t.state is TrialState.COMPLETE for t in runs)
    assert {(t.user_attrs["finalist"], t.user_attrs["period"]) for t in runs} == {
        (f, p) for f in design["finalists"] for p in design["periods"]
    }
    significance = reevaluation.user_attrs[ATTR_SIGNIFICANCE]
    assert "can never reach" in significance["too_few_pairs_warning"]

    out = tmp_path / "report"
    result = run_autotune("report", "staged", "--storage", storage_url, "--out", str(out))
    assert result.returncode == 0, result.stderr
    markdown = (out / "report.md").read_text()
    for heading in ("## Summary", "## Pipeline", "## Re-evaluation on several periods"):
        assert heading in markdown
    assert "can never reach" in markdown
    pictures = re.findall(r"^!\[[^\]]*\]\(([^)]+)\)$", markdown, flags=re.MULTILINE)
    assert len(pictures) >= 6 and all((out / picture).is_file() for picture in pictures)
    assert "<table>" in (out / "report.html").read_text()
    study_id = campaign.current_study._study_id
    system_attrs = campaign.storage.get_study_system_attrs(study_id)
    note_keys = [k for k in system_attrs if k.startswith("dashboard:")]
    assert note_keys, "the report is written into the dashboard as a note"


def test_grid_stage_queues_every_combination(storage_url: str, tmp_path: Path) -> None:
    extra = (
        "stages: [{groups: [learning_rate], sampler: grid, grid_points: 2}]\n"
        "boundary: {widen: false}\n"
    )
    path = write_study(tmp_path, "grid", trials=1, max_train_steps=40, extra=extra)
    campaign, _ = create_campaign(load_study_spec(path), open_storage(storage_url))
    trials = campaign.current_study.trials
    # learning_rate x warmup_fraction x schedule x early_stopping_patience: 2 x 2 x 2 x 2
    assert len(trials) == 16 and all(t.state is TrialState.WAITING for t in trials)
    assert campaign.current_study.user_attrs["autotune.trials"] == 16
    assert not Campaign.samples(campaign.current_study)
    params = {json.dumps(t.system_attrs["fixed_params"], sort_keys=True) for t in trials}
    assert len(params) == 16


LR_ONLY = """\
name: lr
groups:
  - name: learning_rate
    params:
      learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true, hard_high: 0.05}
"""


def test_a_hit_bound_is_widened_and_the_trials_carried_over(
    storage_url: str, tmp_path: Path
) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(LR_ONLY)
    path = write_study(tmp_path, "widen", trials=8, space=space, extra="boundary: {trials: 3}\n")
    campaign, _ = create_campaign(load_study_spec(path), open_storage(storage_url))
    study = campaign.current_study
    distribution = FloatDistribution(1e-4, 1e-2, log=True)
    rates = [1e-4, 3e-4, 6e-3, 7e-3, 8e-3, 9e-3, 9.5e-3, 1e-2]  # the best at the top end
    for rate in rates:
        study.add_trial(
            create_trial(
                value=1.0 / rate,
                params={"learning_rate": rate},
                distributions={"learning_rate": distribution},
            )
        )
    campaign = advance("widen", open_storage(storage_url))
    original, widened = campaign.studies
    (record,) = original.user_attrs[ATTR_BOUNDARIES]
    assert record["hit"] and record["side"] == "high"
    assert widened.study_name == "widen/joint/1-widened1"
    assert study_distributions(widened)["learning_rate"] == FloatDistribution(1e-4, 0.03, log=True)
    carried = widened.trials
    assert sorted(t.user_attrs[ATTR_CARRIED_FROM] for t in carried) == list(range(8))
    assert [t.params["learning_rate"] for t in carried] == rates
    assert Campaign.trial_budget(widened) == 8 + 3
    assert Campaign.label_of(widened) == "round 1 (widened 1x)"


def test_a_hit_hard_limit_is_reported_and_not_widened(storage_url: str, tmp_path: Path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(LR_ONLY.replace("hard_high: 0.05", "hard_high: 1.0e-2"))
    path = write_study(tmp_path, "limit", trials=8, space=space)
    campaign, _ = create_campaign(load_study_spec(path), open_storage(storage_url))
    distribution = FloatDistribution(1e-4, 1e-2, log=True)
    for rate in [1e-4, 3e-4, 6e-3, 7e-3, 8e-3, 9e-3, 9.5e-3, 1e-2]:
        campaign.current_study.add_trial(
            create_trial(
                value=1.0 / rate,
                params={"learning_rate": rate},
                distributions={"learning_rate": distribution},
            )
        )
    campaign = advance("limit", open_storage(storage_url))
    assert [s.study_name for s in campaign.studies] == ["limit/joint/1"]  # nothing to widen
    (record,) = campaign.studies[0].user_attrs[ATTR_BOUNDARIES]
    assert record["hit"] and record["side"] == "high"
    assert "hard limit of the space, not widened" in record["message"]


def rung_trial(number: int, state: TrialState, curve: dict[int, float]) -> FrozenTrial:
    made = create_trial(
        state=state,
        value=curve[max(curve)] if state is TrialState.COMPLETE else None,
        params={"learning_rate": 1e-3 * (number + 1)},
        distributions={"learning_rate": FloatDistribution(1e-4, 1.0, log=True)},
        intermediate_values=curve,
    )
    made.number = number
    return made


def test_pruned_stages_are_ranked_at_the_deepest_rung_enough_trials_reached() -> None:
    rungs = (10, 30)
    trials = [
        rung_trial(0, TrialState.COMPLETE, {10: 0.5, 30: 0.4, 40: 0.35}),
        rung_trial(1, TrialState.PRUNED, {10: 0.6, 30: 0.3}),  # pruned later than rung 30
        rung_trial(2, TrialState.PRUNED, {10: 0.2, 20: 0.25, 30: 0.45}),
        rung_trial(3, TrialState.PRUNED, {10: 0.9}),
        rung_trial(4, TrialState.FAIL, {10: 0.1, 30: 0.1}),  # failed: never ranked
    ]
    ranked = ranked_at_a_rung(trials, rungs, top_k=3)
    assert [(t.number, t.value) for t in ranked] == [(0, 0.4), (1, 0.3), (2, 0.45)]
    assert all(t.state is TrialState.COMPLETE for t in ranked)
    at_first = ranked_at_a_rung(trials, rungs, top_k=4)  # only 3 reached rung 30
    assert [(t.number, t.value) for t in at_first] == [(0, 0.5), (1, 0.6), (2, 0.2), (3, 0.9)]
    assert ranked_at_a_rung(trials, rungs, top_k=1) == trials  # enough COMPLETE trials
    assert ranked_at_a_rung(trials, rungs, top_k=9) == trials  # no rung has enough
