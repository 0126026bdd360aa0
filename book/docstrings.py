"""The package's docstrings are plain text, read as reStructuredText by the API reference.

Plain text lays out tables, file trees and option lists by aligning columns:

    image   [3, H, W] float32 in [0, 1]
    target  boxes    [N, 4] float32

reST reads such an indented block as a quotation, a definition list or an error, and joins its lines, so the
columns are lost. `preformat_aligned_blocks` turns every such block into a literal block, which keeps the
text exactly as written. A paragraph counts as aligned when it is indented, or when one of its later lines
is indented more than its first line and it is not a list; a literal block or a directive that the docstring
already opened with "::" is left alone.
"""

from __future__ import annotations

import re

LIST_ITEM = re.compile(r"\s*([-*+]|\d+[.)]|#\.)\s")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _paragraphs(lines: list[str]) -> list[list[str]]:
    paragraphs: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            paragraphs[-1].append(line)
        elif paragraphs[-1]:
            paragraphs.append([])
    return [p for p in paragraphs if p]


def _aligned(paragraph: list[str], base: int) -> bool:
    first = paragraph[0]
    if _indent(first) > base:
        return True
    if LIST_ITEM.match(first) or first.lstrip().startswith((">>>", "..", ":")):
        return False
    return any(_indent(line) > _indent(first) for line in paragraph[1:])


def preformat_aligned_blocks(lines: list[str]) -> list[str]:
    """The docstring's lines with each aligned paragraph made a literal block (see the module docstring)."""
    texts = [line for line in lines if line.strip()]
    if not texts:
        return lines
    base = min(_indent(line) for line in texts)
    out: list[str] = []
    for k, paragraph in enumerate(_paragraphs(lines)):
        opened = bool(out) and out[-2].rstrip().endswith("::")  # the previous paragraph opened a block
        if opened or not _aligned(paragraph, base):
            out += [*paragraph, ""]
            continue
        if k == 0 and _indent(paragraph[0]) == base:  # the summary line stays a sentence
            out += [paragraph[0], ""]
            paragraph = paragraph[1:]
        if out and out[-2].rstrip().endswith(":"):
            out[-2] = out[-2].rstrip() + ":"  # "layout:" followed by "::" reads "layout:"
        else:
            out += ["::", ""]  # a paragraph of "::" alone is not shown
        out += ["    " + line[base:] for line in paragraph] + [""]
    return out


def process_docstring(app, what, name, obj, options, lines: list[str]) -> None:
    """`autodoc-process-docstring`, which sphinx-autoapi emits for every object: edits `lines` in place."""
    lines[:] = preformat_aligned_blocks(lines)
