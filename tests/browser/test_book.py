"""The book site as a reader meets it: built from the committed chapters, served on 127.0.0.1, in Chromium.

One build (book/build.py into a scratch folder) and one pass over every page (`crawl`) record what each page
did: JavaScript errors, requests, images, math, links, ids, widget fallbacks; the tests assert on that record.
Any request to a host other than 127.0.0.1 is aborted and recorded: the site must work offline. Screenshots of
the landing page, a chapter (light and dark), the ablation panel's fallback and the API reference go to
$MINIMRCNN_BOOK_OUT (default runs/book-test/).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import threading
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("MINIMRCNN_BOOK_OUT", REPO / "runs" / "book-test"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

# What one page reports after it has loaded, MathJax has typeset and every image has been asked to decode.
PAGE_REPORT = """async () => {
  const images = [...document.images];
  images.forEach(i => { i.loading = 'eager'; });
  const decoded = await Promise.all(images.map(i => i.decode().then(() => i.naturalWidth > 0, () => false)));
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const math = [...document.querySelectorAll('.math')];
  const fallbacks = [...document.querySelectorAll('.widget-fallback')];
  return {
    images: images.map((img, k) => ({src: img.currentSrc.slice(0, 120), ok: decoded[k]})),
    math: math.length,
    untypeset: math.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 80)),
    math_errors: [...document.querySelectorAll('mjx-merror, [data-mjx-error]')].map(e => e.textContent),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id).concat(
      [...document.querySelectorAll('a[name]')].map(a => a.name)),
    error_boxes: [...document.querySelectorAll('.problematic, .system-message')].map(e => e.textContent),
    fallbacks: fallbacks.map(f => ({
      images: [...f.querySelectorAll('img')].filter(i => i.complete && i.naturalWidth > 0).length,
      empty: f.classList.contains('widget-fallback-empty'),
      text: f.innerText.slice(0, 120)})),
    open_answers: document.querySelectorAll('.bd-article details[open]').length,
    kernel_boxes: document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length
      + (document.body.innerText.includes('kernel connection') ? 1 : 0),
  };
}"""


@dataclass
class Crawl:
    root: str  # http://127.0.0.1:port/
    site: Path
    chapters: list[Path]  # the notebooks the site was built from (other work may change chapters/ meanwhile)
    context: Any  # the browser context every request of which goes through `guard`
    pages: dict[str, dict] = field(default_factory=dict)  # site-relative path -> PAGE_REPORT
    problems: dict[str, list[str]] = field(default_factory=dict)  # path -> JS errors, failed responses
    outside: list[str] = field(default_factory=list)  # requests to other hosts (aborted)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def crawl(book_site, browser) -> Crawl:
    site = book_site.site
    print(f"\nbook: built in {book_site.seconds:.0f} s")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    chapters = sorted(book_site.chapters.glob("[0-9][0-9]_*.ipynb"))
    result = Crawl(f"http://127.0.0.1:{server.server_address[1]}/", site, chapters, context)

    def guard(route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            result.outside.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    current: list[str] = []
    page.on("pageerror", lambda e: current.append(f"pageerror: {e}"))
    page.on("console", lambda m: current.append(f"console error: {m.text}") if m.type == "error" else None)
    page.on("response", lambda r: current.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    try:
        paths = sorted(str(p.relative_to(site)) for p in site.rglob("*.html") if "_static" not in p.parts)
        for path in paths:
            current.clear()
            response = page.goto(result.root + path, wait_until="load")
            if response is None or not response.ok:
                current.append(f"page did not load: {response and response.status}")
            result.pages[path] = page.evaluate(PAGE_REPORT)
            if current:
                result.problems[path] = list(current)
        page.close()
        yield result
    finally:
        context.close()
        server.shutdown()


@pytest.fixture
def reader(crawl):
    """A fresh page in the crawl's guarded context: requests to other hosts are aborted and recorded, and
    JavaScript errors recorded too (the last test asserts on both)."""
    page = crawl.context.new_page()
    page.on("pageerror", lambda e: crawl.problems.setdefault(f"{page.url} (reader)", []).append(str(e)))
    yield page
    page.close()


@pytest.fixture(scope="module")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


def test_every_page_loads_without_errors_and_asks_nothing_of_other_hosts(crawl):
    print(f"\nbook: {len(crawl.pages)} pages")
    assert len(crawl.pages) > len(crawl.chapters)
    assert not crawl.outside, f"requests to other hosts (aborted): {sorted(set(crawl.outside))[:20]}"
    assert not crawl.problems, json.dumps(crawl.problems, indent=1)[:4000]


def test_every_image_decodes(crawl):
    broken = {p: [i["src"] for i in r["images"] if not i["ok"]] for p, r in crawl.pages.items()}
    assert not {p: b for p, b in broken.items() if b}
    assert sum(len(r["images"]) for r in crawl.pages.values()) > 0


def test_every_math_node_is_typeset(crawl):
    chapters = {p: r for p, r in crawl.pages.items() if p.startswith("chapters/")}
    assert sum(r["math"] for r in chapters.values()) > 0, "no math found in the chapters"
    assert not {p: r["untypeset"] for p, r in crawl.pages.items() if r["untypeset"]}
    assert not {p: r["math_errors"] for p, r in crawl.pages.items() if r["math_errors"]}


def test_internal_links_and_anchors_resolve(crawl):
    ids = {p: set(r["ids"]) for p, r in crawl.pages.items()}
    broken = []
    for path, report in crawl.pages.items():
        for href in report["links"]:
            url = urlsplit(href)
            if not href.startswith(crawl.root):
                continue
            target = unquote(url.path)[1:] or "index.html"
            if target.endswith("/"):
                target += "index.html"
            if not (crawl.site / target).is_file():
                broken.append(f"{path} -> {href} (no such file)")
            elif url.fragment and target in ids and unquote(url.fragment) not in ids[target]:
                broken.append(f"{path} -> {href} (no such anchor)")
    assert not broken, "\n".join(broken[:40])


def test_no_error_boxes_in_any_page(crawl):
    """Docstrings or chapters that are not valid reST / Markdown show red boxes; none may be left."""
    assert not {p: r["error_boxes"] for p, r in crawl.pages.items() if r["error_boxes"]}


def test_sidebar_lists_the_chapters_in_order(crawl, reader):
    reader.goto(crawl.root + "index.html")
    hrefs = reader.eval_on_selector_all("nav.bd-docs-nav a.reference.internal", "as => as.map(a => a.href)")
    numbers = [m.group(1) for h in hrefs if (m := re.search(r"chapters/(\d\d)_\w+\.html$", h))]
    assert numbers == [p.name[:2] for p in crawl.chapters]
    assert numbers[0] == "00" and numbers[-1] == "10"
    if (crawl.chapters[0].parent / "notation.md").exists():
        assert hrefs[0].endswith("chapters/notation.html"), "the notation page comes first"


def test_search_finds_roialign_in_a_chapter(crawl, reader):
    reader.goto(crawl.root + "search.html?q=RoIAlign")
    reader.wait_for_selector("#search-results ul.search li a", timeout=30_000)
    found = reader.eval_on_selector_all("#search-results ul.search li a", "as => as.map(a => a.href)")
    assert any("/chapters/" in h for h in found), found


def test_widgets_show_their_saved_state_without_a_kernel(crawl, reader, shots):
    for nb in crawl.chapters:
        cells = json.loads(nb.read_text())["cells"]
        views = sum(WIDGET_VIEW in o.get("data", {}) for c in cells for o in c.get("outputs", []))
        report = crawl.pages[f"chapters/{nb.stem}.html"]
        assert len(report["fallbacks"]) == views, nb.name
        assert report["kernel_boxes"] == 0, nb.name
        for fallback in report["fallbacks"]:
            assert "Interactive in JupyterLab or Colab" in fallback["text"]
            assert fallback["empty"] or fallback["images"] > 0, f"{nb.name}: a fallback without its images"
    shown = [p for p, r in crawl.pages.items() if any(not f["empty"] for f in r["fallbacks"])]
    if shown:
        reader.goto(crawl.root + shown[0])
        # below the sticky header: an element screenshot would scroll the panel's first line under it
        panel = reader.locator(".widget-fallback").first
        panel.evaluate("panel => { panel.scrollIntoView(); scrollBy(0, -80); }")
        reader.screenshot(path=str(shots / "widget-fallback.png"))


def test_answers_are_folded(crawl):
    assert not {p: r["open_answers"] for p, r in crawl.pages.items() if r["open_answers"]}


def test_screenshots_of_the_landing_page_a_chapter_and_the_api(crawl, reader, shots):
    for name, path in [("landing", "index.html"), ("chapter-02", "chapters/02_roialign.html"),
                       ("api", "api/minimrcnn/model/mask_head/index.html")]:  # fmt: skip
        reader.goto(crawl.root + path)
        reader.evaluate("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        reader.screenshot(path=str(shots / f"{name}.png"))
    reader.emulate_media(color_scheme="dark")
    reader.goto(crawl.root + "chapters/02_roialign.html")
    reader.evaluate("() => document.documentElement.dataset.theme = 'dark'")
    figure = reader.locator(".cell_output img").first
    figure.scroll_into_view_if_needed()
    reader.screenshot(path=str(shots / "chapter-02-dark.png"))
    # a figure drawn for a white page keeps a light backing in the dark theme
    backing = figure.evaluate("img => getComputedStyle(img).backgroundColor")
    rgb = [int(v) for v in re.findall(r"\d+", backing)[:3]]
    assert len(rgb) == 3 and min(rgb) > 150, backing
    print(f"\nbook screenshots: {shots}")


def test_docstring_tables_become_literal_blocks_and_lists_stay_lists():
    """book/docstrings.py: what the API reference does to the package's plain-text layouts."""
    spec = importlib.util.spec_from_file_location("book_docstrings", REPO / "book" / "docstrings.py")
    docstrings = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(docstrings)
    table = ["Files:", "", "    a.png   the image", "    b.json  its boxes", ""]
    literal = ["    " + line for line in table[2:4]]
    assert docstrings.preformat_aligned_blocks(table) == ["Files::", "", *literal, ""]
    hanging = ["Summary.", "", "sigmoid: one channel", "         per class", ""]
    out = docstrings.preformat_aligned_blocks(hanging)
    assert out[:4] == ["Summary.", "", "::", ""] and out[4:6] == ["    " + hanging[2], "    " + hanging[3]]
    items = ["Steps.", "", "1. scale the box", "   by s", "2. sample", ""]
    assert docstrings.preformat_aligned_blocks(items) == items
    opened = ["Run::", "", "    make book", ""]
    assert docstrings.preformat_aligned_blocks(opened) == opened


def test_no_request_left_127_0_0_1_and_no_error_while_the_tests_above_read_the_site(crawl):
    assert not crawl.outside, f"requests to other hosts (aborted): {sorted(set(crawl.outside))[:20]}"
    assert not crawl.problems, json.dumps(crawl.problems, indent=1)[:4000]
