"""``autotune status NAME --watch``: follow a campaign that workers anywhere run, live."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import time
from typing import TextIO

from autotune.campaign import Campaign
from autotune.campaign import CampaignStudy
from autotune.campaign import Stage
from autotune.report._progress import LinePart
from autotune.report._progress import campaign_finished
from autotune.report._progress import format_best
from autotune.report._progress import live_parts
from autotune.report._progress import live_state
from autotune.report._progress import stage_label
from autotune.report._terminal import LiveLine


def study_parts(campaign: Campaign, study: CampaignStudy) -> list[LinePart]:
    """One study's row in the watch view."""
    p = campaign.progress(study)
    counts = f"{p.complete} complete, {p.pruned} pruned"
    counts += f", {p.failed} failed" if p.failed else ""
    counts += f", {p.interrupted} interrupted" if p.interrupted else ""
    counts += f", {p.running} running" if p.running else ""
    parts = [
        LinePart(stage_label(campaign.spec, study), 10),
        LinePart(f"{p.trials_text} trials", 9),
        LinePart(counts, 4, short=f"{p.running} running" if p.running else None),
    ]
    if study.stage is not Stage.REEVALUATION and p.best_value is not None:
        best = format_best(p, campaign.value_name(study))
        parts.append(LinePart(best, 7, short=f"best {p.best_value:.4g}"))
    return parts


def watch_campaign(
    load: Callable[[], Campaign],
    out: TextIO,
    interval_s: float,
    heading: Callable[[Campaign], Sequence[LinePart]],
) -> Campaign | None:
    """Show the campaign until it finishes (returned, to print its status) or Ctrl-C (None).

    A terminal gets a heading, a line per study and the live line, redrawn every
    ``interval_s``; a pipe gets the live line when it changes.
    """
    started, rate = time.monotonic(), None
    with LiveLine(out, quiet_interval_s=interval_s) as line:
        try:
            while True:
                campaign = load()
                state, rate = live_state(campaign, time.monotonic(), started, rate)
                rows = [heading(campaign), *(study_parts(campaign, s) for s in campaign.studies)]
                p = state.progress
                key = (campaign.current.name, p.complete, p.pruned, p.failed)
                line.show(live_parts(state), key, above=rows)
                if campaign_finished(campaign):
                    return campaign
                time.sleep(interval_s)
        except KeyboardInterrupt:
            return None
