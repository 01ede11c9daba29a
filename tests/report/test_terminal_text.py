"""What the terminal says (issue 15, Terminal): sentences without enum values or
contradictions, stage labels, the status table, and a live line that fits any width."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from optuna.trial import TrialState
from optuna.trial import create_trial
import pytest

import autotune
from autotune.analysis import StepRecommendation
from autotune.analysis import analyze_best_steps
from autotune.campaign import CampaignStudy
from autotune.campaign import Progress
from autotune.campaign import Stage
from autotune.campaign import StudyFacts
from autotune.campaign import StudyPlan
from autotune.campaign._progress import progress_of
from autotune.campaign._trial_attrs import ATTR_CARRIED_FROM
from autotune.report._progress import CampaignSteps
from autotune.report._progress import LinePart
from autotune.report._progress import LiveState
from autotune.report._progress import StepRate
from autotune.report._progress import TableRow
from autotune.report._progress import campaign_steps_left
from autotune.report._progress import fit_line
from autotune.report._progress import live_parts
from autotune.report._progress import part_key
from autotune.report._progress import planned_parts
from autotune.report._progress import progress_table
from autotune.report._progress import stage_label
from autotune.report._progress import study_steps_left
from autotune.report._publish import study_role
from autotune.report._report import batch_size_sentence
from autotune.report._storage_text import has_password
from autotune.report._storage_text import storage_label
from autotune.report._storage_text import worker_hint
from autotune.report._summary import best_steps_line
from autotune.report._summary import pipeline_parts
from autotune.spec import BudgetSpec
from autotune.spec import Direction
from autotune.spec import load_study_spec
from autotune.worker._display import WorkerView
from autotune.worker._display import trial_log_line
from autotune.worker._display import worker_parts
from autotune.worker._outcome import TrialOutcome
from autotune.worker._worker import TrialReport
from tests.conftest import REPO_ROOT
from tests.conftest import write_study

QUICKSTART = REPO_ROOT / "studies" / "quickstart.yaml"
STAGED = """\
stages:
  - {groups: [learning_rate], trials: 6}
  - {groups: [optimizer, model, regularization], trials: 6}
rounds:
  - {budget_fraction: 0.5}
  - {budget_fraction: 1.0, top_k: 3}
"""
ENUM_VALUES = [r.value for r in StepRecommendation]


def _records(best_fraction: float, count: int, budget: int = 150) -> list[tuple[int, int]]:
    return [(round(best_fraction * budget), budget)] * count


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        (_records(0.5, 4), "too few trials to judge: only 4 COMPLETE trials"),
        (_records(0.5, 8), "the 150-step budget fits"),
        (_records(0.95, 8), "training longer than 150 steps may help; try 300"),
        (_records(0.05, 8), "a 150-step budget is too high"),
    ],
    ids=["insufficient", "keep", "more", "fewer"],
)
def test_best_steps_lines_are_sentences_about_the_rounds_own_budget(
    records: list[tuple[int, int]], expected: str
) -> None:
    """The summary printed "insufficient_data —", "keep —", "more —", and "max_train_steps=150
    fits" for a round of 150 steps while the spec said 600."""
    analysis = analyze_best_steps(records, eval_interval=30)
    line = best_steps_line("round 1", analysis, steps=150, total=600)
    assert line.startswith("round 1 best steps of its 150-step budget: "), line
    assert expected in line, line
    assert "—" not in line and "max_train_steps=" not in line, line
    assert not any(f" {value} " in f" {line} " for value in ENUM_VALUES), line
    if analysis.recommendation is StepRecommendation.MORE:
        assert line.endswith("(the last round trains 600 steps)"), line
    assert best_steps_line("round 2", analysis, 600, 600).startswith("round 2 best steps: ")


def _study(plan: StudyPlan) -> CampaignStudy:
    return CampaignStudy(1, "x", StudyFacts(plan))


def test_stage_labels_count_only_the_rounds_a_stage_has(tmp_path: Path) -> None:
    """ "learning_rate round 1/2" for a one-round stage; "round 1 (widened 1x)/1"."""
    staged = load_study_spec(write_study(tmp_path, "staged", trials=6, extra=STAGED))
    first = StudyPlan(Stage.JOINT, 1, 6, 60, 120, name="learning_rate", stage_index=0)
    assert stage_label(staged, _study(first)) == "learning_rate round 1"
    last = StudyPlan(Stage.JOINT, 2, 3, 120, 120, name="optimizer_model", stage_index=1)
    assert stage_label(staged, _study(last)) == "optimizer_model round 2/2"
    one_round = load_study_spec(write_study(tmp_path, "one", trials=6))
    widened = StudyPlan(Stage.JOINT, 1, 6, 120, 120, widening=1)
    assert stage_label(one_round, _study(widened)) == "round 1 (widened 1x)"
    quickstart = load_study_spec(QUICKSTART)
    assert stage_label(quickstart, _study(widened)) == "round 1/2 (widened 1x)"
    baseline = StudyPlan(Stage.BASELINE, 1, 1, 150, 600)
    assert stage_label(quickstart, _study(baseline)) == "baseline"


def _progress(**counts: int | float | None) -> Progress:
    fields = dict(budget=60, complete=0, pruned=0, failed=0, running=0, waiting=0)
    return Progress(**{**fields, "best_value": None, "best_number": None, **counts})


def test_the_status_table_says_a_sweeps_best_is_steps_and_fits_80_columns() -> None:
    """The table showed "best val_loss 80 (#2)" for the steps sweep, and wrapped."""
    sweep = _progress(budget=9, complete=9, best_value=80.0, best_number=2)
    tuning = _progress(budget=90, complete=23, pruned=67, best_value=0.069853, best_number=9)
    rows = [
        TableRow("quickstart/steps/1", 300, sweep, "steps"),
        TableRow("quickstart/joint/1-widened1", 150, tuning),
    ]
    header, sweep_row, tuning_row = progress_table(rows, "val_loss").splitlines()
    assert header.split() == ["study", "steps", "done", "complete", "pruned", "best", "val_loss"]
    assert sweep_row.endswith("80 steps (#2)") and tuning_row.endswith("0.069853 (#9)")
    assert max(len(line) for line in (header, sweep_row, tuning_row)) <= 80
    running = dataclasses.replace(tuning, running=2, failed=1)
    header = progress_table([TableRow("q/joint/1", 150, running)], "val_loss").splitlines()[0]
    assert "failed  running  best" in header and "waiting" not in header


def test_a_study_sampling_until_its_step_share_is_spent_is_not_shown_over_100_percent() -> None:
    """A budgeted round 1 showed "336/119": the 119 is what its share buys unpruned."""
    shared = _progress(budget=119, complete=38, pruned=298, step_share=29_750)
    row = progress_table([TableRow("g/joint/1", 250, shared)], "val_loss").splitlines()[1]
    assert row.split()[:3] == ["g/joint/1", "250", "336"] and "/119" not in row
    assert _progress(budget=24, complete=20, pruned=2).trials_text == "22/24"


def test_a_widened_study_counts_its_own_trials_and_its_carried_copies_apart() -> None:
    """A widened study showed "done 208" of which 178 were the widened study's copies: the
    status table read as 386 round-1 trials, the funnel as 208 started."""
    copy = {ATTR_CARRIED_FROM: 3}
    trials = [
        create_trial(value=0.2, user_attrs=copy),  # the best is a carried copy: it counts
        create_trial(state=TrialState.PRUNED, user_attrs=copy),
        create_trial(value=0.5),
        create_trial(state=TrialState.PRUNED),
        create_trial(state=TrialState.PRUNED),
    ]
    progress = progress_of(trials, 2 + 10, Direction.MINIMIZE)
    assert (progress.complete, progress.pruned, progress.finished) == (1, 2, 3)
    assert progress.best_value == 0.2 and progress.carried == 2
    assert progress.trials_text == "3/10+2 carried"
    widened = StudyPlan(Stage.JOINT, 1, 12, 60, 120, widening=1, sampling=True, step_budget=900)
    assert study_role(_study(widened), dataclasses.replace(progress, step_share=900)) == [
        "3 trials of at most 60 steps, sampled while its steps lasted. Its other 2 trials "
        "are the finished trials of the study it widens, carried over, not run again."
    ]


def test_the_plan_header_of_a_budget_says_how_counts_are_sized_not_the_nominal_ones(
    tmp_path: Path,
) -> None:
    """It printed "24 trials", "top 4", "12 periods" while the budget ran 336, 38 and 20."""
    assert pipeline_parts(load_study_spec(QUICKSTART))[1:] == [
        "round 1: 60 trials x 150 steps",
        "round 2: top 4 x 600 steps",
        "re-evaluation: 3 finalists and the task's defaults x 12 periods x 1 seed(s)",
    ]
    budgeted = tmp_path / "auto.yaml"
    budgeted.write_text("task: cancer-mlp\nbudget: {steps: 20000}\n")
    parts = pipeline_parts(autotune.load_study_spec(budgeted))  # with its task: automatic
    assert parts[2:] == [
        "stage learning_rate: trials of 0.25 of it, sampled while its share of the budget lasts",
        "stage optimizer-model-regularization round 1: trials of 0.25 of it, sampled while "
        "its share of the budget lasts",
        "round 2: the best (at least 4, as many as its share buys) x 1 of it",
        "re-evaluation: 3 finalists and the task's defaults x 2-36 periods (what the budget "
        "leaves) x 1 seed(s)",
    ]


def test_the_plan_header_caps_the_periods_at_what_the_task_gives(tmp_path: Path) -> None:
    """It said "2-36 periods" of a task that gives 10, and "12 periods" of one that gives 9."""
    budgeted = tmp_path / "auto.yaml"
    budgeted.write_text("task: cancer-mlp\nbudget: {steps: 20000}\n")
    parts = pipeline_parts(autotune.load_study_spec(budgeted), most_periods=10)
    assert parts[-1] == (
        "re-evaluation: 3 finalists and the task's defaults x 2-10 periods (what the budget "
        "leaves; the task gives "
        "10) x 1 seed(s)"
    )
    plain = pipeline_parts(load_study_spec(QUICKSTART), most_periods=9)
    assert (
        plain[-1] == "re-evaluation: 3 finalists and the task's defaults x 9 periods x 1 seed(s)"
    )


def test_the_report_does_not_claim_a_probe_chose_the_batch_size() -> None:
    sentence = batch_size_sentence(64, "digits-mlp")
    assert "chosen by throughput" not in sentence
    assert "(the spec's, or automatic mode's default)" in sentence  # which, the spec forgets
    assert "autotune probe-batch digits-mlp" in sentence
    assert "Batch size 256 (the spec's)" in batch_size_sentence(256, "digits-mlp")


def _live(width_check_label: str = "round 1/2") -> list[LinePart]:
    state = LiveState(
        width_check_label,
        _progress(complete=24, pruned=31, failed=2, running=2, best_value=0.0596, best_number=39),
        "val_loss",
        CampaignSteps(spent=5210, left=7000, budget=20000),
        elapsed_s=35.0,
        eta_s=3725.0,
    )
    return live_parts(state)


@pytest.mark.parametrize("width", [30, 40, 60, 80, 100, 140, 200])
def test_the_live_line_fits_every_width_and_keeps_the_most_important(width: int) -> None:
    """At 80 columns the ~140-column line wrapped and lost its best and ETA parts."""
    line = fit_line(_live(), width)
    assert len(line) <= width, line
    assert line.startswith("round 1/2"), line
    if width >= 40:
        assert "55/60 trials" in line and "ETA 1:02:05" in line, line
    if width >= 80:
        assert "best" in line and "0.0596" in line, line
    if width >= 200:
        assert "campaign ETA 1:02:05" in line and "failed 2" in line and "20,000" in line


def test_fit_line_shortens_before_it_drops_and_cuts_only_as_a_last_resort() -> None:
    parts = [LinePart("label", 3), LinePart("long form", 2, short="lf"), LinePart("extra", 1)]
    assert fit_line(parts, 100) == "label · long form · extra"
    assert fit_line(parts, 18) == "label · lf · extra"
    assert fit_line(parts, 12) == "label · lf"
    assert fit_line(parts, 5) == "label"
    assert fit_line(parts, 3) == "la…"


def test_the_eta_covers_every_stage_still_planned() -> None:
    """The ETA was the current round's and read 00:00 at the end of round 1."""
    spec = load_study_spec(QUICKSTART)  # baseline, 60 x 150, top 4 x 600, 3 x 12 x 600
    parts = dict(planned_parts(spec, 600, None))
    assert parts == {
        (Stage.BASELINE, 0, 0): 150,
        (Stage.JOINT, 0, 1): 60 * 150,
        (Stage.JOINT, 0, 2): 4 * 600,
        # the finalists and the defaults, and the defaults on the tuning period
        (Stage.REEVALUATION, 0, 0): ((3 + 1) * 12 + 1) * 600,
    }
    round_one = StudyPlan(Stage.JOINT, 1, 60, 150, 600)
    assert part_key(round_one) == (Stage.JOINT, 0, 1)
    # the end of round 1: its 60 trials done; round 2 and the re-evaluation are still ahead
    ended = study_steps_left(_progress(complete=20, pruned=40), 5000, round_one)
    assert ended == 0
    reached = {(Stage.BASELINE, 0, 0), (Stage.JOINT, 0, 1)}
    left = campaign_steps_left(list(parts.items()), reached, ended, budget_left=None)
    assert left == 4 * 600 + ((3 + 1) * 12 + 1) * 600
    rate = StepRate.start(0.0, 0).seen(10.0, 150).seen(70.0, 5150)  # from the first finish
    assert rate.eta_seconds(left) == pytest.approx(left * 60 / 5000)
    # half-way through round 1, the trials left cost what the started ones did on average
    halfway = study_steps_left(_progress(complete=10, pruned=18, running=2), 3000, round_one)
    assert halfway == 30 * 100
    assert campaign_steps_left(list(parts.items()), reached, halfway, budget_left=1000) == 1000
    # under a budget, later stages spend what earlier ones leave: the budget's rest, which
    # the plan's shares undercount (the ETA jumped when the re-evaluation took the leftover)
    assert campaign_steps_left(list(parts.items()), reached, halfway, 90_000) == 90_000
    everything = {key for key, _ in parts.items()}
    last = campaign_steps_left(list(parts.items()), everything, 7_000, budget_left=90_000)
    assert last == 7_000  # the last stage: its own queued runs


def test_no_eta_before_the_rate_means_something() -> None:
    """At the start the ETA read 50 minutes for a one-minute campaign: the workers' start-up
    and the steps running trials only reserve made the rate."""
    started = StepRate.start(0.0, 0)
    assert started.eta_seconds(1000) is None  # nothing finished
    first = started.seen(12.0, 150)  # the baseline finished after 12 s of start-up
    assert first.eta_seconds(1000) is None  # the rate starts at that finish
    assert first.seen(14.0, 600).eta_seconds(1000) is None  # 2 s: too short to tell
    assert first.seen(22.0, 2150).eta_seconds(1000) == pytest.approx(1000 * 10 / 2000)
    assert first.seen(22.0, 2150).eta_seconds(None) is None  # left unknown (sweep, no budget)
    resumed = StepRate.start(0.0, 9000).seen(5.0, 9150).seen(15.0, 10150)
    assert resumed.eta_seconds(500) == pytest.approx(500 * 10 / 1000)  # earlier steps left out


def test_the_storage_is_named_as_a_person_knows_it() -> None:
    """The created-campaign line printed the embedded server's socket URL."""
    assert storage_label(None, Path(".autotune")) == "embedded PostgreSQL in .autotune/"
    assert storage_label("postgresql://u:secret@db/x", Path(".autotune")) == (
        "postgresql://u:***@db/x"
    )


@pytest.mark.parametrize(
    ("url", "env_url", "expected"),
    [
        (None, None, "start workers on this machine with: autotune worker q"),
        ("postgresql://u@db/x", None, "start workers with: autotune worker q --storage "),
        ("postgresql://u@db/x", "postgresql://u@db/x", "(on each machine with AUTOTUNE_STORAGE"),
        ("postgresql://u:pw@db/x", None, "first set AUTOTUNE_STORAGE to this storage's URL"),
    ],
    ids=["embedded", "no-password", "from-env", "password"],
)
def test_the_worker_hint_is_a_command_that_works_pasted(
    url: str | None, env_url: str | None, expected: str
) -> None:
    """create suggested --storage 'postgresql://u:***@...', which fails when pasted, and
    needlessly when AUTOTUNE_STORAGE was set."""
    hint = worker_hint("autotune", "q", url, env_url, Path(".autotune"), Path(".autotune"))
    assert expected in hint, hint
    assert "***" not in hint and "pw" not in hint, hint
    if url is not None and env_url is None and not has_password(url):
        assert hint.endswith(f"--storage '{url}'")
    if env_url is not None:
        assert "--storage" not in hint


def test_a_worker_logs_one_line_per_trial_naming_study_and_trial() -> None:
    report = TrialReport("quickstart/joint/2", 3, TrialOutcome.COMPLETE, 0.0831, "val_loss", 12.4)
    assert trial_log_line(report) == "quickstart/joint/2 #3 COMPLETE val_loss=0.0831 in 12 s"
    pruned = TrialReport("q/steps/1", 0, TrialOutcome.PRUNED, None, "steps to fit", 130.0)
    assert trial_log_line(pruned) == "q/steps/1 #0 PRUNED in 02:10"
    sweep = TrialReport("q/steps/1", 1, TrialOutcome.COMPLETE, 80.0, "steps to fit", 3.0)
    assert "steps_to_fit=80 " in trial_log_line(sweep)
    quick = TrialReport("q/joint/1", 2, TrialOutcome.COMPLETE, 0.5, "val_loss", 0.42)
    assert trial_log_line(quick).endswith(" in 0.4 s")  # a small task's trials read "in 0 s"
    assert trial_log_line(dataclasses.replace(quick, duration_s=9.96)).endswith(" in 10 s")


@pytest.mark.parametrize("width", [40, 80, 160])
def test_a_workers_live_line_fits_and_shows_its_trials_stage_and_budget(width: int) -> None:
    view = WorkerView(
        "host-12345",
        "round 1/2",
        {TrialOutcome.COMPLETE: 3, TrialOutcome.PRUNED: 5},
        "#12 for 35 s",
        CampaignSteps(spent=5210, left=9000, budget=20000),
        eta_s=95.0,
    )
    line = fit_line(worker_parts(view), width)
    assert len(line) <= width and line.startswith("round 1/2 · "), line
    assert "8" in line and "ETA 01:35" in line, line
    if width >= 80:
        assert "5,210/20,000" in line and "running #12" in line, line
    if width >= 160:
        assert "my trials: 8 (3 complete, 5 pruned)" in line and "worker host-12345" in line


def test_the_plan_header_warns_of_a_re_evaluation_too_small_to_ever_tell() -> None:
    """Four periods and the finalist's own run are 5 pairs: Holm's first Wilcoxon comparison
    of 3 finalists needs 7, so the verdict was "not distinguishable" before any run."""
    quickstart = load_study_spec(QUICKSTART)
    design = quickstart.reevaluation.model_copy(update={"periods": 4})
    spec = quickstart.model_copy(update={"reevaluation": design})
    assert pipeline_parts(spec)[-1] == (
        "re-evaluation: 3 finalists and the task's defaults x 4 periods x 1 seed(s) (WARNING: "
        "at most 5 runs per finalist, and the Wilcoxon test needs 7 to tell 4 candidates "
        "apart at alpha=0.05: "
        "the answer will be the best mean, never a significant one; more periods, or fewer "
        "finalists, would let it tell)"
    )
    fast = spec.model_copy(
        update={"fast_mode": spec.fast_mode.model_copy(update={"enabled": True})}
    )
    six = fast.model_copy(update={"reevaluation": design.model_copy(update={"periods": 6})})
    assert "WARNING" not in pipeline_parts(six)[-1]  # "at most": its own full-length run too
    budgeted = quickstart.model_copy(update={"budget": BudgetSpec(steps=40_000)})
    assert pipeline_parts(budgeted)[1] == (
        "round 1: trials of 150 steps, sampled while its share of the budget lasts (under a "
        "budget the spec's 60 trials are no cap)"
    )
    # Six periods and the own run reach 7; so do a task's 6 of a default 12.
    assert "WARNING" not in pipeline_parts(load_study_spec(QUICKSTART), most_periods=6)[-1]
    assert "WARNING" in pipeline_parts(load_study_spec(QUICKSTART), most_periods=5)[-1]
