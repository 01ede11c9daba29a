from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import pytest
import torch

from autotune.campaign import promotion_overrides
from autotune.training import Budget
from autotune.training import EvalResult
from autotune.training import Task
from autotune.training import TrainResult
from autotune.training import get_task
from autotune.training import resumable_step
from autotune.training import train
from autotune.training._checkpoint import CheckpointSettings
from autotune.training._checkpoint import checkpoint_path
from autotune.training._checkpoint import checkpoint_step
from autotune.training._checkpoint import load_checkpoint

BUDGET = Budget(max_train_steps=300, eval_interval=30, batch_size=32, seed=4)
INTERRUPT = 150
CASES = {
    "adamw-cosine-dropout": {
        "learning_rate": 3e-3,
        "optimizer": "adamw",
        "weight_decay": 0.01,
        "schedule": "cosine",
        "warmup_fraction": 0.1,
        "dropout": 0.2,
        "num_layers": 2,
        "hidden_units": 32,
    },
    "sgd-nesterov-ema": {
        "learning_rate": 0.05,
        "optimizer": "sgd_nesterov",
        "momentum": 0.9,
        "ema_decay": 0.99,
        "evaluated_model": "ema",
        "dropout": 0.1,
        "hidden_units": 32,
    },
    "averaging": {
        "learning_rate": 3e-3,
        "optimizer": "nadam",
        "average_last_checkpoints": 3,
        "evaluated_model": "averaged",
        "ema_decay": 0.999,
        "ema_dynamic": False,
        "hidden_units": 32,
    },
}


@pytest.fixture(scope="module")
def task() -> Task:
    return get_task("digits-mlp")


class Interrupted(Exception):
    pass


@dataclass
class Recorder:
    stop_at: int | None = None
    evals: list[EvalResult] = field(default_factory=list)

    def __call__(self, result: EvalResult) -> None:
        self.evals.append(result)
        if result.step == self.stop_at:
            raise Interrupted(f"stopped at {result.step}")


def run(task: Task, hparams: dict, budget: Budget, **kw: Any) -> tuple[TrainResult, list]:
    recorder = Recorder()
    return train(hparams, task, budget, recorder, **kw), recorder.evals


def interrupt(task: Task, hparams: dict, directory: Path, budget: Budget = BUDGET) -> Path:
    recorder = Recorder(stop_at=INTERRUPT)
    with pytest.raises(Interrupted):
        train(hparams, task, budget, recorder, checkpoints=CheckpointSettings(directory))
    assert recorder.evals[-1].step == INTERRUPT
    return checkpoint_path(directory, INTERRUPT)


def assert_same_state(a: Any, b: Any, where: str = "") -> None:
    """Tensors equal (==), plain values equal, recursively."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same_state(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_state(x, y, f"{where}[{index}]")
    else:
        assert a == b, where


@pytest.mark.parametrize("case", list(CASES))
def test_resume_is_exact(task: Task, tmp_path: Path, case: str) -> None:
    hparams = CASES[case]
    full, full_evals = run(task, hparams, BUDGET, checkpoints=CheckpointSettings(tmp_path / "a"))
    resume_from = interrupt(task, hparams, tmp_path / "b")
    settings = CheckpointSettings(tmp_path / "b")
    resumed, later = run(task, hparams, BUDGET, checkpoints=settings, resume_from=resume_from)
    assert [e.step for e in later] == list(range(180, 301, 30))  # no eval is repeated
    assert later == full_evals[5:]  # train losses and metrics, exactly
    assert (resumed.final, resumed.best) == (full.final, full.best)
    assert resumed.resumed_from_step == INTERRUPT and full.resumed_from_step == 0
    assert resumed.steps_done == 300 and resumed.evaluated_model is full.evaluated_model
    assert [p.name for p in resumed.checkpoints] == [p.name for p in full.checkpoints]
    end_full = load_checkpoint(full.checkpoints[-1])
    end_resumed = load_checkpoint(resumed.checkpoints[-1])
    for key in ("model", "optimizer", "ema", "averaging", "torch_rng", "batches", "tracker"):
        assert_same_state(end_full[key], end_resumed[key], key)


def test_checkpoint_contents(task: Task, tmp_path: Path) -> None:
    hparams = CASES["averaging"]
    result, _ = run(task, hparams, BUDGET, checkpoints=CheckpointSettings(tmp_path, 1))
    assert [p.name for p in result.checkpoints] == [
        "step-00000240.pt",
        "step-00000270.pt",
        "step-00000300.pt",
    ]  # at least average_last_checkpoints files are kept
    state = load_checkpoint(result.checkpoints[-1])
    assert state["step"] == 300 and state["max_train_steps"] == 300
    assert state["fingerprint"]["hparams"]["evaluated_model"] == "averaged"
    assert state["fingerprint"]["task"] == "digits-mlp"
    assert state["tracker"]["final"]["step"] == 300
    assert set(state["ema"]) == set(state["model"])
    assert len(state["averaging"]) == 3


def test_keep_last(task: Task, tmp_path: Path) -> None:
    budget = Budget(max_train_steps=50, eval_interval=10, batch_size=16, seed=0)
    hparams = {"learning_rate": 1e-3}
    result, _ = run(task, hparams, budget, checkpoints=CheckpointSettings(tmp_path))
    assert [p.name for p in result.checkpoints] == ["step-00000040.pt", "step-00000050.pt"]
    assert sorted(tmp_path.iterdir()) == list(result.checkpoints)
    plain, _ = run(task, hparams, budget)
    assert plain.checkpoints == () and plain.final == result.final


def test_resume_from_the_last_checkpoint_trains_nothing(task: Task, tmp_path: Path) -> None:
    budget = Budget(max_train_steps=40, eval_interval=20, batch_size=16, seed=0)
    hparams = {"learning_rate": 1e-3}
    first, _ = run(task, hparams, budget, checkpoints=CheckpointSettings(tmp_path))
    again, evals = run(task, hparams, budget, resume_from=first.checkpoints[-1])
    assert evals == [] and (again.final, again.best) == (first.final, first.best)
    assert again.examples_per_s == 0.0 and again.resumed_from_step == 40
    assert again.checkpoints == ()


def test_resume_into_a_longer_budget_when_rates_agree(task: Task, tmp_path: Path) -> None:
    """Promotion: a WSD run of 120 steps continues exactly into one of 180 (METHOD §1)."""
    hparams = {"learning_rate": 3e-3, "schedule": "wsd", "decay_steps": 30, "dropout": 0.1}
    short = Budget(max_train_steps=120, eval_interval=30, batch_size=32, seed=1)
    long = Budget(max_train_steps=180, eval_interval=30, batch_size=32, seed=1)
    parent, _ = run(task, hparams, short, checkpoints=CheckpointSettings(tmp_path))
    assert [p.name for p in parent.checkpoints] == ["step-00000090.pt", "step-00000120.pt"]
    _, expected = run(task, hparams, long)
    child, evals = run(task, hparams, long, resume_from=parent.checkpoints[0])
    assert child.resumed_from_step == 90 and evals == expected[3:]
    with pytest.raises(ValueError, match=r"max_train_steps: checkpoint 120, this run 180.*91"):
        train(hparams, task, long, Recorder(), resume_from=parent.checkpoints[1])


def test_resume_refuses_a_different_run(task: Task, tmp_path: Path) -> None:
    budget = Budget(max_train_steps=40, eval_interval=20, batch_size=16, seed=0)
    hparams = {"learning_rate": 1e-3, "schedule": "cosine"}
    first, _ = run(task, hparams, budget, checkpoints=CheckpointSettings(tmp_path))
    path = first.checkpoints[0]
    other_lr = {**hparams, "learning_rate": 2e-3}
    with pytest.raises(ValueError, match=r"hparams.learning_rate: checkpoint 0.001, this run"):
        train(other_lr, task, budget, Recorder(), resume_from=path)
    other_seed = Budget(max_train_steps=40, eval_interval=20, batch_size=16, seed=1)
    with pytest.raises(ValueError, match=r"seed: checkpoint 0, this run 1"):
        train(hparams, task, other_seed, Recorder(), resume_from=path)
    longer = Budget(max_train_steps=80, eval_interval=20, batch_size=16, seed=0)
    with pytest.raises(ValueError, match=r"max_train_steps: checkpoint 40, this run 80"):
        train(hparams, task, longer, Recorder(), resume_from=path)
    shorter = Budget(max_train_steps=10, eval_interval=10, batch_size=16, seed=0)
    with pytest.raises(ValueError, match=r"eval_interval.*step 20 is past max_train_steps=10"):
        train(hparams, task, shorter, Recorder(), resume_from=path)
    period = task.periods(5, 0)[2]
    with pytest.raises(ValueError, match=r"period: checkpoint None, this run 'fold"):
        train(hparams, task, budget, Recorder(), period=period, resume_from=path)


def test_refuses_a_directory_with_later_checkpoints(task: Task, tmp_path: Path) -> None:
    budget = Budget(max_train_steps=40, eval_interval=20, batch_size=16, seed=0)
    hparams = {"learning_rate": 1e-3}
    first, _ = run(task, hparams, budget, checkpoints=CheckpointSettings(tmp_path))
    with pytest.raises(ValueError, match=r"already holds step-00000020.pt, step-00000040.pt"):
        train(hparams, task, budget, Recorder(), checkpoints=CheckpointSettings(tmp_path))
    settings = CheckpointSettings(tmp_path)
    with pytest.raises(ValueError, match=r"already holds step-00000040.pt; .*start step 20"):
        train(
            hparams,
            task,
            budget,
            Recorder(),
            checkpoints=settings,
            resume_from=first.checkpoints[0],
        )


PROMOTED = {
    "learning_rate": 3e-3,
    "schedule": "wsd",
    "decay_fraction": 0.2,
    "weight_decay": 0.01,
    "dropout": 0.1,
    "hidden_units": 32,
    "early_stopping_patience": 20,  # never reached in round 1
}
ROUND_1 = Budget(max_train_steps=300, eval_interval=30, batch_size=32, seed=2)
ROUND_2 = Budget(max_train_steps=600, eval_interval=30, batch_size=32, seed=2)


@pytest.fixture(scope="module")
def round_1(task: Task, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    """The parent: WSD decaying over steps 241..300, checkpoints 240, 270 and 300 kept."""
    directory = tmp_path_factory.mktemp("parent")
    result, _ = run(task, PROMOTED, ROUND_1, checkpoints=CheckpointSettings(directory, 3))
    assert [checkpoint_step(p) for p in result.checkpoints] == [240, 270, 300]
    return result


def promoted_child() -> dict:
    """Round 2's configuration; it may stop differently (when a run ends is no bar to
    resuming it), here never."""
    overrides = promotion_overrides(PROMOTED, ROUND_1.max_train_steps)
    return PROMOTED | overrides | {"early_stopping_patience": 0}


def test_promoted_child_resumes_from_its_parent_exactly(
    task: Task, tmp_path: Path, round_1: TrainResult
) -> None:
    """Round 2 (constant until 540) continues the parent from step 240 (METHOD §1)."""
    child = promoted_child()
    assert resumable_step(PROMOTED, 300, child, 600, eval_interval=30) == 240
    scratch, scratch_evals = run(
        task, child, ROUND_2, checkpoints=CheckpointSettings(tmp_path / "scratch")
    )
    resumed, evals = run(
        task,
        child,
        ROUND_2,
        checkpoints=CheckpointSettings(tmp_path / "resumed"),
        resume_from=round_1.checkpoints[0],
    )
    assert resumed.resumed_from_step == 240 and resumed.steps_done == 600
    assert [e.step for e in evals] == list(range(270, 601, 30))  # 360 steps trained
    assert evals == scratch_evals[8:]
    assert (resumed.final, resumed.best) == (scratch.final, scratch.best)
    end_scratch = load_checkpoint(scratch.checkpoints[-1])
    end_resumed = load_checkpoint(resumed.checkpoints[-1])
    for key in ("model", "optimizer", "batches", "tracker"):
        assert_same_state(end_scratch[key], end_resumed[key], key)


def test_promoted_child_refuses_a_checkpoint_in_the_parents_decay(
    task: Task, round_1: TrainResult
) -> None:
    with pytest.raises(
        ValueError,
        match=r"cannot resume from .*step-00000270.pt: hparams.decay_fraction: checkpoint 0.2, "
        r"this run None; .*max_train_steps: checkpoint 300, this run 600; "
        r"their learning rates differ from step 241, before step 270",
    ):
        train(promoted_child(), task, ROUND_2, Recorder(), resume_from=round_1.checkpoints[1])


def test_promoted_child_refuses_a_different_non_schedule_hparam(
    task: Task, round_1: TrainResult
) -> None:
    child = promoted_child() | {"weight_decay": 0.02}
    with pytest.raises(ValueError) as error:
        train(child, task, ROUND_2, Recorder(), resume_from=round_1.checkpoints[0])
    assert str(error.value) == (
        f"cannot resume from {round_1.checkpoints[0]}: "
        "hparams.weight_decay: checkpoint 0.01, this run 0.02"
    )
