"""Driving a chapter in JupyterLab from a browser test: open it, find its cells by text, run them, look.

`Notebook` drives one open notebook through the lab's own commands (what its menus call); `poll` waits for a
condition; `assert_widget_rendered` checks that a widget view rendered (no "Error displaying widget", no
text stand-in). The server and the browser are conftest.py's fixtures (`lab`, `page`).
"""

from __future__ import annotations

import json
import time

ERROR_TEXT = "Error displaying widget"


class Notebook:
    """One open notebook in JupyterLab, driven through the lab's own commands (what its menus call)."""

    def __init__(self, page, lab, name: str):
        self.page = page
        page.goto(lab.url(f"chapters/{name}"))
        page.wait_for_function(
            """(name) => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                return w && w.context && w.context.path.endsWith(name) && w.context.isReady
                    && w.sessionContext.session && w.sessionContext.session.kernel
                    && w.sessionContext.session.kernel.connectionStatus === 'connected'
                    && w.sessionContext.session.kernel.status === 'idle'; }""",
            arg=name,
            timeout=120_000,
        )
        # the committed outputs (an old widget view, old plots) must not count as what this run shows
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
        self.sources: list[str] = page.evaluate(
            "() => window.jupyterapp.shell.currentWidget.content.widgets.map("
            "c => c.model.type === 'code' ? c.model.sharedModel.getSource() : '')"
        )

    def find(self, text: str) -> int:
        """Index of the first code cell whose source contains `text`."""
        for i, src in enumerate(self.sources):
            if text in src:
                return i
        raise AssertionError(f"no code cell contains {text!r}: has the chapter changed?")

    def cell(self, i: int):
        return self.page.locator(".jp-Notebook .jp-Cell").nth(i)

    def output(self, i: int):
        return self.cell(i).locator(".jp-Cell-outputArea")

    def start(self, i: int) -> None:
        """Select cell i and run it (like clicking it and pressing Ctrl+Enter); returns at once."""
        before = self.cell(i).locator(".jp-InputPrompt").inner_text()
        self.page.evaluate(
            """(i) => { const app = window.jupyterapp, nb = app.shell.currentWidget.content;
                nb.activeCellIndex = i; nb.deselectAll(); app.commands.execute('notebook:run-cell'); }""",
            i,
        )
        # queued or running, the prompt shows [*]; a quick cell may already show its new count instead
        self.page.wait_for_function(
            "([i, before]) => { const t = document.querySelectorAll('.jp-Notebook .jp-Cell')[i]"
            ".querySelector('.jp-InputPrompt').innerText; return t.includes('*') || t !== before; }",
            arg=[i, before],
            timeout=30_000,
        )

    def done(self, i: int) -> bool:
        prompt = self.cell(i).locator(".jp-InputPrompt").inner_text()
        return "*" not in prompt and any(ch.isdigit() for ch in prompt)

    def errors(self, i: int) -> list[str]:
        outputs = self.page.evaluate(
            "(i) => { const m = window.jupyterapp.shell.currentWidget.content.widgets[i].model;"
            " return JSON.stringify(m.outputs ? m.outputs.toJSON() : []); }",  # markdown cells: none
            i,
        )
        return [f"{o['ename']}: {o['evalue']}" for o in json.loads(outputs) if o["output_type"] == "error"]

    def wait(self, i: int, timeout: float) -> None:
        deadline = time.time() + timeout
        while not self.done(i):
            assert time.time() < deadline, f"cell {i} still running after {timeout:.0f} s"
            time.sleep(0.2)
        errors = self.errors(i)
        assert not errors, f"cell {i} raised: {errors}"

    def run(self, i: int, timeout: float = 180) -> None:
        self.start(i)
        self.wait(i, timeout)

    def images(self, i: int) -> list[str]:
        """A short fingerprint of every picture in cell i's output (its data URL's length and tail)."""
        return self.cell(i).evaluate(
            "(c) => [...c.querySelectorAll('.jp-OutputArea img')]"
            ".map(m => m.src.length + ':' + m.src.slice(-60))"
        )


def poll(condition, timeout: float, what, every: float = 0.2):
    """Wait until condition() is truthy and return it; else fail saying `what` (a string or a function)."""
    deadline = time.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.time() < deadline, f"after {timeout:.0f} s: {what() if callable(what) else what}"
        time.sleep(every)


def assert_widget_rendered(nb: Notebook, i: int, selector: str, timeout: float = 120) -> None:
    """The widget view in cell i's output shows `selector`; no "Error displaying widget", no text stand-in."""
    out = nb.output(i)

    def settled():
        if nb.page.get_by_text(ERROR_TEXT).count():
            return "error"
        return "ok" if out.locator(selector).count() and out.locator(selector).first.is_visible() else None

    state = poll(settled, timeout, lambda: f"cell {i}'s widget never rendered; its output reads: "
                 f"{out.inner_text()[:400]!r}")  # fmt: skip
    error = nb.page.get_by_text(ERROR_TEXT)
    assert state == "ok", f"{ERROR_TEXT!r} on the page: {error.first.inner_text() if error.count() else ''!r}"
