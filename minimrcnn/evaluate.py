"""Evaluate a trained model with COCOeval (bbox and segm).

python -m minimrcnn.evaluate --weights runs/shapes_cpu/checkpoint.pt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from minimrcnn.config import Config
from minimrcnn.engine.checkpoint import load_model
from minimrcnn.errors import run_command


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m minimrcnn.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--weights", required=True, help="a checkpoint written by minimrcnn.train")
    p.add_argument("--data-root", help="dataset folder (default: the one the model was trained on)")
    p.add_argument("--split", help="split to evaluate (default: the config's val split)")
    p.add_argument("--out", help="folder for eval.json and the COCO results (default: the weights' folder)")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=2)
    args = p.parse_args(argv)

    from minimrcnn.data import build_dataset
    from minimrcnn.engine.evaluator import evaluate, format_metrics
    from minimrcnn.engine.distributed import pick_device

    device = pick_device(args.device)
    model, state = load_model(args.weights, device)
    cfg = Config.from_dict(state["config"])
    if args.data_root:
        cfg.train.data_root = args.data_root
    dataset = build_dataset(cfg.train, args.split or cfg.train.val_split, train=False)
    ev = evaluate(model, dataset, device, batch_size=args.batch_size)
    out = Path(args.out) if args.out else Path(args.weights).parent
    out.mkdir(parents=True, exist_ok=True)
    metrics = {k: ev[k] for k in ("bbox", "segm") if k in ev}
    (out / "eval.json").write_text(json.dumps({"weights": str(args.weights), **metrics}, indent=2))
    (out / "results.json").write_text(json.dumps(ev["results"]))
    print(format_metrics(metrics))
    from minimrcnn.report import write_report

    run_dir = Path(args.weights).parent
    pictures = write_report(out, model, dataset, device, curves_from=run_dir)
    print("pictures: " + ", ".join(p.as_posix() for p in pictures))
    return 0


if __name__ == "__main__":
    run_command(main)
