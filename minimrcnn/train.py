"""Train Mask R-CNN.

python -m minimrcnn.train                                  # shapes dataset, CPU, a few minutes
python -m minimrcnn.train --preset coco_r50_fpn_1x --data-root data/coco
torchrun --nproc-per-node 8 -m minimrcnn.train --preset coco_r50_fpn_1x
python -m minimrcnn.train --out runs/x --resume           # continue a killed run
"""

from __future__ import annotations

import argparse
import json

from minimrcnn.cli import run
from minimrcnn.config import PRESETS, apply_overrides, get_preset


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m minimrcnn.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
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
    p.add_argument("--data-root", help="dataset folder (default: the preset's)")
    p.add_argument("--out", help="run folder (default: runs/<preset>)")
    p.add_argument("--iters", type=int, help="total training iterations")
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    p.add_argument("--device", help="auto | cpu | cuda (default: auto)")
    p.add_argument("--backbone-weights", help="none | imagenet | PATH to a ResNet state dict")
    p.add_argument("--no-eval", action="store_true", help="skip the COCO evaluation at the end")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = apply_overrides(get_preset(args.preset), args.overrides)
    if args.data_root:
        cfg.train.data_root = args.data_root
    if args.iters is not None:  # wins over the recipe's length scaled to the total batch
        cfg.train.time_budget_s = 0.0
    if args.backbone_weights:
        cfg.train.backbone_weights = args.backbone_weights
    if args.no_eval:
        cfg.train.eval_at_end = False

    from minimrcnn.engine.trainer import train

    result = train(cfg, args.out or f"runs/{cfg.name}", resume=args.resume, device=args.device,
                   progress=not args.no_progress, iters=args.iters)  # fmt: skip
    print(json.dumps({k: result[k] for k in ("iteration", "seconds", "run_dir")}))
    return 0


if __name__ == "__main__":
    run(main)
