"""autotune: tuning service for PyTorch training on Optuna and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from optuna.storages import RDBStorage

from autotune._errors import AutotuneError
from autotune._errors import CampaignExistsError
from autotune._errors import CampaignNotFoundError
from autotune._errors import SpecError
from autotune._errors import StorageError
from autotune.campaign._campaign import BestResult
from autotune.campaign._campaign import Campaign
from autotune.campaign._campaign import TrialRecord
from autotune.spec import load_study_spec
from autotune.storage._open import DEFAULT_STATE_DIR
from autotune.storage._open import open_storage

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


def load(
    name: str, storage: str | RDBStorage | None = None, state_dir: Path = DEFAULT_STATE_DIR
) -> Campaign:
    """The campaign ``name`` from a PostgreSQL URL, an open storage, or the embedded server."""
    from autotune.campaign._campaign import load_campaign

    if not isinstance(storage, RDBStorage):
        storage = open_storage(storage, state_dir=state_dir)
    return load_campaign(name, storage)
