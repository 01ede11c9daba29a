"""Live output: one line rewritten in place on a terminal, plain lines anywhere else.

On a terminal, rich redraws the line at each refresh, fitted to the terminal's width at
that moment (a resized window never gets a wrapped line); messages print above it. When
the output is a pipe or a CI log, there are no control codes: one plain line per change,
at most every ``quiet_interval_s``, and messages as they come.
"""

from __future__ import annotations

from collections.abc import Hashable
from collections.abc import Iterator
from collections.abc import Sequence
import logging
import time
from typing import TextIO

from rich.console import Console
from rich.console import ConsoleOptions
from rich.live import Live
from rich.text import Text

from autotune.report._progress import LinePart
from autotune.report._progress import fit_line

UNLIMITED_WIDTH = 10_000  # a log line keeps every part
QUIET_PRINT_INTERVAL_S = 10.0
ECHO_ROOM = 2  # the terminal echoes Ctrl-C as "^C" after the line: a full one would wrap


class _Fitted:
    """Lines that fit themselves to the width rich offers at each render."""

    def __init__(self, lines: Sequence[Sequence[LinePart]]) -> None:
        self._lines = lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        width = options.max_width - ECHO_ROOM
        text = "\n".join(fit_line(parts, width) for parts in self._lines)
        yield Text(text, no_wrap=True, overflow="crop")


class LiveLine:
    """A status line for the duration of a ``with`` block (see the module's docstring)."""

    def __init__(self, out: TextIO, quiet_interval_s: float = QUIET_PRINT_INTERVAL_S) -> None:
        self._out = out
        self._console = Console(file=out, highlight=False, markup=False, emoji=False)
        self._live: Live | None = None
        self._quiet_interval_s = quiet_interval_s
        self._last_key: Hashable = None
        self._last_at = -quiet_interval_s

    @property
    def is_terminal(self) -> bool:
        return self._console.is_terminal

    def __enter__(self) -> LiveLine:
        if self.is_terminal:
            self._live = Live(
                Text(""),
                console=self._console,
                auto_refresh=False,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def show(
        self,
        parts: Sequence[LinePart],
        key: Hashable,
        above: Sequence[Sequence[LinePart]] = (),
    ) -> None:
        """Redraw the line (under the ``above`` lines, on a terminal only); off a terminal,
        print it when ``key`` changed, not too often."""
        if self._live is not None:
            self._live.update(_Fitted([*above, parts]), refresh=True)
            return
        now = time.monotonic()
        if key != self._last_key and now - self._last_at >= self._quiet_interval_s:
            self.print(fit_line(parts, UNLIMITED_WIDTH))
            self._last_key, self._last_at = key, now

    def print(self, message: str) -> None:
        """A message: above the line on a terminal, a plain line elsewhere."""
        if self._live is not None:
            self._live.console.print(Text(message), soft_wrap=True)
            return
        self._out.write(message + "\n")
        self._out.flush()


class LiveLineHandler(logging.Handler):
    """Log records printed through a LiveLine, formatted by one formatter, so they never
    break the line or mix another format in."""

    def __init__(self, line: LiveLine, formatter: logging.Formatter) -> None:
        super().__init__()
        self._line = line
        self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._line.print(self.format(record))
        except Exception:  # a logging failure must not stop a worker
            self.handleError(record)
