"""The paper's ablations (Table 2) in miniature: train named sets of configurations with identical budgets
and seeds on the shapes dataset, and tabulate COCO AP (mean and spread over seeds).

    python -m minimrcnn.ablate                       # every set, seeds 0 1 2, 900 iterations each
    python -m minimrcnn.ablate --sets pooler --seeds 0 1 2
    python -m minimrcnn.ablate --sets mask_loss --iters 200 --out /tmp/abl

Each run lives in <out>/runs/<config>-s<seed>/ and is skipped when its eval.json exists, so an interrupted
sweep continues where it stopped. The summary is <out>/results.json, <out>/results.md and <out>/results.png.
The sets themselves (variants, the paper's numbers) are data in `minimrcnn.ablation_sets`; the tables and
paired statistics are in `minimrcnn.ablation_results`, the bar charts in `minimrcnn.ablation_plots`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from minimrcnn.ablations.plots import results_figure
from minimrcnn.ablations.results import results_markdown, summarize
from minimrcnn.ablations.sets import SETS, Variant
from minimrcnn.config import Config, apply_overrides
from minimrcnn.presets import shapes_cpu


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


def json_form(cfg: Config) -> dict[str, Any]:
    """cfg as config.json holds it (tuples as lists), so that a saved and a built config compare equal."""
    return json.loads(json.dumps(cfg.to_dict()))


def finished_run(run_dir: Path, cfg: Config) -> dict[str, Any] | None:
    """The eval.json of run_dir if it is a finished run of exactly `cfg` (its iterations reached), else None.

    config.json is read back as a Config, which drops what the trainer adds (the schedule it followed, under
    "effective") and gives a field added to the config after the run was saved its default: the code then
    behaved so. A run of another configuration (say, an older preset) does not count.
    """
    done, config = run_dir / "eval.json", run_dir / "config.json"
    if not (done.exists() and config.exists()):
        return None
    saved = Config.from_dict(json.loads(config.read_text()))
    result = json.loads(done.read_text())
    if result.get("iteration") != cfg.train.iters or json_form(saved) != json_form(cfg):
        return None
    return result


def finished(
    variant: Variant, seed: int, iters: int, out: Path, data_root: str = "data/shapes"
) -> dict[str, Any] | None:
    """The eval.json (with its seed) of a finished run of this variant, seed and budget, or None."""
    run_dir = out / "runs" / f"{variant.name}-s{seed}"
    result = finished_run(run_dir, ablation_config(variant, seed, iters, data_root))
    return None if result is None else {**result, "seed": seed}


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


def run_sets(
    set_names: list[str],
    seeds: list[int],
    iters: int,
    out: Path,
    data_root: str = "data/shapes",
    progress: bool = True,
    only: list[str] | None = None,
) -> dict[str, Any]:
    variants = {v.name: v for s in set_names for v in SETS[s].variants}
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
        "sets": {  # a readable record of what was compared; code reads minimrcnn.ablation_sets
            s: {"title": SETS[s].title, "metric": SETS[s].metric, "baseline": SETS[s].baseline_role,
                "paper": SETS[s].paper_line(), "variants": SETS[s].names}
            for s in set_names
        },  # fmt: skip
        "labels": {v.name: v.label for v in variants.values()},
        "overrides": {v.name: list(v.overrides) for v in variants.values()},
        "table": summarize(runs),
        "runs": runs,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "results.md").write_text(results_markdown(results))
    results_figure(results, out / "results.png")
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m minimrcnn.ablate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--iters", type=int, default=900,
                   help="iterations per run (default 900: the baseline reaches ~0.71 mask AP)")  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("results/ablations"))
    p.add_argument("--data-root", default="data/shapes")
    p.add_argument("--only", nargs="+", metavar="VARIANT",
                   help="train only these variants (to split a sweep across processes); the summary still "
                   "includes every finished run of the chosen sets")  # fmt: skip
    args = p.parse_args(argv)
    results = run_sets(args.sets, args.seeds, args.iters, args.out, args.data_root, only=args.only)
    print(results_markdown(results))
    return 0


if __name__ == "__main__":
    from minimrcnn.errors import run_command

    run_command(main)
