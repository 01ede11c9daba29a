"""Summary and status prose wrapped between words for the terminal (issue 15)."""

from __future__ import annotations

from autotune.report._wrap import fitted

VERDICT = (
    "  re-evaluation: quickstart/joint/2 #3 is better than quickstart/joint/2 #0 in 10 of "
    "12 periods, worse in 2; Wilcoxon p=0.0269 (Holm-adjusted 0.0537): not significant at "
    "alpha=0.05"
)


def test_long_lines_break_between_words_and_keep_their_indent() -> None:
    lines = fitted([VERDICT, "short"], 80)
    assert all(len(line) <= 80 for line in lines)
    assert lines[0].startswith("  re-evaluation:") and lines[-1] == "short"
    assert all(line.startswith("    ") for line in lines[1:-1])
    assert " ".join(line.strip() for line in lines[:-1]) == VERDICT.strip()  # no word split


def test_without_a_width_nothing_changes() -> None:
    assert fitted([VERDICT], None) == [VERDICT]


def test_a_word_longer_than_the_line_is_kept_whole() -> None:
    url = "  see " + "x" * 100
    assert fitted([url], 40) == ["  see", "    " + "x" * 100]
