"""The paper's ablations in miniature: train the variants of a study's sets with identical budgets and
seeds, and tabulate COCO AP (mean and spread over seeds).

    python -m minimrcnn.ablations                        # chapter 09's sets, seeds 0 1 2, 900 iterations
    python -m minimrcnn.ablations --sets pooler --seeds 0 1 2
    python -m minimrcnn.ablations --sets mask_loss --iters 200 --out /tmp/abl
    python -m minimrcnn.ablations --study keypoints      # chapter 10's sets on the figures, 600 iterations
    python -m minimrcnn.ablations --dry-run              # which runs would train, which are reused

Each run lives in <out>/runs/<variant>-s<seed>/ and is reused, not trained again, when it finished with the
same configuration and budget, so an interrupted sweep continues where it stopped (seeds are the outer loop:
it stops with every variant on the same seeds). The summary is <out>/results.json, results.md and
results.png. The sets and studies are data in `minimrcnn.ablations.sets`; the tables and paired statistics
are in `minimrcnn.ablations.results`, the bar charts in `minimrcnn.ablations.plots`.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from minimrcnn.ablations.plots import results_figure
from minimrcnn.ablations.results import results_markdown, summarize
from minimrcnn.ablations.sets import SETS, STUDIES, TABLE_WORD, Variant, study_of
from minimrcnn.config import Config, apply_overrides
from minimrcnn.presets import get_preset


def ablation_config(variant: Variant, seed: int, iters: int, data_root: str | None = None) -> Config:
    """The variant's preset with a fixed budget of `iters` iterations (the same for every variant, whatever
    the machine's speed: no time budget), a seed, and the variant's overrides. `data_root`: None keeps the
    preset's."""
    cfg = get_preset(variant.preset)
    cfg.name = f"ablate-{variant.name}"
    cfg.train.iters = iters
    cfg.train.time_budget_s = 0.0
    cfg.train.seed = seed
    cfg.train.checkpoint_every = iters
    if data_root is not None:
        cfg.train.data_root = data_root
    return apply_overrides(cfg, list(variant.overrides))


def json_form(cfg: Config) -> dict[str, Any]:
    """cfg as config.json holds it (tuples as lists), so that a saved and a built config compare equal."""
    return json.loads(json.dumps(cfg.to_dict()))


def finished_run(run_dir: Path, cfg: Config) -> dict[str, Any] | None:
    """The eval.json of run_dir if it is a finished run of exactly `cfg` (its iterations reached), else None.

    config.json is read back as a Config, which drops what the trainer adds (the schedule it followed, under
    "effective") and gives a field added to the config after the run was saved its default: the code then
    behaved so. The model and training settings must match; the config's name is a label, not a setting. A
    run of another configuration (say, an older preset) does not count.
    """
    done, config = run_dir / "eval.json", run_dir / "config.json"
    if not (done.exists() and config.exists()):
        return None
    saved = json_form(Config.from_dict(json.loads(config.read_text())))
    wanted = json_form(cfg)
    result = json.loads(done.read_text())
    same = all(saved[part] == wanted[part] for part in ("model", "train"))
    return result if same and result.get("iteration") == cfg.train.iters else None


def run_dir_of(out: Path, variant: Variant, seed: int) -> Path:
    return out / "runs" / f"{variant.name}-s{seed}"


def finished(
    variant: Variant, seed: int, iters: int, out: Path, data_root: str | None = None
) -> dict[str, Any] | None:
    """The eval.json (with its seed) of a finished run of this variant, seed and budget, or None."""
    cfg = ablation_config(variant, seed, iters, data_root)
    result = finished_run(run_dir_of(out, variant, seed), cfg)
    return None if result is None else {**result, "seed": seed}


def run_variant(
    variant: Variant,
    seed: int,
    iters: int,
    out: Path,
    data_root: str | None = None,
    progress: bool = False,
    on_log: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train + evaluate one (variant, seed), or read its finished run: its eval.json with its seed."""
    from minimrcnn.engine.trainer import train

    if (done := finished(variant, seed, iters, out, data_root)) is not None:
        return done
    cfg = ablation_config(variant, seed, iters, data_root)
    result = train(cfg, run_dir_of(out, variant, seed), progress=progress, on_log=on_log)
    return {"iteration": result["iteration"], **result["metrics"], "seed": seed}  # what eval.json holds


def headline(ev: dict[str, Any]) -> str:
    """'mask AP 61.2, box AP 58.0' for one run's eval."""
    return ", ".join(
        f"{TABLE_WORD[t]} AP {100 * ev[t]['AP']:.1f}" for t in ("segm", "keypoints", "bbox") if t in ev
    )


def run_sets(
    set_names: list[str],
    seeds: list[int],
    iters: int,
    out: Path,
    data_root: str | None = None,
    progress: bool = True,
    only: list[str] | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Run (or reuse) every variant of the sets on every seed; write and return the summary (results.json).

    `only`: train only these variants (the summary still has every finished run of the sets); `dry_run`:
    train nothing and write nothing, only say which runs are finished. `progress`: one plain line per run
    (never a carriage return, so that a log file reads well) and the trainer's own progress."""
    study_of(set_names)  # the sets of one study: one preset, one budget, one folder
    variants = {v.name: v for s in set_names for v in SETS[s].variants}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    todo, k = len(variants) * len(seeds), 0
    for seed in seeds:  # seeds outside: an interrupted sweep has every variant on the same seeds
        for v in variants.values():
            k += 1
            head = f"[{k}/{todo}] {v.label}, seed {seed}"
            if (done := finished(v, seed, iters, out, data_root)) is not None:
                runs[v.name].append(done)
                say(progress, f"{head}: finished earlier ({headline(done)}), reused")
            elif dry_run or (only is not None and v.name not in only):
                say(progress, f"{head}: {'would train' if dry_run else 'left to another process (--only)'}")
            else:
                say(progress, f"{head}: training {iters} iterations in {run_dir_of(out, v, seed)}")
                t0 = time.perf_counter()
                runs[v.name].append(run_variant(v, seed, iters, out, data_root, progress=progress))
                say(progress, f"{head}: {headline(runs[v.name][-1])} ({time.perf_counter() - t0:.0f} s)")
                # after every run, without the figure: an interrupted sweep still has its table
                write_results(summary(set_names, seeds, iters, variants, runs), out, figure=False)
    results = summary(set_names, seeds, iters, variants, runs)
    if not dry_run:
        write_results(results, out)
    return results


def say(progress: bool, line: str) -> None:
    if progress:
        print(line, flush=True)


def summary(
    set_names: list[str],
    seeds: list[int],
    iters: int,
    variants: dict[str, Variant],
    runs: dict[str, list[dict[str, Any]]],
) -> dict[str, Any]:
    """results.json: what was compared (a readable record; code reads minimrcnn.ablations.sets), the table
    of means and spreads, and every finished run's eval."""
    runs = {name: evals for name, evals in runs.items() if evals}
    sets = {
        s: {
            "title": SETS[s].title,
            "metric": SETS[s].metric,
            "baseline": SETS[s].baseline_role,
            "paper": SETS[s].paper_line(),
            "variants": SETS[s].names,
        }
        for s in set_names
    }
    return {
        "iters": iters,
        "seeds": seeds,
        "sets": sets,
        "labels": {v.name: v.label for v in variants.values()},
        "overrides": {v.name: list(v.overrides) for v in variants.values()},
        "table": summarize(runs),
        "runs": runs,
    }


def write_results(results: dict[str, Any], out: Path, figure: bool = True) -> None:
    """<out>/results.json, results.md and (with `figure`) results.png."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "results.md").write_text(results_markdown(results))
    if figure:
        results_figure(results, out / "results.png")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m minimrcnn.ablations",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--study",
        choices=list(STUDIES),
        help="the sets of one chapter: shapes (09, the default) or keypoints (10)",
    )
    p.add_argument(
        "--sets",
        nargs="+",
        choices=list(SETS),
        metavar="SET",
        help=f"some sets of one study (default: all of it): {', '.join(SETS)}",
    )
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--iters", type=int, help="iterations per run (default: the study's, 900 or 600)")
    p.add_argument(
        "--out", type=Path, help="results folder (default: results/ablations or results/keypoints)"
    )
    p.add_argument(
        "--data-root", help="the dataset's folder (default: the preset's, data/shapes or data/figures)"
    )
    p.add_argument(
        "--only",
        nargs="+",
        metavar="VARIANT",
        help="train only these variants (to split a sweep across processes); the summary still "
        "includes every finished run of the chosen sets",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="train nothing, write nothing: say which runs are finished (and reused) and which would train",
    )
    args = p.parse_args(argv)
    study = study_of(args.sets) if args.sets else STUDIES[args.study or "shapes"]
    if args.study is not None and study.name != args.study:
        p.error(f"--sets {' '.join(args.sets)} are not sets of the {args.study} study")
    set_names = args.sets or list(study.sets)
    iters = args.iters if args.iters is not None else study.iters
    out = args.out if args.out is not None else Path(study.out)
    results = run_sets(
        set_names, args.seeds, iters, out, args.data_root, only=args.only, dry_run=args.dry_run
    )
    if not args.dry_run:
        print(results_markdown(results))
    return 0
