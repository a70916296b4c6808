"""The README and docs/ hold together: every relative link points at a file that exists
(and at a heading or anchor that file has), and the README's first screen takes a newcomer
to the server, the admin page, the ``chat`` command and the Python client, whose snippet
runs as written against a real server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import chatmodel
from chatmodel_service.chat_models.service import DEMO_CHAT_MODEL
from tests.support.servers import LiveApp

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FIRST_SCREEN = 45  # lines


def prose(page: Path) -> list[str]:
    """The page's lines outside fenced code blocks, with inline code blanked out."""
    lines, fenced = [], False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(re.sub(r"`[^`]*`", "``", line))
    return lines


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the page's headings (a repeated one gets -1, -2, ...), and
    the explicit ``<a id>`` ones."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in prose(page):
        found.update(re.findall(r'<a id="([^"]+)"></a>', line))
        heading = re.match(r"#{1,6} (.*)", line)
        if heading is None:
            continue
        text = re.sub(r"<[^>]+>", "", heading.group(1)).strip().lower()
        slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        found.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return found


def relative_links(page: Path) -> list[str]:
    return [
        target
        for line in prose(page)
        for target in LINK.findall(line.replace("``", "x"))
        if not re.match(r"[a-z]+:", target)  # http:, https:, mailto:
    ]


def test_there_are_docs_pages_and_links_to_check() -> None:
    readme_links = relative_links(ROOT / "README.md")
    linked = {target.split("#")[0] for target in readme_links}
    assert {page.relative_to(ROOT).as_posix() for page in PAGES[1:]} <= linked
    assert len(PAGES) > 5


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no file {path}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: {file.name} has no heading or anchor #{anchor}")
    assert broken == []


def test_the_first_screen_leads_to_serve_the_admin_page_chat_and_python() -> None:
    first = (ROOT / "README.md").read_text().splitlines()[:FIRST_SCREEN]
    text = "\n".join(first)

    assert ".venv/bin/chatmodel serve" in text
    assert "http://127.0.0.1:8000/admin" in text
    assert f"chatmodel chat {DEMO_CHAT_MODEL}" in text
    assert f'ChatModel("{DEMO_CHAT_MODEL}")' in text and "```python" in text
    assert any(re.match(r"^python3 -m venv \.venv && .*pytest", line) for line in first)


def test_the_quick_start_python_runs_as_written(
    live_app: LiveApp, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    quick_start = (ROOT / "README.md").read_text().split("## Quick start", 1)[1]
    example = quick_start.split("```python\n", 1)[1].split("```", 1)[0]
    chatmodel.configure()
    monkeypatch.setenv("CHATMODEL_BASE_URL", live_app.base_url)

    exec(compile(example, "README.md", "exec"), {})

    assert capsys.readouterr().out == "Hello!\n"


def test_the_docs_speak_of_the_product() -> None:
    """No wording about where the requirements came from: the other APIs are named."""
    for page in PAGES:
        words = " ".join(prose(page)).lower()
        assert re.search(r"\bseeds?\b|\bsamples?\b", words) is None, page.name
