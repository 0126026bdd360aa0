"""Train `shapes_cpu` for a few iterations on the CPU and print a SHA-256 of the weights: a refactoring that
must not change training prints the same hash before and after (on the same machine and torch build).

python benchmarks/weights_hash.py --out /tmp/hash-run [--iters 30]
"""

from __future__ import annotations

import argparse
import hashlib

from minimrcnn.engine.checkpoint import load_checkpoint
from minimrcnn.engine.trainer import train
from minimrcnn.presets import shapes_cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="run folder (its data goes to OUT/shapes)")
    p.add_argument("--iters", type=int, default=30)
    args = p.parse_args()
    cfg = shapes_cpu()
    t = cfg.train
    t.data_root, t.device, t.eval_at_end, t.time_budget_s = f"{args.out}/shapes", "cpu", False, 0.0
    t.iters = args.iters
    train(cfg, f"{args.out}/run", progress=False)
    weights = load_checkpoint(f"{args.out}/run/checkpoint.pt")["model"]
    h = hashlib.sha256()
    for name in sorted(weights):
        h.update(name.encode())
        h.update(weights[name].contiguous().numpy().tobytes())
    print(f"{args.iters} iterations, {len(weights)} tensors, sha256 {h.hexdigest()}")


if __name__ == "__main__":
    main()
