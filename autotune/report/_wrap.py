"""Prose fitted to the terminal: wrapped at words, continuation lines indented.

A terminal hard-wraps a long line mid-word at its last column, so the summary and status
sentences read "not signi / ficant"; wrapped here they break between words and keep their
indentation. Piped output is left alone: one line per sentence is what grep wants.
"""

from __future__ import annotations

from collections.abc import Iterable
import textwrap

CONTINUATION = "  "  # continuation lines sit this much deeper than their first line


def fitted(lines: Iterable[str], width: int | None) -> list[str]:
    """``lines`` wrapped to ``width`` columns (None: unchanged)."""
    if width is None:
        return list(lines)
    out: list[str] = []
    for line in lines:
        if len(line) <= width:
            out.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip(" "))]
        out.extend(
            textwrap.wrap(
                line.strip(),
                width,
                initial_indent=indent,
                subsequent_indent=indent + CONTINUATION,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return out
