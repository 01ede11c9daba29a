"""A failed run's traceback as stored on its trial, for ``autotune logs``."""

from __future__ import annotations

import traceback

# The end of a traceback holds the raising frame; the user attribute stays small.
TRACEBACK_CHARS = 8000


def traceback_tail(error: BaseException, limit: int = TRACEBACK_CHARS) -> str:
    """The formatted traceback of ``error``, cut to its last ``limit`` characters."""
    text = "".join(traceback.format_exception(error))
    return text if len(text) <= limit else "...\n" + text[-limit:]
