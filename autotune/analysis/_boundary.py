"""Is the best configuration on a bound of the search space? Widen it if so (docs/method.md §6).

A bad search space deceives: if every learning rate tried is too small, the best one sits
on the upper bound and everything tuned around it is wrong. After a stage, every numeric
parameter is checked; a bound that is hit is moved out, and the stage continues in a new
study whose distributions are widened, with the finished trials carried over.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import copy
import dataclasses
from dataclasses import dataclass
import decimal
import math

from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.trial import FrozenTrial
from optuna.trial import create_trial

from autotune.analysis._sweep import BoundarySide
from autotune.analysis._topk import top_k as _ranked
from autotune.spec import Direction

HIT_SHARE = 0.8
"""A hit needs at least this share of the top k (k as asked, not as found) leaning ..."""
LEAN_FACTOR = 4.0
"""... within this many tolerances of the bound the best trial is within tolerance of."""

_NumericDistribution = FloatDistribution | IntDistribution


@dataclass(frozen=True)
class ParamBoundary:
    """Where a numeric parameter's best value lies in its range, and whether a bound is hit.

    Positions are fractions of the span, in log space for log parameters. `side`: the bound
    the best value is within `tolerance` of; `distance`: the best value's distance to the
    nearer bound; `near_low`/`near_high`: top-k trials within `tolerance` of each bound;
    `lean_low`/`lean_high`: top-k trials within LEAN_FACTOR x `tolerance` of each bound;
    `top_k`: how many trials the top k had. `hit`: `side` is a bound and at least
    HIT_SHARE of the k asked for lean toward it.
    """

    name: str
    low: float
    high: float
    log: bool
    best_value: float
    side: BoundarySide
    distance: float
    near_low: int
    near_high: int
    lean_low: int
    lean_high: int
    top_k: int
    hit: bool
    message: str


@dataclass(frozen=True)
class CategoricalEdge:
    """Whether an ordered categorical's best choice is its first (LOW) or last (HIGH) one.

    `near_low`/`near_high`: top-k trials with the first/last choice. `hit`: `side` is an
    edge and at least HIT_SHARE of the k asked for chose it. An edge cannot be widened
    automatically: the message asks for more choices.
    """

    name: str
    choices: tuple[object, ...]
    best_choice: object
    side: BoundarySide
    near_low: int
    near_high: int
    top_k: int
    hit: bool
    message: str


def check_boundaries(
    trials: Sequence[FrozenTrial],
    distributions: Mapping[str, BaseDistribution],
    direction: Direction,
    *,
    top_k: int = 5,
    tolerance: float = 0.05,
    ordered_categoricals: frozenset[str] = frozenset(),
) -> tuple[ParamBoundary | CategoricalEdge, ...]:
    """One record per parameter of `distributions`, in its order.

    Only COMPLETE trials with a finite value count; each parameter is judged on the best
    `top_k` of those that have it (parameters no such trial has are skipped). Float and
    int parameters give a ParamBoundary, categoricals named in `ordered_categoricals` a
    CategoricalEdge; unordered categoricals give no record (their choices have no bounds).
    """
    _check_options(distributions, top_k, tolerance, ordered_categoricals)
    ranked = _ranked(trials, max(len(trials), 1), direction)
    records: list[ParamBoundary | CategoricalEdge] = []
    for name, distribution in distributions.items():
        if isinstance(distribution, CategoricalDistribution):
            if name in ordered_categoricals:
                indices = _choice_indices(ranked, name, distribution)[:top_k]
                if indices:
                    records.append(_categorical_edge(name, distribution, indices, top_k))
            continue
        values = [float(t.params[name]) for t in ranked if name in t.params][:top_k]
        if values:
            records.append(_param_boundary(name, distribution, values, top_k, tolerance))
    return tuple(records)


def widen(
    distribution: FloatDistribution | IntDistribution,
    side: BoundarySide,
    *,
    log_factor: float = 3.0,
    linear_fraction: float = 0.5,
    hard_low: float | None = None,
    hard_high: float | None = None,
) -> FloatDistribution | IntDistribution | None:
    """`distribution` with its `side` bound moved out; None when that bound cannot move.

    Log: the upper bound is multiplied, the lower divided, by `log_factor`. Linear: the
    bound moves by `linear_fraction` of the span. The move is clipped to `hard_low` /
    `hard_high` (and to 1 for log ints), then rounded to whole steps for stepped
    distributions (up to at least one step, or down where rounding up passes the limit);
    type, log and step are kept. None: the bound is at (or past) its limit, or a linear
    float distribution without a step has a zero span.
    """
    _check_widen_args(distribution, side, log_factor, linear_fraction, hard_low, hard_high)
    up = side is BoundarySide.HIGH
    bound = distribution.high if up else distribution.low
    if distribution.log:
        target = bound * log_factor if up else bound / log_factor
    else:
        move = linear_fraction * (distribution.high - distribution.low)
        target = bound + move if up else bound - move
    limit = hard_high if up else hard_low
    if not up and isinstance(distribution, IntDistribution) and distribution.log:
        limit = 1 if limit is None else max(limit, 1)
    if limit is not None:
        target = min(target, limit) if up else max(target, limit)
    new_bound = _on_step_grid(distribution, bound, target, limit)
    if (new_bound <= bound) if up else (new_bound >= bound):
        return None
    low, high = (distribution.low, new_bound) if up else (new_bound, distribution.high)
    return type(distribution)(low, high, log=distribution.log, step=distribution.step)


def can_widen(
    distribution: FloatDistribution | IntDistribution,
    side: BoundarySide,
    *,
    hard_low: float | None = None,
    hard_high: float | None = None,
) -> bool:
    """Whether `widen` can move `side` of `distribution` out within the hard limits."""
    return widen(distribution, side, hard_low=hard_low, hard_high=hard_high) is not None


def carried_over(trial: FrozenTrial, distributions: Mapping[str, BaseDistribution]) -> FrozenTrial:
    """A copy of finished `trial` for `study.add_trial` in the widened study.

    Each parameter gets its distribution from `distributions` (the trial's own where that
    has none); the same kind and log scale is required and the value must lie inside.
    State, values, params, intermediate values, user attrs and start/complete times are
    kept; system attrs are dropped; number and trial id are unset (-1) as for a new trial.
    """
    if not trial.state.is_finished():
        raise ValueError(
            f"trial {trial.number} state={trial.state.name} cannot be carried over; "
            "allowed: a finished trial (COMPLETE, PRUNED or FAIL)"
        )
    new = {
        name: _compatible(name, old, distributions.get(name, old))
        for name, old in trial.distributions.items()
    }
    copied = create_trial(
        state=trial.state,
        values=trial.values,
        params=dict(trial.params),
        distributions=new,
        user_attrs=copy.deepcopy(trial.user_attrs),
        intermediate_values=dict(trial.intermediate_values),
    )
    copied.datetime_start = trial.datetime_start
    copied.datetime_complete = trial.datetime_complete
    return copied


def _param_boundary(
    name: str,
    distribution: FloatDistribution | IntDistribution,
    values: Sequence[float],
    top_k: int,
    tolerance: float,
) -> ParamBoundary:
    positions = [_position(v, distribution) for v in values]
    zone = min(0.5, LEAN_FACTOR * tolerance)
    near = (sum(p <= tolerance for p in positions), sum(p >= 1 - tolerance for p in positions))
    lean = (sum(p <= zone for p in positions), sum(p >= 1 - zone for p in positions))
    best = positions[0]
    side = BoundarySide.NONE
    if distribution.low < distribution.high:
        side = _side(best <= tolerance, best >= 1 - tolerance)
    leaning = {BoundarySide.LOW: lean[0], BoundarySide.HIGH: lean[1]}.get(side, 0)
    hit = leaning >= _needed(top_k)
    record = ParamBoundary(
        name,
        float(distribution.low),
        float(distribution.high),
        distribution.log,
        values[0],
        side,
        min(best, 1 - best),
        *near,
        *lean,
        len(values),
        hit,
        "",
    )
    return dataclasses.replace(record, message=_numeric_message(record, tolerance, zone))


def _categorical_edge(
    name: str, distribution: CategoricalDistribution, indices: Sequence[int], top_k: int
) -> CategoricalEdge:
    last = len(distribution.choices) - 1
    near_low, near_high = sum(i == 0 for i in indices), sum(i == last for i in indices)
    side = _side(indices[0] == 0, indices[0] == last) if last > 0 else BoundarySide.NONE
    count = {BoundarySide.LOW: near_low, BoundarySide.HIGH: near_high}.get(side, 0)
    hit = count >= _needed(top_k)
    best = distribution.choices[indices[0]]
    if side is BoundarySide.NONE:
        message = f"{name}: best choice {best!r} is not an end of the ordered choices"
    else:
        end, beyond = ("first", "before") if side is BoundarySide.LOW else ("last", "after")
        shown = f"best choice {best!r} is the {end} choice ({count} of the top {len(indices)})"
        advice = f"add choices {beyond} it" if hit else "not treated as a bound hit"
        message = f"{name}: {shown}: {advice}"
    choices = tuple(distribution.choices)
    return CategoricalEdge(
        name, choices, best, side, near_low, near_high, len(indices), hit, message
    )


def _numeric_message(record: ParamBoundary, tolerance: float, zone: float) -> str:
    head = f"{record.name}: best {record.best_value:g}"
    if record.low == record.high:
        return f"{head} is the only value of the range; nothing to check"
    if record.side is BoundarySide.NONE:
        inside = (
            f"{head} is inside [{record.low:g}, {record.high:g}], "
            f"{record.distance:.0%} of the span from the nearer bound"
        )
        return inside + _crowded_note(record, tolerance)
    upper = record.side is BoundarySide.HIGH
    end, bound = ("upper", record.high) if upper else ("lower", record.low)
    near, lean = (
        (record.near_high, record.lean_high) if upper else (record.near_low, record.lean_low)
    )
    counts = (
        f"{near} of the top {record.top_k} within {tolerance * 100:g}% of it, "
        f"{lean} within {zone * 100:g}%"
    )
    if record.hit:
        way = "upward" if upper else "downward"
        return f"{head} is at the {end} bound {bound:g} ({counts}): widen {way}"
    return (
        f"{head} is near the {end} bound {bound:g} ({counts}): too few of the top trials "
        "lean toward it to call it a bound hit"
    )


def _crowded_note(record: ParamBoundary, tolerance: float) -> str:
    """A best inside the range whose runners-up crowd a bound: not a hit (the rule asks the
    best itself to be there), but where to look if the best was luck."""
    crowded = [
        (count, end, bound)
        for count, end, bound in (
            (record.near_low, "lower", record.low),
            (record.near_high, "upper", record.high),
        )
        if count > record.top_k // 2
    ]
    if not crowded:
        return ""
    count, end, bound = crowded[0]
    return (
        f"; but {count} of the top {record.top_k} are within {tolerance * 100:g}% of the "
        f"{end} bound {bound:g}: not widened (the best is not there), look again if the "
        "best was luck"
    )


def _position(value: float, distribution: FloatDistribution | IntDistribution) -> float:
    """Where `value` lies in the range, 0 (low) to 1 (high), clipped; log-aware."""
    low, high = float(distribution.low), float(distribution.high)
    if low == high:
        return 0.5
    if distribution.log:
        value, low, high = math.log(max(value, low)), math.log(low), math.log(high)
    return min(max((value - low) / (high - low), 0.0), 1.0)


def _choice_indices(
    ranked: Sequence[FrozenTrial], name: str, distribution: CategoricalDistribution
) -> list[int]:
    """Choice indices of the ranked trials that have `name` with one of the choices."""
    indices = []
    for trial in ranked:
        if name in trial.params:
            try:
                indices.append(int(distribution.to_internal_repr(trial.params[name])))
            except ValueError:
                continue
    return indices


def _side(at_low: bool, at_high: bool) -> BoundarySide:
    if at_low:
        return BoundarySide.LOW
    return BoundarySide.HIGH if at_high else BoundarySide.NONE


def _needed(top_k: int) -> int:
    return max(1, math.ceil(HIT_SHARE * top_k - 1e-9))


def _on_step_grid(
    distribution: FloatDistribution | IntDistribution,
    bound: float,
    target: float,
    limit: float | None,
) -> float:
    """`target` moved to a whole number (>= 1) of steps from `bound`, within `limit`."""
    if distribution.step is None:
        return target
    exact = decimal.Decimal
    step, start = exact(str(distribution.step)), exact(str(bound))
    steps = abs(exact(str(target)) - start) / step
    count = max(1, math.ceil(steps))
    sign = 1 if target >= bound else -1
    moved = start + sign * count * step
    if limit is not None and abs(moved - start) > abs(exact(str(limit)) - start):
        moved = start + sign * math.floor(abs(exact(str(limit)) - start) / step) * step
    return int(moved) if isinstance(distribution, IntDistribution) else float(moved)


def _compatible(name: str, old: BaseDistribution, new: BaseDistribution) -> BaseDistribution:
    same_log = getattr(old, "log", False) == getattr(new, "log", False)
    if type(old) is not type(new) or not same_log:
        raise ValueError(
            f"distribution {new!r} for parameter {name!r} is invalid; allowed: the same "
            f"kind and log scale as the trial's {old!r}"
        )
    return new


def _check_options(
    distributions: Mapping[str, BaseDistribution],
    top_k: int,
    tolerance: float,
    ordered_categoricals: frozenset[str],
) -> None:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k={top_k!r} is invalid; allowed: an int >= 1")
    if not (_finite(tolerance) and 0 <= tolerance < 0.5):
        raise ValueError(f"tolerance={tolerance!r} is invalid; allowed: 0 <= tolerance < 0.5")
    for name, distribution in distributions.items():
        if not isinstance(distribution, _NumericDistribution | CategoricalDistribution):
            raise ValueError(
                f"distribution {distribution!r} for {name!r} is invalid; allowed: "
                "FloatDistribution, IntDistribution, CategoricalDistribution"
            )
    categorical = {n for n, d in distributions.items() if isinstance(d, CategoricalDistribution)}
    if unknown := sorted(set(ordered_categoricals) - categorical):
        raise ValueError(
            f"ordered_categoricals {unknown} is invalid; allowed: names of categorical "
            f"parameters in distributions {sorted(categorical)}"
        )


def _check_widen_args(
    distribution: object,
    side: BoundarySide,
    log_factor: float,
    linear_fraction: float,
    hard_low: float | None,
    hard_high: float | None,
) -> None:
    if not isinstance(distribution, _NumericDistribution):
        raise ValueError(
            f"distribution {distribution!r} is invalid; allowed: FloatDistribution or "
            "IntDistribution"
        )
    if side not in (BoundarySide.LOW, BoundarySide.HIGH):
        raise ValueError(f"side={side!r} is invalid; allowed: BoundarySide.LOW or HIGH")
    if not (_finite(log_factor) and log_factor > 1):
        raise ValueError(f"log_factor={log_factor!r} is invalid; allowed: a finite float > 1")
    if not (_finite(linear_fraction) and linear_fraction > 0):
        raise ValueError(
            f"linear_fraction={linear_fraction!r} is invalid; allowed: a finite float > 0"
        )
    for label, limit in (("hard_low", hard_low), ("hard_high", hard_high)):
        if limit is not None and not _finite(limit):
            raise ValueError(f"{label}={limit!r} is invalid; allowed: None or a finite float")
    if hard_low is not None and hard_high is not None and hard_low >= hard_high:
        raise ValueError(
            f"hard_low={hard_low!r}, hard_high={hard_high!r} are invalid; allowed: "
            "hard_low < hard_high"
        )


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
