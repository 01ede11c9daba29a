from __future__ import annotations

import pytest
import torch

from autotune.training._ema import ExponentialMovingAverage
from autotune.training._ema import ema_rate


def test_dynamic_rate_matches_opennmt() -> None:
    # 1 - min(decay, (1 + step) / (10 + step))
    assert ema_rate(0, 0.9999) == pytest.approx(1 - 1 / 10)
    assert ema_rate(1, 0.9999) == pytest.approx(1 - 2 / 11)
    assert ema_rate(90, 0.9999) == pytest.approx(1 - 91 / 100)
    assert ema_rate(5, 0.3) == pytest.approx(1 - 0.3)  # decay below (1 + s) / (10 + s)
    assert ema_rate(10**6, 0.9999) == pytest.approx(1e-4)  # the ramp has reached decay


def test_fixed_rate() -> None:
    assert ema_rate(1, 0.9, dynamic=False) == pytest.approx(0.1)
    assert ema_rate(10**6, 0.9, dynamic=False) == pytest.approx(0.1)


def linear(weight: list[float], bias: float) -> torch.nn.Linear:
    layer = torch.nn.Linear(2, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([weight]))
        layer.bias.fill_(bias)
    return layer


def set_weights(layer: torch.nn.Linear, weight: list[float], bias: float) -> None:
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([weight]))
        layer.bias.fill_(bias)


def test_fixed_rate_updates_by_hand() -> None:
    model = linear([1.0, 2.0], 0.0)
    ema = ExponentialMovingAverage(model, decay=0.5, dynamic=False)  # rate 0.5
    set_weights(model, [3.0, 6.0], 4.0)
    ema.update(step=1)
    shadow = ema.state_dict()
    assert shadow["weight"].tolist() == [[2.0, 4.0]]  # 1 - (1 - 3) * 0.5, 2 - (2 - 6) * 0.5
    assert shadow["bias"].tolist() == [2.0]
    ema.update(step=2)  # the model still holds [3, 6], 4
    assert ema.state_dict()["weight"].tolist() == [[2.5, 5.0]]
    assert ema.state_dict()["bias"].tolist() == [3.0]


def test_dynamic_updates_by_hand() -> None:
    model = linear([0.0, 11.0], 22.0)
    ema = ExponentialMovingAverage(model, decay=0.9999)
    set_weights(model, [11.0, 0.0], 0.0)
    ema.update(step=1)  # rate 1 - 2/11 = 9/11
    torch.testing.assert_close(ema.state_dict()["weight"], torch.tensor([[9.0, 2.0]]))
    torch.testing.assert_close(ema.state_dict()["bias"], torch.tensor([4.0]))
    ema.update(step=2)  # rate 1 - 3/12 = 3/4: 9 + (11 - 9) * 3/4, 2 - 2 * 3/4, 4 - 4 * 3/4
    torch.testing.assert_close(ema.state_dict()["weight"], torch.tensor([[10.5, 0.5]]))
    torch.testing.assert_close(ema.state_dict()["bias"], torch.tensor([1.0]))


def test_shadow_is_independent_of_the_model() -> None:
    model = linear([1.0, 2.0], 3.0)
    ema = ExponentialMovingAverage(model, decay=0.9, dynamic=False)
    set_weights(model, [5.0, 5.0], 5.0)
    assert ema.state_dict()["weight"].tolist() == [[1.0, 2.0]]


def test_applied_swaps_parameters_not_buffers() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    ema = ExponentialMovingAverage(model, decay=0.5, dynamic=False)
    assert set(ema.state_dict()) == {"0.weight", "0.bias", "1.weight", "1.bias"}
    raw = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
        model[1].running_mean.fill_(7.0)
    ema.update(step=1)
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    with ema.applied():
        inside = model.state_dict()
        torch.testing.assert_close(inside["0.weight"], raw["0.weight"] + 0.5)
        assert inside["1.running_mean"].tolist() == [7.0, 7.0]
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, trained[name]), name


def test_applied_restores_after_an_exception() -> None:
    model = linear([1.0, 2.0], 3.0)
    ema = ExponentialMovingAverage(model, decay=0.5)
    set_weights(model, [9.0, 9.0], 9.0)
    with pytest.raises(RuntimeError), ema.applied():
        raise RuntimeError("evaluation failed")
    assert model.weight.tolist() == [[9.0, 9.0]]


def test_state_dict_round_trip() -> None:
    model = linear([1.0, 2.0], 3.0)
    ema = ExponentialMovingAverage(model, decay=0.5, dynamic=False)
    set_weights(model, [3.0, 4.0], 5.0)
    ema.update(step=1)
    state = {k: v.clone() for k, v in ema.state_dict().items()}
    other = ExponentialMovingAverage(linear([0.0, 0.0], 0.0), decay=0.5, dynamic=False)
    other.load_state_dict(state)
    assert all(torch.equal(other.state_dict()[k], v) for k, v in state.items())
    with pytest.raises(ValueError, match=r"'weight'.*allowed: exactly \['bias', 'weight'\]"):
        other.load_state_dict({"weight": state["weight"]})


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5])
def test_invalid_decay(decay: float) -> None:
    with pytest.raises(ValueError, match=rf"decay={decay}.*\(0, 1\)"):
        ExponentialMovingAverage(linear([0.0, 0.0], 0.0), decay=decay)
