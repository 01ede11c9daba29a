"""The method document's references resolve: README links, its own links, code comments.

docs/method.md numbers its sections so the README and docstrings can cite a rule; a renamed or
renumbered heading would leave those citations pointing nowhere without this test.
"""

from __future__ import annotations

import re

from tests.conftest import REPO_ROOT

METHOD = REPO_ROOT / "docs" / "method.md"
LINK = re.compile(r"\]\((?:docs/method\.md)?#([^)\s]+)\)")
CODE_CITATION = re.compile(r"docs/method\.md §(\d+)")


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def method_sections() -> dict[int, str]:
    """Section number -> anchor of every '## N. Title' heading."""
    sections = {}
    for line in METHOD.read_text().splitlines():
        if match := re.match(r"## (\d+)\. ", line):
            sections[int(match.group(1))] = github_anchor(line[3:])
    return sections


def test_sections_are_numbered_in_order() -> None:
    assert list(method_sections()) == list(range(1, len(method_sections()) + 1))


def test_links_to_method_sections_resolve() -> None:
    anchors = set(method_sections().values())
    readme_links = LINK.findall((REPO_ROOT / "README.md").read_text())
    own_links = LINK.findall(METHOD.read_text())
    assert readme_links, "the README links to the method's sections"
    broken = sorted({a for a in readme_links + own_links if a not in anchors})
    assert broken == []


def test_link_numbers_match_their_sections() -> None:
    """'[method §3](docs/method.md#3-...)': the number shown is the section linked."""
    text = (REPO_ROOT / "README.md").read_text() + METHOD.read_text()
    shown = re.findall(r"\[(?:method )?§(\d+)\]\((?:docs/method\.md)?#(\d+)-", text)
    assert shown
    assert [(a, b) for a, b in shown if a != b] == []


def test_code_citations_name_existing_sections() -> None:
    sections = method_sections()
    cited = {
        (path.relative_to(REPO_ROOT).as_posix(), int(number))
        for path in (REPO_ROOT / "autotune").rglob("*.py")
        for number in CODE_CITATION.findall(path.read_text())
    }
    assert cited
    assert sorted((path, n) for path, n in cited if n not in sections) == []


def test_no_citation_of_the_old_method_file() -> None:
    """'METHOD §n' cited a file the repository does not have."""
    files = [REPO_ROOT / "README.md", *(REPO_ROOT / "autotune").rglob("*.py")]
    stale = [f.relative_to(REPO_ROOT).as_posix() for f in files if "METHOD §" in f.read_text()]
    assert stale == []
