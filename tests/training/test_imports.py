from __future__ import annotations

import ast
from pathlib import Path

import autotune.training

PACKAGE = Path(autotune.training.__file__).parent


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def test_training_imports_only_torch_numpy_and_stdlib() -> None:
    for path in PACKAGE.glob("*.py"):
        for module in imported_modules(path):
            top = module.split(".")[0]
            assert top not in {"optuna", "autotune", "sqlalchemy", "psycopg2"}, (path, module)


def test_public_api_is_exported() -> None:
    for name in autotune.training.__all__:
        assert hasattr(autotune.training, name), name
