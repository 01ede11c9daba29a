"""A study's progress in words: the live line and the status table."""

from __future__ import annotations

from autotune.campaign import Campaign
from autotune.campaign import CampaignStudy
from autotune.campaign import Progress
from autotune.campaign import Stage


def eta_seconds(progress: Progress, elapsed_s: float) -> float | None:
    """Remaining time at the rate so far; None before the first finished trial."""
    done = progress.complete + progress.pruned
    if done == 0 or elapsed_s <= 0:
        return None
    return max(progress.budget - done, 0) * elapsed_s / done


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def format_best(progress: Progress, metric: str) -> str:
    if progress.best_value is None:
        return f"best {metric} —"
    if progress.best_number is None:  # a re-evaluation: the answer's mean over its runs
        return f"answer's mean {metric} {progress.best_value:.5g}"
    return f"best {metric} {progress.best_value:.5g} (trial {progress.best_number})"


def progress_line(progress: Progress, metric: str, elapsed_s: float) -> str:
    """One line: trials done/total, pruned, best so far, elapsed and ETA."""
    done = progress.complete + progress.pruned
    return (
        f"[{done:>3}/{progress.budget} trials] complete {progress.complete} · "
        f"pruned {progress.pruned} · failed {progress.failed} · running {progress.running} · "
        f"{format_best(progress, metric)} · elapsed {format_duration(elapsed_s)} · "
        f"ETA {format_duration(eta_seconds(progress, elapsed_s))}"
    )


def progress_table(rows: list[tuple[str, Progress]], metric: str) -> str:
    """A fixed-width table, one row per study."""
    header = ("study", "done/budget", "complete", "pruned", "failed", "running", "waiting")
    lines = [(*header, f"best {metric}")]
    for name, p in rows:
        best = "—" if p.best_value is None else f"{p.best_value:.5g}"
        best += "" if p.best_number is None else f" (#{p.best_number})"
        lines.append(
            (
                name,
                f"{p.complete + p.pruned}/{p.budget}",
                str(p.complete),
                str(p.pruned),
                str(p.failed),
                str(p.running),
                str(p.waiting),
                best,
            )
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in lines
    )


def campaign_progress_line(
    campaign: Campaign, study: CampaignStudy, progress: Progress, elapsed_s: float
) -> str:
    """The live line of a local run: the current study's label, then its progress."""
    label = study.label
    if study.stage is Stage.JOINT:
        label += f"/{len(campaign.spec.rounds)}"
    line = f"{label} " + progress_line(progress, campaign.value_name(study), elapsed_s)
    budget = campaign.spec.budget
    if budget is None:
        return line
    return f"{line} · steps {campaign.steps_spent():,}/{budget.steps:,}"
