"""Checkpoint files of a training run, run fingerprints and checkpoint averaging.

A checkpoint is a dict of tensors and plain Python values written by ``torch.save`` and read
with ``torch.load(weights_only=True)``: no dataclasses or enums in the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
import enum
import numbers
import os
from pathlib import Path
import re
from typing import Any

import torch

CHECKPOINT_FORMAT = 1
_NAME = re.compile(r"step-(\d{8,})\.pt")


@dataclass(frozen=True)
class CheckpointSettings:
    """Where checkpoints go (one per eval step) and how many of the newest to keep."""

    directory: Path
    keep_last: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "directory", Path(self.directory))
        keep = self.keep_last
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(
                f"CheckpointSettings.keep_last={keep!r} is invalid; allowed: an int >= 1"
            )


def checkpoint_path(directory: Path, step: int) -> Path:
    """The file of the checkpoint taken after `step` steps: ``step-{step:08d}.pt``."""
    return Path(directory) / f"step-{step:08d}.pt"


def checkpoint_step(path: Path) -> int:
    """The step encoded in a checkpoint file name."""
    match = _NAME.fullmatch(Path(path).name)
    if match is None:
        raise ValueError(f"checkpoint file name {Path(path).name!r}; allowed: step-NNNNNNNN.pt")
    return int(match.group(1))


def list_checkpoints(directory: Path) -> tuple[Path, ...]:
    """The checkpoint files in `directory`, oldest step first (empty if it does not exist)."""
    directory = Path(directory)
    if not directory.is_dir():
        return ()
    found = [p for p in directory.iterdir() if _NAME.fullmatch(p.name) and p.is_file()]
    return tuple(sorted(found, key=checkpoint_step))


def latest_checkpoint(directory: Path) -> Path | None:
    """The checkpoint with the highest step in `directory`, or None."""
    found = list_checkpoints(directory)
    return found[-1] if found else None


def save_checkpoint(path: Path, state: Mapping[str, Any]) -> None:
    """Write `state` atomically (a temporary file renamed over `path`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    try:
        torch.save(dict(state), temporary)
        os.replace(temporary, path)
    except BaseException:  # a full disk: leave no partial file behind
        temporary.unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by save_checkpoint, tensors on the CPU."""
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not an autotune checkpoint (format {CHECKPOINT_FORMAT})")
    return state


def prune_checkpoints(directory: Path, keep_last: int) -> tuple[Path, ...]:
    """Delete all but the newest `keep_last` checkpoints; returns those kept."""
    found = list_checkpoints(directory)
    stale, kept = found[: max(len(found) - keep_last, 0)], found[-keep_last:]
    for path in stale:
        path.unlink(missing_ok=True)
    return kept


def average_state_dicts(states: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Average K state dicts tensor by tensor (the sum of w / K, in order).

    Floating tensors are averaged; others (e.g. step counters) are taken from the last.
    """
    if not states:
        raise ValueError("average_state_dicts got no state dicts; allowed: at least one")
    keys = list(states[-1])
    for index, state in enumerate(states):
        if list(state) != keys:
            raise ValueError(
                f"state dict {index} has keys {sorted(state)}; allowed: the same keys as the "
                f"last, {sorted(keys)}"
            )
    count = len(states)
    averaged = {}
    for key in keys:
        last = states[-1][key]
        if not last.is_floating_point():
            averaged[key] = last.clone()
            continue
        total = torch.zeros_like(last)
        for state in states:
            total += state[key] / count
        averaged[key] = total
    return averaged


def average_checkpoints(paths: Sequence[Path]) -> dict[str, torch.Tensor]:
    """The average of the model weights stored in checkpoint files (docs/method.md §14)."""
    return average_state_dicts([load_checkpoint(p)["model"] for p in paths])


def _plain(value: Any) -> Any:
    """A JSON-like, torch.load-safe copy of a hyperparameter value."""
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return repr(value)


def run_fingerprint(
    task_name: str, hparams: Mapping[str, Any], settings: Mapping[str, Any]
) -> dict[str, Any]:
    """What a resumed run must share with the run that wrote the checkpoint."""
    return {"task": task_name, "hparams": _plain(dict(hparams)), **_plain(dict(settings))}


def fingerprint_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Human-readable 'key: checkpoint X, this run Y' lines, nested keys dotted."""
    lines = []
    for key in sorted(set(saved) | set(current)):
        old, new = saved.get(key), current.get(key)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            nested = fingerprint_differences(old, new)
            lines += [f"{key}.{line}" for line in nested]
        elif old != new:
            lines.append(f"{key}: checkpoint {old!r}, this run {new!r}")
    return lines
