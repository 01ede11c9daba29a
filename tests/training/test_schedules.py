from __future__ import annotations

import pytest

from autotune.training import Schedule
from autotune.training import learning_rate_at
from autotune.training import warmup_steps

BASE = 0.2


def lr(step: int, schedule: Schedule, total: int = 100, warmup: float = 0.0) -> float:
    return learning_rate_at(step, BASE, total, schedule, warmup)


@pytest.mark.parametrize("step", [0, 1, 50, 99, 100])
def test_constant_is_base_everywhere(step: int) -> None:
    assert lr(step, Schedule.CONSTANT) == BASE


def test_constant_with_warmup() -> None:
    # W = 10 warmup updates: base * (step + 1) / 10, then the base rate.
    assert lr(0, Schedule.CONSTANT, warmup=0.1) == pytest.approx(0.02)
    assert lr(4, Schedule.CONSTANT, warmup=0.1) == pytest.approx(0.1)
    assert lr(9, Schedule.CONSTANT, warmup=0.1) == pytest.approx(0.2)
    assert lr(10, Schedule.CONSTANT, warmup=0.1) == pytest.approx(0.2)
    assert lr(99, Schedule.CONSTANT, warmup=0.1) == pytest.approx(0.2)


def test_cosine_without_warmup() -> None:
    assert lr(0, Schedule.COSINE) == pytest.approx(0.2)
    assert lr(25, Schedule.COSINE) == pytest.approx(0.2 * 0.5 * (1 + 0.7071067811865476))
    assert lr(50, Schedule.COSINE) == pytest.approx(0.1)
    assert lr(99, Schedule.COSINE) == pytest.approx(0.2 * 0.5 * (1 - 0.9995065603657316))
    assert lr(100, Schedule.COSINE) == pytest.approx(0.0, abs=1e-12)


def test_cosine_with_warmup() -> None:
    # total 50, W = 10: warmup to the base at step 9, cosine from step 10 over 40 steps.
    assert lr(0, Schedule.COSINE, total=50, warmup=0.2) == pytest.approx(0.02)
    assert lr(4, Schedule.COSINE, total=50, warmup=0.2) == pytest.approx(0.1)
    assert lr(9, Schedule.COSINE, total=50, warmup=0.2) == pytest.approx(0.2)
    assert lr(10, Schedule.COSINE, total=50, warmup=0.2) == pytest.approx(0.2)
    assert lr(30, Schedule.COSINE, total=50, warmup=0.2) == pytest.approx(0.1)
    assert lr(50, Schedule.COSINE, total=50, warmup=0.2) == pytest.approx(0.0, abs=1e-12)


def test_cosine_is_monotone_after_warmup() -> None:
    values = [lr(step, Schedule.COSINE, warmup=0.1) for step in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


def test_warmup_steps_floor() -> None:
    assert warmup_steps(100, 0.0) == 0
    assert warmup_steps(10, 0.15) == 1
    assert warmup_steps(10, 0.999) == 9


@pytest.mark.parametrize("step", [-1, 101])
def test_step_out_of_range(step: int) -> None:
    with pytest.raises(ValueError, match=r"step=.*0 <= step <= 100"):
        lr(step, Schedule.CONSTANT)


def test_warmup_fraction_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"warmup_fraction=1.0.*\[0, 1\)"):
        lr(0, Schedule.CONSTANT, warmup=1.0)
