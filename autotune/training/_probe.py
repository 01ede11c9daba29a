"""Batch-size throughput probe (docs/method.md §2): time short runs at doubling batch sizes.

`probe_batch_size` trains a fresh model for a few steps at min_batch_size, twice that, and so
on, until a size runs out of memory, would exceed `memory_cap_bytes`, or exceeds
`max_batch_size`; `choose_batch_size` then picks the largest size whose doubling still raised
throughput by at least `min_gain`. Batch size sets speed, not achievable quality, so it is
chosen by throughput and never tuned for validation performance. A timed step is what the
loop does per step: draw the batch, forward, backward, optimizer step, at the base learning
rate (the schedule, EMA and evaluation are left out).

Memory estimate (the stand-in for out-of-memory on CPU): parameters + gradients + optimizer
state, measured on a throwaway model after one optimizer step, plus per example the input row
and twice the outputs of every leaf module (the forward activations, and as much again as a
stand-in for the backward pass). Activations are measured once with forward hooks at
min_batch_size and scaled linearly, so a size over the cap is never run, not even forward.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
import enum
import gc
import math
import statistics
import time
from typing import Any

import torch

from ._config import TrainingHyperparameters
from ._config import build_optimizer
from ._schedules import SCHEDULE_HYPERPARAMETERS
from ._task import Task
from ._task import TaskData

_GAIN_TOLERANCE = 1e-12
_OUT_OF_MEMORY_MARKERS = ("out of memory", "can't allocate memory")


class ProbeStatus(enum.Enum):
    """What happened at one batch size of the probe."""

    OK = "ok"
    OUT_OF_MEMORY = "out_of_memory"
    OVER_MEMORY_CAP = "over_memory_cap"
    OVER_SIZE_CAP = "over_size_cap"

    def describe(self) -> str:
        """A short phrase for tables and reasons."""
        phrases = {
            "ok": "ok",
            "out_of_memory": "out of memory",
            "over_memory_cap": "over the memory cap",
            "over_size_cap": "over the size cap",
        }
        return phrases[self.value]


@dataclass(frozen=True)
class ProbeRow:
    """One batch size: throughput and median step time (None unless status is OK)."""

    batch_size: int
    examples_per_s: float | None
    seconds_per_step: float | None
    status: ProbeStatus
    estimated_bytes: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int):
            raise ValueError(f"ProbeRow.batch_size={self.batch_size!r} is invalid; allowed: int")
        if self.batch_size < 1:
            raise ValueError(f"ProbeRow.batch_size={self.batch_size} is invalid; allowed: >= 1")
        if self.status is ProbeStatus.OK:
            for name in ("examples_per_s", "seconds_per_step"):
                value = getattr(self, name)
                if value is None or not math.isfinite(value) or value <= 0.0:
                    raise ValueError(
                        f"ProbeRow.{name}={value!r} is invalid for status ok; "
                        "allowed: a finite float > 0"
                    )


@dataclass(frozen=True)
class BatchChoice:
    """The chosen batch size and why."""

    batch_size: int
    reason: str


@dataclass(frozen=True)
class BatchProbeResult:
    """Every probed batch size, in order, and the choice made from them."""

    rows: tuple[ProbeRow, ...]
    choice: BatchChoice


class NoBatchSizeFitsError(RuntimeError):
    """Even the smallest batch size of the probe could not run; `rows` says why."""

    def __init__(self, rows: Sequence[ProbeRow]) -> None:
        first = rows[0]
        super().__init__(
            f"batch size {first.batch_size}, the smallest probed, is {first.status.describe()}; "
            "lower min_batch_size or raise memory_cap_bytes"
        )
        self.rows = tuple(rows)

    def __reduce__(self) -> tuple[type[NoBatchSizeFitsError], tuple[tuple[ProbeRow, ...]]]:
        return (type(self), (self.rows,))


def _check_min_gain(min_gain: float) -> None:
    number = isinstance(min_gain, int | float) and not isinstance(min_gain, bool)
    if not number or not math.isfinite(min_gain) or min_gain < 0.0:
        raise ValueError(f"min_gain={min_gain!r} is invalid; allowed: a finite float >= 0")


def _check_rows(rows: Sequence[ProbeRow], min_gain: float) -> None:
    _check_min_gain(min_gain)
    if not rows:
        raise ValueError("rows=() is invalid; allowed: at least one ProbeRow")
    if rows[0].status is not ProbeStatus.OK:
        raise ValueError(
            f"rows[0] (batch size {rows[0].batch_size}) has status {rows[0].status.value!r}; "
            "allowed: rows starting with an 'ok' row"
        )
    sizes = [row.batch_size for row in rows]
    if any(a >= b for a, b in zip(sizes, sizes[1:], strict=False)):
        raise ValueError(f"row batch sizes {sizes} are invalid; allowed: strictly increasing")


def _gain(previous: ProbeRow, row: ProbeRow) -> float | None:
    """Relative throughput gain of `row` over `previous`; None unless both ran."""
    if previous.examples_per_s is None or row.examples_per_s is None:
        return None
    return row.examples_per_s / previous.examples_per_s - 1.0


def choose_batch_size(rows: Sequence[ProbeRow], min_gain: float = 0.10) -> BatchChoice:
    """The largest batch size whose every doubling raised throughput by >= min_gain.

    Walks the rows in order (batch sizes strictly increasing, the first one OK) and stops at
    the first row that did not run or whose throughput gain over the previous row is below
    `min_gain`; the choice is the row before it.
    """
    _check_rows(rows, min_gain)
    chosen = rows[0]
    for row in rows[1:]:
        if row.status is not ProbeStatus.OK:
            return BatchChoice(
                chosen.batch_size,
                f"the next size, {row.batch_size}, is {row.status.describe()}; "
                f"every doubling up to {chosen.batch_size} gained >= {min_gain:.0%}",
            )
        gain = _gain(chosen, row)
        assert gain is not None  # both rows are OK
        if gain < min_gain - _GAIN_TOLERANCE:
            return BatchChoice(
                chosen.batch_size,
                f"doubling to {row.batch_size} changed throughput by {gain:+.1%}, "
                f"below the {min_gain:.0%} minimum gain",
            )
        chosen = row
    return BatchChoice(
        chosen.batch_size,
        f"the largest size probed; every doubling up to it gained >= {min_gain:.0%}",
    )


@dataclass(frozen=True)
class _Footprint:
    """Estimated training memory: a fixed part and a part per example."""

    static_bytes: int
    bytes_per_example: int

    def at(self, batch_size: int) -> int:
        return self.static_bytes + self.bytes_per_example * batch_size


@dataclass(frozen=True)
class _Setup:
    """What every probed batch size needs: task, its data, hyperparameters and the seed."""

    task: Task
    data: TaskData
    hparams: Mapping[str, Any]
    seed: int

    def model(self) -> torch.nn.Module:
        """A fresh model (the same initial weights every time), in train mode."""
        names = self.task.model_hyperparameters
        model_hparams = {k: v for k, v in self.hparams.items() if k in names}
        model = self.task.build_model(model_hparams, torch.Generator().manual_seed(self.seed))
        return model.train()

    def optimizer(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        """The optimizer `train` would build, at the base rate (the schedule is left out)."""
        keys = {k: v for k, v in self.hparams.items() if k not in SCHEDULE_HYPERPARAMETERS}
        return build_optimizer(model.parameters(), TrainingHyperparameters.from_hparams(keys))


def _tensor_bytes(value: Any) -> int:
    """Bytes of every tensor in `value` (nested tuples, lists and dicts are walked)."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, list | tuple):
        return sum(_tensor_bytes(v) for v in value)
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    return 0


def _static_bytes(setup: _Setup) -> int:
    """Parameters + gradients + optimizer state, after one zero-gradient step."""
    model = setup.model()
    optimizer = setup.optimizer(model)
    params = list(model.parameters())
    for p in params:
        p.grad = torch.zeros_like(p)
    optimizer.step()
    state = sum(_tensor_bytes(dict(s)) for s in optimizer.state.values())
    return 2 * sum(_tensor_bytes(p) for p in params) + state


def _activation_bytes(setup: _Setup, batch_size: int) -> int:
    """Sum of the outputs of every leaf module in one forward pass at `batch_size`."""
    model = setup.model()
    sizes: list[int] = []
    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    handles = [
        m.register_forward_hook(lambda _m, _i, out: sizes.append(_tensor_bytes(out)))
        for m in leaves
    ]
    try:
        with torch.no_grad():
            rows = torch.arange(batch_size) % len(setup.data.train_y)
            model(setup.data.train_x[rows])
    finally:
        for handle in handles:
            handle.remove()
    return sum(sizes)


def _footprint(setup: _Setup, batch_size: int) -> _Footprint:
    data = setup.data
    input_bytes = _tensor_bytes(data.train_x[0]) + _tensor_bytes(data.train_y[0])
    activations = math.ceil(2 * _activation_bytes(setup, batch_size) / batch_size)
    return _Footprint(_static_bytes(setup), input_bytes + activations)


def _row_batches(
    n_rows: int, batch_size: int, generator: torch.Generator
) -> Iterator[torch.Tensor]:
    """Endless row-index batches cut from successive random permutations (epochs).

    A batch larger than the training set repeats rows: it spans several permutations, so
    every row appears floor or ceil(batch_size / n_rows) times.
    """
    pending = torch.empty(0, dtype=torch.long)
    while True:
        while len(pending) < batch_size:
            pending = torch.cat([pending, torch.randperm(n_rows, generator=generator)])
        yield pending[:batch_size]
        pending = pending[batch_size:]


def _step_times(setup: _Setup, batch_size: int, steps: int, warmup_steps: int) -> list[float]:
    """Seconds of each timed training step (batch sampling and indexing included)."""
    model = setup.model()
    optimizer = setup.optimizer(model)
    data, task = setup.data, setup.task
    batches = _row_batches(
        len(data.train_y), batch_size, torch.Generator().manual_seed(setup.seed)
    )
    times: list[float] = []
    for index in range(warmup_steps + steps):
        tick = time.perf_counter()
        rows = next(batches)
        optimizer.zero_grad(set_to_none=True)
        task.loss(model(data.train_x[rows]), data.train_y[rows]).backward()
        optimizer.step()
        if index >= warmup_steps:
            times.append(time.perf_counter() - tick)
    return times


def _is_out_of_memory(error: BaseException) -> bool:
    """True for torch.OutOfMemoryError, MemoryError and allocator RuntimeErrors."""
    if isinstance(error, torch.OutOfMemoryError | MemoryError):
        return True
    message = str(error).lower()
    return isinstance(error, RuntimeError) and any(m in message for m in _OUT_OF_MEMORY_MARKERS)


def _measure(
    setup: _Setup, batch_size: int, steps: int, warmup_steps: int, estimate: int
) -> ProbeRow:
    """Time `steps` steps after `warmup_steps`; out-of-memory gives an OUT_OF_MEMORY row."""
    try:
        times = _step_times(setup, batch_size, steps, warmup_steps)
    except (RuntimeError, MemoryError) as error:
        if not _is_out_of_memory(error):
            raise
        times = None
    if times is None:
        gc.collect()  # the failed size's model and tensors are unreachable only now
        return ProbeRow(batch_size, None, None, ProbeStatus.OUT_OF_MEMORY, estimate)
    seconds = statistics.median(times)
    return ProbeRow(batch_size, batch_size / seconds, seconds, ProbeStatus.OK, estimate)


def _doublings(min_batch_size: int, max_batch_size: int) -> Iterator[int]:
    size = min_batch_size
    while size <= max_batch_size:
        yield size
        size *= 2


def _probe_rows(
    setup: _Setup,
    sizes: Sequence[int],
    footprint: _Footprint,
    memory_cap_bytes: int | None,
    steps: tuple[int, int],
) -> list[ProbeRow]:
    """Measure each size in turn; the last row is the one that ended the probe."""
    rows: list[ProbeRow] = []
    for size in sizes:
        estimate = footprint.at(size)
        if memory_cap_bytes is not None and estimate > memory_cap_bytes:
            return [*rows, ProbeRow(size, None, None, ProbeStatus.OVER_MEMORY_CAP, estimate)]
        rows.append(_measure(setup, size, *steps, estimate))
        if rows[-1].status is not ProbeStatus.OK:
            return rows
    over = 2 * sizes[-1]
    return [*rows, ProbeRow(over, None, None, ProbeStatus.OVER_SIZE_CAP, footprint.at(over))]


def _require_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}={value!r} is invalid; allowed: an int >= {minimum}")


def _check_probe_args(
    min_batch_size: int,
    max_batch_size: int,
    steps: int,
    warmup_steps: int,
    min_gain: float,
    memory_cap_bytes: int | None,
) -> None:
    _require_int("min_batch_size", min_batch_size, 1)
    _require_int("max_batch_size", max_batch_size, min_batch_size)
    _require_int("steps", steps, 1)
    _require_int("warmup_steps", warmup_steps, 0)
    if memory_cap_bytes is not None:
        _require_int("memory_cap_bytes", memory_cap_bytes, 1)
    _check_min_gain(min_gain)


def probe_batch_size(
    task: Task,
    hparams: Mapping[str, Any],
    *,
    min_batch_size: int = 8,
    max_batch_size: int = 4096,
    steps: int = 20,
    warmup_steps: int = 3,
    min_gain: float = 0.10,
    memory_cap_bytes: int | None = None,
    seed: int = 0,
) -> BatchProbeResult:
    """Measure training throughput at doubling batch sizes and choose one (docs/method.md §2).

    Each size gets a fresh model (train mode) and optimizer from `hparams`, `warmup_steps`
    untimed steps, then `steps` timed ones on seeded random batches of the task's training
    data; its throughput is batch_size / median step time. The probe ends at the first size
    that runs out of memory, whose estimated memory exceeds `memory_cap_bytes`, or that
    exceeds `max_batch_size`; that size is the last row. The CPU global RNG (dropout) is
    forked and seeded from `seed`; accelerator RNGs are not touched. Raises
    NoBatchSizeFitsError when min_batch_size itself cannot run.
    """
    _check_probe_args(
        min_batch_size, max_batch_size, steps, warmup_steps, min_gain, memory_cap_bytes
    )
    _require_int("seed", seed, 0)
    setup = _Setup(task, task.data(), dict(hparams), seed)
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        footprint = _footprint(setup, min_batch_size)
        sizes = list(_doublings(min_batch_size, max_batch_size))
        rows = _probe_rows(setup, sizes, footprint, memory_cap_bytes, (steps, warmup_steps))
    if rows[0].status is not ProbeStatus.OK:
        raise NoBatchSizeFitsError(rows)
    return BatchProbeResult(tuple(rows), choose_batch_size(rows, min_gain))


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def format_probe_table(result: BatchProbeResult) -> str:
    """A fixed-width table of the probe, and a last line with the choice and its reason."""
    header = (
        f"{'batch size':>10}  {'examples/s':>12}  {'ms/step':>9}  {'gain':>8}  "
        f"{'est. MiB':>9}  status"
    )
    lines = [header, "-" * len(header)]
    previous: ProbeRow | None = None
    for row in result.rows:
        gain = None if previous is None else _gain(previous, row)
        ms = None if row.seconds_per_step is None else 1000.0 * row.seconds_per_step
        mib = None if row.estimated_bytes is None else row.estimated_bytes / 2**20
        lines.append(
            f"{row.batch_size:>10}  {_cell(row.examples_per_s, ',.1f'):>12}  "
            f"{_cell(ms, '.3f'):>9}  {_cell(gain, '+.1%'):>8}  {_cell(mib, '.2f'):>9}  "
            f"{row.status.describe()}"
        )
        previous = row
    choice = result.choice
    lines.append(f"choice: batch size {choice.batch_size} ({choice.reason})")
    return "\n".join(lines)
