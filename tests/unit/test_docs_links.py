"""The documentation's relative links resolve: README.md and docs/*.md, files and `#anchors`.

Every markdown link or image `[text](target)`, reference definition `[ref]: target` and HTML
`<img src=...>` / `<a href=...>` whose target is relative (not http(s)://, mailto: and the like) must
name a file or folder that exists relative to the markdown file; a `#anchor` into a markdown file
(or `(#anchor)` into the same file) must be the GitHub slug of one of its headings. README.md stays
short: the details live in docs/.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[2]
README_MAX_LINES = 320

FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target "title") and ![alt](target); the text may hold one level of brackets (an image in a link)
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^\s)]+)(?:\s+[\"'(][^)]*)?\s*\)")
REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HTML_TARGET = re.compile(r"<(?:img|a|source)\b[^>]*?\b(?:src|href|srcset)\s*=\s*[\"']([^\"']+)[\"']", re.I)
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+[^>]*\b(?:name|id)\s*=\s*[\"']([^\"']+)[\"']", re.I)
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.I)  # http:, https:, mailto:, ftp:, //host


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def prose_lines(text: str) -> list[str]:
    """The file's lines with fenced code blocks blanked and inline code spans removed."""
    lines, fence = [], None
    for line in text.splitlines():
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)[0] * 3
            lines.append("")
        elif fence is not None:
            if line.strip().startswith(fence):
                fence = None
            lines.append("")
        else:
            lines.append(INLINE_CODE.sub("", line))
    return lines


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lowercase, punctuation but `-` and `_` removed,
    spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link or image keeps its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.strip().lower()
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if char in "-_ " or category[0] in "LN" or category == "Mn":
            kept.append(char)
    return "".join(kept).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor a markdown file offers: its headings' slugs (repeats get -1, -2, ...) and HTML ids."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    raw_lines = path.read_text(encoding="utf-8").splitlines()
    fence = None
    for line in raw_lines:
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)[0] * 3
            continue
        if fence is not None:
            if line.strip().startswith(fence):
                fence = None
            continue
        found.update(HTML_ANCHOR.findall(line))
        heading = HEADING.match(line)
        if heading:
            slug = github_slug(heading.group(2))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def targets(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link, image and reference definition outside code."""
    found = []
    for number, line in enumerate(prose_lines(path.read_text(encoding="utf-8")), start=1):
        for pattern in (INLINE_LINK, REFERENCE_DEF, HTML_TARGET):
            for match in pattern.finditer(line):
                target = match.group(1).strip()
                if target.startswith("<") and target.endswith(">"):
                    target = target[1:-1]
                found.append((number, target))
    return found


def broken_links() -> list[str]:
    broken = []
    anchor_cache: dict[Path, set[str]] = {}
    for source in markdown_files():
        shown = source.relative_to(ROOT)
        for number, target in targets(source):
            if not target or EXTERNAL.match(target):
                continue
            file_part, _, anchor = target.partition("#")
            file_part = unquote(file_part.split("?", 1)[0])
            where = (source.parent / file_part).resolve() if file_part else source
            if file_part and not where.exists():
                broken.append(f"{shown}:{number}: {target} -> no such file {file_part}")
                continue
            if not anchor or where.suffix.lower() != ".md" or where.is_dir():
                continue
            if where not in anchor_cache:
                anchor_cache[where] = anchors(where)
            if unquote(anchor).lower() not in anchor_cache[where]:
                broken.append(f"{shown}:{number}: {target} -> no heading with anchor #{anchor}")
    return broken


def test_github_slug():
    assert github_slug("Which strategy? The four regimes") == "which-strategy-the-four-regimes"
    assert github_slug("`ftcli advise`: which strategy fits this data?") == (
        "ftcli-advise-which-strategy-fits-this-data"
    )
    assert github_slug("Beyond one machine: Optuna search, SLURM through submitit, multi-node DDP") == (
        "beyond-one-machine-optuna-search-slurm-through-submitit-multi-node-ddp"
    )
    assert (
        github_slug("The early-epoch dip of `full` and `gradual`")
        == "the-early-epoch-dip-of-full-and-gradual"
    )
    assert github_slug("SLURM: `hydra/launcher=slurm`") == "slurm-hydralauncherslurm"
    assert github_slug("lp_ft and [gradual](x.md)") == "lp_ft-and-gradual"


def test_the_checker_finds_links(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n## Title\n\n[a](other.md#nowhere) ![b](pic.png) [c](#title-1) [d](https://example.com)\n"
        "`[not](a-link.md)`\n\n```\n[not](either.md)\n```\n<img src='img.png' width=10>\n[r]: ref.md\n"
    )
    assert targets(page) == [
        (5, "other.md#nowhere"),
        (5, "pic.png"),
        (5, "#title-1"),
        (5, "https://example.com"),
        (11, "img.png"),
        (12, "ref.md"),
    ]
    assert anchors(page) == {"title", "title-1"}


def test_relative_links_resolve():
    broken = broken_links()
    assert not broken, f"{len(broken)} broken link(s) in README.md or docs/*.md:\n" + "\n".join(broken)


def test_readme_is_short():
    lines = len((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines (at most {README_MAX_LINES}): move details into a page under docs/"
    )
