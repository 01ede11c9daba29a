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
from autotune.campaign import Stage
from autotune.campaign import advance
from autotune.campaign import create_campaign
from autotune.campaign import load_campaign
from autotune.campaign import rotating_period_seed
from autotune.campaign._boundaries import ranked_at_a_rung
from autotune.campaign._trial_attrs import ATTR_CARRIED_FROM
from autotune.cli import ARTIFACTS_ENV
from autotune.spec import SpecError
from autotune.storage import open_storage
from autotune.worker._defaults import task_defaults
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
    assert (spec.eval_interval, spec.evaluations_per_run) == (10, 20)  # the sweep's, the runs'


def test_automatic_mode_stages_an_inline_search_space_too(tmp_path: Path) -> None:
    """A user task's space is often written in the spec itself: learning rate first there
    as well (it used to run one joint stage)."""
    path = tmp_path / "auto.yaml"
    path.write_text(
        "task: digits-mlp\nsearch_space:\n  name: inline\n  groups:\n"
        "    - name: learning_rate\n      params:\n"
        "        learning_rate: {type: float, low: 1.0e-3, high: 1.0e-1, log: true}\n"
        "    - name: model\n      params:\n"
        "        hidden_units: {type: int, low: 8, high: 64, log: true}\n"
        "    - name: regularization\n      params:\n"
        "        weight_decay: {type: float, low: 1.0e-5, high: 1.0e-1, log: true}\n"
    )
    spec = load_study_spec(path)
    assert [stage.groups for stage in spec.tuning_stages] == [
        ("learning_rate",),
        ("model", "regularization"),
    ]


def test_automatic_mode_reports_a_malformed_inline_space_as_such(tmp_path: Path) -> None:
    path = tmp_path / "auto.yaml"
    path.write_text("task: digits-mlp\nsearch_space:\n  name: inline\n  groups: [1, 2]\n")
    with pytest.raises(SpecError, match="search_space.groups"):
        load_study_spec(path)


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
    first = [s for s in tuning if s.plan.stage_index == 0]
    second = [s for s in tuning if s.plan.stage_index == 1]
    assert first and second and second[-1].round_number == 2
    stage_one_best = min(
        campaign.trials_of(first[-1], states=(TrialState.COMPLETE,)), key=lambda t: t.value
    )
    fixed = second[0].plan.stage_fixed
    assert fixed == {k: v for k, v in stage_one_best.params.items() if k != "learning_rate"}
    narrowed = second[0].distributions["learning_rate"]
    best_rate = stage_one_best.params["learning_rate"]
    assert narrowed.low == pytest.approx(max(best_rate / 3, 1e-6))
    assert narrowed.high == pytest.approx(min(best_rate * 3, 3.0))
    assert all(s.facts.boundaries for s in tuning if s.round_number == 1)
    for study in tuning:  # fast mode: round 1 on half the training rows, round 2 on all
        complete = campaign.trials_of(study, states=(TrialState.COMPLETE,))
        fractions = {t.user_attrs.get("train_fraction") for t in complete}
        assert fractions == ({0.5} if study.round_number == 1 else {None})

    (reevaluation,) = campaign.stage_studies(Stage.REEVALUATION)
    design = reevaluation.facts.design
    assert design.period_seed == 7 and design.periods_pinned and design.period_count == 3
    assert len(design.finalists) == 2
    runs = campaign.trials_of(reevaluation)
    assert len(runs) == 6 and all(t.state is TrialState.COMPLETE for t in runs)
    pairs = {(t.user_attrs["finalist"], t.user_attrs["period"]) for t in runs}
    periods = {t.user_attrs["period"] for t in runs}
    assert len(periods) == 3
    assert pairs == {(f.label, p) for f in design.finalists for p in periods}
    significance = reevaluation.facts.significance
    assert "can never reach" in significance.report.too_few_pairs_warning
    assert all(isinstance(t.user_attrs["trivial_val_loss"], float) for t in runs)
    versus = campaign.recommendation().against_trivial  # fast mode: no tuning run counts
    assert versus is not None and versus.runs == 3

    out = tmp_path / "report"
    state, no_store = tmp_path / "state", {ARTIFACTS_ENV: ""}  # as a user's shell has it
    result = run_autotune(
        *("report", "staged", "--storage", storage_url, "--out", str(out)),
        *("--state-dir", str(state)),
        env=no_store,
    )
    assert result.returncode == 0, result.stderr
    markdown = (out / "report.md").read_text()
    for heading in ("## Summary", "## Pipeline", "## Re-evaluation on several periods"):
        assert heading in markdown
    assert "can never reach" in markdown
    assert "against the trivial predictor on the same 3 runs" in markdown
    pictures = re.findall(r"^!\[[^\]]*\]\(([^)]+)\)$", markdown, flags=re.MULTILINE)
    assert len(pictures) >= 6 and all((out / picture).is_file() for picture in pictures)
    assert "<table>" in (out / "report.html").read_text()
    system_attrs = campaign.storage.get_study_system_attrs(campaign.current.study_id)
    note_keys = [k for k in system_attrs if k.startswith("dashboard:")]
    assert note_keys, "the report is written into the dashboard as a note"
    # A database of its own and no --artifacts: no PNG put where only this machine sees it.
    assert not (state / "artifacts").exists()
    assert "pass --artifacts" in result.stdout


def test_grid_stage_queues_every_combination(storage_url: str, tmp_path: Path) -> None:
    extra = (
        "stages: [{groups: [learning_rate], sampler: grid, grid_points: 2}]\n"
        "boundary: {widen: false}\n"
    )
    path = write_study(tmp_path, "grid", trials=1, max_train_steps=40, extra=extra)
    spec = load_study_spec(path)
    campaign, _ = create_campaign(spec, open_storage(storage_url), task_defaults(spec))
    trials = campaign.trials_of(campaign.current)
    # learning_rate x warmup_fraction x schedule x early_stopping_patience: 2 x 2 x 2 x 2
    assert len(trials) == 16 and all(t.state is TrialState.WAITING for t in trials)
    assert campaign.current.trial_budget == 16
    assert not campaign.current.samples
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
    spec = load_study_spec(path)
    campaign, _ = create_campaign(spec, open_storage(storage_url), task_defaults(spec))
    study = campaign.optuna_study(campaign.current)
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
    advance("widen", open_storage(storage_url))
    campaign = load_campaign("widen", open_storage(storage_url))
    original, widened = campaign.studies
    (finding,) = original.facts.boundaries.findings
    assert finding.hit and finding.side.value == "high"
    assert widened.name == "widen/joint/1-widened1"
    assert widened.distributions["learning_rate"] == FloatDistribution(1e-4, 0.03, log=True)
    carried = campaign.trials_of(widened)
    assert sorted(t.user_attrs[ATTR_CARRIED_FROM] for t in carried) == list(range(8))
    assert [t.params["learning_rate"] for t in carried] == rates
    assert widened.trial_budget == 8 + 3
    assert widened.label == "round 1 (widened 1x)"


def test_a_hit_hard_limit_is_reported_and_not_widened(storage_url: str, tmp_path: Path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(LR_ONLY.replace("hard_high: 0.05", "hard_high: 1.0e-2"))
    path = write_study(tmp_path, "limit", trials=8, space=space)
    spec = load_study_spec(path)
    campaign, _ = create_campaign(spec, open_storage(storage_url), task_defaults(spec))
    distribution = FloatDistribution(1e-4, 1e-2, log=True)
    study = campaign.optuna_study(campaign.current)
    for rate in [1e-4, 3e-4, 6e-3, 7e-3, 8e-3, 9e-3, 9.5e-3, 1e-2]:
        study.add_trial(
            create_trial(
                value=1.0 / rate,
                params={"learning_rate": rate},
                distributions={"learning_rate": distribution},
            )
        )
    advance("limit", open_storage(storage_url))
    campaign = load_campaign("limit", open_storage(storage_url))
    assert [s.name for s in campaign.studies] == ["limit/joint/1"]  # nothing to widen
    (finding,) = campaign.studies[0].facts.boundaries.findings
    assert finding.hit and finding.side.value == "high"
    assert "hard limit (the space's hard_high), not widened" in finding.message


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
