"""The breast-cancer task: an MLP diagnosing tumours from the Wisconsin diagnostic features.

The data is scikit-learn's copy (``sklearn/datasets/data/breast_cancer.csv``, BSD-3-Clause)
of the UCI Breast Cancer Wisconsin (Diagnostic) data set (Wolberg, Street and Mangasarian,
1995; CC BY 4.0 at the UCI repository), shipped as ``data/breast_cancer.csv.gz``: 569 rows
of 30 features and the class (0 malignant, 1 benign), without a header. A small iid tabular
problem whose features differ in scale by five orders of magnitude, so standardisation (with
the training rows' statistics only) and regularisation matter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ._classification import KFoldClassificationTask
from ._classification import build_mlp
from ._classification import load_labelled_table
from ._classification import standardised_split
from ._hparams import check_known
from ._layers import Activation

__all__ = ["CancerMLPTask", "load_breast_cancer", "standardised_split"]

NUM_FEATURES = 30
NUM_CLASSES = 2
_FIT_THRESHOLD = 0.05
"""Training cross-entropy at or below which the 455 training rows count as fitted: the loss
when the true class gets ~95% probability on average (the default model reaches it in ~150
steps at batch size 64: the data is nearly linearly separable)."""


def load_breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    """The 569 tumours as float32 features (30 columns) and int64 labels (0 malignant)."""
    return load_labelled_table("breast_cancer.csv.gz")


class CancerMLPTask(KFoldClassificationTask):
    """MLP classifier on the breast-cancer data (stratified k-fold periods, standardised).

    Periods are the folds of a seeded, stratified k-fold split of the 569 rows; the default
    period validates on fold 0 of 5 with seed 0 (455 training rows, 114 validation rows).
    Its features differ in scale by five orders of magnitude, so the statistics are float64.
    """

    name = "cancer-mlp"
    summary = (
        "MLP classifier on the breast-cancer Wisconsin data "
        "(569 rows, 30 features, 2 classes; k-fold periods)"
    )
    model_hyperparameters = frozenset({"hidden_units", "num_layers", "dropout", "activation"})
    fit_threshold: float = _FIT_THRESHOLD
    _num_classes = NUM_CLASSES
    _statistics_dtype = np.float64

    def _load(self) -> tuple[np.ndarray, np.ndarray]:
        """The breast-cancer table."""
        return load_breast_cancer()

    def default_hyperparameters(self) -> dict[str, Any]:
        """One 16-unit ReLU layer (455 rows are few), AdamW at 3e-3 with its usual weight
        decay of 1e-2; it fits the training rows in ~150 steps at batch size 64."""
        return {
            "learning_rate": 3e-3,
            "optimizer": "adamw",
            "weight_decay": 1e-2,
            "hidden_units": 16,
            "num_layers": 1,
            "dropout": 0.0,
            "activation": Activation.RELU.value,
        }

    def build_model(
        self, hparams: Mapping[str, Any], generator: torch.Generator
    ) -> torch.nn.Module:
        """A fresh MLP: num_layers x (Linear, activation, dropout), then Linear to 2 logits."""
        check_known(hparams, self.model_hyperparameters, f"task {self.name!r} model")
        return build_mlp(hparams, generator, NUM_FEATURES, NUM_CLASSES, default_hidden=16)
