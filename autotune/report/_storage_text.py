"""The storage in words: where a campaign is, and how to point another command at it."""

from __future__ import annotations

from pathlib import Path

from autotune.storage import mask_password

STORAGE_ENV = "AUTOTUNE_STORAGE"
ELSEWHERE = f"another storage: --storage URL or {STORAGE_ENV}=URL"


def storage_label(url: str | None, state_dir: Path) -> str:
    """The storage as a person names it: the embedded server's directory, else the URL
    with its password masked (never the embedded server's socket URL)."""
    if url is None:
        return f"embedded PostgreSQL in {state_dir}/"
    return mask_password(url)


def has_password(url: str) -> bool:
    """Whether printing the URL would need its password masked (and so not work pasted)."""
    return mask_password(url) != url


def no_embedded_storage(state_dir: Path) -> str:
    """Why a reader found nothing to read: no embedded server here (it creates none)."""
    return (
        f"no campaigns here: there is no embedded PostgreSQL in {state_dir.resolve()}/ "
        "(`autotune run` and `autotune create` make it in the directory they run in); run "
        f"this where you ran them, or --state-dir DIR, or {ELSEWHERE}"
    )


def worker_hint(
    autotune: str,
    campaign: str,
    url: str | None,
    env_url: str | None,
    state_dir: Path,
    default_state_dir: Path,
) -> str:
    """How to start a worker for a created campaign, as a command that works pasted: the
    URL only when it holds no password, nothing when AUTOTUNE_STORAGE names it already."""
    command = f"{autotune} worker {campaign}"
    if url is None:
        state = "" if state_dir == default_state_dir else f" --state-dir {state_dir}"
        return f"start workers on this machine with: {command}{state}"
    if env_url and url == env_url:
        return f"start workers with: {command}   (on each machine with {STORAGE_ENV} set)"
    if not has_password(url):
        return f"start workers with: {command} --storage '{url}'"
    return (
        f"start workers with: {command}   (on each machine, first set {STORAGE_ENV} to "
        "this storage's URL, with its password)"
    )
