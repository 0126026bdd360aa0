"""The structure the book promises its readers (issue 29).

Every chapter ends with a references section that cites the paper, and keeps its answers in an answers
section, folded in HTML ``<details>`` blocks so that they stay closed on GitHub, nbviewer, VS Code and
JupyterLab alike. The notation page exists, defines the book's symbols and has a glossary, and chapter 00
links to it. No chapter cites a file readers do not have.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

CHAPTERS = Path(__file__).resolve().parent.parent / "chapters"
NOTEBOOKS = sorted(CHAPTERS.glob("[0-9][0-9]_*.ipynb"))
HEADING = re.compile(r"^(#{1,6})\s+(.*)$", re.MULTILINE)
DETAILS = re.compile(r"<details>\s*<summary>.*?</summary>(.*?)</details>", re.DOTALL)


def markdown_cells(path: Path) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]


def sections(path: Path) -> list[tuple[str, str]]:
    """The chapter's markdown split at its level-2 headings: [(heading title, text up to the next one)]."""
    text = "\n\n".join(markdown_cells(path))
    starts = [m for m in HEADING.finditer(text) if len(m.group(1)) == 2]
    return [
        (m.group(2).strip(), text[m.end() : nxt.start() if nxt else len(text)])
        for m, nxt in zip(starts, starts[1:] + [None])
    ]


def section(path: Path, title: str) -> tuple[int, str]:
    found = [(i, body) for i, (name, body) in enumerate(sections(path)) if name.startswith(title)]
    assert found, f"{path.name}: no '## {title}' section"
    assert len(found) == 1, f"{path.name}: {len(found)} '## {title}' sections"
    return found[0]


def test_all_chapters_are_found():
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(11)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_chapter_ends_with_references(path):
    index, body = section(path, "References")
    assert index == len(sections(path)) - 1, f"{path.name}: '## References' is not the last section"
    cites_paper = "1703.06870" in body
    assert cites_paper, f"{path.name}: the references do not cite the paper (arXiv:1703.06870)"
    names_a_part = re.search(r"\b(Section|Sections|Table|Tables|Figure|Figures)\s+\d", body) is not None
    assert names_a_part, (
        f"{path.name}: the references do not say which section, table or figure of the paper it follows"
    )
    others = set(re.findall(r"\b\d{4}\.\d{4,5}\b", body)) - {"1703.06870"}
    builds_on = bool(others) or "github.com" in body
    assert builds_on, f"{path.name}: the references cite no work the chapter builds on"
    further = "Further reading" in body
    assert further, f"{path.name}: the references have no 'Further reading'"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_answers_are_folded(path):
    index, body = section(path, "Answers")
    assert index < section(path, "References")[0], f"{path.name}: the answers come after the references"
    blocks = DETAILS.findall(body)
    assert len(blocks) > 0, f"{path.name}: no <details><summary>...</summary>...</details> in the answers"
    balanced = body.count("<details>") == body.count("</details>") == len(blocks)
    assert balanced, f"{path.name}: unbalanced <details>"
    for block in blocks:
        # Markdown inside an HTML block renders only after a blank line, and must end with one too
        spaced = block.startswith("\n\n") and block.endswith("\n\n")
        assert spaced, (
            f"{path.name}: put a blank line after </summary> and before </details>: {block[:60]!r}"
        )
    unfolded = DETAILS.sub("", body)
    numbered = re.findall(r"^\s*\d+\.\s+\S.*$", unfolded, re.MULTILINE)
    assert not numbered, f"{path.name}: answers outside <details>: {numbered[:2]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_no_chapter_cites_files_readers_do_not_have(path):
    text = "\n".join(markdown_cells(path)).lower()
    for phrase in ("notes file", "paper-notes", "paper-errata"):
        cited = phrase in text
        assert not cited, f"{path.name} cites {phrase!r}: cite the paper (arXiv:1703.06870) instead"


def test_notation_page_defines_the_symbols():
    page = CHAPTERS / "notation.md"
    assert page.exists(), "chapters/notation.md is missing"
    text = page.read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| $") or line.startswith("| ")]
    defined = " ".join(line.split("|")[1] for line in rows if line.count("|") >= 3)
    symbols = ("$K$", "$J$", "$m$", "$n$", "$k$", "$s$", "$a$", "$A$", r"$\kappa_i$", "$N$", "$B$", "$t$")
    for symbol in symbols:
        assert symbol in defined, f"notation.md does not define {symbol}"
    glossary = text.split("## Glossary", 1)
    assert len(glossary) == 2, "notation.md has no '## Glossary' section"
    words = ("RoI", "Anchor", "Proposal", "Stride", "IoU", "NMS", "AP", "OKS", "Keypoint", "Backbone", "Head")
    words += ("FCN", "Class-agnostic", "Crowd", "Feature pyramid")
    for word in words:
        assert f"**{word}" in glossary[1], f"the glossary does not explain {word!r}"


def test_chapter_00_links_the_notation_page():
    assert any("notation.md" in cell for cell in markdown_cells(CHAPTERS / "00_tour.ipynb"))
