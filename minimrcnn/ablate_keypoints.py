"""The paper's keypoint tables in miniature, on the figures dataset (chapter 10 reads the results).

    python -m minimrcnn.ablate_keypoints                          # both sets, seeds 0 1 2
    python -m minimrcnn.ablate_keypoints --sets pooler --iters 300 --out /tmp/kp

Table 6 (`pooler`): RoIPool vs RoIAlign for keypoints; Table 4 (`mask`): keypoint-only vs keypoint & mask.
Every run is the `figures_cpu` preset with one change, a fixed iteration budget and a seed. Runs live in
<runs>/<variant>-s<seed>/ (checkpoints: not for git) and are skipped when finished with the same
configuration, so a sweep can be interrupted and continued; the summary (per-run metrics, mean and spread
per variant, the paper's figures) is <out>/results.json, small enough to commit.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from minimrcnn.ablations.results import points_mean_and_spread
from minimrcnn.ablations.sweep import Variant, finished_run
from minimrcnn.config import Config, apply_overrides
from minimrcnn.presets import figures_cpu

KP_ALIGN = Variant("keypoint", "RoIAlign, keypoint-only (figures_cpu)")
SETS: dict[str, tuple[str, dict[str, list[float]], list[Variant]]] = {
    "pooler": (
        "Table 6: RoIPool vs RoIAlign (keypoint AP/AP50/AP75/APM/APL, R50-FPN, minival)",
        {"roipool": [59.8, 86.2, 66.7, 55.1, 67.4], "keypoint": [64.2, 86.6, 69.7, 58.7, 73.0]},
        [Variant("roipool", "RoIPool, keypoint-only", ("model.pooler=roipool",)), KP_ALIGN],
    ),
    "mask": (
        "Table 4: keypoint-only vs keypoint & mask (keypoint AP/AP50/AP75/APM/APL, R50-FPN, test-dev)",
        {"keypoint": [62.7, 87.0, 68.4, 57.4, 71.1], "keypoint_mask": [63.1, 87.3, 68.7, 57.8, 71.4]},
        [KP_ALIGN, Variant("keypoint_mask", "RoIAlign, keypoint & mask", ("model.mask_on=true",))],
    ),
}
METRICS = ("AP", "AP50", "AP75", "APm", "APl")


def sweep_config(variant: Variant, seed: int, iters: int, data_root: str = "data/figures") -> Config:
    """figures_cpu with a fixed budget of `iters` iterations (no time cap), a seed, and the variant."""
    cfg = figures_cpu()
    cfg.name = f"kp-{variant.name}"
    cfg.train.iters, cfg.train.time_budget_s, cfg.train.seed = iters, 0.0, seed
    cfg.train.data_root, cfg.train.checkpoint_every = data_root, iters
    return apply_overrides(cfg, list(variant.overrides))


def run_one(variant: Variant, seed: int, iters: int, runs: Path, data_root: str = "data/figures") -> dict:
    """Train + evaluate (or read the finished run): {"seed", "seconds", "keypoints", "bbox"[, "segm"]}."""
    from minimrcnn.engine.trainer import train

    run_dir = runs / f"{variant.name}-s{seed}"
    cfg = sweep_config(variant, seed, iters, data_root)
    if (done := finished_run(run_dir, cfg)) is not None:
        return {"seed": seed, **{k: v for k, v in done.items() if k != "iteration"}}
    result = train(cfg, run_dir, progress=False)
    (run_dir / "eval.json").write_text(
        json.dumps({"iteration": result["iteration"], "seconds": result["seconds"], **result["metrics"]})
    )
    return {"seed": seed, "seconds": result["seconds"], **result["metrics"]}


def summarize(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Keypoint metrics over seeds, in AP points: mean and sample spread (`AP`, `AP_std`, ...)."""
    row: dict[str, float | None] = {}
    for m in METRICS:  # (None: no figure of that size)
        row[m], row[f"{m}_std"] = points_mean_and_spread([r["keypoints"].get(m) for r in runs])
    return row


def run_sets(
    sets: list[str], seeds: list[int], iters: int, out: Path, runs: Path, data_root: str = "data/figures"
) -> dict:
    results: dict[str, Any] = {"iters": iters, "seeds": seeds, "sets": {}, "runs": {}, "table": {}}
    variants: dict[str, Variant] = {}
    for name in sets:
        title, paper, members = SETS[name]
        results["sets"][name] = {"title": title, "paper": paper, "variants": [v.name for v in members],
                                 "labels": {v.name: v.label for v in members}}  # fmt: skip
        variants |= {v.name: v for v in members}
    for seed in seeds:  # seeds outside: an interrupted sweep still has every variant on the same seeds
        for v in variants.values():
            print(f"{v.label}, seed {seed}", flush=True)
            results["runs"].setdefault(v.name, []).append(run_one(v, seed, iters, runs, data_root))
            results["table"][v.name] = summarize(results["runs"][v.name])
            out.mkdir(parents=True, exist_ok=True)
            (out / "results.json").write_text(json.dumps(results, indent=1))  # after every run
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m minimrcnn.ablate_keypoints", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--iters", type=int, default=150, help="training iterations per run (default 150)")
    p.add_argument("--out", type=Path, default=Path("results/keypoints"))
    p.add_argument("--runs", type=Path, default=Path("runs/keypoints"), help="run folders (checkpoints)")
    p.add_argument("--data-root", default="data/figures")
    args = p.parse_args(argv)
    results = run_sets(args.sets, args.seeds, args.iters, args.out, args.runs, args.data_root)
    for name, row in results["table"].items():
        print(f"{name:14s} keypoint AP {row['AP']:.1f} ± {row['AP_std']:.1f}  AP50 {row['AP50']:.1f}")
    return 0


if __name__ == "__main__":
    from minimrcnn.errors import run_command

    run_command(main)
