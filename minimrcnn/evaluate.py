"""Evaluate a trained model with COCOeval (bbox and segm).

python -m minimrcnn.evaluate --weights runs/shapes_cpu/checkpoint.pt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from minimrcnn.config import Config
from minimrcnn.engine.checkpoint import load_model
from minimrcnn.errors import UserError, run_command


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m minimrcnn.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--weights", required=True, help="a checkpoint written by minimrcnn.train")
    p.add_argument("--data-root", help="dataset folder (default: the one the model was trained on)")
    p.add_argument("--split", help="split to evaluate (default: the config's val split)")
    p.add_argument("--out", help="folder for eval.json and the COCO results (default: the weights' folder)")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=2)
    args = p.parse_args(argv)
    if args.batch_size < 1:
        raise UserError(f"--batch-size {args.batch_size}: expected a number >= 1")

    from minimrcnn.data import build_dataset
    from minimrcnn.engine import run_folder
    from minimrcnn.engine.distributed import pick_device
    from minimrcnn.engine.evaluator import category_map, evaluate, format_metrics

    out = run_folder.prepare(args.out or Path(args.weights).parent, "--out")  # before the slow part
    device = pick_device(args.device)
    model, state = load_model(args.weights, device)
    cfg = Config.from_dict(state["config"])
    if args.data_root:
        cfg.train.data_root = args.data_root
    dataset = build_dataset(cfg.train, args.split or cfg.train.val_split, train=False)
    # the model's labels -> this file's category ids, by the checkpoint's categories (not this file's order)
    cat_ids = category_map(dataset, state.get("class_names"), state.get("label_to_cat_id"))
    ev = evaluate(model, dataset, device, batch_size=args.batch_size, label_to_cat_id=cat_ids)
    metrics = {k: ev[k] for k in ("bbox", "segm", "keypoints") if k in ev}
    note = {"note": ev["note"]} if ev["note"] else {}
    (out / "eval.json").write_text(json.dumps({"weights": str(args.weights), **metrics, **note}, indent=2))
    (out / "results.json").write_text(json.dumps(ev["results"]))
    print(format_metrics(metrics))
    from minimrcnn.report import write_report

    run_dir = Path(args.weights).parent
    pictures = write_report(out, model, dataset, device, curves_from=run_dir)
    print("pictures: " + ", ".join(p.as_posix() for p in pictures))
    return 0


if __name__ == "__main__":
    run_command(main)
