"""The digits tasks: an MLP and a small CNN classifying scikit-learn's 8x8 digits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ._classification import KFoldClassificationTask
from ._classification import build_mlp
from ._classification import load_labelled_table
from ._classification import parse_dropout
from ._hparams import check_known
from ._hparams import parse_choice
from ._hparams import parse_int_in
from ._layers import Activation
from ._layers import conv2d
from ._layers import linear

_IMAGE_SIDE = 8
_NUM_PIXELS = _IMAGE_SIDE * _IMAGE_SIDE
_NUM_CLASSES = 10
_FIT_THRESHOLD = 0.05
"""Training cross-entropy at or below which the digits count as fitted: the loss when the
true class gets ~95% probability on average (both default models reach it in ~300 steps)."""


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1797 digits as float32 pixels (0..16, 64 columns) and int64 labels (0..9)."""
    return load_labelled_table("digits.csv.gz")


class _DigitsTask(KFoldClassificationTask):
    """The digits as a k-fold classification task (subclasses add a model).

    Periods are the folds of a seeded, stratified k-fold split of the 1797 digits; the
    default period validates on fold 0 of 5 with seed 0 (an 80/20 split).
    """

    name = "digits"
    summary = "digits classifier"
    fit_threshold: float = _FIT_THRESHOLD
    _num_classes = _NUM_CLASSES
    _statistics_dtype = np.float32
    """Float32 statistics, as the digits tasks always had: float64 would move every
    tuned or recorded digits result by a rounding error."""

    def _load(self) -> tuple[np.ndarray, np.ndarray]:
        """The digits table."""
        return load_digits()


class DigitsMLPTask(_DigitsTask):
    """MLP classifier on the digits (stratified k-fold periods, standardised inputs)."""

    name = "digits-mlp"
    summary = "MLP classifier on the 8x8 digits (1797 images, 10 classes; k-fold periods)"
    model_hyperparameters = frozenset({"hidden_units", "num_layers", "dropout", "activation"})

    def default_hyperparameters(self) -> dict[str, Any]:
        """Small one-hidden-layer ReLU MLP trained with AdamW at 3e-3."""
        return {
            "learning_rate": 3e-3,
            "optimizer": "adamw",
            "hidden_units": 64,
            "num_layers": 1,
            "dropout": 0.0,
            "activation": Activation.RELU.value,
        }

    def build_model(
        self, hparams: Mapping[str, Any], generator: torch.Generator
    ) -> torch.nn.Module:
        """A fresh MLP: num_layers x (Linear, activation, dropout), then Linear to 10."""
        check_known(hparams, self.model_hyperparameters, f"task {self.name!r} model")
        return build_mlp(hparams, generator, _NUM_PIXELS, _NUM_CLASSES, default_hidden=64)


class DigitsCNNTask(_DigitsTask):
    """Small convolutional classifier on the 8x8 digits (same data and periods as the MLP)."""

    name = "digits-cnn"
    summary = "small CNN classifier on the 8x8 digits (1797 images, 10 classes; k-fold periods)"
    model_hyperparameters = frozenset(
        {"channels", "num_conv_layers", "hidden_units", "dropout", "activation"}
    )

    def default_hyperparameters(self) -> dict[str, Any]:
        """Two 16-channel conv layers and a 64-unit ReLU head, AdamW at 3e-3."""
        return {
            "learning_rate": 3e-3,
            "optimizer": "adamw",
            "channels": 16,
            "num_conv_layers": 2,
            "hidden_units": 64,
            "dropout": 0.0,
            "activation": Activation.RELU.value,
        }

    def build_model(
        self, hparams: Mapping[str, Any], generator: torch.Generator
    ) -> torch.nn.Module:
        """num_conv_layers x (3x3 conv, activation, 2x2 max-pool while the side is > 2),
        then Linear to hidden_units, activation, dropout, and Linear to 10."""
        check_known(hparams, self.model_hyperparameters, f"task {self.name!r} model")
        channels = parse_int_in(hparams, "channels", 16)
        depth = parse_int_in(hparams, "num_conv_layers", 2)
        hidden = parse_int_in(hparams, "hidden_units", 64)
        dropout = parse_dropout(hparams)
        activation = parse_choice(hparams, "activation", Activation.RELU, Activation)
        layers: list[torch.nn.Module] = [torch.nn.Unflatten(1, (1, _IMAGE_SIDE, _IMAGE_SIDE))]
        side, channels_in = _IMAGE_SIDE, 1
        for _ in range(depth):
            layers += [conv2d(channels_in, channels, generator), activation.module()]
            if side > 2:
                layers.append(torch.nn.MaxPool2d(2))
                side //= 2
            channels_in = channels
        layers += [torch.nn.Flatten(), linear(channels * side * side, hidden, generator)]
        layers.append(activation.module())
        if dropout > 0.0:
            layers.append(torch.nn.Dropout(dropout))
        layers.append(linear(hidden, _NUM_CLASSES, generator))
        return torch.nn.Sequential(*layers)
