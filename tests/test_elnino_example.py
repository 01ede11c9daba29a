"""The dated example (examples/elnino_task.py, studies/elnino.yaml): periods that say what they
validate on, metrics in °C, and a copy a new user changes only the model of."""

from __future__ import annotations

import datetime
from pathlib import Path
import re

import pytest
import torch
import yaml

import autotune
from autotune._errors import SpecError
from autotune.campaign import TUNING_PERIOD
from autotune.campaign import Stage
from autotune.training import Budget
from autotune.training import Period
from autotune.training import Task
from autotune.training import train
from autotune.worker import PeriodChoices
from autotune.worker import UnknownPeriodError
from autotune.worker import resolve_period
from autotune.worker._periods import reevaluation_period
from autotune.worker._periods import tuning_period
from autotune.worker._task_checks import load_checked_study_spec
from examples.elnino_task import ElNinoTask
from tests.conftest import FAST_HEARTBEAT
from tests.conftest import REPO_ROOT
from tests.conftest import run_autotune

STUDY = REPO_ROOT / "studies" / "elnino.yaml"
EXAMPLE = REPO_ROOT / "examples" / "elnino_task.py"
MODEL = re.compile(r"# --- the model: .*?# --- end of the model -+\n", re.DOTALL)
LINEAR_MODEL = '''class Forecaster(torch.nn.Module):
    """A linear autoregression: the new user's own model."""

    def __init__(self, inputs: int, hidden_units: int, num_layers: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(inputs, 1)
        Path("linear-model-built").touch()  # proof, for the test, that the workers used it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)
'''


def day(text: str) -> datetime.date:
    return datetime.date.fromisoformat(text)


@pytest.fixture(scope="module")
def task() -> ElNinoTask:
    torch.set_num_threads(1)
    return ElNinoTask()


def test_the_example_is_a_task_with_dated_data_and_metrics_in_degrees(task: ElNinoTask) -> None:
    assert isinstance(task, Task)
    assert task.describe().span == (day("1950-01-01"), day("2010-12-31"))
    assert set(task.metrics) == {"val_mse_degc2", "val_mae_degc"}  # no val_loss needed
    assert len(task.dates) == len(task.values) == 61 * 12


def test_one_class_serves_validation_ranges_of_any_length(task: ElNinoTask) -> None:
    spec = load_checked_study_spec(STUDY)
    tuning = tuning_period(spec)
    assert tuning is not None and tuning.name.endswith("validate 2003-01-01..2004-12-31")
    heldout = [reevaluation_period(spec, task, i, 6, 0) for i in range(6)]
    assert [p.validation_start.year for p in heldout] == list(range(2005, 2011))
    assert len(task.data(tuning).val_y) == 24
    assert [len(task.data(p).val_y) for p in heldout] == [12] * 6
    with pytest.raises(ValueError, match="the spec holds 6 periods.heldout; allowed: 0 to 5"):
        reevaluation_period(spec, task, 6, 7, 0)


def test_autotune_train_resolves_the_spec_periods(task: ElNinoTask) -> None:
    """`autotune train` retrains on the tuning period by default, on a held-out one by name
    or index, as the campaign ran them."""
    spec = load_checked_study_spec(STUDY)
    choices = PeriodChoices(count=6, seed=202612)
    assert resolve_period(task, None, choices, spec) == tuning_period(spec)
    heldout = [reevaluation_period(spec, task, i, 6, 0) for i in range(6)]
    assert resolve_period(task, "2", choices, spec) == heldout[2]
    assert resolve_period(task, heldout[5].name, choices, spec) == heldout[5]
    with pytest.raises(UnknownPeriodError, match=r"allowed: 1960-01-01..2004-12-31 validate"):
        resolve_period(task, "6", choices, spec)


def test_evaluate_reports_in_the_units_of_the_data(task: ElNinoTask) -> None:
    period = Period.date_range(
        day("1960-01-01"), day("1989-12-31"), day("1990-01-01"), day("1990-06-30")
    )
    data = task.data(period)
    assert data.statistics["std"] == pytest.approx(task.values[120:480].std(), rel=1e-5)
    model = task.build_model(task.default_hyperparameters(), torch.Generator().manual_seed(0))
    with torch.no_grad():
        metrics = task.evaluate(model.eval(), data)
        standardised = task.loss(model(data.val_x), data.val_y).item()
    assert metrics["val_mse_degc2"] == pytest.approx(standardised * data.statistics["std"] ** 2)
    mean = task.values[120:480].mean()  # the training mean, predicted for every month
    expected = ((task.values[480:486] - mean) ** 2).mean()
    assert task.trivial_metrics(period)["val_mse_degc2"] == pytest.approx(expected, rel=1e-4)


def test_a_short_run_beats_the_trivial_predictor_by_far(task: ElNinoTask) -> None:
    period = tuning_period(load_checked_study_spec(STUDY))
    result = train(
        task.default_hyperparameters(),
        task,
        Budget(150, 50, 32, 0),
        lambda e: None,
        "val_mse_degc2",
        period=period,
    )
    assert (
        result.best.metrics["val_mse_degc2"] < 0.2 * task.trivial_metrics(period)["val_mse_degc2"]
    )


def test_a_period_the_task_cannot_use_is_a_spec_error(tmp_path: Path) -> None:
    spec = yaml.safe_load(STUDY.read_text())
    spec["periods"]["tuning"] = {
        "train": ["2001-01-01", "2001-06-30"],
        "validation": ["2001-07-01", "2001-12-31"],
    }
    path = tmp_path / "short.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SpecError) as error:
        load_checked_study_spec(path)
    assert error.value.problems == (
        "periods.tuning: task 'examples.elnino_task:make_task' cannot use it: period "
        "'2001-01-01..2001-06-30 validate 2001-07-01..2001-12-31' is invalid for "
        "'elnino-forecast': it leaves no month to forecast; allowed: more than 12 training "
        "months, validation from 1951-01-01 on",
    )


def small_study(spec: dict, directory: Path, **changes: object) -> Path:
    """The shipped study with a tiny budget: 2 held-out periods, 4 trials, widening off."""
    spec = {**spec, "trials": 4, "workers": 2, "boundary": {"widen": False}, **changes}
    spec["periods"] = {**spec["periods"], "heldout": spec["periods"]["heldout"][:2]}
    spec["reevaluation"] = {"finalists": 2}
    path = directory / "study.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def run_campaign(path: Path, storage_url: str, cwd: Path) -> autotune.Campaign:
    """`autotune run` from ``cwd`` (logs and reports next to the spec)."""
    result = run_autotune(
        "run",
        str(path),
        "--storage",
        storage_url,
        "--state-dir",
        str(path.parent / "state"),
        *FAST_HEARTBEAT,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return autotune.load(yaml.safe_load(path.read_text())["name"], storage_url)


def assert_periods_used(campaign: autotune.Campaign, task: ElNinoTask) -> None:
    """The baseline's trivial predictor ran on the tuning period, the re-evaluation on the
    spec's held-out periods, in order, and the task's defaults once more on the tuning
    period, where the finalists' own tuning runs count."""
    (baseline,) = campaign.trials_of(campaign.stage_studies(Stage.BASELINE)[0])
    tuning = tuning_period(campaign.spec)
    trivial = task.trivial_metrics(tuning)["val_mse_degc2"]
    assert baseline.user_attrs["trivial_val_mse_degc2"] == pytest.approx(trivial)
    (reevaluation,) = campaign.stage_studies(Stage.REEVALUATION)
    names = {
        (t.user_attrs["period_index"], t.user_attrs["period"])
        for t in campaign.trials_of(reevaluation)
    }
    heldout = campaign.spec.periods.heldout
    on_tuning = {(index, name) for index, name in names if index == TUNING_PERIOD}
    assert names - on_tuning == {(i, p.name) for i, p in enumerate(heldout)}
    *tuned, defaults = reevaluation.facts.design.finalists
    counted = defaults.label.startswith(f"{campaign.name}/baseline/") and all(
        f.tuning_run for f in tuned
    )
    assert on_tuning == ({(TUNING_PERIOD, tuning.name)} if counted else set())


@pytest.mark.e2e  # autotune run with two workers: about a minute
def test_the_example_in_automatic_mode_tunes_and_checks_on_its_periods(
    storage_url: str, tmp_path: Path, task: ElNinoTask
) -> None:
    spec = yaml.safe_load(STUDY.read_text())
    path = small_study(spec, tmp_path, steps_sweep={"count": 3, "steps": 1000})
    campaign = run_campaign(path, storage_url, REPO_ROOT)
    decision = campaign.studies[0].facts.sweep
    assert decision is not None and decision.max_train_steps is not None, campaign.stopped
    assert "stopped improving" in decision.reason  # the task has no fit_threshold
    assert_periods_used(campaign, task)
    assert campaign.significance() is not None


@pytest.mark.e2e  # autotune run with two workers: about a minute
def test_a_new_user_copies_the_example_and_changes_only_the_model(
    storage_url: str, tmp_path: Path, task: ElNinoTask
) -> None:
    source = EXAMPLE.read_text()
    assert len(MODEL.findall(source)) == 1
    own = MODEL.sub(lambda _: LINEAR_MODEL, source).replace(
        "import torch\n", "import torch\nfrom pathlib import Path\n", 1
    )
    (tmp_path / "my_forecast.py").write_text(own)
    spec = yaml.safe_load(STUDY.read_text())
    spec["task"] = "my_forecast:make_task"
    spec["name"] = "my-forecast"
    path = small_study(
        spec, tmp_path, max_train_steps=60, stages=None, rounds=[{"budget_fraction": 1.0}]
    )
    campaign = run_campaign(path, storage_url, tmp_path)
    assert (tmp_path / "linear-model-built").is_file()
    assert campaign.best() is not None
    assert_periods_used(campaign, task)
