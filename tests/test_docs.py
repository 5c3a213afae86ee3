"""The Markdown pages link to what exists: every relative link of README.md and docs/*.md names a file of the
repository, and a link to a heading (`page.md#anchor`) names a heading of that page (GitHub's anchors:
dm2_repro.figures.report.anchor, a repeated heading's anchor suffixed -1, -2, ...)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from dm2_repro.figures.report import anchor

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")          # [text](target)
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for line in FENCE.sub("", page.read_text()).splitlines():
        m = re.match(r"#{1,6} (.+)", line)
        if not m:
            continue
        base = anchor(m.group(1).strip())
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(page: Path) -> list[str]:
    return [t for t in LINK.findall(FENCE.sub("", page.read_text())) if not re.match(r"[a-z]+:", t)]


def test_anchors_of_repeated_headings_are_numbered(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("# A b\n```\n# not a heading\n```\n## A b\n### C: `d`\n")
    assert anchors(page) == {"a-b", "a-b-1", "c-d"}
    page.write_text("see [x](p.md#a-b) and [y](https://example.org/z) and [w](q.md)\n")
    assert links(page) == ["p.md#a-b", "q.md"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_names_a_file_and_heading_that_exist(page):
    broken = []
    for target in links(page):
        path, _, fragment = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{page.name}: {broken}"
