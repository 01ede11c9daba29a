"""A storage's name on disk: where files about its campaigns go, apart from other storages'."""

from __future__ import annotations

import hashlib
from pathlib import Path
import re

import sqlalchemy
from sqlalchemy.engine import make_url

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
DEFAULT_PORT = 5432


def storage_key(url: str) -> str:
    """ "HOST-PORT-DATABASE" of a PostgreSQL URL, safe as a directory name; the password,
    user and options do not enter it (the same database under two roles is one storage).
    A unix-socket URL names its socket directory; an unparsable one a hash of itself."""
    try:
        parsed = make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        return "storage-" + hashlib.sha256(url.encode()).hexdigest()[:12]
    socket = parsed.query.get("host")
    host = parsed.host or (socket if isinstance(socket, str) else None) or "localhost"
    parts = [host.strip("/"), str(parsed.port or DEFAULT_PORT), parsed.database or "postgres"]
    return "-".join(_UNSAFE.sub("_", part) for part in parts)


def report_subdirectory(url: str | None, campaign: str) -> Path:
    """A campaign's report directory under STATE_DIR/reports: NAME for the embedded server
    (``url`` None), STORAGE_KEY/NAME for any other, so that campaigns of one name in two
    storages do not overwrite each other's report."""
    return Path(campaign) if url is None else Path(storage_key(url)) / campaign
