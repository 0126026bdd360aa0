"""The chapters' live explorers (chapters 01, 02, 04) as a person uses them: JupyterLab in headless Chromium.

tests/test_explorers.py checks what each explorer draws, in numbers; what it cannot see is the front end: a
panel that never renders ("Error displaying widget"), a slider whose moves never reach the kernel, a
picture that is redrawn but never replaced on the page. Each test opens a chapter (a copy, see conftest.py),
runs its first cell (the imports), the cell that imports the explorer and the explorer's cell, waits for the
picture, moves one slider with the keyboard as a reader would (click its handle, press an arrow key) and
waits for a different picture. Screenshots of the panel before and after go to runs/browser-test/
(`explorers_<case>_before.png`, `..._after.png`), also when the test passes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from lab import ERROR_TEXT, Notebook, assert_widget_rendered, poll

PANEL = ".minimrcnn-explorer"
IMAGE = ".minimrcnn-explorer-image"
PRESSES = 3  # arrow-key presses: each one is a step of the slider and a redraw in the kernel


@dataclass
class Case:
    chapter: str
    setup: tuple[str, ...]  # text of the cells to run first, in order
    explorer: str  # text of the explorer's cell
    slider: str  # the description of the slider to move
    step: float  # its step: one arrow-key press


CASES = {  # the first cell (imports, `show_jpeg`), the one that imports the explorer, the explorer's own
    "01_roipool": Case(
        chapter="01_roipool_quantization.ipynb",
        setup=("CHAPTER_START = ", "import roipool_explorer"),
        explorer="roipool_explorer()",
        slider="output",  # 7 x 7 bins -> 10 x 10
        step=1,
    ),
    "02_roialign": Case(
        chapter="02_roialign.ipynb",
        setup=("CHAPTER_START = ", "import roialign_explorer"),
        explorer="roialign_explorer()",
        slider="bin column",  # the bin whose samples and weights are shown moves right
        step=1,
    ),
    "04_anchors": Case(
        chapter="04_anchors_rpn.ipynb",
        setup=("CHAPTER_START = ", "import anchors_explorer"),
        explorer="anchors_explorer()",
        slider="background <",  # 0.30 -> 0.45: fewer anchors ignored
        step=0.05,
    ),
}


def picture(nb: Notebook, i: int) -> dict:
    """The explorer's picture in cell i: its src and a digest of the bytes it shows (fetched from the src)."""
    return (
        nb.output(i)
        .locator(IMAGE)
        .first.evaluate(
            """async (img) => {
            const src = img.src, shown = img.complete && img.naturalWidth > 0;
            try {  // a blob: URL, revoked when the next picture replaces it
                const bytes = await (await fetch(src)).arrayBuffer();
                const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
                const sha = [...digest].map(b => b.toString(16).padStart(2, '0')).join('');
                return {src, sha, size: bytes.byteLength, shown};
            } catch (e) {
                return {src, sha: null, size: 0, shown: false};
            }
        }"""
        )
    )


def kernel_idle(nb: Notebook) -> bool:
    return nb.page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'"
    )


@pytest.mark.parametrize("name", list(CASES))
def test_explorer_slider_changes_the_picture(page, lab, artifacts, name):
    case = CASES[name]
    t0 = time.time()
    nb = Notebook(page, lab, case.chapter)
    t_open = time.time() - t0
    for text in case.setup:
        nb.run(nb.find(text))
    cell = nb.find(case.explorer)
    nb.run(cell)
    t_cells = time.time() - t0 - t_open
    assert_widget_rendered(nb, cell, IMAGE)
    panel = nb.output(cell).locator(PANEL).first
    before = poll(lambda: (p := picture(nb, cell))["shown"] and p, 60, "the explorer's picture never loaded")
    panel.scroll_into_view_if_needed()
    panel.screenshot(path=str(artifacts / f"explorers_{name}_before.png"))

    slider = panel.locator(".widget-slider", has=page.locator(".widget-label", has_text=case.slider))
    assert slider.count() == 1, f"{slider.count()} sliders labelled {case.slider!r} in the panel"
    readout = slider.locator(".widget-readout")
    start = float(readout.inner_text())
    handle = slider.locator(".noUi-handle")
    handle.click()  # a click on the handle itself: focuses it, leaves the value where it was
    for _ in range(PRESSES):
        handle.press("ArrowRight")
    moved = float(readout.inner_text()) - start
    assert abs(moved - PRESSES * case.step) < case.step / 2, f"{PRESSES} steps right moved the slider {moved}"

    changed = time.time()
    poll(lambda: picture(nb, cell)["src"] != before["src"], 30, "the picture was not replaced in 30 s")
    changed = time.time() - changed
    # the last press's redraw: the kernel is idle and the picture stays the same for a moment
    last = None

    def settled():
        nonlocal last
        now = picture(nb, cell)
        steady, last = last is not None and now["src"] == last["src"] and kernel_idle(nb), now
        return steady and now["shown"] and now

    after = poll(settled, 30, "the picture kept changing (or the kernel stayed busy) for 30 s", every=0.5)
    assert after["sha"] != before["sha"], "the picture was replaced by the same picture"
    assert not page.get_by_text(ERROR_TEXT).count(), page.get_by_text(ERROR_TEXT).first.inner_text()
    assert "redraw failed" not in panel.inner_text(), panel.inner_text()
    assert not nb.errors(cell), nb.errors(cell)
    panel.screenshot(path=str(artifacts / f"explorers_{name}_after.png"))
    print(
        f"{name}: notebook open in {t_open:.0f} s, its {len(case.setup) + 1} cells ran in {t_cells:.0f} s, "
        f"picture replaced {changed:.1f} s after the keys ({before['size']} -> {after['size']} bytes)"
    )
