"""Train a campaign's recipe once more and save the model it delivers (``autotune train``).

The recipe fixes everything: configuration, batch size, schedule, stop and seed, so the run
reproduces the value the campaign recorded for it on the same data. The saved weights are
those the last evaluation measured (raw, EMA or averaged, as the recipe's
``evaluated_model`` says), taken from the checkpoint the loop writes at that evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
import json
import os
from pathlib import Path
import tempfile
from typing import TYPE_CHECKING
from typing import Any

from autotune import training
from autotune._errors import AutotuneError
from autotune.campaign import Recipe
from autotune.campaign._plain import plain
from autotune.spec import StudySpec
from autotune.worker._periods import heldout_periods
from autotune.worker._periods import seeded_periods
from autotune.worker._periods import tuning_period

if TYPE_CHECKING:  # torch loads when a model is saved: the CLI imports this package for all
    import torch  # its commands, and reading a campaign must work where torch is absent

MODEL_FILE = "model.pt"
RECIPE_FILE = "recipe.json"
MODEL_FORMAT = 1


class UnknownPeriodError(AutotuneError, ValueError):
    """A ``--period`` that is none of the campaign's re-evaluation periods."""


@dataclass(frozen=True)
class PeriodChoices:
    """The periods a recipe may be re-trained on: the re-evaluation's (count, seed)."""

    count: int
    seed: int


@dataclass(frozen=True)
class TrainedModel:
    """Where ``train_recipe`` saved the model, and what its last evaluation measured."""

    model_path: Path
    recipe_path: Path
    step: int
    metrics: Mapping[str, float]
    period: str | None  # None: the task's default data, the recipe's tuning data
    seed: int


def resolve_period(
    task: training.Task,
    name: str | None,
    choices: PeriodChoices | None,
    spec: StudySpec | None = None,
) -> training.Period | None:
    """The period ``name`` names (a re-evaluation period's name or its index, or any date
    range spelled as a period's name: "START..END[ validate VSTART..VEND]"); without a name
    the tuning data: the campaign ``spec``'s ``periods.tuning``, else None (the task's
    default). With ``periods.heldout`` in the spec, those are the re-evaluation's periods.
    Raises UnknownPeriodError listing the allowed names."""
    if name is None:
        return None if spec is None else tuning_period(spec)
    try:
        spelled = training.Period.from_name(name)
    except ValueError as error:
        raise UnknownPeriodError(f"--period {name!r}: {error}") from None
    if spelled is not None:
        return _accepted(task, spelled, name)
    if choices is None:
        raise UnknownPeriodError(
            f"--period {name!r}: the campaign ran no re-evaluation, so its recipe has only "
            "the task's default data (omit --period)"
        )
    heldout = None if spec is None else heldout_periods(spec)
    if heldout is None:
        periods = seeded_periods(spec, task, choices.count, choices.seed)
    else:
        periods = heldout
    by_name = {period.name: period for period in periods}
    by_name |= {str(index): period for index, period in enumerate(periods)}
    if name not in by_name:
        allowed = ", ".join(period.name for period in periods)
        raise UnknownPeriodError(
            f"--period {name!r} is not a period of the campaign's re-evaluation; allowed: "
            f"{allowed} (or an index 0..{len(periods) - 1}, or a date range spelled as a "
            "period's name: START..END[ validate VSTART..VEND])"
        )
    return by_name[name]


def _accepted(task: training.Task, period: training.Period, name: str) -> training.Period:
    """``period`` if the task gives data for it; a range it refuses (a validation span past
    its history) is a bad --period, said before training, not a traceback from inside it."""
    try:
        task.data(period)
    except Exception as error:  # a user task's own refusal, whatever it raises
        raise UnknownPeriodError(f"--period {name!r}: the task refuses it: {error}") from None
    return period


def _ignore(evaluation: training.EvalResult) -> None:
    del evaluation


def recipe_budget(recipe: Recipe, seed: int) -> training.Budget:
    """The training budget a recipe prescribes, with ``seed``."""
    return training.Budget(
        max_train_steps=recipe.max_train_steps,
        eval_interval=recipe.eval_interval,
        batch_size=recipe.batch_size,
        seed=seed,
        gradient_accumulation_steps=recipe.gradient_accumulation_steps,
        stop_at_step=recipe.stop_at_step,
    )


def train_recipe(
    recipe: Recipe,
    task: training.Task,
    out: Path,
    *,
    period: training.Period | None = None,
    seed: int | None = None,
    on_eval: Callable[[training.EvalResult], None] = _ignore,
) -> TrainedModel:
    """Train ``recipe`` on ``task`` (its default data, or ``period``) with ``seed`` (default:
    the recipe's, else 0); write ``out/model.pt`` and ``out/recipe.json``."""
    seed = (recipe.seed or 0) if seed is None else seed
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".checkpoints-", dir=out) as scratch:
        settings = training.CheckpointSettings(Path(scratch), keep_last=1)
        result = training.train(
            recipe.hyperparameters,
            task,
            recipe_budget(recipe, seed),
            on_eval,
            recipe.metric,
            period=period,
            checkpoints=settings,
        )
        state = training.load_checkpoint(result.checkpoints[-1])
    weights = evaluated_weights(state, result.evaluated_model)
    saved = {
        "format": MODEL_FORMAT,
        "model": weights,
        "recipe": recipe_data(recipe),
        "metrics": dict(result.final.metrics),
        "step": result.final.step,
        "period": None if period is None else period.name,
        "seed": seed,
        "evaluated_model": result.evaluated_model.value,
    }
    model_path, recipe_path = out / MODEL_FILE, out / RECIPE_FILE
    _write_atomically(model_path, lambda path: _torch_save(saved, path))
    text = json.dumps(recipe_data(recipe), indent=2, sort_keys=True) + "\n"
    _write_atomically(recipe_path, lambda path: path.write_text(text, encoding="utf-8"))
    return TrainedModel(
        model_path,
        recipe_path,
        result.final.step,
        dict(result.final.metrics),
        saved["period"],
        seed,
    )


def evaluated_weights(
    state: Mapping[str, Any], kind: training.EvaluatedModel
) -> dict[str, torch.Tensor]:
    """The model weights the evaluation at a checkpoint's step measured, as the training
    loop chooses them: the EMA's parameters (the raw buffers), the average of the kept
    snapshots at the schedule's last step, else the raw weights."""
    raw = dict(state["model"])
    if kind is training.EvaluatedModel.EMA and state["ema"] is not None:
        return {**raw, **state["ema"]}
    last = state["step"] == state["max_train_steps"]
    if kind is training.EvaluatedModel.AVERAGED and last and state["averaging"]:
        return training.average_state_dicts(state["averaging"])
    return raw


def recipe_data(recipe: Recipe) -> dict[str, Any]:
    """The recipe as plain data (as ``autotune export`` prints it), with its stopping rule."""
    return {**plain(recipe), "stopping_rule": recipe.stopping_rule}


def _torch_save(data: dict[str, Any], path: Path) -> None:
    import torch

    torch.save(data, path)


def _write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    write(temporary)
    os.replace(temporary, path)
