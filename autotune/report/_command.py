"""How a printed hint names a command, so that it runs as printed where it is read.

The ``autotune`` and ``optuna-dashboard`` scripts are installed next to the interpreter in
the virtual environment, which is often not on PATH (``make run`` activates nothing): a bare
``autotune dashboard`` then fails with "command not found".
"""

from __future__ import annotations

from pathlib import PurePath
import shlex


def runnable_command(
    name: str,
    *,
    on_path: bool,
    script: PurePath | None,
    cwd: PurePath,
    python: PurePath,
    module: str | None = None,
) -> str:
    """How to call ``name`` from ``cwd``: the bare name where PATH finds it; else the
    installed ``script`` (relative to ``cwd`` when it lies inside); else ``python -m
    module``; else the bare name, the best there is."""
    if on_path:
        return name
    if script is not None:
        return shlex.quote(_shown(script, cwd))
    if module is not None:
        return f"{shlex.quote(_shown(python, cwd))} -m {module}"
    return name


def _shown(path: PurePath, cwd: PurePath) -> str:
    """``path`` relative to ``cwd`` when inside it (with a slash, so a shell runs it as a
    path, not a PATH lookup), else as given."""
    if not path.is_relative_to(cwd):
        return str(path)
    relative = path.relative_to(cwd).as_posix()
    return relative if "/" in relative else f"./{relative}"
