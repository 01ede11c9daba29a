"""autotune train: the recommended recipe re-trained, its model saved and loadable."""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import json
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch

import autotune
from autotune import training
from autotune.campaign import Recipe
from autotune.campaign import Stage
from autotune.campaign._plain import from_plain
from autotune.campaign._plain import plain
from autotune.campaign._trial_attrs import ATTR_FINALIST
from autotune.campaign._trial_attrs import ATTR_PERIOD_INDEX
from autotune.campaign._trial_attrs import ATTR_SEED
from autotune.spec import Direction
from autotune.worker import PeriodChoices
from autotune.worker import UnknownPeriodError
from autotune.worker import resolve_period
from autotune.worker import train_recipe
from autotune.worker._periods import seeded_periods
from tests.conftest import run_autotune
from tests.conftest import run_workers
from tests.conftest import write_study

TASK = "digits-mlp"


def digits_recipe(stop_at_step: int = 60, **hparams: Any) -> Recipe:
    task = training.get_task(TASK)
    return Recipe(
        task=TASK,
        hyperparameters={**task.default_hyperparameters(), **hparams},
        batch_size=32,
        gradient_accumulation_steps=1,
        max_train_steps=60,
        stop_at_step=stop_at_step,
        eval_interval=20,
        metric="val_loss",
        direction=Direction.MINIMIZE,
        seed=7,
    )


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def load_model(path: Path) -> dict[str, Any]:
    return torch.load(path, weights_only=True)


def evaluate_saved(saved: dict[str, Any], period: training.Period | None = None) -> dict:
    """The saved weights in a fresh model of the recipe, evaluated on the data."""
    task = training.get_task(saved["recipe"]["task"])
    hparams = saved["recipe"]["hyperparameters"]
    model_hparams = {k: v for k, v in hparams.items() if k in task.model_hyperparameters}
    model = task.build_model(model_hparams, torch.Generator().manual_seed(0))
    model.load_state_dict(saved["model"])
    model.eval()
    with torch.no_grad():
        return task.evaluate(model, task.data(period))


@pytest.mark.parametrize(
    ("stop", "hparams"),
    [
        (40, {}),  # stopped before the end of its schedule
        (60, {"ema_decay": 0.9, "evaluated_model": "ema"}),
        (60, {"average_last_checkpoints": 3, "evaluated_model": "averaged"}),
    ],
    ids=["raw", "ema", "averaged"],
)
def test_train_recipe_saves_the_model_its_last_evaluation_measured(
    tmp_path: Path, stop: int, hparams: dict[str, Any]
) -> None:
    recipe = digits_recipe(stop, **hparams)
    evals: list[training.EvalResult] = []
    trained = train_recipe(recipe, training.get_task(TASK), tmp_path / "out", on_eval=evals.append)

    assert [e.step for e in evals] == list(range(20, stop + 1, 20))
    assert trained.step == stop and trained.seed == 7 and trained.period is None
    assert trained.metrics == evals[-1].metrics
    saved = load_model(trained.model_path)
    assert saved["step"] == stop and saved["metrics"] == evals[-1].metrics
    assert saved["recipe"] == {**plain(recipe), "stopping_rule": recipe.stopping_rule}
    assert json.loads(trained.recipe_path.read_text()) == saved["recipe"]
    metrics = evaluate_saved(saved)
    assert metrics == {k: v for k, v in trained.metrics.items() if k != training.TRAIN_LOSS}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["model.pt", "recipe.json"]


def test_train_recipe_is_deterministic_and_seeded(tmp_path: Path) -> None:
    recipe, task = digits_recipe(40), training.get_task(TASK)
    first = train_recipe(recipe, task, tmp_path / "a")
    again = train_recipe(recipe, task, tmp_path / "b")
    other = train_recipe(recipe, task, tmp_path / "c", seed=8)
    assert again.metrics == first.metrics and other.seed == 8
    assert other.metrics != first.metrics


def test_resolve_period_by_name_or_index() -> None:
    task = training.get_task(TASK)
    choices = PeriodChoices(count=3, seed=5)
    periods = task.periods(3, 5)
    assert resolve_period(task, None, choices) is None
    assert resolve_period(task, None, None) is None
    assert resolve_period(task, periods[2].name, choices) == periods[2]
    assert resolve_period(task, "1", choices) == periods[1]
    with pytest.raises(UnknownPeriodError, match="allowed: fold 0/5 \\(seed 5\\), fold 1/5"):
        resolve_period(task, "3", choices)
    with pytest.raises(UnknownPeriodError, match="no re-evaluation"):
        resolve_period(task, "0", None)


def test_a_seeded_split_holding_the_tuning_period_gives_the_next_period_instead() -> None:
    """period_seed 0 drew fold 0 of seed 0, the tuning period itself, which then counted
    twice: once as the finalists' own runs, once as a re-evaluation period."""
    task = training.get_task(TASK)
    assert task.default_period() == task.periods(3, 0)[0]  # the collision
    periods = seeded_periods(None, task, 3, 0)
    assert [p.name for p in periods] == [f"fold {k}/5 (seed 0)" for k in (1, 2, 3)]
    assert seeded_periods(None, task, 3, 5) == task.periods(3, 5)  # no collision: as drawn
    assert resolve_period(task, "0", PeriodChoices(count=3, seed=0)) == periods[0]


def test_resolve_period_takes_a_date_range_with_its_validation_range() -> None:
    task = training.get_task("co2-lstm")
    spelled = "1980-01-05..1989-12-30 validate 1990-01-06..1990-06-30"
    period = resolve_period(task, spelled, None)
    assert period is not None and period.name == spelled
    assert period.validation_end.isoformat() == "1990-06-30"
    assert len(task.data(period).val_y) == 26 - 4 + 1  # 26 weeks, 4-week forecasts
    assert resolve_period(task, "1980-01-05..1989-12-30", None).validation_start is None
    with pytest.raises(UnknownPeriodError, match="validation_start=.* a date after end"):
        resolve_period(task, "1980-01-05..1989-12-30 validate 1989-01-01..1990-01-01", None)
    # A range the task refuses is said before training (it was a traceback from inside it).
    with pytest.raises(UnknownPeriodError, match="the task refuses it: .* 0 of 104 validation"):
        resolve_period(task, "1958-03-29..2001-12-29", None)


# --- the command, on campaigns run by real workers ----------------------------------------


def run_campaign(tmp_path: Path, storage_url: str, name: str, **options: Any) -> None:
    spec = write_study(tmp_path, name, trials=4, max_train_steps=60, **options)
    if options.get("reevaluation"):  # the spec's own reevaluation line replaces the default
        spec.write_text(spec.read_text().replace("reevaluation: {enabled: true}\n", ""))
    created = run_autotune("create", str(spec), "--storage", storage_url)
    assert created.returncode == 0, created.stderr
    run_workers(name, storage_url, count=2)


def best_answer(name: str, storage_url: str) -> dict[str, Any]:
    result = run_autotune("best", name, "--storage", storage_url)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.e2e
def test_train_reproduces_the_recommended_value(storage_url: str, tmp_path: Path) -> None:
    run_campaign(tmp_path, storage_url, "answer")
    answer = best_answer("answer", storage_url)
    assert not answer["verified"]  # one run on the tuning data: the same run again

    state = tmp_path / "state"
    result = run_autotune("train", "answer", "--storage", storage_url, "--state-dir", str(state))
    assert result.returncode == 0, result.stderr
    out = state / "models" / "answer"
    saved = load_model(out / "model.pt")
    assert saved["metrics"]["val_loss"] == answer["value"]  # same data, seed and schedule
    assert saved["step"] == answer["recipe"]["stop_at_step"] and saved["period"] is None
    assert saved["recipe"] == answer["recipe"]
    assert json.loads((out / "recipe.json").read_text()) == answer["recipe"]
    assert evaluate_saved(saved)["val_loss"] == answer["value"]
    assert f"model: {out / 'model.pt'}" in result.stdout
    lines = result.stdout.splitlines()
    final = next(line for line in lines if line.startswith("final (step"))
    assert f"val_loss {answer['value']:.6g}" in final
    trivial = training.get_task(TASK).trivial_metrics(None)["val_loss"]
    assert "the trivial predictor on the same data: val_accuracy" in result.stdout
    assert f"val_loss {trivial:.6g}" in lines[lines.index(final) + 1]
    assert answer["against_trivial"] is None  # unverified: nothing to pair with

    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    refused = run_autotune(
        "train", "answer", "--storage", storage_url, "--out", str(not_a_directory)
    )
    assert refused.returncode == 2 and "is a file" in refused.stderr
    no_period = run_autotune("train", "answer", "--storage", storage_url, "--period", "0")
    assert no_period.returncode == 2 and "no re-evaluation" in no_period.stderr


@pytest.mark.e2e
def test_train_refuses_a_campaign_without_recommendation(storage_url: str, tmp_path: Path) -> None:
    spec = write_study(tmp_path, "pending", trials=2)
    assert run_autotune("create", str(spec), "--storage", storage_url).returncode == 0
    result = run_autotune("train", "pending", "--storage", storage_url, "--out", str(tmp_path))
    assert result.returncode == 2 and "no recommendation yet" in result.stderr
    assert not (tmp_path / "model.pt").exists()


@pytest.mark.e2e
def test_train_on_a_reevaluation_period(storage_url: str, tmp_path: Path) -> None:
    # the tuned answer, with its run on the tuning period (the defaults have none)
    reevaluation = (
        "reevaluation: {finalists: 2, periods: 2, seeds: 1, period_seed: 7, defaults: false}\n"
    )
    run_campaign(  # no pruning: enough finalists whichever worker runs what
        tmp_path,
        storage_url,
        "periods",
        reevaluation=True,
        extra=reevaluation,
        pruner_min_steps=60,
        baseline=True,  # its trivial value is the tuning period's
    )
    answer = best_answer("periods", storage_url)
    assert answer["verified"], answer
    task = training.get_task(TASK)
    period = task.periods(2, 7)[1]
    versus = answer["against_trivial"]  # the 2 periods as the worker recorded them, not the
    assert answer["runs"] == 3  # tuning run: the answer's value counts it, the claim of skill not
    assert versus["runs"] == 2 and versus["outcome"] == "too few runs to tell"
    trivial = [task.trivial_metrics(p)["val_loss"] for p in task.periods(2, 7)]
    assert versus["trivial_mean"] == pytest.approx(sum(trivial) / 2)

    by_name = run_autotune(
        "train", "periods", "--storage", storage_url, "--period", period.name,
        "--out", str(tmp_path / "by-name"),
    )  # fmt: skip
    assert by_name.returncode == 0, by_name.stderr
    by_index = run_autotune(
        "train", "periods", "--storage", storage_url, "--period", "1",
        "--out", str(tmp_path / "by-index"),
    )  # fmt: skip
    assert by_index.returncode == 0, by_index.stderr
    saved = load_model(tmp_path / "by-name" / "model.pt")
    assert saved["period"] == period.name
    assert saved["metrics"] == load_model(tmp_path / "by-index" / "model.pt")["metrics"]
    assert evaluate_saved(saved, period) == {
        k: v for k, v in saved["metrics"].items() if k != training.TRAIN_LOSS
    }

    unknown = run_autotune("train", "periods", "--storage", storage_url, "--period", "spring")
    assert unknown.returncode == 2
    assert "'spring'" in unknown.stderr and period.name in unknown.stderr

    # With the seed of the re-evaluation's run on that period, the same run again (on one
    # thread, as the worker ran it: another thread count sums in another order).
    study = optuna.load_study(study_name="periods/reeval/1", storage=storage_url)
    run = next(
        t
        for t in study.trials
        if t.user_attrs[ATTR_FINALIST] == answer["finalist"]
        and t.user_attrs[ATTR_PERIOD_INDEX] == 1
    )
    recipe = from_plain(Recipe, answer["recipe"])
    with one_torch_thread():
        rerun = train_recipe(
            recipe, task, tmp_path / "rerun", period=period, seed=run.user_attrs[ATTR_SEED]
        )
    # the run trained the whole schedule; the recipe stops where the runs' mean was best
    assert rerun.metrics["val_loss"] == run.intermediate_values[recipe.stop_at_step]
    # train names what the campaign measured for this recipe on the same data
    recorded = run.intermediate_values[recipe.stop_at_step]
    same = (
        "the campaign's run of this recipe on the same data (a re-evaluation seed, not the "
        f"recipe's: they differ by seed noise): val_loss {recorded:.6g}"
    )
    assert same in by_name.stdout and same in by_index.stdout
    on_tuning_data = run_autotune(
        "train", "periods", "--storage", storage_url, "--out", str(tmp_path / "tuning")
    )
    assert on_tuning_data.returncode == 0, on_tuning_data.stderr
    design = autotune.load("periods", storage=storage_url).stage_studies(Stage.REEVALUATION)[0]
    finalist = next(f for f in design.facts.design.finalists if f.label == answer["finalist"])
    own = dict(finalist.tuning_run)[recipe.stop_at_step]  # its own tuning run, at the stop
    same_seed = "(the same seed: the same digits on the same thread count)"
    assert f"on the same data {same_seed}: val_loss {own:.6g}" in on_tuning_data.stdout
