from __future__ import annotations

from pathlib import Path

import autotune.training
from tests.conftest import imported_modules

PACKAGE = Path(autotune.training.__file__).parent


def test_training_imports_only_torch_numpy_and_stdlib() -> None:
    for path in PACKAGE.glob("*.py"):
        for module in imported_modules(path):
            top = module.split(".")[0]
            assert top not in {"optuna", "autotune", "sqlalchemy", "psycopg2"}, (path, module)


def test_public_api_is_exported() -> None:
    for name in autotune.training.__all__:
        assert hasattr(autotune.training, name), name
