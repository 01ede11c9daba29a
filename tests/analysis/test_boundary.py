from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
import datetime
import math
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
from optuna.trial import create_trial
import pytest

from autotune.analysis._boundary import CategoricalEdge
from autotune.analysis._boundary import ParamBoundary
from autotune.analysis._boundary import can_widen
from autotune.analysis._boundary import carried_over
from autotune.analysis._boundary import check_boundaries
from autotune.analysis._boundary import widen
from autotune.analysis._sweep import BoundarySide
from autotune.spec import Direction

LR = FloatDistribution(1e-4, 1e-1, log=True)
X = FloatDistribution(0.0, 1.0)
MIN = Direction.MINIMIZE


def trials_of(
    name: str, distribution: BaseDistribution, values: list[Any], scores: list[float] | None = None
) -> list[FrozenTrial]:
    """Trials with one parameter; by default the first is best (scores 0, 1, 2, ...)."""
    scores = list(range(len(values))) if scores is None else scores
    made = []
    for number, (value, score) in enumerate(zip(values, scores, strict=True)):
        trial = create_trial(params={name: value}, distributions={name: distribution}, value=score)
        trial.number = number
        made.append(trial)
    return made


def one(records: tuple[ParamBoundary | CategoricalEdge, ...]) -> ParamBoundary:
    (record,) = records
    assert isinstance(record, ParamBoundary)
    return record


# --- check_boundaries: numeric parameters ---------------------------------------------------


def test_a_best_inside_with_runners_up_at_a_bound_is_no_hit_but_says_so() -> None:
    """4 of the top 5 learning rates hugged the lower bound, the best was mid-range: the
    rule asks the best itself to be there, and the message said nothing of the others."""
    trials = trials_of("lr", LR, [3.7e-3, 1.1e-4, 1.05e-4, 1.2e-4, 1.15e-4, 0.05])
    record = one(check_boundaries(trials, {"lr": LR}, MIN))
    assert (record.side, record.hit, record.near_low) == (BoundarySide.NONE, False, 4)
    assert record.message.endswith(
        "; but 4 of the top 5 are within 5% of the lower bound 0.0001: not widened (the best "
        "is not there), look again if the best was luck"
    )
    inside = one(check_boundaries(trials_of("x", X, [0.5, 0.4, 0.6, 0.45, 0.55]), {"x": X}, MIN))
    assert "but" not in inside.message


def test_best_at_upper_bound_linear_is_a_hit() -> None:
    trials = trials_of("x", X, [0.99, 0.97, 0.9, 0.85, 0.5, 0.1])
    record = one(check_boundaries(trials, {"x": X}, MIN))
    assert (record.side, record.hit) == (BoundarySide.HIGH, True)
    assert (record.near_low, record.near_high, record.lean_low, record.lean_high) == (0, 2, 0, 4)
    assert record.top_k == 5 and record.best_value == 0.99
    assert record.distance == pytest.approx(0.01)
    assert (record.low, record.high, record.log) == (0.0, 1.0, False)
    assert record.message == (
        "x: best 0.99 is at the upper bound 1 (2 of the top 5 within 5% of it, 4 within 20%): "
        "widen upward"
    )


def test_best_at_lower_bound_log_is_a_hit() -> None:
    trials = trials_of("lr", LR, [1.1e-4, 1e-4, 1.5e-4, 3e-4, 2e-4])
    record = one(check_boundaries(trials, {"lr": LR}, MIN))
    assert (record.side, record.hit, record.near_low, record.lean_low) == (
        BoundarySide.LOW,
        True,
        2,
        5,
    )
    assert record.distance == pytest.approx(math.log10(1.1) / 3)
    assert "lower bound 0.0001" in record.message and "widen downward" in record.message


def test_positions_are_measured_in_log_space() -> None:
    wide = FloatDistribution(1e-5, 1e-1, log=True)
    near_top_in_log = one(check_boundaries(trials_of("lr", wide, [0.08]), {"lr": wide}, MIN))
    assert near_top_in_log.side is BoundarySide.HIGH  # 0.8 of the span linearly
    assert near_top_in_log.distance == pytest.approx(math.log10(0.1 / 0.08) / 4)
    low_in_linear = FloatDistribution(1e-3, 1.0, log=True)
    inside = one(
        check_boundaries(trials_of("lr", low_in_linear, [2e-3]), {"lr": low_in_linear}, MIN)
    )
    assert inside.side is BoundarySide.NONE  # 0.001 of the span linearly
    assert inside.distance == pytest.approx(math.log10(2) / 3)


def test_int_parameter_at_its_bound() -> None:
    layers = IntDistribution(1, 8)
    trials = trials_of("layers", layers, [8, 8, 7, 8, 7, 2])
    record = one(check_boundaries(trials, {"layers": layers}, MIN))
    assert (record.side, record.hit, record.near_high, record.lean_high) == (
        BoundarySide.HIGH,
        True,
        3,
        5,
    )
    assert record.best_value == 8.0 and record.distance == 0.0


def test_best_inside_is_no_hit() -> None:
    trials = trials_of("lr", LR, [3e-3, 2e-3, 5e-3, 1e-4, 0.1])
    record = one(check_boundaries(trials, {"lr": LR}, MIN))
    assert (record.side, record.hit, record.near_low, record.near_high) == (
        BoundarySide.NONE,
        False,
        1,
        1,
    )
    assert record.message.startswith("lr: best 0.003 is inside [0.0001, 0.1], ")


def test_best_on_a_bound_without_a_leaning_top_k_is_no_hit() -> None:
    trials = trials_of("x", X, [0.98, 0.2, 0.5, 0.9, 0.4, 0.99])
    record = one(check_boundaries(trials, {"x": X}, MIN))
    assert (record.side, record.hit, record.lean_high) == (BoundarySide.HIGH, False, 2)
    assert "too few of the top trials lean toward it" in record.message
    assert "widen" not in record.message


def test_tolerance_and_top_k_options() -> None:
    trials = trials_of("x", X, [0.9, 0.85, 0.95, 0.1])
    assert one(check_boundaries(trials, {"x": X}, MIN)).side is BoundarySide.NONE
    wider = one(check_boundaries(trials, {"x": X}, MIN, top_k=3, tolerance=0.1))
    assert (wider.side, wider.hit, wider.top_k) == (BoundarySide.HIGH, True, 3)


def test_a_single_value_range_is_never_a_hit() -> None:
    fixed = FloatDistribution(0.3, 0.3)
    record = one(check_boundaries(trials_of("x", fixed, [0.3] * 5), {"x": fixed}, MIN))
    assert (record.side, record.hit, record.distance) == (BoundarySide.NONE, False, 0.5)
    assert record.message == "x: best 0.3 is the only value of the range; nothing to check"


def test_ties_go_to_the_earlier_trial() -> None:
    trials = trials_of("x", X, [0.5, 1.0, 0.99, 0.98, 0.97], scores=[1.0, 1.0, 2.0, 3.0, 4.0])
    assert one(check_boundaries(trials, {"x": X}, MIN)).best_value == 0.5
    trials[0].number, trials[1].number = 1, 0
    record = one(check_boundaries(trials, {"x": X}, MIN))
    assert (record.best_value, record.hit) == (1.0, True)


def test_all_pruned_or_failed_gives_no_records() -> None:
    trials = [
        create_trial(state=TrialState.PRUNED, params={"x": 1.0}, distributions={"x": X}),
        create_trial(state=TrialState.FAIL, params={"x": 1.0}, distributions={"x": X}),
        create_trial(value=math.inf, params={"x": 1.0}, distributions={"x": X}),
    ]
    assert check_boundaries(trials, {"x": X}, MIN) == ()
    assert check_boundaries([], {"x": X}, MIN) == ()


def test_fewer_trials_than_top_k() -> None:
    three = one(check_boundaries(trials_of("x", X, [1.0, 1.0, 1.0]), {"x": X}, MIN))
    assert (three.side, three.top_k, three.near_high, three.hit) == (
        BoundarySide.HIGH,
        3,
        3,
        False,
    )
    four = one(check_boundaries(trials_of("x", X, [1.0] * 4), {"x": X}, MIN))
    assert (four.top_k, four.hit) == (4, True)


def test_maximize_reads_the_best_from_the_other_end() -> None:
    trials = trials_of("x", X, [1.0, 0.98, 0.97, 0.99, 0.5, 0.3, 0.01, 0.0, 0.02, 0.03])
    assert one(check_boundaries(trials, {"x": X}, MIN)).side is BoundarySide.HIGH
    record = one(check_boundaries(trials, {"x": X}, Direction.MAXIMIZE))
    assert (record.side, record.hit, record.best_value) == (BoundarySide.LOW, True, 0.03)


def test_records_follow_the_mapping_and_skip_absent_parameters() -> None:
    both = {"x": X, "lr": LR}
    trials = [
        create_trial(params={"lr": 0.1}, distributions={"lr": LR}, value=0.0),
        create_trial(params={"lr": 1e-3, "x": 0.5}, distributions=both, value=1.0),
    ]
    distributions = {"x": X, "unused": X, "lr": LR}
    records = check_boundaries(trials, distributions, MIN)
    assert [(r.name, r.best_value) for r in records] == [("x", 0.5), ("lr", 0.1)]


def test_ordered_categorical_edges() -> None:
    batch = CategoricalDistribution([16, 32, 64, 128])
    trials = trials_of("batch", batch, [128, 128, 64, 128, 128, 16])
    edge = check_boundaries(
        trials, {"batch": batch}, MIN, ordered_categoricals=frozenset({"batch"})
    )
    assert edge == (
        CategoricalEdge(
            "batch",
            (16, 32, 64, 128),
            128,
            BoundarySide.HIGH,
            0,
            4,
            5,
            True,
            "batch: best choice 128 is the last choice (4 of the top 5): add choices after it",
        ),
    )
    first = trials_of("batch", batch, [16, 32, 64])
    (low,) = check_boundaries(
        first, {"batch": batch}, MIN, ordered_categoricals=frozenset({"batch"})
    )
    assert isinstance(low, CategoricalEdge)
    assert (low.side, low.hit, low.near_low) == (BoundarySide.LOW, False, 1)
    middle = trials_of("batch", batch, [32, 128])
    (inner,) = check_boundaries(
        middle, {"batch": batch}, MIN, ordered_categoricals=frozenset({"batch"})
    )
    assert (inner.side, inner.hit) == (BoundarySide.NONE, False)
    assert check_boundaries(trials, {"batch": batch}, MIN) == ()  # unordered: no record


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"top_k": 0}, r"top_k=0 is invalid; allowed: an int >= 1"),
        ({"top_k": True}, r"top_k=True is invalid"),
        ({"tolerance": 0.5}, r"tolerance=0.5 is invalid; allowed: 0 <= tolerance < 0.5"),
        ({"tolerance": math.nan}, r"tolerance=nan is invalid"),
        ({"ordered_categoricals": frozenset({"x"})}, r"ordered_categoricals \['x'\] is invalid"),
    ],
)
def test_invalid_check_options(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        check_boundaries([], {"x": X}, MIN, **options)


def test_invalid_direction() -> None:
    with pytest.raises(ValueError, match=r"direction='minimize' is invalid"):
        check_boundaries(trials_of("x", X, [0.5]), {"x": X}, "minimize")  # type: ignore[arg-type]


# --- widen, can_widen -----------------------------------------------------------------------


def test_widen_log_and_linear() -> None:
    up = widen(LR, BoundarySide.HIGH)
    assert isinstance(up, FloatDistribution) and (up.low, up.log, up.step) == (1e-4, True, None)
    assert up.high == pytest.approx(0.3)
    down = widen(LR, BoundarySide.LOW, log_factor=10.0)
    assert isinstance(down, FloatDistribution) and (down.high, down.log) == (0.1, True)
    assert down.low == pytest.approx(1e-5)
    assert widen(X, BoundarySide.HIGH) == FloatDistribution(0.0, 1.5)
    assert widen(X, BoundarySide.LOW, linear_fraction=0.25) == FloatDistribution(-0.25, 1.0)


def test_widen_clips_to_hard_limits_and_stops_there() -> None:
    dropout = FloatDistribution(0.1, 0.4)
    assert widen(dropout, BoundarySide.LOW, hard_low=0.0) == FloatDistribution(0.0, 0.4)
    stuck = FloatDistribution(0.0, 0.4)
    assert widen(stuck, BoundarySide.LOW, hard_low=0.0) is None
    assert not can_widen(stuck, BoundarySide.LOW, hard_low=0.0)
    assert can_widen(stuck, BoundarySide.HIGH, hard_low=0.0, hard_high=1.0)
    assert widen(LR, BoundarySide.HIGH, hard_high=0.2) == FloatDistribution(1e-4, 0.2, log=True)
    assert widen(LR, BoundarySide.HIGH, hard_high=0.05) is None  # already past the limit
    assert widen(IntDistribution(1, 64, log=True), BoundarySide.LOW) is None  # log ints >= 1
    assert widen(FloatDistribution(0.3, 0.3), BoundarySide.HIGH) is None  # zero linear span


def test_widen_keeps_int_step_and_log() -> None:
    layers = IntDistribution(2, 8, step=2)
    assert widen(layers, BoundarySide.HIGH) == IntDistribution(2, 12, step=2)
    assert widen(layers, BoundarySide.LOW, hard_low=1) is None  # one step would pass 1
    assert widen(layers, BoundarySide.HIGH, hard_high=11) == IntDistribution(2, 10, step=2)
    width = IntDistribution(16, 256, log=True)
    assert widen(width, BoundarySide.HIGH) == IntDistribution(16, 768, log=True)
    assert widen(width, BoundarySide.LOW) == IntDistribution(5, 256, log=True)
    assert widen(IntDistribution(3, 4), BoundarySide.HIGH) == IntDistribution(3, 5)  # >= 1 step


def test_widen_rounds_float_steps_to_the_grid() -> None:
    rate = FloatDistribution(0.1, 0.4, step=0.1)
    wider = widen(rate, BoundarySide.HIGH, linear_fraction=0.4)  # 0.12 -> two steps
    assert wider == FloatDistribution(0.1, 0.6, step=0.1)
    assert widen(rate, BoundarySide.LOW, hard_low=0.0) == FloatDistribution(0.0, 0.4, step=0.1)
    assert widen(rate, BoundarySide.HIGH, hard_high=0.55) == FloatDistribution(0.1, 0.5, step=0.1)


@pytest.mark.parametrize(
    ("distribution", "side", "options", "match"),
    [
        (LR, BoundarySide.HIGH, {"log_factor": 1.0}, r"log_factor=1.0 is invalid; allowed"),
        (LR, BoundarySide.HIGH, {"log_factor": math.inf}, r"log_factor=inf is invalid"),
        (X, BoundarySide.LOW, {"linear_fraction": 0.0}, r"linear_fraction=0.0 is invalid"),
        (X, BoundarySide.LOW, {"hard_low": math.nan}, r"hard_low=nan is invalid"),
        (X, BoundarySide.LOW, {"hard_low": 2.0, "hard_high": 1.0}, r"hard_low < hard_high"),
        (X, BoundarySide.NONE, {}, r"side=<BoundarySide.NONE: 'none'> is invalid"),
        (CategoricalDistribution([1, 2]), BoundarySide.HIGH, {}, r"allowed: FloatDistribution"),
    ],
)
def test_invalid_widen_arguments(
    distribution: Any, side: BoundarySide, options: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        widen(distribution, side, **options)


# --- carried_over ---------------------------------------------------------------------------


def finished_trial(
    lr: float, value: float, state: TrialState = TrialState.COMPLETE
) -> FrozenTrial:
    both = {"lr": LR, "layers": IntDistribution(1, 8)}
    return create_trial(
        state=state,
        value=value if state is TrialState.COMPLETE else None,
        params={"lr": lr, "layers": 3},
        distributions=both,
        user_attrs={"best_step": 40, "curve": [1, 2]},
        system_attrs={"fixed_params": {"lr": lr}},
        intermediate_values={10: value + 1.0, 20: value},
    )


def test_carried_over_copies_a_finished_trial_with_new_distributions() -> None:
    trial = finished_trial(0.1, 0.5)
    trial.datetime_start = datetime.datetime(2024, 1, 1)
    wider = widen(LR, BoundarySide.HIGH)
    assert wider is not None
    copied = carried_over(trial, {"lr": wider, "unused": X})
    assert copied.distributions == {"lr": wider, "layers": IntDistribution(1, 8)}
    assert (copied.params, copied.values, copied.state) == (trial.params, [0.5], trial.state)
    assert copied.intermediate_values == {10: 1.5, 20: 0.5}
    assert copied.user_attrs == trial.user_attrs and copied.system_attrs == {}
    assert copied.user_attrs["curve"] is not trial.user_attrs["curve"]
    assert copied.datetime_start == trial.datetime_start
    assert copied.datetime_complete == trial.datetime_complete
    assert trial.distributions["lr"] == LR  # the original is untouched


def test_carried_over_rejects_bad_input() -> None:
    trial = finished_trial(1e-4, 0.5)
    with pytest.raises(ValueError, match=r"isn't contained in the distribution"):
        carried_over(trial, {"lr": FloatDistribution(1e-3, 0.3, log=True)})
    with pytest.raises(ValueError, match=r"allowed: the same kind and log scale"):
        carried_over(trial, {"lr": FloatDistribution(1e-5, 0.3)})
    with pytest.raises(ValueError, match=r"allowed: the same kind and log scale"):
        carried_over(trial, {"layers": FloatDistribution(1, 8)})
    running = create_trial(state=TrialState.RUNNING, params={"lr": 1e-3}, distributions={"lr": LR})
    with pytest.raises(ValueError, match=r"state=RUNNING cannot be carried over"):
        carried_over(running, {"lr": LR})


def test_carried_trials_feed_tpe_in_a_new_study() -> None:
    rng = np.random.default_rng(0)
    old = [finished_trial(float(lr), float(-math.log10(lr))) for lr in rng.uniform(1e-3, 0.1, 12)]
    old.append(finished_trial(0.05, 0.0, TrialState.PRUNED))
    wider = {"lr": widen(LR, BoundarySide.HIGH), "layers": IntDistribution(1, 8)}
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    study.add_trials([carried_over(t, wider) for t in old])

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 0.3, log=True)
        trial.suggest_int("layers", 1, 8)
        return -math.log10(lr)

    study.optimize(objective, n_trials=3)
    assert len(study.trials) == 16
    assert [t.state for t in study.trials[:13]] == [TrialState.COMPLETE] * 12 + [TrialState.PRUNED]
    assert all(1e-4 <= t.params["lr"] <= 0.3 for t in study.trials[13:])
    assert study.trials[12].intermediate_values == {10: 1.0, 20: 0.0}


# --- synthetic studies: random search, check, widen, continue -------------------------------

TRIALS_PER_STUDY = 100
"""Random search needs about this many for one to land in the top 5% of the range reliably."""
NOISE = 0.02
FACTOR_TOLERANCE = 2.0
"""Success: the best learning rate found is within a factor of 2 of the true optimum."""

Objective = Callable[[Mapping[str, Any]], float]


def sample(rng: np.random.Generator, distribution: BaseDistribution) -> Any:
    if isinstance(distribution, IntDistribution):
        steps = (distribution.high - distribution.low) // distribution.step
        return distribution.low + int(rng.integers(0, steps + 1)) * distribution.step
    assert isinstance(distribution, FloatDistribution)
    if distribution.log:
        return math.exp(rng.uniform(math.log(distribution.low), math.log(distribution.high)))
    return float(rng.uniform(distribution.low, distribution.high))


def random_study(
    rng: np.random.Generator,
    objective: Objective,
    distributions: dict[str, BaseDistribution],
    count: int,
) -> list[FrozenTrial]:
    made = []
    for _ in range(count):
        params = {name: sample(rng, d) for name, d in distributions.items()}
        value = objective(params) + NOISE * float(rng.normal())
        made.append(create_trial(params=params, distributions=distributions, value=value))
    return made


def tune_with_widening(seed: int, optimum: float, widenings: int = 4) -> float:
    """Best learning rate after up to `widenings` rounds of check, widen and continue."""
    rng = np.random.default_rng(seed)
    distributions: dict[str, BaseDistribution] = {"lr": LR, "dropout": FloatDistribution(0, 0.5)}

    def objective(p: Mapping[str, Any]) -> float:
        return (math.log10(p["lr"] / optimum)) ** 2 + 2.0 * (p["dropout"] - 0.2) ** 2

    trials = random_study(rng, objective, distributions, TRIALS_PER_STUDY)
    for _ in range(widenings):
        hits = [r for r in check_boundaries(trials, distributions, MIN) if r.hit]
        if not hits:
            break
        for record in hits:
            wider = widen(distributions[record.name], record.side)  # type: ignore[arg-type]
            distributions[record.name] = wider if wider is not None else distributions[record.name]
        trials = [carried_over(t, distributions) for t in trials]
        trials += random_study(rng, objective, distributions, TRIALS_PER_STUDY)
    return min(trials, key=lambda t: t.values[0]).params["lr"]


@pytest.mark.parametrize("optimum", [1.0, 1e-5])
def test_widening_finds_an_optimum_outside_the_range(optimum: float) -> None:
    seeds = range(50)
    found = [tune_with_widening(seed, optimum) for seed in seeds]
    close = [abs(math.log(lr / optimum)) <= math.log(FACTOR_TOLERANCE) for lr in found]
    assert sum(close) / len(seeds) >= 0.95


def false_alarm(seed: int, count: int = 40) -> bool:
    """Whether any parameter is hit on the first check when every optimum is inside."""
    rng = np.random.default_rng(seed)
    distributions: dict[str, BaseDistribution] = {
        "lr": LR,
        "dropout": FloatDistribution(0.0, 0.5),
        "layers": IntDistribution(1, 8),
        "unused": FloatDistribution(0.0, 1.0),
    }
    lr_opt, dropout_opt = rng.uniform(-3.4, -1.6), rng.uniform(0.1, 0.4)

    def objective(p: Mapping[str, Any]) -> float:
        lr, dropout, layers = math.log10(p["lr"]), p["dropout"], p["layers"]
        return (
            (lr - lr_opt) ** 2 + 2.0 * (dropout - dropout_opt) ** 2 + 0.002 * (layers - 4.5) ** 2
        )

    trials = random_study(rng, objective, distributions, count)
    return any(r.hit for r in check_boundaries(trials, distributions, MIN))


def test_false_alarms_are_rare_when_every_optimum_is_inside() -> None:
    seeds = range(400)
    rate = sum(false_alarm(seed) for seed in seeds) / len(seeds)
    assert rate < 0.05
