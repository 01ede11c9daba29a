"""A recurrent next-steps forecaster (LSTM or GRU) for univariate series."""

from __future__ import annotations

from collections.abc import Mapping
import enum
from typing import Any

import torch

from ._hparams import parse_choice
from ._hparams import parse_float_in
from ._hparams import parse_int_in
from ._layers import linear
from ._layers import recurrent


class RecurrentCell(enum.Enum):
    """The recurrent layer type."""

    LSTM = "lstm"
    GRU = "gru"

    @property
    def module_type(self) -> type[torch.nn.RNNBase]:
        """The torch.nn class of this cell."""
        return torch.nn.LSTM if self is RecurrentCell.LSTM else torch.nn.GRU


class RecurrentForecaster(torch.nn.Module):
    """Predicts the next `horizon` values of a series from its last `context` values.

    Input (batch, window, 1) with window >= context; output (batch, horizon). The
    network sees the context relative to its last value and predicts offsets from that
    value, so a level shift (the series' trend) changes nothing but the offset.
    """

    def __init__(
        self, rnn: torch.nn.RNNBase, head: torch.nn.Linear, dropout: float, context: int
    ) -> None:
        super().__init__()
        self.rnn, self.head, self.context = rnn, head, context
        self.dropout = torch.nn.Dropout(dropout)

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        context = window[:, -self.context :, :]
        last = context[:, -1, :]
        hidden, _ = self.rnn(context - last.unsqueeze(1))
        return last + self.head(self.dropout(hidden[:, -1, :]))


def build_forecaster(
    hparams: Mapping[str, Any],
    max_context: int,
    horizon: int,
    generator: torch.Generator,
) -> RecurrentForecaster:
    """Parse cell, hidden_units, num_layers, dropout and context_weeks; build the model."""
    cell = parse_choice(hparams, "cell", RecurrentCell.LSTM, RecurrentCell)
    hidden = parse_int_in(hparams, "hidden_units", 32)
    depth = parse_int_in(hparams, "num_layers", 1)
    dropout = parse_float_in(hparams, "dropout", 0.0)
    context = parse_int_in(hparams, "context_weeks", min(52, max_context))
    if context > max_context:
        raise ValueError(
            f"invalid hyperparameter context_weeks={context!r}; "
            f"allowed: an int in [2, {max_context}] (the task's max_context_weeks)"
        )
    inner_dropout = dropout if depth > 1 else 0.0
    rnn = recurrent(cell.module_type, 1, hidden, depth, inner_dropout, generator)
    return RecurrentForecaster(rnn, linear(hidden, horizon, generator), dropout, context)
