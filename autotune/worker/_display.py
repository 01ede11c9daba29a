"""What ``autotune worker`` shows while it runs: one line per trial it finishes and, on a
terminal, a live line under them (its own trials, the campaign's stage, steps and ETA)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
import contextlib
from dataclasses import dataclass
import logging
import threading
import time

from autotune.campaign import Campaign
from autotune.campaign import CampaignStudy
from autotune.report._progress import CampaignSteps
from autotune.report._progress import LinePart
from autotune.report._progress import StepRate
from autotune.report._progress import campaign_steps
from autotune.report._progress import format_duration
from autotune.report._progress import stage_label
from autotune.report._terminal import LiveLine
from autotune.report._terminal import LiveLineHandler
from autotune.worker._outcome import TrialOutcome
from autotune.worker._worker import TrialReport

_logger = logging.getLogger(__name__)

REFRESH_S = 1.0
CAMPAIGN_RELOAD_S = 5.0  # reading every trial of the campaign is not free
SECONDS_SHOWN_AS_SUCH = 100
TENTHS_SHOWN_BELOW = 9.95  # what rounds to 10.0 s reads "10 s"


def format_seconds(seconds: float) -> str:
    """ "0.4 s" or "12 s" for a short trial, "02:05" or "1:02:05" beyond (a small task's
    trials all read "in 0 s")."""
    if seconds < TENTHS_SHOWN_BELOW:
        return f"{seconds:.1f} s"
    if seconds < SECONDS_SHOWN_AS_SUCH:
        return f"{seconds:.0f} s"
    return format_duration(seconds)


def trial_log_line(report: TrialReport) -> str:
    """One finished trial, e.g. "quickstart/joint/2 #3 COMPLETE val_loss=0.083 in 12 s"."""
    value = ""
    if report.value is not None:
        value = f" {report.value_name.replace(' ', '_')}={report.value:.5g}"
    outcome = report.outcome.name
    return (
        f"{report.study} #{report.number} {outcome}{value} in {format_seconds(report.duration_s)}"
    )


@dataclass(frozen=True)
class WorkerView:
    """What the live line of a worker shows."""

    worker_id: str
    label: str
    outcomes: dict[TrialOutcome, int]
    running: str | None  # "#12 for 35 s"
    steps: CampaignSteps | None
    eta_s: float | None


def worker_parts(view: WorkerView) -> list[LinePart]:
    """The live line of a worker, most important first in ``priority``."""
    ran = sum(view.outcomes.values())
    counts = ", ".join(
        f"{count} {outcome.value}" for outcome, count in view.outcomes.items() if count
    )
    mine = f"my trials: {ran}" + (f" ({counts})" if counts else "")
    parts = [
        LinePart(view.label, 10),
        LinePart(mine, 9, short=f"mine {ran}"),
        LinePart(f"worker {view.worker_id}", 2),
    ]
    if view.running is not None:
        parts.append(LinePart(f"running {view.running}", 6))
    if view.steps is not None:
        budget = "" if view.steps.budget is None else f"/{view.steps.budget:,}"
        parts.append(
            LinePart(
                f"campaign steps {view.steps.spent:,}{budget}",
                5,
                short=f"steps {view.steps.spent:,}{budget}",
            )
        )
    eta = format_duration(view.eta_s)
    parts.append(LinePart(f"campaign ETA {eta}", 7, short=f"ETA {eta}"))
    return parts


class WorkerDisplay:
    """The worker's observer: prints each finished trial; on a terminal, keeps a live line
    under them, refreshed by a thread while :meth:`showing`."""

    def __init__(
        self, worker_id: str, line: LiveLine, load: Callable[[], Campaign], campaign: Campaign
    ) -> None:
        self._worker_id = worker_id
        self._line = line
        self._load = load
        self._spec = campaign.spec
        self._lock = threading.Lock()
        self._outcomes: Counter[TrialOutcome] = Counter()
        self._label = stage_label(campaign.spec, campaign.current)
        self._running: tuple[str, int, float] | None = None
        self._steps: CampaignSteps | None = None
        self._rate: StepRate | None = None

    def round_opened(self, study: CampaignStudy) -> None:
        with self._lock:
            self._label = stage_label(self._spec, study)

    def trial_started(self, study: str, number: int) -> None:
        with self._lock:
            self._running = (study, number, time.monotonic())

    def trial_finished(self, report: TrialReport) -> None:
        with self._lock:
            self._outcomes[report.outcome] += 1
            self._running = None
        self._line.print(trial_log_line(report))

    def view(self) -> WorkerView:
        with self._lock:
            running = None
            if self._running is not None:
                _, number, since = self._running
                running = f"#{number} for {format_seconds(time.monotonic() - since)}"
            steps = self._steps
            eta = None
            if steps is not None and self._rate is not None:
                eta = self._rate.eta_seconds(steps.left)
            return WorkerView(
                self._worker_id, self._label, dict(self._outcomes), running, steps, eta
            )

    def _reload(self) -> None:
        try:
            steps = campaign_steps(self._load())
        except Exception as error:  # an outage: the worker says so itself; keep the last
            _logger.debug("progress not refreshed: %s", error)
            return
        now = time.monotonic()
        with self._lock:
            self._steps = steps
            if self._rate is None:
                self._rate = StepRate.start(now, steps.finished)
            else:
                self._rate = self._rate.seen(now, steps.finished)

    @contextlib.contextmanager
    def showing(self) -> Iterator[None]:
        """Refresh the live line in a thread (on a terminal) for the ``with`` block."""
        if not self._line.is_terminal:
            yield
            return
        stop = threading.Event()
        thread = threading.Thread(target=self._refresh, args=(stop,), daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _refresh(self, stop: threading.Event) -> None:
        reloaded = -CAMPAIGN_RELOAD_S
        while True:
            if time.monotonic() - reloaded >= CAMPAIGN_RELOAD_S:
                self._reload()
                reloaded = time.monotonic()
            self._line.show(worker_parts(self.view()), key=None)
            if stop.wait(REFRESH_S):
                return


@contextlib.contextmanager
def logging_through(line: LiveLine) -> Iterator[None]:
    """On a terminal, log records print above the live line with the root handlers' format
    (Optuna's propagate to it), so none breaks the line; elsewhere nothing changes."""
    root = logging.getLogger()
    if not line.is_terminal or not root.handlers:
        yield
        return
    saved = root.handlers[:]
    formatter = saved[0].formatter or logging.Formatter()
    root.handlers = [LiveLineHandler(line, formatter)]
    try:
        yield
    finally:
        root.handlers = saved
