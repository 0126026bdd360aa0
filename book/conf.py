"""Sphinx configuration of the book site (`make book`, which runs book/build.py).

The source folder is a staging folder made by build.py: this folder's index.md beside copies of the
repository's `chapters/` and `docs/`, so every chapter keeps its repository path (chapters/NN_name.ipynb),
which is what the "Open in Colab" links need. Nothing is executed: the committed outputs are the book.
Nothing is fetched either, at build time or when a page is read: MathJax is copied from a pip package, the
widgets' JavaScript is not loaded (widget_fallback.py turns each saved widget into static HTML) and
intersphinx is left out.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

from astroid import astroid_manager
from astroid.manager import AstroidManager

BOOK = Path(__file__).resolve().parent
REPO = BOOK.parent
sys.path.insert(0, str(BOOK))

from docstrings import process_docstring  # noqa: E402
from widget_fallback import convert_source  # noqa: E402

# The one setting for the repository's address: "Open in Colab", "download .ipynb" and the repository button.
REPOSITORY_URL = "https://github.com/minimrcnn/minimrcnn"
REPOSITORY_BRANCH = "main"

project = "minimrcnn"
author = "the minimrcnn authors"
copyright = "the minimrcnn authors, MIT licence"
html_title = "minimrcnn: Mask R-CNN, built piece by piece"

extensions = ["myst_nb", "autoapi.extension", "sphinx.ext.mathjax"]
# `x` in a docstring is code, as in the chapters' Markdown (reST would make it a citation)
default_role = "literal"
highlight_language = "text"  # a docstring's literal block is a table or a file tree, not Python

# -- notebooks: the committed outputs, never executed
nb_execution_mode = "off"
nb_ipywidgets_js: dict = {}  # the widgets' renderer is a CDN script: widget_fallback.py instead
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "html_image"]
myst_heading_anchors = 3

# -- API reference, read from the source (sphinx-autoapi parses it; nothing imports torch)
autoapi_type = "python"
autoapi_dirs = [str(REPO / "minimrcnn")]
autoapi_python_use_implicit_namespaces = True  # a subpackage still without __init__.py stays under minimrcnn
autoapi_root = "api"
autoapi_add_toctree_entry = False  # index.md places it after the chapters
autoapi_options = ["members", "undoc-members", "show-inheritance", "show-module-summary"]
autoapi_member_order = "bysource"
autoapi_python_class_content = "both"
autoapi_keep_files = False
# astroid would parse torch, matplotlib, ... to infer the names the package imports from them; the reference
# shows those names as written (torch.nn.Module) instead, and the build takes a fraction of the time.
EXTERNAL = {"torch", "torchvision", "numpy", "matplotlib", "PIL", "pycocotools", "tqdm", "ipywidgets"}


class _ModuleTrees(set):
    """astroid's deny list matches whole names; this one denies each listed module with its submodules."""

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.split(".", 1)[0] in EXTERNAL


astroid_manager.MANAGER.module_denylist = AstroidManager.brain["module_denylist"] = _ModuleTrees()

# -- HTML
html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["book.css"]
html_last_updated_fmt = None
html_context = {"default_mode": "auto"}  # else a first visit logs "invalid theme mode" (no mode stored yet)
html_theme_options = {
    "repository_url": REPOSITORY_URL,
    "repository_branch": REPOSITORY_BRANCH,
    "path_to_docs": "",  # the staging folder mirrors the repository root (chapters/...)
    "use_repository_button": True,
    "use_download_button": True,
    "launch_buttons": {"colab_url": "https://colab.research.google.com"},
    "show_toc_level": 2,
    "collapse_navbar": True,  # the sidebar opens the API reference's modules only on its own pages
    "navigation_with_keys": False,
}
# MathJax 3 from the sphinx-mathjax-offline wheel, copied into _static/mathjax (see copy_mathjax)
mathjax_path = "mathjax/tex-chtml.js"
MATHJAX_PARTS = ("tex-chtml.js", "output/chtml", "input/tex/extensions", "ui", "a11y", "adaptors")


def chapter_title(path: Path) -> str:
    """A chapter's first heading, without its "Chapter NN ·" prefix."""
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].split("·", 1)[-1].strip()
    return path.stem


def landing_page(srcdir: Path) -> dict[str, str]:
    """What index.md's placeholders become: the chapter map, the architecture drawing and the toctrees."""
    chapters = sorted((srcdir / "chapters").glob("[0-9][0-9]_*.ipynb"))
    rows = "\n".join(f"| {p.name[:2]} | {{doc}}`{chapter_title(p)} <chapters/{p.stem}>` |" for p in chapters)
    drawing = (
        "![The architecture of Mask R-CNN: backbone and FPN, RPN, RoIAlign, box and mask heads]"
        "(docs/architecture.png)\n"
        if (srcdir / "docs" / "architecture.png").exists()
        else ""
    )
    front = ["chapters/notation"] if (srcdir / "chapters" / "notation.md").exists() else []
    toctree = "\n".join(
        [":::{toctree}", ":hidden:", ":caption: Book", ""]
        + front
        + [f"chapters/{p.stem}" for p in chapters]
        + [":::", "", ":::{toctree}", ":hidden:", ":caption: Reference", ""]
        + ["API reference <api/minimrcnn/index>", ":::"]
    )
    return {
        "{{ chapter_map }}": f"{drawing}\n| chapter | subject |\n|---|---|\n{rows}\n",
        "{{ toctree }}": toctree,
        "{{ repository }}": REPOSITORY_URL,
    }


def fill_in(app, docname: str, source: list[str]) -> None:
    if docname == "index":
        for marker, text in landing_page(Path(app.srcdir)).items():
            source[0] = source[0].replace(marker, text)
    elif app.env.doc2path(docname).suffix == ".ipynb":
        source[0] = convert_source(source[0])


def landing_page_always_outdated(app, env, added, changed, removed) -> list[str]:
    """index.md's chapter map and toctrees follow the chapters folder, so it is re-read on every build."""
    return ["index"]


def copy_mathjax(app, exception) -> None:
    """The parts of MathJax that tex-chtml.js loads (fonts, TeX extensions on demand, the menu)."""
    if exception is not None or app.builder.format != "html":
        return
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or spec.origin is None:
        raise RuntimeError("sphinx-mathjax-offline is not installed: pip install -r requirements-book.txt")
    source = Path(spec.origin).parent / "static" / "mathjax"
    target = Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        if (source / part).is_dir():
            shutil.copytree(source / part, target / part, dirs_exist_ok=True)
        else:
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / part, target / part)


def setup(app):
    app.connect("source-read", fill_in)
    app.connect("autodoc-process-docstring", process_docstring)  # sphinx-autoapi emits it
    app.connect("env-get-outdated", landing_page_always_outdated)
    app.connect("build-finished", copy_mathjax)
