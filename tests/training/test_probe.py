from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
import pickle
from typing import Any

import pytest
import torch

from autotune.training._probe import BatchChoice
from autotune.training._probe import BatchProbeResult
from autotune.training._probe import NoBatchSizeFitsError
from autotune.training._probe import ProbeRow
from autotune.training._probe import ProbeStatus
from autotune.training._probe import _row_batches
from autotune.training._probe import choose_batch_size
from autotune.training._probe import format_probe_table
from autotune.training._probe import probe_batch_size
from autotune.training._registry import get_task
from autotune.training._task import Task

FAST = {"steps": 2, "warmup_steps": 1}


def ok(batch_size: int, examples_per_s: float) -> ProbeRow:
    return ProbeRow(batch_size, examples_per_s, batch_size / examples_per_s, ProbeStatus.OK)


def stopped(batch_size: int, status: ProbeStatus) -> ProbeRow:
    return ProbeRow(batch_size, None, None, status)


def rows_with(throughputs: Mapping[int, float]) -> list[ProbeRow]:
    return [ok(size, value) for size, value in throughputs.items()]


# --- the decision function ---------------------------------------------------------------


def test_linear_scaling_keeps_doubling() -> None:
    rows = rows_with({8: 800.0, 16: 1600.0, 32: 3200.0, 64: 6400.0})
    choice = choose_batch_size(rows)
    assert choice.batch_size == 64
    assert "largest size probed" in choice.reason


def test_plateau_stops_at_the_size_before() -> None:
    rows = rows_with({8: 800.0, 16: 1600.0, 32: 2000.0, 64: 2050.0, 128: 2060.0})
    choice = choose_batch_size(rows)
    assert choice.batch_size == 32
    assert "64" in choice.reason and "+2.5%" in choice.reason


def test_gain_below_ten_percent_stops() -> None:
    assert choose_batch_size(rows_with({8: 1000.0, 16: 1090.0})).batch_size == 8


def test_exactly_the_minimum_gain_counts() -> None:
    assert choose_batch_size(rows_with({8: 1000.0, 16: 1100.0})).batch_size == 16


def test_throughput_drop_stops() -> None:
    assert choose_batch_size(rows_with({8: 1000.0, 16: 2000.0, 32: 1500.0})).batch_size == 16


def test_stops_at_the_first_failing_doubling() -> None:
    rows = rows_with({8: 1000.0, 16: 1050.0, 32: 5000.0})
    assert choose_batch_size(rows).batch_size == 8


@pytest.mark.parametrize(
    "status", [ProbeStatus.OUT_OF_MEMORY, ProbeStatus.OVER_MEMORY_CAP, ProbeStatus.OVER_SIZE_CAP]
)
def test_a_row_that_did_not_run_ends_the_walk(status: ProbeStatus) -> None:
    rows = [*rows_with({8: 800.0, 16: 1600.0, 32: 3200.0}), stopped(64, status)]
    choice = choose_batch_size(rows)
    assert choice.batch_size == 32
    assert "64" in choice.reason and status.describe() in choice.reason


def test_custom_min_gain() -> None:
    rows = rows_with({8: 1000.0, 16: 1250.0, 32: 1562.5})  # +25% per doubling
    assert choose_batch_size(rows, min_gain=0.3).batch_size == 8
    assert choose_batch_size(rows, min_gain=0.2).batch_size == 32
    assert choose_batch_size(rows, min_gain=0.0).batch_size == 32


@pytest.mark.parametrize(
    ("rows", "min_gain", "match"),
    [
        ([], 0.1, "rows"),
        ([stopped(8, ProbeStatus.OUT_OF_MEMORY)], 0.1, "rows\\[0\\]"),
        ([ok(16, 10.0), ok(8, 20.0)], 0.1, "strictly increasing"),
        ([ok(8, 10.0)], -0.1, "min_gain=-0.1"),
        ([ok(8, 10.0)], float("nan"), "min_gain=nan"),
    ],
)
def test_decision_rejects_bad_input(rows: list[ProbeRow], min_gain: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        choose_batch_size(rows, min_gain)


def test_ok_row_needs_positive_throughput() -> None:
    with pytest.raises(ValueError, match="examples_per_s=None"):
        ProbeRow(8, None, 0.1, ProbeStatus.OK)
    with pytest.raises(ValueError, match="seconds_per_step=0.0"):
        ProbeRow(8, 10.0, 0.0, ProbeStatus.OK)
    with pytest.raises(ValueError, match="batch_size=0"):
        ProbeRow(0, None, None, ProbeStatus.OVER_SIZE_CAP)


# --- the measuring shell -----------------------------------------------------------------


@pytest.fixture(scope="module")
def task() -> Task:
    return get_task("digits-mlp")


@pytest.fixture(scope="module")
def probed(task: Task) -> BatchProbeResult:
    return probe_batch_size(task, task.default_hyperparameters(), max_batch_size=64, **FAST)


def test_probe_measures_every_doubling_up_to_the_size_cap(probed: BatchProbeResult) -> None:
    ran = [row for row in probed.rows if row.status is ProbeStatus.OK]
    assert [row.batch_size for row in ran] == [8, 16, 32, 64]
    for row in ran:
        assert row.examples_per_s is not None and row.examples_per_s > 0
        assert row.seconds_per_step is not None
        assert row.examples_per_s == pytest.approx(row.batch_size / row.seconds_per_step)
    assert probed.rows[-1] == ProbeRow(
        128, None, None, ProbeStatus.OVER_SIZE_CAP, probed.rows[-1].estimated_bytes
    )
    assert probed.choice == choose_batch_size(probed.rows)


def test_memory_estimate_grows_linearly(probed: BatchProbeResult) -> None:
    estimates = [row.estimated_bytes for row in probed.rows]
    assert all(isinstance(e, int) and e > 0 for e in estimates)
    per_example = (estimates[1] - estimates[0]) // 8
    for row, e, following in zip(probed.rows, estimates, estimates[1:], strict=False):
        assert following - e == row.batch_size * per_example  # each doubling adds b examples
    params = 64 * 64 + 64 + 64 * 10 + 10
    static = estimates[0] - 8 * per_example
    assert static >= 4 * params * 4  # weights, gradients and two AdamW moments, float32
    assert per_example >= 2 * (64 + 10) * 4  # twice the hidden and output activations


def test_memory_cap_stops_before_running_a_size(task: Task, probed: BatchProbeResult) -> None:
    cap = probed.rows[1].estimated_bytes  # 16 fits, 32 does not
    assert cap is not None
    result = probe_batch_size(
        task, task.default_hyperparameters(), max_batch_size=64, memory_cap_bytes=cap, **FAST
    )
    assert [(r.batch_size, r.status) for r in result.rows] == [
        (8, ProbeStatus.OK),
        (16, ProbeStatus.OK),
        (32, ProbeStatus.OVER_MEMORY_CAP),
    ]
    assert result.rows[2].estimated_bytes == probed.rows[2].estimated_bytes
    assert result.rows[2].examples_per_s is None
    assert result.choice.batch_size in (8, 16)


def test_memory_cap_below_the_smallest_size_raises(task: Task) -> None:
    with pytest.raises(NoBatchSizeFitsError, match="batch size 8") as caught:
        probe_batch_size(task, task.default_hyperparameters(), memory_cap_bytes=1, **FAST)
    assert [row.status for row in caught.value.rows] == [ProbeStatus.OVER_MEMORY_CAP]
    copy = pickle.loads(pickle.dumps(caught.value))
    assert copy.rows == caught.value.rows and str(copy) == str(caught.value)


class _FailsAbove(torch.nn.Module):
    """Runs `inner`, but raises a fresh `error()` for batches larger than `limit`."""

    def __init__(self, inner: torch.nn.Module, limit: int, error: Callable[[], Exception]):
        super().__init__()
        self.inner, self.limit, self.error = inner, limit, error

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(x) > self.limit:
            raise self.error()
        return self.inner(x)


class _FailingTask:
    """digits-mlp whose model fails above a batch size, as a real allocator would."""

    def __init__(self, inner: Task, limit: int, error: Callable[[], Exception]) -> None:
        self.inner, self.limit, self.error = inner, limit, error

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def build_model(self, hparams: Mapping[str, Any], generator: torch.Generator):
        return _FailsAbove(self.inner.build_model(hparams, generator), self.limit, self.error)


@pytest.mark.parametrize(
    "error",
    [
        lambda: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        lambda: RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to ..."),
        lambda: MemoryError(),
    ],
)
def test_out_of_memory_ends_the_probe_cleanly(task: Task, error: Callable[[], Exception]) -> None:
    failing: Any = _FailingTask(task, limit=16, error=error)
    result = probe_batch_size(failing, task.default_hyperparameters(), **FAST)
    assert [(r.batch_size, r.status) for r in result.rows] == [
        (8, ProbeStatus.OK),
        (16, ProbeStatus.OK),
        (32, ProbeStatus.OUT_OF_MEMORY),
    ]
    assert result.choice.batch_size in (8, 16)


def test_other_errors_propagate(task: Task) -> None:
    failing: Any = _FailingTask(task, limit=16, error=lambda: RuntimeError("shape mismatch"))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        probe_batch_size(failing, task.default_hyperparameters(), **FAST)


def test_probe_leaves_the_global_rng_alone(task: Task) -> None:
    before = torch.get_rng_state()
    probe_batch_size(task, task.default_hyperparameters(), max_batch_size=8, **FAST)
    assert torch.equal(before, torch.get_rng_state())


def test_schedule_and_optimizer_settings_are_accepted(task: Task) -> None:
    hparams = {
        **task.default_hyperparameters(),
        "optimizer": "sgd_nesterov",
        "schedule": "noam",
        "warmup_steps": 10,
    }
    result = probe_batch_size(task, hparams, max_batch_size=16, **FAST)
    assert [row.status for row in result.rows] == [ProbeStatus.OK] * 2 + [
        ProbeStatus.OVER_SIZE_CAP
    ]
    adamw = probe_batch_size(task, task.default_hyperparameters(), max_batch_size=8, **FAST)
    assert (
        result.rows[0].estimated_bytes < adamw.rows[0].estimated_bytes
    )  # one state slot, not two


def test_sizes_beyond_the_training_set_run(task: Task) -> None:
    n_rows = len(task.data().train_y)
    result = probe_batch_size(
        task, task.default_hyperparameters(), min_batch_size=n_rows + 1, max_batch_size=n_rows + 1
    )
    assert result.rows[0].status is ProbeStatus.OK
    assert result.choice.batch_size == n_rows + 1


def test_large_batches_repeat_rows_evenly() -> None:
    batches = _row_batches(5, 12, torch.Generator().manual_seed(0))
    for _ in range(3):
        counts = torch.bincount(next(batches), minlength=5)
        assert set(counts.tolist()) <= {2, 3} and counts.sum() == 12


def test_small_batches_cover_an_epoch_without_repeats() -> None:
    batches = _row_batches(12, 4, torch.Generator().manual_seed(0))
    epoch = torch.cat([next(batches) for _ in range(3)])
    assert sorted(epoch.tolist()) == list(range(12))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_batch_size": 0}, "min_batch_size=0"),
        ({"min_batch_size": 16, "max_batch_size": 8}, "max_batch_size=8"),
        ({"steps": 0}, "steps=0"),
        ({"warmup_steps": -1}, "warmup_steps=-1"),
        ({"memory_cap_bytes": 0}, "memory_cap_bytes=0"),
        ({"min_gain": float("inf")}, "min_gain=inf"),
        ({"min_batch_size": 8.0}, "min_batch_size=8.0"),
        ({"seed": -1}, "seed=-1"),
    ],
)
def test_probe_rejects_bad_arguments(task: Task, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        probe_batch_size(task, task.default_hyperparameters(), **kwargs)


# --- the table ---------------------------------------------------------------------------


def test_table_lists_every_row_and_the_choice(probed: BatchProbeResult) -> None:
    text = format_probe_table(probed)
    lines = text.splitlines()
    assert len(lines) == 2 + len(probed.rows) + 1
    assert lines[-1] == f"choice: batch size {probed.choice.batch_size} ({probed.choice.reason})"
    for row, line in zip(probed.rows, lines[2:], strict=False):
        assert line.split()[0] == str(row.batch_size)
        assert line.endswith(row.status.describe())
    assert len({len(line) for line in lines[:2]}) == 1


def test_table_of_synthetic_rows() -> None:
    rows = (ok(8, 1000.0), ok(16, 1500.0), stopped(32, ProbeStatus.OUT_OF_MEMORY))
    result = BatchProbeResult(rows, BatchChoice(16, "because"))
    lines = format_probe_table(result).splitlines()
    assert lines[2].split() == ["8", "1,000.0", "8.000", "-", "-", "ok"]
    assert lines[3].split() == ["16", "1,500.0", "10.667", "+50.0%", "-", "ok"]
    assert lines[4].split() == ["32", "-", "-", "-", "-", "out", "of", "memory"]
    assert lines[5] == "choice: batch size 16 (because)"
