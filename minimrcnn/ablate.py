"""The paper's ablations (Table 2) in miniature: train named sets of configurations with identical budgets
and seeds on the shapes dataset, and tabulate COCO AP (mean and spread over seeds).

    python -m minimrcnn.ablate                       # every set, 2 seeds, into results/ablations/
    python -m minimrcnn.ablate --sets pooler --seeds 0 1 2
    python -m minimrcnn.ablate --sets mask_loss --iters 200 --out /tmp/abl

Each run lives in <out>/runs/<config>-s<seed>/ and is skipped when its eval.json exists, so an interrupted
sweep continues where it stopped. The summary is <out>/results.json, <out>/results.md and <out>/results.png.
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minimrcnn.config import Config, apply_overrides, shapes_cpu


@dataclass(frozen=True)
class Variant:
    name: str  # short id, used in folder names
    label: str  # what a table shows
    overrides: tuple[str, ...] = field(default_factory=tuple)


BASELINE = Variant("baseline", "RoIAlign, sigmoid, FCN-4, 28x28 (baseline)")  # the shapes_cpu preset

# each set: (title, the paper's numbers for context, variants); the baseline is part of every set
SETS: dict[str, tuple[str, str, list[Variant]]] = {
    "pooler": (
        "RoI pooling (Table 2c)",
        "paper, R50-C4 mask AP: RoIPool 26.9, RoIWarp 27.2, RoIAlign 30.3; AP75 26.4 -> 31.5 (Pool -> Align)",
        [
            Variant("roipool", "RoIPool", ("model.pooler=roipool",)),
            Variant("roiwarp", "RoIWarp", ("model.pooler=roiwarp",)),
            BASELINE,
        ],
    ),
    "mask_loss": (
        "Mask loss (Table 2b)",
        "paper, R50-C4 mask AP: softmax 24.8, per-class sigmoid 30.3, class-agnostic 29.7",
        [
            Variant("softmax", "softmax over classes", ("model.mask_loss=softmax",)),
            Variant("agnostic", "class-agnostic sigmoid", ("model.mask_loss=agnostic",)),
            BASELINE,
        ],
    ),
    "mask_head": (
        "Mask head (Table 2e)",
        "paper, R50-FPN mask AP: MLP (fc 1024, fc 1024, fc 784) 31.5, FCN 33.6 (FCN-4 vs FCN-2: our extra)",
        [
            Variant("mlp", "MLP head", ("model.mask_head=mlp",)),
            Variant("fcn2", "FCN-2", ("model.mask_head=fcn2",)),
            BASELINE,
        ],
    ),
    "resolution": (
        "Mask resolution",
        "paper: 28x28 masks throughout (56x56 only for the keypoint head); 56x56 here is our extra",
        [BASELINE, Variant("res56", "56x56 masks", ("model.mask_resolution=56",))],
    ),
    "mask_branch": (
        "Does the mask branch help boxes? (Table 3)",
        "paper (Table 3, R101-FPN, test-dev) box AP: Faster R-CNN with RoIAlign 37.3 vs Mask R-CNN 38.2",
        [Variant("no_mask", "no mask branch (Faster R-CNN)", ("model.mask_on=false",)), BASELINE],
    ),
}

METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def ablation_config(variant: Variant, seed: int, iters: int, data_root: str) -> Config:
    """The shapes preset with a fixed, shorter budget (so every variant gets the same), plus the variant."""
    cfg = shapes_cpu()
    cfg.name = f"ablate-{variant.name}"
    cfg.train.iters = iters
    cfg.train.time_budget_s = 0.0  # identical iteration budgets, whatever the machine's speed
    cfg.train.seed = seed
    cfg.train.data_root = data_root
    cfg.train.checkpoint_every = iters
    return apply_overrides(cfg, list(variant.overrides))


def finished(
    variant: Variant, seed: int, iters: int, out: Path, data_root: str = "data/shapes"
) -> dict[str, Any] | None:
    """The eval.json of a finished run of exactly this configuration (preset + variant + budget), or None.

    A run made with another configuration (say, before the preset changed) does not count: it is redone.
    """
    run_dir = out / "runs" / f"{variant.name}-s{seed}"
    done, config = run_dir / "eval.json", run_dir / "config.json"
    if not (done.exists() and config.exists()):
        return None
    wanted = json.loads(json.dumps(ablation_config(variant, seed, iters, data_root).to_dict()))
    result = json.loads(done.read_text())
    saved = json.loads(config.read_text())  # (also holds the schedule the run followed, under "effective")
    if result.get("iteration") != iters or {k: saved.get(k) for k in wanted} != wanted:
        return None
    return {**result, "seed": seed}


def run_variant(
    variant: Variant,
    seed: int,
    iters: int,
    out: Path,
    data_root: str = "data/shapes",
    progress: bool = False,
    on_log=None,
) -> dict[str, Any]:
    """Train + evaluate one (variant, seed), or read its earlier result. Returns its eval metrics."""
    from minimrcnn.engine.trainer import train

    if (done := finished(variant, seed, iters, out, data_root)) is not None:
        return done
    run_dir = out / "runs" / f"{variant.name}-s{seed}"
    result = train(
        ablation_config(variant, seed, iters, data_root), run_dir, progress=progress, on_log=on_log
    )
    return {"iteration": result["iteration"], **result["metrics"], "seconds": result["seconds"], "seed": seed}


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, dict[str, float]]]:
    """{variant: [eval per seed]} -> {variant: {"bbox"|"segm": {metric: mean, metric_std: spread}}}."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for name, evals in runs.items():
        table[name] = {}
        for iou_type in ("bbox", "segm"):
            per_seed = [e[iou_type] for e in evals if iou_type in e]
            if not per_seed:
                continue
            row = {}
            for m in METRICS:
                values = [100 * s[m] for s in per_seed]
                row[m] = statistics.fmean(values)
                row[f"{m}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
            row["seeds"] = len(per_seed)
            table[name][iou_type] = row
    return table


def markdown(results: dict[str, Any]) -> str:
    lines = [f"# Ablations on shapes ({results['iters']} iterations, seeds {results['seeds']})", ""]
    header = ["| variant | mask AP | mask AP50 | mask AP75 | box AP |", "|---|---|---|---|---|"]
    for info in results["sets"].values():
        lines += [f"## {info['title']}", "", f"_{info['paper']}_", "", *header]
        for name in [n for n in info["variants"] if n in results["table"]]:
            row = results["table"][name]
            seg, box = row.get("segm"), row["bbox"]

            def cell(r, m):
                return f"{r[m]:.1f} ± {r[m + '_std']:.1f}" if r else "—"

            lines.append(f"| {results['labels'][name]} | {cell(seg, 'AP')} | {cell(seg, 'AP50')} | "
                         f"{cell(seg, 'AP75')} | {cell(box, 'AP')} |")  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path | None = None, sets: list[str] | None = None):
    """One bar chart per set: mask AP and AP75 (box AP for the mask-branch set), error bars = spread."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = sets or list(results["sets"])
    fig, axes = plt.subplots(1, len(sets), figsize=(3.6 * len(sets), 3.2), squeeze=False)
    for ax, set_name in zip(axes[0], sets):
        info = results["sets"][set_name]
        names = [n for n in info["variants"] if n in results["table"]]
        iou_type = "bbox" if set_name == "mask_branch" else "segm"
        for j, metric in enumerate(("AP", "AP75")):
            vals = [results["table"][n][iou_type][metric] for n in names]
            errs = [results["table"][n][iou_type][f"{metric}_std"] for n in names]
            xs = [i + (j - 0.5) * 0.38 for i in range(len(names))]
            ax.bar(xs, vals, width=0.36, yerr=errs, capsize=3, label=f"{iou_type} {metric}")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(
            [results["labels"][n].split(" (")[0] for n in names], rotation=25, ha="right", fontsize=8
        )
        ax.set_title(info["title"], fontsize=9)
        ax.set_ylabel("AP (%)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=90)
        plt.close(fig)
    return fig


def run_sets(
    set_names: list[str],
    seeds: list[int],
    iters: int,
    out: Path,
    data_root: str = "data/shapes",
    progress: bool = True,
    only: list[str] | None = None,
) -> dict[str, Any]:
    variants: dict[str, Variant] = {}
    for s in set_names:
        for v in SETS[s][2]:
            variants[v.name] = v
    runs: dict[str, list[dict[str, Any]]] = {}
    for i, v in enumerate(variants.values()):
        runs[v.name] = []
        for seed in seeds:
            if only is not None and v.name not in only:
                if (done := finished(v, seed, iters, out, data_root)) is not None:
                    runs[v.name].append(done)
                continue
            if progress:
                print(f"[{i + 1}/{len(variants)}] {v.label}, seed {seed}", flush=True)
            runs[v.name].append(run_variant(v, seed, iters, out, data_root, progress=progress))
    runs = {name: evals for name, evals in runs.items() if evals}
    results = {
        "iters": iters,
        "seeds": seeds,
        "sets": {
            s: {"title": SETS[s][0], "paper": SETS[s][1], "variants": [v.name for v in SETS[s][2]]}
            for s in set_names
        },  # fmt: skip
        "labels": {v.name: v.label for v in variants.values()},
        "overrides": {v.name: list(v.overrides) for v in variants.values()},
        "table": summarize(runs),
        "runs": runs,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "results.md").write_text(markdown(results))
    plot(results, out / "results.png")
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m minimrcnn.ablate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--iters", type=int, default=500, help="training iterations per run (default 500)")
    p.add_argument("--out", type=Path, default=Path("results/ablations"))
    p.add_argument("--data-root", default="data/shapes")
    p.add_argument("--only", nargs="+", metavar="VARIANT",
                   help="train only these variants (to split a sweep across processes); the summary still "
                   "includes every finished run of the chosen sets")  # fmt: skip
    args = p.parse_args(argv)
    results = run_sets(args.sets, args.seeds, args.iters, args.out, args.data_root, only=args.only)
    print(markdown(results))
    return 0


if __name__ == "__main__":
    from minimrcnn.cli import run

    run(main)
