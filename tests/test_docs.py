"""The docs hang together without mkdocs installed: every page is in the nav, every link from the README and the
source into docs/ lands on a file and a heading that exist (CI's `mkdocs build --strict` checks the site itself)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def heading_ids(page: Path) -> set[str]:
    """The ids Python-Markdown's toc extension gives the page's headings: `{#id}` where given, else the slug."""
    ids = set()
    in_code = False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or not re.match(r"#{1,6} ", line):
            continue
        explicit = re.search(r"\{#([\w-]+)\}\s*$", line)
        if explicit:
            ids.add(explicit.group(1))
            continue
        text = re.sub(r"[`*]", "", line.lstrip("#").strip())
        ids.add(re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", text).strip().lower()))
    return ids


def nav_pages() -> list[str]:
    """The .md files named in mkdocs.yml's nav (comment lines, such as the pages still to come, left out)."""
    text = (ROOT / "mkdocs.yml").read_text()
    nav = text[text.index("\nnav:") :]
    return [
        m for line in nav.splitlines() if not line.strip().startswith("#") for m in re.findall(r"([\w/-]+\.md)", line)
    ]


def test_every_page_is_in_the_nav_and_every_nav_entry_exists() -> None:
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    listed = nav_pages()
    assert sorted(set(listed) - pages) == [], "mkdocs.yml's nav names pages that do not exist"
    assert sorted(pages - set(listed)) == [], "pages missing from mkdocs.yml's nav (mkdocs build --strict fails too)"


def _links(text: str) -> list[str]:
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("source", ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in DOCS.rglob("*.md"))])
def test_relative_links_land_on_a_file_and_heading(source: str) -> None:
    path = ROOT / source
    for link in _links(path.read_text()):
        if re.match(r"[a-z]+:", link):  # http:, mailto: ...
            continue
        target, _, anchor = link.partition("#")
        page = (path.parent / target).resolve() if target else path
        assert page.exists(), f"{source} links to {link}, which does not exist"
        if anchor and page.suffix == ".md":
            assert anchor in heading_ids(page), f"{source} links to {link}: no heading with that id in {page.name}"


def test_presets_link_to_sections_of_the_experiments_log() -> None:
    source = (ROOT / "src" / "ganforge" / "presets.py").read_text()
    anchors = re.findall(r"docs/experiments\.md#([\w-]+)", source)
    assert anchors, "presets.py no longer links into the experiments log"
    missing = sorted(set(anchors) - heading_ids(DOCS / "experiments.md"))
    assert not missing, f"presets.py links to sections missing from docs/experiments.md: {missing}"


def test_heading_ids_follow_markdowns_slugs(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n```\n# not a heading\n```\n## Limits and bfloat16 (`bench/limit.py`)\n## seed {#seed-x}\n"
    )
    assert heading_ids(page) == {"title", "limits-and-bfloat16-benchlimitpy", "seed-x"}
