"""autotune: tuning service for PyTorch training on Optuna and PostgreSQL.

The public names are imported on first use (PEP 562), so ``import autotune`` loads neither
torch nor Optuna nor SQLAlchemy: querying a campaign needs no training code.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from autotune._errors import AutotuneError
from autotune._errors import CampaignExistsError
from autotune._errors import CampaignNotFoundError
from autotune._errors import SpecError
from autotune._errors import StorageError

if TYPE_CHECKING:
    from optuna.storages import RDBStorage

    from autotune.campaign import BestResult
    from autotune.campaign import Campaign
    from autotune.campaign import TrialRecord
    from autotune.storage import open_storage
    from autotune.worker._task_checks import load_checked_study_spec as load_study_spec

__all__ = [
    "AutotuneError",
    "BestResult",
    "Campaign",
    "CampaignExistsError",
    "CampaignNotFoundError",
    "SpecError",
    "StorageError",
    "TrialRecord",
    "load",
    "load_study_spec",
    "open_storage",
]

_LAZY: dict[str, tuple[str, str]] = {
    "BestResult": ("autotune.campaign._campaign", "BestResult"),
    "Campaign": ("autotune.campaign._campaign", "Campaign"),
    "TrialRecord": ("autotune.campaign._campaign", "TrialRecord"),
    # checked against its task: a spec a user loads is one a worker can run
    "load_study_spec": ("autotune.worker._task_checks", "load_checked_study_spec"),
    "open_storage": ("autotune.storage", "open_storage"),
}
"""Public name -> (module, attribute), imported when first asked for."""


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'autotune' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    return getattr(importlib.import_module(module), attribute)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def load(
    name: str, storage: str | RDBStorage | None = None, state_dir: str | Path | None = None
) -> Campaign:
    """The campaign ``name`` from a PostgreSQL URL, an open storage, or the embedded server
    (``state_dir``, a path or a string: where ``autotune run --state-dir`` kept it).

    Needs neither torch nor the campaign's task code: the stored spec is read, not re-checked.
    Raises CampaignNotFoundError, naming the directory, where ``state_dir`` holds no
    embedded server: one made there would hold nothing (a wrong directory made a 47 MB
    empty one).
    """
    from optuna.storages import RDBStorage

    from autotune._errors import CampaignNotFoundError
    from autotune.campaign import load_campaign
    from autotune.storage import DEFAULT_STATE_DIR
    from autotune.storage import open_storage
    from autotune.storage._open import embedded_exists

    if not isinstance(storage, RDBStorage):
        directory = DEFAULT_STATE_DIR if state_dir is None else Path(state_dir)
        if storage is None and not embedded_exists(directory):
            raise CampaignNotFoundError(
                f"no campaign {name!r}: there is no embedded PostgreSQL in "
                f"{directory.resolve()}/ (`autotune run` and `autotune create` make it in the "
                "directory they run in); pass state_dir= where they ran, or storage=URL"
            )
        storage = open_storage(storage, state_dir=directory)
    return load_campaign(name, storage)
