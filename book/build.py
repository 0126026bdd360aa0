"""Build the book site from the committed chapters, without running them: `make book` (book/build.py).

The staging folder holds book/index.md beside copies of the repository's chapters/ and docs/, so the pages
keep their repository paths; Sphinx (book/conf.py) writes the site to _build/book by default. Open it with
`python -m http.server -d _build/book` and http://127.0.0.1:8000, or serve the folder from any static host.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

BOOK = Path(__file__).resolve().parent
REPO = BOOK.parent


def copy_if_changed(source: Path, copy: Path) -> None:
    """Only a changed file gets a new mtime, so Sphinx re-reads only the pages that changed."""
    if not copy.exists() or copy.read_bytes() != source.read_bytes():
        shutil.copy2(source, copy)


def mirror(source: Path, target: Path) -> None:
    """The files of `source` (not its subfolders) copied into `target`, and what `source` no longer has
    deleted. Copies, not links: MyST resolves a chapter's relative links (notation.md) from the real path."""
    target.mkdir(parents=True, exist_ok=True)
    wanted = {p.name: p for p in source.iterdir() if p.is_file()}
    for name, path in wanted.items():
        copy_if_changed(path, target / name)
    for stale in target.iterdir():
        if stale.is_file() and stale.name not in wanted:
            stale.unlink()


def stage(staging: Path) -> None:
    """The Sphinx source folder: index.md, chapters/ and docs/ at their repository paths."""
    staging.mkdir(parents=True, exist_ok=True)
    copy_if_changed(BOOK / "index.md", staging / "index.md")
    for name in ("chapters", "docs"):
        mirror(REPO / name, staging / name)


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "_build" / "book", help="where the site goes")
    parser.add_argument("--fresh", action="store_true", help="rebuild every page (no cache)")
    args = parser.parse_args()
    build = args.out.resolve().parent
    staging, doctrees = build / "book-src", build / "book-doctrees"
    if args.fresh:
        shutil.rmtree(doctrees, ignore_errors=True)
        shutil.rmtree(args.out, ignore_errors=True)
    stage(staging)
    start = time.perf_counter()
    # sphinx-build in a child process, so its own exit status (and its warnings on stderr) are the build's
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-c", str(BOOK), "-d", str(doctrees)]
    rc = subprocess.run([*cmd, str(staging), str(args.out)]).returncode
    if rc:
        return rc
    seconds = time.perf_counter() - start
    print(
        f"book: {args.out} in {seconds:.0f} s, {folder_size(args.out) / 2**20:.1f} MiB; "
        f"open it with: python -m http.server -d {os.path.relpath(args.out)} (http://127.0.0.1:8000)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
