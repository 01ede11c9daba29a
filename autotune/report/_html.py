"""The report as one self-contained HTML page, its Markdown rendered by markdown-it-py.

CommonMark plus GFM pipe tables (the report's stage and parameter tables). Raw HTML in the
Markdown is escaped, never passed through: the report quotes spec names, parameter values
and error messages. Links and images keep their relative paths (the PNGs sit next to
``report.html``); markdown-it refuses ``javascript:``, ``vbscript:``, ``file:`` and
non-image ``data:`` URLs, leaving such a link as plain text.
"""

from __future__ import annotations

import html

from markdown_it import MarkdownIt

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 64rem; margin: 2rem auto;
       padding: 0 1rem; line-height: 1.5; color: #222; }
h1, h2, h3 { line-height: 1.2; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 1rem 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; }
th { background: #f3f3f3; }
tbody tr:nth-child(even) { background: #fafafa; }
code { background: #f3f3f3; padding: 0 0.2rem; border-radius: 3px; }
pre { background: #f3f3f3; padding: 0.8rem; overflow-x: auto; }
pre code { padding: 0; }
img { max-width: 100%; display: block; }
"""


def markdown_to_html(markdown: str, title: str) -> str:
    """A self-contained HTML page (inline CSS, relative image paths) of `markdown`."""
    body = _renderer().render(markdown)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"{body}</body>\n</html>\n"
    )


def _renderer() -> MarkdownIt:
    """CommonMark with tables and raw HTML off (the preset's default lets HTML through)."""
    return MarkdownIt("commonmark", {"html": False}).enable("table")
