"""The ablation panel of chapter 09, and the small pieces it is made of.

Everything here is a thin layer over `minimrcnn.ablate` (the sweep, its `results.json`, `summarize` and
`plot`): a table of one set's variants next to the paper's numbers, the bar chart, the predicted masks of
each variant side by side, and a "run live" button that trains one (variant, seed) with `run_variant`.

    from minimrcnn.widgets import AblationPanel
    AblationPanel("results/ablations/results.json")        # in a notebook cell

Predicted masks: `save_samples(run_dir)` loads a run's `checkpoint.pt`, predicts a few fixed validation
images and writes `<run_dir>/samples.json` (COCO results with RLE masks, a few KB), which is what the panel
draws; checkpoints are too large to commit, the samples are not. After a sweep, while the checkpoints are
still on disk:

    python -m minimrcnn.widgets results/ablations          # samples.json for every run that lacks one

ipywidgets is imported only by `AblationPanel`, so the functions can be used without it.
"""

from __future__ import annotations

import argparse
import html
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from minimrcnn import ablate

RESULTS = Path("results/ablations/results.json")
SAMPLES_FILE = "samples.json"
SAMPLE_IMAGE_IDS = (2, 4, 12, 21)  # shapes val images: a crowd region, occlusions, small shapes, larger ones

# The paper's numbers for each set (COCO; "AP" is mask AP unless the set's metric says box AP). Variants the
# paper did not run are absent. Sources: Tables 2b, 2c, 2e and 3 of He et al. (ICCV 2017).
PAPER: dict[str, dict[str, Any]] = {
    "pooler": {
        "setting": "ResNet-50-C4 (stride 16), COCO minival, mask AP (Table 2c)",
        "numbers": {
            "roipool": {"AP": 26.9, "AP50": 48.8, "AP75": 26.4},
            "roiwarp": {"AP": 27.2, "AP50": 49.2, "AP75": 27.1},
            "baseline": {"AP": 30.3, "AP50": 51.2, "AP75": 31.5},
        },
        "note": "With stride-32 C5 features (Table 2d) the gap grows: RoIPool 23.6 vs RoIAlign 30.9 mask AP "
        "(AP75 21.6 vs 32.1). With FPN's finer strides the paper reports only +1.5 mask AP for RoIAlign.",
    },
    "mask_loss": {
        "setting": "ResNet-50-C4, COCO minival, mask AP (Table 2b and text)",
        "numbers": {
            "softmax": {"AP": 24.8, "AP50": 44.1, "AP75": 25.1},
            "agnostic": {"AP": 29.7},
            "baseline": {"AP": 30.3, "AP50": 51.2, "AP75": 31.5},
        },
        "note": "Decoupling mask and class (sigmoid) is what matters; one mask per class adds 0.6 AP.",
    },
    "mask_head": {
        "setting": "ResNet-50-FPN, COCO minival, mask AP (Table 2e)",
        "numbers": {
            "mlp": {"AP": 31.5, "AP50": 53.7, "AP75": 32.8},
            "baseline": {"AP": 33.6, "AP50": 55.2, "AP75": 35.3},
        },
        "note": "The paper compares MLP and FCN heads; FCN-2 vs FCN-4 is our own extra variant.",
    },
    "resolution": {
        "setting": "not ablated in the paper for masks",
        "numbers": {},
        "note": "The paper uses 28x28 masks throughout; only its keypoint head goes to 56x56, because a "
        "keypoint is a single pixel and needs the finer grid.",
    },
    "mask_branch": {
        "setting": "ResNet-101-FPN, COCO test-dev, box AP (Table 3)",
        "metric": "box AP",
        "numbers": {
            "no_mask": {"AP": 37.3, "AP50": 59.6, "AP75": 40.3},
            "baseline": {"AP": 38.2, "AP50": 60.3, "AP75": 41.7},
        },
        "note": "The same network with and without the mask branch: +0.9 box AP from multi-task training "
        "alone (Table 5, person only, R50-FPN minival: 52.5 -> 53.6).",
    },
}


# The paper's direction in each set: (better, worse, the paper's gap in AP points), to compare our runs with.
PAPER_DIRECTIONS: dict[str, list[tuple[str, str, float]]] = {
    "pooler": [("baseline", "roipool", 3.4), ("baseline", "roiwarp", 3.1)],
    "mask_loss": [("baseline", "softmax", 5.5), ("baseline", "agnostic", 0.6)],
    "mask_head": [("baseline", "mlp", 2.1)],
    "resolution": [],
    "mask_branch": [("baseline", "no_mask", 0.9)],
}


# What the baseline is called when a set compares it with its alternatives.
BASELINE_ROLE = {
    "pooler": "RoIAlign",
    "mask_loss": "per-class sigmoid",
    "mask_head": "FCN-4",
    "resolution": "28x28 masks",
    "mask_branch": "with mask branch",
}


def variants() -> dict[str, ablate.Variant]:
    """Every variant of every set, by name."""
    return {v.name: v for _, _, vs in ablate.SETS.values() for v in vs}


def set_iou_type(set_name: str) -> str:
    """The set's headline metric: box AP for the mask-branch set, mask AP for the others (as ablate.plot)."""
    return "bbox" if set_name == "mask_branch" else "segm"


# ------------------------------------------------------------------------------------------------ results
def load_results(path: str | Path = RESULTS) -> dict[str, Any] | None:
    """The sweep's results.json (written by `python -m minimrcnn.ablate`), or None if it is not there."""
    path = Path(path)
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def missing_message(path: str | Path = RESULTS) -> str:
    return (
        f"No ablation results at {Path(path).as_posix()} yet: they are produced by "
        "`python -m minimrcnn.ablate` (about an hour on a 2-core CPU). Showing the paper's numbers only."
    )


def table_rows(
    results: dict[str, Any] | None, set_name: str, names: list[str] | None = None, live: dict | None = None
) -> list[dict[str, Any]]:
    """One row per variant of the set (or of `names`): our mean and spread over seeds, and the paper's.

    `live` is a {variant: summarize()-row} dict of runs made on the spot; they are listed after the sweep's.
    """
    title, _, set_variants = ablate.SETS[set_name]
    names = names if names is not None else [v.name for v in set_variants]
    labels = {v.name: v.label for v in set_variants}
    paper = PAPER.get(set_name, {}).get("numbers", {})
    rows = []

    def row(name: str, table: dict[str, Any], source: str) -> dict[str, Any]:
        seg, box = table.get("segm"), table.get("bbox")
        r: dict[str, Any] = {"variant": name, "label": labels.get(name, name), "source": source}
        for key, t in (("mask", seg), ("box", box)):
            for m in ("AP", "AP50", "AP75"):
                r[f"{key} {m}"] = None if t is None else round(t[m], 1)
                r[f"{key} {m} std"] = None if t is None else round(t[f"{m}_std"], 1)
        r["seeds"] = (seg or box or {}).get("seeds", 0)
        r["paper AP"] = paper.get(name, {}).get("AP")
        return r

    for name in names:
        if results is not None and name in results.get("table", {}):
            rows.append(row(name, results["table"][name], f"{results['iters']} it"))
        elif live is None or name not in live:
            rows.append(row(name, {}, "not run") | {"paper AP": paper.get(name, {}).get("AP")})
    for name, table in (live or {}).items():
        if name in names:
            rows.append(row(name, table["table"], f"live, {table['iters']} it"))
    return rows


def compare(
    results: dict[str, Any],
    better: str,
    worse: str,
    iou_type: str = "segm",
    metric: str = "AP",
    runs_dir: str | Path | None = None,
) -> tuple[float, float, int]:
    """Paired comparison over the seeds both variants have (runs with the same seed see the same data in the
    same order): (mean of 100 * (better - worse), sample standard deviation of the differences (0 for one
    pair), number of pairs). The pairs are read from <runs_dir>/<name>-s<seed>/eval.json when given (a
    partial sweep may lack some seeds); otherwise results["runs"] must hold every seed, in order."""
    import statistics

    pairs = []
    if runs_dir is not None:
        for seed in results["seeds"]:
            evs = []
            for name in (better, worse):
                f = Path(runs_dir) / f"{name}-s{seed}" / "eval.json"
                ev = json.loads(f.read_text()) if f.is_file() else {}
                evs.append(ev if ev.get("iteration") == results["iters"] else None)
            if all(evs):
                pairs.append(tuple(evs))
    else:
        a, b = results["runs"].get(better, []), results["runs"].get(worse, [])
        if len(a) == len(b) == len(results["seeds"]):
            pairs = list(zip(a, b))
    diffs = [
        100 * (x[iou_type][metric] - y[iou_type][metric]) for x, y in pairs if iou_type in x and iou_type in y
    ]
    if not diffs:
        return float("nan"), float("nan"), 0
    spread = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
    return statistics.fmean(diffs), spread, len(diffs)


def verdicts(results: dict[str, Any] | None, set_name: str, runs_dir: str | Path | None = None) -> list[str]:
    """One sentence per comparison the paper makes in this set: our paired gain and whether it agrees."""
    if not PAPER_DIRECTIONS.get(set_name):
        return ["the paper makes no claim here to compare with"]
    if results is None:
        return ["no results to compare with yet"]
    labels = {v.name: v.label.split(" (")[0] for v in variants().values()} | {
        "baseline": BASELINE_ROLE[set_name]
    }
    iou_type = set_iou_type(set_name)
    kind = "box" if iou_type == "bbox" else "mask"
    out = []
    for better, worse, paper_gap in PAPER_DIRECTIONS[set_name]:
        pair = f"{labels[better]} vs {labels[worse]}"
        if better not in results.get("runs", {}) or worse not in results.get("runs", {}):
            out.append(f"{pair}: not in these results")
            continue
        gain, spread, n = compare(results, better, worse, iou_type, runs_dir=runs_dir)
        if n == 0:
            out.append(f"{pair}: no seed run for both yet")
            continue
        gain = round(gain, 1) or 0.0  # no "-0.0"
        if n >= 2 and abs(gain) <= max(spread, 0.3):
            word = "within the seed-to-seed noise"
        elif gain > 0:
            word = "the paper's direction"
        else:
            word = "the opposite of the paper"
        noise = f" ± {spread:.1f} over {n} seeds" if n >= 2 else " (one seed: no noise estimate)"
        out.append(f"{pair}: {gain:+.1f}{noise} {kind} AP (paper: +{paper_gap:.1f}): {word}")
    return out


def _cell(r: dict[str, Any], key: str) -> str:
    if r[key] is None:
        return "—"
    return f"{r[key]:.1f} ± {r[key + ' std']:.1f}" if r["seeds"] > 1 else f"{r[key]:.1f}"


def table_markdown(rows: list[dict[str, Any]], set_name: str) -> str:
    """The rows as a Markdown table (mean ± spread over seeds; the paper's AP in the last column)."""
    metric = PAPER.get(set_name, {}).get("metric", "mask AP")
    lines = [
        f"| variant | runs | mask AP | mask AP50 | mask AP75 | box AP | paper {metric} |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        paper = "—" if r["paper AP"] is None else f"{r['paper AP']:.1f}"
        runs = r["source"] if r["seeds"] == 0 else f"{r['seeds']} seed{'s' * (r['seeds'] > 1)}, {r['source']}"
        cells = " | ".join(_cell(r, k) for k in ("mask AP", "mask AP50", "mask AP75", "box AP"))
        lines.append(f"| {r['label']} | {runs} | {cells} | {paper} |")
    return "\n".join(lines)


def table_html(rows: list[dict[str, Any]], set_name: str) -> str:
    """The same table as HTML, with the paper's setting underneath (what the panel shows)."""
    metric = PAPER.get(set_name, {}).get("metric", "mask AP")
    head = ["variant", "runs", "mask AP", "mask AP50", "mask AP75", "box AP", f"paper {metric}"]
    out = ["<table>", "<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for r in rows:
        paper = "—" if r["paper AP"] is None else f"{r['paper AP']:.1f}"
        runs = r["source"] if r["seeds"] == 0 else f"{r['seeds']} seed(s), {r['source']}"
        cells = [
            r["label"],
            runs,
            *(_cell(r, k) for k in ("mask AP", "mask AP50", "mask AP75", "box AP")),
            paper,
        ]
        out.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    out.append("</table>")
    info = PAPER.get(set_name, {})
    out.append(
        f"<p><i>paper: {html.escape(info.get('setting', ''))}. {html.escape(info.get('note', ''))}</i></p>"
    )
    return "\n".join(out)


def _subset(results: dict[str, Any], set_name: str, names: list[str]) -> dict[str, Any]:
    """A copy of results whose set lists only `names` (the ones with results), for ablate.plot."""
    sets = {set_name: dict(results["sets"][set_name], variants=[n for n in names if n in results["table"]])}
    labels = dict(results["labels"], baseline=f"{BASELINE_ROLE[set_name]} (baseline)")  # short bar labels
    return dict(results, sets=sets, labels=labels)


def bar_figure(
    results: dict[str, Any] | None, set_name: str, names: list[str] | None = None, live: dict | None = None
):
    """Left: our AP and AP75 (ablate.plot, error bars = spread over seeds); right: the paper's AP.

    Live runs are added to the left panel as extra variants. Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    names = names if names is not None else [v.name for v in ablate.SETS[set_name][2]]
    merged = _merge_live(results, set_name, live)
    shown = [n for n in names if merged is not None and n in merged["table"]]
    shown += [
        f"{n} (live)" for n in names if live and n in live and merged and f"{n} (live)" in merged["table"]
    ]
    if merged is not None and shown:
        fig = ablate.plot(_subset(merged, set_name, shown), sets=[set_name])
        ax = fig.axes[0]
        w, h = fig.get_size_inches()
        fig.set_size_inches(max(w, 3.6) + 3.4, h)
        ax.set_position([0.09, 0.3, 0.45, 0.6])
        paper_ax = fig.add_axes([0.66, 0.3, 0.31, 0.6])
    else:
        fig, paper_ax = plt.subplots(figsize=(3.8, 3.2))
        fig.subplots_adjust(bottom=0.3)
    numbers = PAPER.get(set_name, {}).get("numbers", {})
    labels = {v.name: v.label.split(" (")[0] for v in ablate.SETS[set_name][2]} | {
        "baseline": BASELINE_ROLE[set_name]
    }
    with_paper = [n for n in names if n in numbers]
    paper_ax.bar(range(len(with_paper)), [numbers[n]["AP"] for n in with_paper], width=0.6, color="0.6")
    paper_ax.set_xticks(range(len(with_paper)))
    paper_ax.set_xticklabels([labels[n] for n in with_paper], rotation=25, ha="right", fontsize=8)
    metric = PAPER.get(set_name, {}).get("metric", "mask AP")
    paper_ax.set_title(f"paper (COCO), {metric}" if with_paper else "not in the paper", fontsize=9)
    paper_ax.set_ylabel("AP (%)")
    if with_paper:
        paper_ax.set_ylim(0, max(numbers[n]["AP"] for n in with_paper) * 1.15)
        for i, n in enumerate(with_paper):
            paper_ax.text(
                i, numbers[n]["AP"], f"{numbers[n]['AP']:.1f}", ha="center", va="bottom", fontsize=8
            )
    return fig


def _merge_live(results: dict[str, Any] | None, set_name: str, live: dict | None) -> dict[str, Any] | None:
    """results (with this set listed, even if the sweep skipped it) plus the live runs, as '<name> (live)'."""
    if not live and (results is None or set_name in results["sets"]):
        return results
    base = results or {"iters": 0, "seeds": [], "sets": {}, "labels": {}, "table": {}, "runs": {}}
    merged = dict(base, sets=dict(base["sets"]), labels=dict(base["labels"]), table=dict(base["table"]))
    merged["sets"].setdefault(
        set_name, {"title": ablate.SETS[set_name][0], "paper": ablate.SETS[set_name][1], "variants": []}
    )
    labels = {v.name: v.label for v in variants().values()}
    for name, entry in (live or {}).items():
        key = f"{name} (live)"
        merged["table"][key] = entry["table"]
        merged["labels"][key] = f"{labels.get(name, name).split(' (')[0]}, live"
    return merged


# ------------------------------------------------------------------------------------- predicted masks
def _sample_dataset(data_root: str | Path):
    """The shapes val split under data_root as it is on disk (generated with the defaults if absent)."""
    from minimrcnn.config import shapes_cpu
    from minimrcnn.data import build_dataset
    from minimrcnn.data.coco import CocoInstances

    root = Path(data_root)
    if (root / "annotations" / "instances_val.json").is_file() and (root / "val").is_dir():
        return CocoInstances(root / "val", root / "annotations" / "instances_val.json", train=False)
    tc = shapes_cpu().train
    tc.data_root = str(root)
    return build_dataset(tc, tc.val_split, train=False)


def save_samples(
    run_dir: str | Path,
    data_root: str | Path = "data/shapes",
    image_ids: tuple[int, ...] = SAMPLE_IMAGE_IDS,
    score_thresh: float = 0.05,
) -> Path:
    """Predict a few validation images with the run's checkpoint.pt; write <run_dir>/samples.json."""
    import torch

    from minimrcnn.cli import load_model
    from minimrcnn.engine.evaluator import to_coco_results

    run_dir = Path(run_dir)
    model, state = load_model(str(run_dir / "checkpoint.pt"), torch.device("cpu"))
    dataset = _sample_dataset(data_root)
    index = {img_id: i for i, img_id in enumerate(dataset.ids)}
    image_ids = tuple(i for i in image_ids if i in index) or tuple(
        dataset.ids[: len(image_ids)]
    )  # small sets
    detections = []
    with torch.no_grad():
        for img_id in image_ids:
            image, _ = dataset[index[img_id]]
            det = model([image])[0]
            keep = det["scores"] >= score_thresh
            det = {k: v[keep] for k, v in det.items()}
            detections += to_coco_results(det, img_id, state.get("label_to_cat_id", dataset.label_to_cat_id))
    path = run_dir / SAMPLES_FILE
    path.write_text(
        json.dumps(
            {"iteration": int(state["iteration"]), "image_ids": list(image_ids), "detections": detections}
        )
    )
    return path


def load_samples(run_dir: str | Path, data_root: str | Path | None = None) -> dict[str, Any] | None:
    """<run_dir>/samples.json; made (again) from the run's checkpoint first if it is missing or older than the
    run's eval.json and data_root is given; None when there is neither samples.json nor a checkpoint."""
    run_dir = Path(run_dir)
    path = run_dir / SAMPLES_FILE
    if data_root is not None and (run_dir / "checkpoint.pt").is_file():
        ev = run_dir / "eval.json"
        done = json.loads(ev.read_text()).get("iteration") if ev.is_file() else None
        if not path.is_file() or (done is not None and json.loads(path.read_text())["iteration"] != done):
            save_samples(run_dir, data_root)
    return json.loads(path.read_text()) if path.is_file() else None


def _detections_for(samples: dict[str, Any], img_id: int, cat_id_to_label: dict[int, int]):
    import numpy as np
    import pycocotools.mask as mask_utils
    import torch

    dets = [d for d in samples["detections"] if d["image_id"] == img_id]
    out = {
        "boxes": torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (d["bbox"] for d in dets)]).reshape(
            -1, 4
        ),
        "scores": torch.tensor([d["score"] for d in dets]),
        "labels": torch.tensor([cat_id_to_label[d["category_id"]] for d in dets], dtype=torch.int64),
    }
    if dets and all("segmentation" in d for d in dets):
        masks = np.stack([mask_utils.decode(d["segmentation"]) for d in dets])  # [N, H, W]
        out["masks"] = torch.from_numpy(masks).float()[:, None]
    return out


def mask_figure(
    results_dir: str | Path,
    names: list[str],
    seed: int = 0,
    data_root: str | Path = "data/shapes",
    score_thresh: float = 0.5,
    live_dir: str | Path | None = None,
    live_names: tuple[str, ...] = (),
    max_images: int = 4,
):
    """Ground truth, then one row per variant: its predicted masks on the same validation images.

    A variant's predictions come from <results_dir>/runs/<name>-s<seed>/samples.json (made from that run's
    checkpoint if only the checkpoint is there). Live runs (`live_names`) come from `live_dir` instead.
    Returns (figure or None, list of variants without predictions).
    """
    import matplotlib.pyplot as plt

    from minimrcnn.viz import draw_detections, draw_targets

    rows, missing = [], []
    labels = {v.name: v.label.split(" (")[0] for v in variants().values()}
    for name in list(names) + [f"{n} (live)" for n in live_names]:
        live = name.endswith(" (live)")
        base = name.removesuffix(" (live)")
        root = Path(live_dir if live else results_dir)
        try:
            samples = load_samples(root / "runs" / f"{base}-s{seed}", data_root)
        except Exception as e:  # e.g. a checkpoint that no longer loads: say so, draw the others
            samples = None
            name = f"{name} ({type(e).__name__}: {str(e)[:80]})"
        if samples is None:
            missing.append(name)
        else:
            rows.append((f"{labels.get(base, base)}{', live' if live else ''}", samples))
    if not rows:
        return None, missing
    dataset = _sample_dataset(data_root)
    index = {img_id: i for i, img_id in enumerate(dataset.ids)}
    image_ids = rows[0][1]["image_ids"][:max_images]
    fig, axes = plt.subplots(
        len(rows) + 1, len(image_ids), figsize=(2.1 * len(image_ids), 2.1 * (len(rows) + 1)), squeeze=False
    )
    for j, img_id in enumerate(image_ids):
        image, target = dataset[index[img_id]]
        draw_targets(image, target, dataset.class_names, ax=axes[0, j])
        for i, (_, samples) in enumerate(rows, start=1):
            det = _detections_for(samples, img_id, dataset.cat_id_to_label)
            draw_detections(image, det, dataset.class_names, score_thresh, ax=axes[i, j])
    for i, label in enumerate(["ground truth"] + [r[0] for r in rows]):
        axes[i, 0].set_title(label, fontsize=8, loc="left")
    fig.tight_layout(pad=0.3)
    return fig, missing


def jpeg(fig, quality: int = 75):
    """A figure as an IPython JPEG image: pictures of textured images are several times smaller than PNG."""
    import io

    import matplotlib.pyplot as plt
    from IPython.display import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="jpeg", pil_kwargs={"quality": quality})
    plt.close(fig)
    return Image(data=buf.getvalue(), format="jpeg")


# ------------------------------------------------------------------------------------------- run live
def run_live(
    name: str,
    seed: int,
    iters: int,
    out: str | Path = "runs/ablate_live",
    data_root: str | Path = "data/shapes",
    extra_overrides: tuple[str, ...] = (),
    on_log=None,
) -> dict[str, Any]:
    """Train and evaluate one variant now (`ablate.run_variant`), draw its sample predictions, and return
    {"iters", "eval", "table" (ablate.summarize's row)}. `extra_overrides` (e.g. a smaller dataset) are
    appended to the variant's own."""
    variant = variants()[name]
    variant = replace(variant, overrides=tuple(variant.overrides) + tuple(extra_overrides))
    out = Path(out)
    ev = ablate.run_variant(variant, seed, iters, out, str(data_root), progress=False, on_log=on_log)
    load_samples(out / "runs" / f"{name}-s{seed}", data_root)  # draws the new run's sample predictions
    return {"iters": iters, "eval": ev, "table": ablate.summarize({name: [ev]})[name]}


# --------------------------------------------------------------------------------------------- the panel
class AblationPanel:
    """Set selector, variant multi-select, AP table, bar chart, predicted masks and a "run live" button.

    The callbacks (`refresh`, `run_selected`) only call the functions above. What they produced is kept in
    `rows`, `bar_fig`, `mask_fig` and `status` (tests and curious readers can look at them directly).
    """

    def __init__(
        self,
        results_path: str | Path = RESULTS,
        data_root: str | Path = "data/shapes",
        live_out: str | Path = "runs/ablate_live",
        live_iters: int = 100,
        extra_overrides: tuple[str, ...] = (),
        set_name: str = "pooler",
    ):
        import ipywidgets as W

        self.results_path = Path(results_path)
        self.results = load_results(self.results_path)
        self.data_root, self.live_out, self.extra_overrides = (
            data_root,
            Path(live_out),
            tuple(extra_overrides),
        )
        self.live: dict[str, dict[str, Any]] = {}
        self.rows: list[dict[str, Any]] = []
        self.bar_fig = self.mask_fig = None
        self.missing_masks: list[str] = []

        self.set_selector = W.Dropdown(
            options=[(t, s) for s, (t, _, _) in ablate.SETS.items()], value=set_name, description="set"
        )
        self.variant_selector = W.SelectMultiple(description="variants", rows=4)
        self.iters = W.BoundedIntText(value=live_iters, min=1, max=5000, description="iterations")
        self.seed = W.BoundedIntText(value=0, min=0, max=99, description="seed")
        self.run_button = W.Button(
            description="run live",
            button_style="warning",
            tooltip="train the selected variants now (a few CPU minutes each)",
        )
        self.status = W.HTML()
        self.table = W.HTML()
        self.plot_out, self.mask_out = W.Output(), W.Output()
        self._filling = False
        self._fill_variants()
        self.set_selector.observe(self._on_set, names="value")
        self.variant_selector.observe(self._on_variants, names="value")
        self.run_button.on_click(lambda button: self.run_selected())
        controls = W.HBox([self.set_selector, self.variant_selector])
        live = W.HBox([self.iters, self.seed, self.run_button])
        self.widget = W.VBox([controls, live, self.status, self.table, self.plot_out, self.mask_out])
        if self.results is None:
            self.status.value = f"<i>{html.escape(missing_message(self.results_path))}</i>"
        self.refresh()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def _fill_variants(self) -> None:
        """Offer the set's variants, all selected (without a refresh for each intermediate value)."""
        vs = ablate.SETS[self.set_selector.value][2]
        self._filling = True
        try:
            self.variant_selector.options = [(v.label, v.name) for v in vs]
            self.variant_selector.value = tuple(v.name for v in vs)
        finally:
            self._filling = False

    def _on_set(self, change) -> None:
        self._fill_variants()
        self.refresh()

    def _on_variants(self, change) -> None:
        if not self._filling:
            self.refresh()

    @property
    def selected(self) -> list[str]:
        return list(self.variant_selector.value)

    def refresh(self) -> None:
        """Redraw the table, the bars and the masks for the selected set and variants."""
        import matplotlib.pyplot as plt
        from IPython.display import display

        set_name = self.set_selector.value
        names = self.selected
        self.rows = table_rows(self.results, set_name, names, self.live)
        self.table.value = table_html(self.rows, set_name)
        if self.bar_fig is not None:
            plt.close(self.bar_fig)
        self.bar_fig = bar_figure(self.results, set_name, names, self.live)
        with self.plot_out:
            self.plot_out.clear_output(wait=True)
            display(self.bar_fig)
        if self.mask_fig is not None:
            plt.close(self.mask_fig)
        seed = self.results["seeds"][0] if self.results else int(self.seed.value)
        live_names = tuple(n for n in names if n in self.live)
        self.mask_fig, self.missing_masks = mask_figure(
            self.results_path.parent,
            [n for n in names if self.results and n in self.results["table"]],
            seed,
            self.data_root,
            live_dir=self.live_out,
            live_names=live_names,
        )
        with self.mask_out:
            self.mask_out.clear_output(wait=True)
            if self.mask_fig is not None:
                display(jpeg(self.mask_fig))
            if self.missing_masks:
                print(
                    "no predicted masks (no samples.json or checkpoint) for:",
                    ", ".join(self.missing_masks),
                )
        plt.close("all")

    def run_selected(self) -> None:
        """Train every selected variant now with the chosen budget and seed, then refresh."""
        iters, seed = int(self.iters.value), int(self.seed.value)
        for name in self.selected:
            self.status.value = f"training <b>{html.escape(name)}</b> for {iters} iterations (seed {seed})..."

            def on_log(record, name=name):
                self.status.value = (
                    f"training <b>{html.escape(name)}</b>: iteration {record['iteration']}/{iters}, "
                    f"loss {record['loss']:.3f}"
                )

            try:
                self.live[name] = run_live(
                    name, seed, iters, self.live_out, self.data_root, self.extra_overrides, on_log
                )
            except Exception as e:  # shown in the panel; ipywidgets would hide it in the log
                self.status.value = f"<b>run live failed</b> for {html.escape(name)}: {html.escape(repr(e))}"
                raise
        self.status.value = f"done: {', '.join(self.selected)} ({iters} iterations, seed {seed})"
        self.refresh()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m minimrcnn.widgets",
        description="Write samples.json (predicted masks on a few val images) for every "
        "run of an ablation sweep that has a checkpoint and no samples yet.",
    )
    p.add_argument("out", type=Path, nargs="?", default=RESULTS.parent, help="the sweep's --out folder")
    p.add_argument("--data-root", default="data/shapes")
    p.add_argument("--force", action="store_true", help="rewrite existing samples.json")
    args = p.parse_args(argv)
    failed = 0
    for ckpt in sorted((args.out / "runs").glob("*/checkpoint.pt")):
        if args.force or not (ckpt.parent / SAMPLES_FILE).is_file():
            try:
                print(save_samples(ckpt.parent, args.data_root).as_posix())
            except Exception as e:  # one bad run must not stop the others
                failed += 1
                print(f"{ckpt.parent.as_posix()}: failed ({type(e).__name__}: {e})")
    return 1 if failed else 0


if __name__ == "__main__":
    from minimrcnn.cli import run

    run(main)
