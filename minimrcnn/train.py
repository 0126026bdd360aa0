"""Train Mask R-CNN.

python -m minimrcnn.train                                  # shapes dataset, CPU, a few minutes
python -m minimrcnn.train --preset coco_r50_fpn_1x --data-root data/coco
torchrun --nproc-per-node 8 -m minimrcnn.train --preset coco_r50_fpn_1x
python -m minimrcnn.train --out runs/x --resume           # continue a killed run
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from minimrcnn.config import Config, TrainConfig, apply_overrides
from minimrcnn.errors import run_command
from minimrcnn.presets import PRESETS, get_preset


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m minimrcnn.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--preset", default="shapes_cpu", help=f"one of: {', '.join(PRESETS)} (default: shapes_cpu)"
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set model.pooler=roipool --set train.lr=0.01",
    )
    p.add_argument("--data-root", help="dataset folder (train.data_root; default: the preset's)")
    p.add_argument("--out", help="run folder (default: runs/<preset>)")
    p.add_argument(
        "--iters",
        type=positive_int,
        help="train exactly this many iterations (train.fixed_iters; no time budget)",
    )
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N (train.device; default: auto)")
    p.add_argument(
        "--backbone-weights", help="none | imagenet | PATH to a ResNet state dict (train.backbone_weights)"
    )
    p.add_argument(
        "--no-eval", action="store_true", help="skip the COCO evaluation at the end (train.eval_at_end)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar, no progress lines")
    return p.parse_args(argv)


def flag_overrides(args: argparse.Namespace) -> list[str]:
    """The flags as config assignments: every flag that describes the run lands in the config."""
    sets = []
    if args.data_root:
        sets.append(f"train.data_root={args.data_root}")
    if args.iters is not None:  # wins over the recipe's length scaled to the total batch, and the budget
        sets += [f"train.fixed_iters={args.iters}", "train.time_budget_s=0"]
    if args.device:
        sets.append(f"train.device={args.device}")
    if args.backbone_weights:
        sets.append(f"train.backbone_weights={args.backbone_weights}")
    if args.no_eval:
        sets.append("train.eval_at_end=false")
    return sets


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = apply_overrides(get_preset(args.preset), [*flag_overrides(args), *args.overrides])

    import minimrcnn
    from minimrcnn.engine import budget as budget_mod
    from minimrcnn.engine import distributed as dist
    from minimrcnn.engine.trainer import train

    out = args.out or f"runs/{cfg.name}"
    if os.environ.get("RANK", "0") == "0":  # (torchrun's variables: the process group is not joined yet)
        print(summary(cfg, args.preset, out, args.resume), flush=True)
    # from the command line (argv None), its start-up (importing torch, torchvision) is part of the budget
    spent = budget_mod.now() - minimrcnn.STARTED if argv is None else 0.0
    result = train(cfg, out, resume=args.resume, progress=not args.no_progress, spent_s=spent)
    print(json.dumps({k: result[k] for k in ("iteration", "seconds", "run_dir")}))
    if dist.is_main():
        pictures = write_pictures(out, cfg)
        print(where_to_look(out, pictures, cfg.train.eval_at_end))
    return 0


def dataset_size(tc: TrainConfig) -> str:
    """'1000 train / 100 val images' without loading annotations (generated datasets: the counts they get)."""
    from minimrcnn.data import DATASETS, split_size

    if DATASETS[tc.dataset].generate is not None:
        n_train, n_val = split_size(tc, tc.train_split), split_size(tc, tc.val_split)
        made = "" if (Path(tc.data_root) / tc.train_split).is_dir() else ", generated on first use"
        return f"{n_train} {tc.train_split} / {n_val} {tc.val_split} images{made}"
    counts = []
    for split in (tc.train_split, tc.val_split):
        folder = Path(tc.data_root) / split
        n = sum(1 for _ in os.scandir(folder)) if folder.is_dir() else None
        counts.append(f"{n} {split}" if n is not None else f"{split}: no folder {folder}")
    return " / ".join(counts) + " images"


def summary(cfg: Config, preset: str, out: str, resume: bool) -> str:
    """What this run will do, in a few lines, before it starts."""
    import torch

    from minimrcnn.engine import budget as budget_mod

    tc = cfg.train
    world = int(os.environ.get("WORLD_SIZE", "1"))
    dev = tc.device
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    budget = f"{tc.fixed_iters or tc.iters} iterations"
    if tc.time_budget_s:  # engine/budget.py
        budget = (
            f"{tc.time_budget_s:g} s for the whole run (its length is fixed after timing "
            f"{budget_mod.TIMED_ITERS} iterations after warm-up and revised at checkpoints, "
            f"at most {tc.iters})"
        )
    procs = f" x {world} processes" if world > 1 else ""
    threads = torch.get_num_threads()
    from minimrcnn.engine.precision import amp_dtype

    dtype = amp_dtype(torch.device(dev), tc.amp)
    precision = {torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast"}.get(dtype, "float32")
    lines = [
        f"minimrcnn.train: preset {preset}, {cfg.model.backbone} {'+ FPN' if cfg.model.fpn else 'C4'}",
        f"  dataset  {tc.dataset} at {tc.data_root}: {dataset_size(tc)}",
        f"  budget   {budget}, batch {tc.batch_size}{procs}, {tc.optimizer} lr {tc.lr:g} ({tc.schedule})",
        f"  device   {dev}{procs}, {threads} CPU thread{'s' * (threads > 1)}, {precision}",
        f"  writes   {out}/" + (" (resuming from its checkpoint.pt)" if resume else ""),
    ]
    return "\n".join(lines)


def write_pictures(out: str, cfg: Config) -> list[Path]:
    """curves.png and predictions.png (held-out images of cfg's data) in the run folder, from its weights."""
    from minimrcnn.data import build_dataset
    from minimrcnn.engine.checkpoint import load_model
    from minimrcnn.engine.distributed import pick_device
    from minimrcnn.report import write_report

    device = pick_device(cfg.train.device)
    model, _ = load_model(Path(out) / "checkpoint.pt", device)
    val = build_dataset(cfg.train, cfg.train.val_split, train=False)
    return write_report(out, model, val, device)


def where_to_look(out: str, pictures: list[Path], evaluated: bool) -> str:
    files = [p.name for p in pictures] + ["eval.json"] * evaluated + ["metrics.jsonl", "checkpoint.pt"]
    return "\n".join(
        [
            f"done. Look in {out}/:",
            *(f"  {out}/{name}" for name in files),
            f"next: python -m minimrcnn.predict IMAGE.png --weights {out}/checkpoint.pt --out preds/",
        ]
    )


if __name__ == "__main__":
    run_command(main)
