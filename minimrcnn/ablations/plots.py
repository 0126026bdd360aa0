"""Bar charts of the ablation sets: our AP and AP75 per variant (error bars: spread over seeds), and the
paper's AP beside them. They draw the rows of `results.table_rows`, so a live run is one more row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from minimrcnn.ablations.results import table_rows
from minimrcnn.ablations.sets import SETS


def row_label(r: dict[str, Any]) -> str:
    """A bar's label: the variant's short name in its set, marked when the run was made live."""
    return f"{r['label']}, live" if r["source"].startswith("live") else r["label"]


def our_bars(ax: Axes, rows: list[dict[str, Any]], set_name: str) -> None:
    """AP and AP75 of the set's headline metric for every row that has it; error bars = spread over seeds."""
    aset = SETS[set_name]
    key = aset.word
    rows = [r for r in rows if r[f"{key} AP"] is not None]
    for j, metric in enumerate(("AP", "AP75")):
        xs = [i + (j - 0.5) * 0.38 for i in range(len(rows))]
        vals = [r[f"{key} {metric}"] for r in rows]
        errs = [r[f"{key} {metric} std"] for r in rows]
        ax.bar(xs, vals, width=0.36, yerr=errs, capsize=3, label=f"{aset.iou_type} {metric}")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([row_label(r) for r in rows], rotation=25, ha="right", fontsize=8)
    ax.set_title(aset.title, fontsize=9)
    ax.set_ylabel("AP (%)")
    ax.legend(fontsize=7)


def paper_bars(ax: Axes, set_name: str, names: list[str] | None = None) -> None:
    """The paper's AP for the variants it ran (grey bars, values written on top)."""
    aset = SETS[set_name]
    shown = [n for n in (names if names is not None else aset.names) if n in aset.paper]
    values = [aset.paper[n]["AP"] for n in shown]
    ax.bar(range(len(shown)), values, width=0.6, color="0.6")
    ax.set_xticks(range(len(shown)))
    ax.set_xticklabels([aset.label(n) for n in shown], rotation=25, ha="right", fontsize=8)
    ax.set_title(f"paper (COCO), {aset.metric}" if shown else "not in the paper", fontsize=9)
    ax.set_ylabel("AP (%)")
    if shown:
        ax.set_ylim(0, max(values) * 1.15)
        for i, v in enumerate(values):
            ax.text(i, v, f"{v:.1f}", ha="center", va="bottom", fontsize=8)


def set_figure(rows: list[dict[str, Any]], set_name: str, names: list[str] | None = None) -> Figure:
    """Left: our bars for the rows with results (if any); right: the paper's. Returns the figure."""
    import matplotlib.pyplot as plt

    key = SETS[set_name].word
    ours = [r for r in rows if r[f"{key} AP"] is not None]
    if ours:
        fig = plt.figure(figsize=(max(3.6, 1.2 * len(ours)) + 3.4, 3.2))
        our_bars(fig.add_axes([0.09, 0.3, 0.45, 0.6]), ours, set_name)
        paper_ax = fig.add_axes([0.66, 0.3, 0.31, 0.6])
    else:
        fig, paper_ax = plt.subplots(figsize=(3.8, 3.2))
        fig.subplots_adjust(bottom=0.3)
    paper_bars(paper_ax, set_name, names)
    return fig


def results_figure(results: dict[str, Any], path: Path | None = None) -> Figure:
    """results.png: one bar chart per set of the sweep (our numbers only)."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(results["sets"])
    fig, axes = plt.subplots(1, len(sets), figsize=(3.6 * len(sets), 3.2), squeeze=False)
    for ax, set_name in zip(axes[0], sets):
        names = [n for n in SETS[set_name].names if n in results["table"]]
        our_bars(ax, table_rows(results, set_name, names), set_name)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=90)
        plt.close(fig)
    return fig
