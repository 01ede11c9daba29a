from __future__ import annotations

import enum
from pathlib import Path

import pytest
import torch

from autotune.training._checkpoint import CHECKPOINT_FORMAT
from autotune.training._checkpoint import CheckpointSettings
from autotune.training._checkpoint import average_checkpoints
from autotune.training._checkpoint import average_state_dicts
from autotune.training._checkpoint import checkpoint_path
from autotune.training._checkpoint import checkpoint_step
from autotune.training._checkpoint import fingerprint_differences
from autotune.training._checkpoint import latest_checkpoint
from autotune.training._checkpoint import list_checkpoints
from autotune.training._checkpoint import load_checkpoint
from autotune.training._checkpoint import prune_checkpoints
from autotune.training._checkpoint import run_fingerprint
from autotune.training._checkpoint import save_checkpoint


class Color(enum.Enum):
    RED = "red"


def test_settings() -> None:
    settings = CheckpointSettings("runs/a")  # type: ignore[arg-type]
    assert settings.directory == Path("runs/a") and settings.keep_last == 2


@pytest.mark.parametrize("keep", [0, -1, 1.5, True])
def test_settings_keep_last_invalid(keep: object) -> None:
    with pytest.raises(ValueError, match=rf"keep_last={keep!r}.*an int >= 1"):
        CheckpointSettings(Path("x"), keep_last=keep)  # type: ignore[arg-type]


def test_names(tmp_path: Path) -> None:
    path = checkpoint_path(tmp_path, 150)
    assert path == tmp_path / "step-00000150.pt"
    assert checkpoint_step(path) == 150
    assert checkpoint_step(Path("step-123456789.pt")) == 123456789
    with pytest.raises(ValueError, match=r"'model.pt'.*step-NNNNNNNN.pt"):
        checkpoint_step(Path("model.pt"))


def state(step: int) -> dict:
    return {"format": CHECKPOINT_FORMAT, "step": step, "model": {"w": torch.full((2,), step)}}


def test_save_load_list_prune(tmp_path: Path) -> None:
    directory = tmp_path / "new"
    assert list_checkpoints(directory) == () and latest_checkpoint(directory) is None
    for step in (100, 20, 3):
        save_checkpoint(checkpoint_path(directory, step), state(step))
    (directory / "notes.txt").write_text("not a checkpoint")
    names = [p.name for p in list_checkpoints(directory)]
    assert names == ["step-00000003.pt", "step-00000020.pt", "step-00000100.pt"]
    assert latest_checkpoint(directory) == directory / "step-00000100.pt"
    loaded = load_checkpoint(directory / "step-00000020.pt")
    assert loaded["step"] == 20 and torch.equal(loaded["model"]["w"], torch.full((2,), 20))
    kept = prune_checkpoints(directory, keep_last=2)
    assert [p.name for p in kept] == ["step-00000020.pt", "step-00000100.pt"]
    assert list_checkpoints(directory) == kept
    assert (directory / "notes.txt").exists()
    assert not list(directory.glob("*.tmp"))


def test_load_refuses_other_files(tmp_path: Path) -> None:
    path = tmp_path / "step-00000001.pt"
    torch.save({"weights": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="not an autotune checkpoint"):
        load_checkpoint(path)


def test_load_is_weights_only(tmp_path: Path) -> None:
    path = tmp_path / "step-00000001.pt"
    torch.save({**state(1), "color": Color.RED}, path)
    with pytest.raises(Exception, match="Weights only load failed"):
        load_checkpoint(path)


def test_average_state_dicts_by_hand() -> None:
    states = [
        {"w": torch.tensor([1.0, 2.0]), "b": torch.tensor(3.0), "n": torch.tensor(1)},
        {"w": torch.tensor([3.0, 4.0]), "b": torch.tensor(6.0), "n": torch.tensor(2)},
        {"w": torch.tensor([5.0, 9.0]), "b": torch.tensor(0.0), "n": torch.tensor(3)},
    ]
    averaged = average_state_dicts(states)
    torch.testing.assert_close(averaged["w"], torch.tensor([3.0, 5.0]))
    torch.testing.assert_close(averaged["b"], torch.tensor(3.0))
    assert averaged["n"].item() == 3  # not floating: the last one's
    assert averaged["w"] is not states[-1]["w"]
    one = average_state_dicts(states[:1])
    assert torch.equal(one["w"], states[0]["w"])


def test_average_is_sum_of_w_over_k() -> None:
    weights = [torch.tensor([0.1]), torch.tensor([0.2]), torch.tensor([0.4])]
    expected = weights[0] / 3 + weights[1] / 3 + weights[2] / 3
    averaged = average_state_dicts([{"w": w} for w in weights])
    assert torch.equal(averaged["w"], expected)


def test_average_state_dicts_invalid() -> None:
    with pytest.raises(ValueError, match="no state dicts"):
        average_state_dicts([])
    with pytest.raises(ValueError, match=r"state dict 0 has keys \['a'\].*\['b'\]"):
        average_state_dicts([{"a": torch.zeros(1)}, {"b": torch.zeros(1)}])


def test_average_checkpoints_files(tmp_path: Path) -> None:
    paths = [checkpoint_path(tmp_path, step) for step in (2, 4)]
    for path, step in zip(paths, (2, 4), strict=True):
        save_checkpoint(path, {**state(step), "model": {"w": torch.tensor([step * 1.0])}})
    torch.testing.assert_close(average_checkpoints(paths)["w"], torch.tensor([3.0]))


def test_fingerprint_is_plain_and_names_differences() -> None:
    hparams = {"optimizer": Color.RED, "lr": 0.1, "layers": 2, "flag": True, "off": None}
    saved = run_fingerprint("digits", hparams, {"seed": 0, "period": "fold 0/5"})
    assert saved == {
        "task": "digits",
        "hparams": {"optimizer": "red", "lr": 0.1, "layers": 2, "flag": True, "off": None},
        "seed": 0,
        "period": "fold 0/5",
    }
    same = run_fingerprint(
        "digits", {**hparams, "optimizer": "red"}, {"seed": 0, "period": "fold 0/5"}
    )
    assert fingerprint_differences(saved, same) == []
    other = run_fingerprint("digits", {**hparams, "lr": 0.2, "new": 1}, {"seed": 1, "period": "x"})
    assert fingerprint_differences(saved, other) == [
        "hparams.lr: checkpoint 0.1, this run 0.2",
        "hparams.new: checkpoint None, this run 1",
        "period: checkpoint 'fold 0/5', this run 'x'",
        "seed: checkpoint 0, this run 1",
    ]
