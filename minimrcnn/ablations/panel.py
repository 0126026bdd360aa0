"""The ablation panel of chapter 09: pick a set, read its table and bars, look at the predicted masks, and
train one of its variants live.

    from minimrcnn.ablations.panel import AblationPanel
    AblationPanel("results/ablations")        # in a notebook cell: the sweep's folder or its results.json

The panel only arranges pieces that live elsewhere: the sets (`sets`), the tables and verdicts (`results`),
the bars (`plots`), the predicted masks (`previews`) and the training (`sweep.run_variant`). ipywidgets is
imported only when a panel is made.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from minimrcnn.ablations.plots import set_figure
from minimrcnn.ablations.previews import SAMPLE_IMAGE_IDS, load_samples, mask_figure
from minimrcnn.ablations.results import (
    RESULTS,
    load_results,
    missing_message,
    results_file,
    summarize,
    table_html,
    table_rows,
)
from minimrcnn.ablations.sets import SETS, study_sets, variants
from minimrcnn.ablations.sweep import run_variant
from minimrcnn.display import show_jpeg
from minimrcnn.errors import DataError
from minimrcnn.live import progress_line


def run_live(
    name: str,
    seed: int,
    iters: int,
    out: str | Path = "runs/ablate_live",
    data_root: str | Path = "data/shapes",
    extra_overrides: tuple[str, ...] = (),
    on_log: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train and evaluate one variant now (`sweep.run_variant`), draw its sample predictions, and return
    {"iters", "eval", "table" (summarize's row)}. `extra_overrides` (e.g. a smaller dataset) are appended
    to the variant's own; `on_log(record)` gets the trainer's log records while it trains."""
    variant = variants()[name]
    variant = replace(variant, overrides=tuple(variant.overrides) + tuple(extra_overrides))
    out = Path(out)
    ev = run_variant(variant, seed, iters, out, str(data_root), progress=False, on_log=on_log)
    load_samples(out / "runs" / f"{name}-s{seed}", data_root)  # draws the new run's sample predictions
    return {"iters": iters, "eval": ev, "table": summarize({name: [ev]})[name]}


class AblationPanel:
    """Set chooser, variant multi-select, AP table, bar chart, predicted masks and a "run live" button.

    `results_path`: a sweep's results.json or the folder that holds it (the sweep's --out). Without results
    (none yet, or a file that cannot be read: the status line says which and why) the panel shows the
    paper's numbers only.

    What the callbacks produced is kept in `rows`, `bar_fig`, `mask_fig` and `status` (tests and curious
    readers can look at them directly). While a live run trains, `progress` counts its iterations, the
    status line says how far it is, and the button is disabled: a second run cannot start before the first
    has finished (`running` is True meanwhile).
    """

    def __init__(
        self,
        results_path: str | Path = RESULTS,
        data_root: str | Path = "data/shapes",
        live_out: str | Path = "runs/ablate_live",
        live_iters: int = 100,
        extra_overrides: tuple[str, ...] = (),
        set_name: str = "pooler",
    ) -> None:
        import ipywidgets as W

        self.results_path = results_file(results_path)
        try:
            self.results, problem = load_results(self.results_path), ""
        except DataError as e:  # one line in the panel, not a traceback in the notebook
            self.results, problem = None, str(e)
        self.data_root, self.live_out = data_root, Path(live_out)
        self.extra_overrides = tuple(extra_overrides)
        self.live: dict[str, dict[str, Any]] = {}
        self.rows: list[dict[str, Any]] = []
        self.bar_fig = self.mask_fig = None
        self.missing_masks: list[str] = []
        self.running = False

        self.set_selector = W.Dropdown(
            options=[(s.title, s.name) for s in study_sets("shapes")], value=set_name, description="set"
        )
        self.variant_selector = W.SelectMultiple(description="variants", rows=4)
        self.iters = W.BoundedIntText(value=live_iters, min=1, max=5000, description="iterations")
        self.seed = W.BoundedIntText(value=0, min=0, max=99, description="seed")
        self.run_button = W.Button(
            description="run live",
            button_style="warning",
            tooltip="train the selected variants now (a few CPU minutes each)",
        )
        self.progress = W.IntProgress(value=0, min=0, max=1, description="live run")
        self.status = W.HTML()
        self.table = W.HTML()
        # buttons, not a second drop-down: the set chooser stays the panel's only one
        self.image_selector = W.ToggleButtons(
            options=[(f"image {i}", i) for i in SAMPLE_IMAGE_IDS], description="masks on"
        )
        self.plot_out, self.mask_out = W.Output(), W.Output()
        self._filling = False
        self._fill_variants()
        self.set_selector.observe(self._on_set, names="value")
        self.variant_selector.observe(self._on_variants, names="value")
        self.image_selector.observe(lambda change: self.draw_masks(), names="value")
        self.run_button.on_click(lambda button: self.run_selected())
        controls = W.HBox([self.set_selector, self.variant_selector])
        live = W.HBox([self.iters, self.seed, self.run_button, self.progress])
        self.widget = W.VBox(
            [controls, live, self.status, self.table, self.plot_out, self.image_selector, self.mask_out]
        )
        if problem:
            self.status.value = f"<b>cannot read the results</b>: {html.escape(problem)}"
        elif self.results is None:
            self.status.value = f"<i>{html.escape(missing_message(self.results_path))}</i>"
        self.refresh()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def _fill_variants(self) -> None:
        """Offer the set's variants, all selected (without a refresh for each intermediate value)."""
        aset = SETS[self.set_selector.value]
        self._filling = True
        try:
            self.variant_selector.options = [(aset.label(n), n) for n in aset.names]
            self.variant_selector.value = tuple(aset.names)
        finally:
            self._filling = False

    def _on_set(self, change: dict[str, Any]) -> None:
        self._fill_variants()
        self.refresh()

    def _on_variants(self, change: dict[str, Any]) -> None:
        if not self._filling:
            self.refresh()

    @property
    def selected(self) -> list[str]:
        return list(self.variant_selector.value)

    def refresh(self) -> None:
        """Redraw the table, the bars and the masks for the selected set and variants."""
        import matplotlib.pyplot as plt
        from IPython.display import display

        set_name, names = self.set_selector.value, self.selected
        self.rows = table_rows(self.results, set_name, names, self.live)
        self.table.value = table_html(self.rows, set_name)
        if self.bar_fig is not None:
            plt.close(self.bar_fig)
        self.bar_fig = set_figure(self.rows, set_name, names)
        with self.plot_out:
            self.plot_out.clear_output(wait=True)
            display(self.bar_fig)
        plt.close(self.bar_fig)
        self.draw_masks()

    def draw_masks(self) -> None:
        """The chosen validation image: ground truth, then each selected variant's predicted masks."""
        import matplotlib.pyplot as plt

        aset, names = SETS[self.set_selector.value], self.selected
        if self.mask_fig is not None:
            plt.close(self.mask_fig)
        self.mask_fig, self.missing_masks = mask_figure(
            self.results_path.parent,
            [n for n in names if self.results and n in self.results["table"]],
            self.results["seeds"][0] if self.results else int(self.seed.value),
            self.data_root,
            live_dir=self.live_out,
            live_names=tuple(n for n in names if n in self.live),
            image_ids=(self.image_selector.value,),
            labels={n: aset.label(n) for n in aset.names},
            panel_size=3.0,
        )
        with self.mask_out:
            self.mask_out.clear_output(wait=True)
            if self.mask_fig is not None:
                show_jpeg(self.mask_fig)
            if self.missing_masks:
                print("no predicted masks (no samples.json or checkpoint):", ", ".join(self.missing_masks))

    def run_selected(self) -> None:
        """Train every selected variant now with the chosen budget and seed, then refresh.

        Does nothing but say so while another live run is going.
        """
        if self.running:
            self.status.value = "<b>a live run is going already</b>: wait until it is done"
            return
        names, iters, seed = self.selected, int(self.iters.value), int(self.seed.value)
        self.running, self.run_button.disabled = True, True
        self.progress.max, self.progress.value = max(1, iters * len(names)), 0
        self.progress.bar_style = "info"
        try:
            for k, name in enumerate(names):
                head = f"training <b>{html.escape(name)}</b> ({k + 1} of {len(names)}, seed {seed})"
                self.status.value = f"{head}: starting"

                def on_log(record: dict[str, Any], k: int = k, head: str = head) -> None:
                    self.status.value = f"{head}: {html.escape(progress_line(record, iters))}"
                    self.progress.value = min(k * iters + int(record["iteration"]), self.progress.max)

                self.live[name] = run_live(
                    name, seed, iters, self.live_out, self.data_root, self.extra_overrides, on_log
                )
                self.progress.value = (k + 1) * iters
            self.status.value = f"done: {', '.join(names)} ({iters} iterations, seed {seed})"
            self.progress.bar_style = "success"
            self.refresh()
        except Exception as e:  # shown in the panel; ipywidgets would hide it in the log
            self.progress.bar_style = "danger"
            self.status.value = f"<b>run live failed</b>: {html.escape(repr(e))}"
            raise
        finally:
            self.running, self.run_button.disabled = False, False
