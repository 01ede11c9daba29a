"""Layers initialised from an explicit torch.Generator (PyTorch's default init schemes).

Each constructor runs under a forked global RNG, so the caller's RNG state is untouched,
and its parameters are then redrawn from the generator.
"""

from __future__ import annotations

import enum
import math

import torch


class Activation(enum.Enum):
    """Hidden-layer nonlinearity."""

    RELU = "relu"
    TANH = "tanh"
    GELU = "gelu"

    def module(self) -> torch.nn.Module:
        """A fresh module computing this activation."""
        modules = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "gelu": torch.nn.GELU}
        return modules[self.value]()


def _default_init(layer: torch.nn.Module, generator: torch.Generator) -> torch.nn.Module:
    """PyTorch's Linear/Conv init (kaiming_uniform a=sqrt(5), bias U(+-1/sqrt(fan_in)))."""
    with torch.no_grad():
        torch.nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
        bound = 1.0 / math.sqrt(layer.weight[0].numel())
        layer.bias.uniform_(-bound, bound, generator=generator)
    return layer


def linear(n_in: int, n_out: int, generator: torch.Generator) -> torch.nn.Linear:
    """A Linear layer with PyTorch's default init, drawn from `generator` only."""
    with torch.random.fork_rng(devices=[]):  # the constructor's own init is overwritten
        layer = torch.nn.Linear(n_in, n_out)
    return _default_init(layer, generator)


def conv2d(channels_in: int, channels_out: int, generator: torch.Generator) -> torch.nn.Conv2d:
    """A 3x3 'same' Conv2d with PyTorch's default init, drawn from `generator` only."""
    with torch.random.fork_rng(devices=[]):  # the constructor's own init is overwritten
        conv = torch.nn.Conv2d(channels_in, channels_out, kernel_size=3, padding=1)
    return _default_init(conv, generator)


def recurrent(
    module_type: type[torch.nn.RNNBase],
    n_in: int,
    hidden: int,
    num_layers: int,
    dropout: float,
    generator: torch.Generator,
) -> torch.nn.RNNBase:
    """A batch-first LSTM/GRU with PyTorch's default init U(+-1/sqrt(hidden)) from `generator`."""
    with torch.random.fork_rng(devices=[]):  # the constructor's own init is overwritten
        rnn = module_type(n_in, hidden, num_layers=num_layers, dropout=dropout, batch_first=True)
    bound = 1.0 / math.sqrt(hidden)
    with torch.no_grad():
        for parameter in rnn.parameters():
            parameter.uniform_(-bound, bound, generator=generator)
    return rnn
