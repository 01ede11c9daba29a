"""The report's HTML page: markdown-it renders the report's Markdown, escaping raw HTML."""

from __future__ import annotations

from html.parser import HTMLParser

from autotune.report._html import markdown_to_html


class _Tags(HTMLParser):
    """The start tags (with attributes) and the text of a page, as a browser parses them."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def names(self) -> list[str]:
        return [tag for tag, _ in self.tags]


def test_the_page_is_self_contained_with_an_escaped_title() -> None:
    page = markdown_to_html("# Report\n", "autotune: a & <b>")
    assert page.startswith("<!DOCTYPE html>\n")
    assert "<title>autotune: a &amp; &lt;b&gt;</title>" in page
    assert "<style>" in page and "<link" not in page and "<script" not in page
    assert page.rstrip().endswith("</body>\n</html>")


def test_headings_keep_their_level() -> None:
    page = markdown_to_html("# Campaign\n\n## round 1\n\n### Table\n", "t")
    assert "<h1>Campaign</h1>\n<h2>round 1</h2>\n<h3>Table</h3>" in page


def test_a_pipe_table_becomes_a_table_with_alignment_and_inline_markup() -> None:
    markdown = (
        "| stage | steps | best |\n"
        "| --- | ---: | :---: |\n"
        "| round 1 | 150 | `0.065` |\n"
        "| a \\| b | **600** | 0.05 |\n"
    )
    page = markdown_to_html(markdown, "t")
    assert "<table>\n<thead>\n<tr>\n<th>stage</th>\n" in page
    assert '<th style="text-align:right">steps</th>' in page
    assert '<th style="text-align:center">best</th>' in page
    assert '<td style="text-align:right">150</td>' in page
    assert '<td style="text-align:center"><code>0.065</code></td>' in page
    assert "<td>a | b</td>" in page
    assert '<td style="text-align:right"><strong>600</strong></td>' in page
    assert _Tags(page).names().count("tr") == 3


def test_images_keep_their_relative_paths() -> None:
    page = markdown_to_html("![trial funnel](funnel.png)\n\n![curves](plots/curves.png)\n", "t")
    images = [attrs for tag, attrs in _Tags(page).tags if tag == "img"]
    assert images == [
        {"src": "funnel.png", "alt": "trial funnel"},
        {"src": "plots/curves.png", "alt": "curves"},
    ]


def test_code_spans_and_fenced_blocks_are_escaped_code() -> None:
    markdown = "Parameters: `lr=1e-3, a<b`\n\n```python\nx = 1 < 2 & 3\n```\n"
    page = markdown_to_html(markdown, "t")
    assert "<code>lr=1e-3, a&lt;b</code>" in page
    assert '<pre><code class="language-python">x = 1 &lt; 2 &amp; 3\n</code></pre>' in page


def test_lists_links_and_bold_render() -> None:
    markdown = "- Best: **0.054** ([docs](https://example.org/a?b=1&c=2))\n- second\n"
    page = markdown_to_html(markdown, "t")
    assert "<ul>\n<li>Best: <strong>0.054</strong> " in page
    assert '<a href="https://example.org/a?b=1&amp;c=2">docs</a>' in page
    assert "<li>second</li>" in page


def test_html_in_the_markdown_is_escaped_not_run() -> None:
    markdown = (
        "# Spec <script>alert(1)</script>\n\n"
        "error: <script>alert(2)</script> in <b>text</b>\n\n"
        "<div onclick=alert(3)>raw block</div>\n\n"
        "| name |\n| --- |\n| <img src=x onerror=alert(4)> |\n\n"
        "[bad](javascript:alert(5)) ![bad](javascript:alert(6))\n"
    )
    parsed = _Tags(markdown_to_html(markdown, "<script>alert(0)</script>"))
    assert not {"script", "b", "div", "img"} & set(parsed.names())
    assert all(not key.startswith("on") for _, attrs in parsed.tags for key in attrs)
    hrefs = [attrs.get("href") or attrs.get("src") or "" for _, attrs in parsed.tags]
    assert not any(ref.lower().startswith("javascript:") for ref in hrefs)
    text = "".join(parsed.text)
    assert "<script>alert(1)</script>" in text and "<script>alert(2)</script>" in text
    assert "<div onclick=alert(3)>raw block</div>" in text
    assert "<img src=x onerror=alert(4)>" in text
