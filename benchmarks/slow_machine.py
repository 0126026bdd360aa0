"""`python -m minimrcnn.train` as it would run on a machine N times slower than this one.

    python benchmarks/slow_machine.py --factor 1.8 -- --out /tmp/slow --set train.seed=1

Everything after `--` goes to `minimrcnn.train` unchanged. The run is the real one, time budget included;
the script only makes time pass `factor` times faster for it: after each optimizer step it sleeps (factor - 1)
times that iteration's duration (forward, backward, update and data loading), the first step also pays for
the start-up before it (imports, dataset generation, model building), and the evaluation is stretched the
same way. The budget's clock sees a machine `factor` times slower than this one at this moment, so a
comparison with a normal run made just before or after does not depend on how the machine's own speed drifts
over the day (here by up to 1.5x). `OMP_NUM_THREADS=1` is a rougher stand-in: one thread was 1.4-2x slower
than two here, depending on the hour.

Prints the run's iteration count, wall time and APs at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import minimrcnn  # before torch: minimrcnn.STARTED, where the budget's clock starts, is taken at this import


def slow_down(factor: float) -> None:
    """Stretch every optimizer step, the start-up before the first one, and the evaluation by `factor`."""
    import torch

    from minimrcnn.engine import trainer

    last = {"end": minimrcnn.STARTED}
    for cls in (torch.optim.AdamW, torch.optim.SGD):
        step = cls.step

        def slow_step(self, *args, _step=step, **kwargs):
            result = _step(self, *args, **kwargs)
            now = time.perf_counter()
            time.sleep((factor - 1) * (now - last["end"]))  # this iteration, as the slower machine takes it
            last["end"] = time.perf_counter()
            return result

        cls.step = slow_step

    evaluate = trainer.evaluate

    def slow_evaluate(*args, **kwargs):
        t = time.perf_counter()
        result = evaluate(*args, **kwargs)
        time.sleep((factor - 1) * (time.perf_counter() - t))
        return result

    trainer.evaluate = slow_evaluate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--factor", type=float, default=1.8, help="how many times slower (default 1.8)")
    parser.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then minimrcnn.train's arguments")
    args = parser.parse_args()
    if args.factor < 1:
        parser.error(f"--factor {args.factor}: must be at least 1")
    train_args = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
    slow_down(args.factor)

    from minimrcnn import train

    sys.argv = ["minimrcnn.train", *train_args]
    train.main()  # argv None: the start-up counts towards the budget, as from the command line
    parsed = train.parse_args(train_args)
    out = Path(parsed.out or f"runs/{train.get_preset(parsed.preset).name}")
    wall = time.perf_counter() - minimrcnn.STARTED
    ev = json.loads((out / "eval.json").read_text())
    print(f"slowed {args.factor}x: {ev['iteration']} iterations, {wall:.0f} s wall, "
          f"mask AP {100 * ev['segm']['AP']:.1f} / AP50 {100 * ev['segm']['AP50']:.1f}, "
          f"box AP {100 * ev['bbox']['AP']:.1f} / AP50 {100 * ev['bbox']['AP50']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
