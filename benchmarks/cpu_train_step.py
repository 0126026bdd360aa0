"""Seconds per training step of a preset on this machine, measured with the real trainer.

    python benchmarks/cpu_train_step.py                                  # shapes_cpu, 150 iterations
    python benchmarks/cpu_train_step.py --set train.amp=false --set model.fpn_channels=128
    python benchmarks/cpu_train_step.py --iters 200 --repeat 2 --set train.amp=false --vs train.amp=true

Each run trains `--iters` iterations of the preset (no evaluation, no time budget) into a temporary folder
and reads the step times from its metrics.jsonl: the median of the per-log-step means after iteration
`--skip` (the first iterations are slower: allocator warm-up, the RPN still proposing random boxes).
With `--vs`, the two configurations alternate run by run, so that machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import torch


def step_times(metrics: Path, skip: int) -> list[float]:
    rows = [json.loads(x) for x in metrics.read_text().splitlines() if x.strip()]
    out = []
    for a, b in zip(rows, rows[1:]):
        if a["iteration"] >= skip:
            out.append((b["time"] - a["time"]) / (b["iteration"] - a["iteration"]))
    return out


def run_once(preset: str, overrides: list[str], iters: int, data_root: str | None, skip: int) -> float:
    from minimrcnn.config import apply_overrides
    from minimrcnn.engine.trainer import train
    from minimrcnn.presets import get_preset

    cfg = apply_overrides(get_preset(preset), overrides)
    cfg.train.iters, cfg.train.time_budget_s, cfg.train.eval_at_end = iters, 0.0, False
    cfg.train.log_every = 10
    cfg.train.checkpoint_every = 10**9
    if data_root:
        cfg.train.data_root = data_root
    with tempfile.TemporaryDirectory() as out:
        train(cfg, out, progress=False)
        return statistics.median(step_times(Path(out) / "metrics.jsonl", skip))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="shapes_cpu")
    p.add_argument("--set", dest="a", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--vs", dest="b", action="append", default=None, metavar="KEY=VALUE",
                   help="a second configuration (overrides on top of the preset) to alternate with")
    p.add_argument("--iters", type=int, default=150)
    p.add_argument("--skip", type=int, default=50)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--data-root")
    args = p.parse_args()
    configs = {"A": args.a} if args.b is None else {"A": args.a, "B": args.b}
    times: dict[str, list[float]] = {k: [] for k in configs}
    for _ in range(args.repeat):
        for k, ov in configs.items():
            times[k].append(run_once(args.preset, ov, args.iters, args.data_root, args.skip))
    print(f"preset={args.preset} iters={args.iters} skip={args.skip} threads={torch.get_num_threads()} "
          f"torch={torch.__version__}")
    for k, ov in configs.items():
        print(f"{k}: {' '.join(ov) or '(preset)'}: {statistics.median(times[k]):.4f} s/step "
              f"(runs: {', '.join(f'{t:.4f}' for t in times[k])})")
    if len(configs) == 2:
        print(f"B / A = {statistics.median(times['B']) / statistics.median(times['A']):.3f}")


if __name__ == "__main__":
    main()
