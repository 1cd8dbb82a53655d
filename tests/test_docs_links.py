"""Every relative link in the project's Markdown points at something that exists.

The README is a front door and the reference lives in docs/: a page renamed or a
heading reworded must not leave a link pointing nowhere.  Links are checked the
way GitHub renders them: a relative path from the linking file, and an anchor
that is the slug of a heading in the target (or in the same file).
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent

DOCUMENTS = sorted(
    {
        ROOT / "README.md",
        ROOT / "ARCHITECTURE.md",
        ROOT / "bench" / "README.md",
        ROOT / "deploy" / "README.md",
        *(ROOT / "docs").glob("*.md"),
    }
)

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+).+?\1")
# [text](target "title") and ![alt](target); the text may hold one level of brackets.
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:, ...


def prose_lines(text: str) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, with their numbers."""
    lines = []
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        opening = FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)[0] * 3
            continue
        if fence is not None:
            if line.lstrip().startswith(fence):
                fence = None
            continue
        lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = text.replace("`", "").strip().lower()
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if char in "-_" or category[0] in "LN" or category == "Mn":
            kept.append(char)
        elif char == " ":
            kept.append("-")
    return "".join(kept)


def anchors(path: Path) -> set[str]:
    """Every anchor a reader can link to in ``path``, duplicates numbered as GitHub does."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        found.update(HTML_ANCHOR.findall(line))
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link in ``path`` outside code."""
    found = []
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        definition = REFERENCE_DEFINITION.match(line)
        if definition:
            found.append((number, definition.group(1)))
            continue
        prose = INLINE_CODE.sub("", line)
        found.extend((number, target) for target in INLINE_LINK.findall(prose))
    return found


def broken_links(path: Path) -> list[str]:
    problems = []
    for number, target in links(path):
        where = f"{path.relative_to(ROOT)}:{number}: {target}"
        if not target:
            problems.append(f"{where}: empty link")
            continue
        if EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not destination.exists():
            problems.append(f"{where}: no such file")
            continue
        if not destination.is_relative_to(ROOT):
            problems.append(f"{where}: points outside the repository")
            continue
        if anchor:
            if destination.suffix != ".md":
                problems.append(f"{where}: an anchor into a file that is not Markdown")
            elif unquote(anchor) not in anchors(destination):
                problems.append(f"{where}: no heading with this anchor in {destination.relative_to(ROOT)}")
    return problems


def test_the_documents_exist():
    missing = [str(p.relative_to(ROOT)) for p in DOCUMENTS if not p.exists()]
    assert not missing
    assert ROOT / "docs" / "README.md" in DOCUMENTS


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path):
    assert broken_links(path) == []


def test_every_docs_page_is_in_the_table_of_contents():
    contents = {target.partition("#")[0] for _, target in links(ROOT / "docs" / "README.md")}
    pages = {p.name for p in (ROOT / "docs").glob("*.md")} - {"README.md"}
    assert sorted(pages - contents) == []


# The checker itself, on small documents, so a test that finds nothing is not
# a checker that sees nothing.


def test_slugs_follow_githubs_rules():
    assert slug("The JavaScript client: `static/sse.js`") == "the-javascript-client-staticssejs"
    assert slug("`POST /api/chat`") == "post-apichat"
    assert slug("Unreachable Redis: limit locally, do not fail closed") == (
        "unreachable-redis-limit-locally-do-not-fail-closed"
    )
    assert slug("Several instances, not `--workers N`") == "several-instances-not---workers-n"
    assert slug("Fallback and cool-down") == "fallback-and-cool-down"


def test_the_checker_finds_a_missing_file_a_missing_anchor_and_ignores_code(tmp_path: Path, monkeypatch):
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    (tmp_path / "other.md").write_text("# Other page\n\n## A part\n\n## A part\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n"
        "[fine](other.md) [fine too](other.md#a-part) [second of two](other.md#a-part-1) [here](#page)\n"
        "[gone](missing.md) [no heading](other.md#nowhere) [web](https://example.com/x.md)\n"
        "`[in code](missing-in-code.md)`\n\n"
        "```\n[in a fence](missing-in-fence.md)\n```\n\n"
        "[ref]: also-missing.md\n"
    )
    assert broken_links(page) == [
        "page.md:4: missing.md: no such file",
        "page.md:4: other.md#nowhere: no heading with this anchor in other.md",
        "page.md:11: also-missing.md: no such file",
    ]
