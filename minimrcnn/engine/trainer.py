"""The training loop. It counts iterations, not epochs: schedules, logs and checkpoints are iteration counts.

One iteration = one batch per process. `train` reads as its steps: `start_run` (device, processes, data,
model, optimizer, the schedule), `restore` (with --resume), `run_loop` (`train_step`, `log_step`, the time
budget's `replan`, `save`), then `evaluate_at_end`. The run folder holds `config.json`, `metrics.jsonl` (one
line per logging step), `checkpoint.pt` (model, optimizer, AMP scaler, iteration, RNG state, the budget's
plan; written atomically) and, after evaluation, `eval.json`. `resume=True` continues from `checkpoint.pt`
exactly: the same data order, the same random flips, the same learning rate.

On GPUs: under torchrun each process is pinned to cuda:LOCAL_RANK before it joins the NCCL group and trains
a DDP replica with a distributed, aspect-ratio-grouped sampler (`BatchStream`). AMP uses bf16 on compute
capability 8 and newer and fp16 with a gradient scaler before that (`precision.py`). Images travel as uint8
from pinned memory and are converted on the device; losses stay on the device and the host reads them only
at logging steps and checkpoints (`loss_window.py`), so a step never waits for the GPU. A non-finite loss
stops the run naming the iteration and the term, leaving the last good checkpoint. Evaluation shards the
images over the processes and scores them with COCOeval on rank 0 (`evaluator.py`).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from minimrcnn.config import Config, TrainConfig
from minimrcnn.data import build_dataset
from minimrcnn.data.samplers import GroupedBatchSampler, aspect_ratio_groups, collate
from minimrcnn.data.transforms import RandomHorizontalFlip, images_to_device
from minimrcnn.engine import budget, run_folder
from minimrcnn.engine import distributed as dist
from minimrcnn.engine.checkpoint import (
    check_resumable,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from minimrcnn.engine.evaluator import category_map, evaluate, format_metrics
from minimrcnn.engine.loss_window import LossWindow
from minimrcnn.engine.precision import amp_dtype
from minimrcnn.engine.progress import Progress
from minimrcnn.engine.scaling import ScaledSchedule, scaled_schedule
from minimrcnn.errors import DataError
from minimrcnn.model.backbone import load_imagenet_weights
from minimrcnn.model.mask_rcnn import MaskRCNN


class BatchStream:
    """An endless, deterministic stream of batches of dataset indices for this process.

    Epoch e shuffles with seed (seed, e) via DistributedSampler, groups images by aspect ratio, and
    yields batches; the stream can start at any iteration, which is how `--resume` finds its place.
    """

    def __init__(self, dataset: Dataset, batch_size: int, seed: int, start_iter: int = 0) -> None:
        self.sampler = DistributedSampler(dataset, dist.world_size(), dist.rank(), shuffle=True, seed=seed)
        self.batches = GroupedBatchSampler(self.sampler, aspect_ratio_groups(dataset), batch_size)
        self.start_iter = start_iter

    def __iter__(self) -> Iterator[list[int]]:
        it, epoch = 0, 0
        while True:
            self.batches.set_epoch(epoch)
            before = it
            for batch in self.batches:  # index lists only: skipping ahead loads no images
                if it >= self.start_iter:
                    yield batch
                it += 1
            if it == before:  # an epoch without a batch would make this loop spin forever
                raise DataError(f"the training set gives no batch ({len(self.batches.group_ids)} images)")
            epoch += 1


def lr_factor(it: int, cfg: TrainConfig) -> float:
    """Linear warmup from warmup_factor to 1, then step decay (x gamma at each of lr_steps) or cosine to 0."""
    warm = 1.0
    if it < cfg.warmup_iters:
        alpha = it / cfg.warmup_iters
        warm = cfg.warmup_factor * (1 - alpha) + alpha
    if cfg.schedule == "cosine":
        return warm * 0.5 * (1 + math.cos(math.pi * min(it, cfg.iters) / cfg.iters))
    return warm * cfg.lr_gamma ** sum(it >= s for s in cfg.lr_steps)


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig, world: int) -> torch.optim.Optimizer:
    lr = scaled_schedule(cfg, world).lr
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)  # no weight decay on norms and biases
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # fused: one kernel for the whole update instead of a chain of per-tensor ops (several times faster on
    # the CPU for the preset's millions of small parameter tensors).
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, fused=True)
    return torch.optim.AdamW(groups, lr=lr, fused=True)  # (TrainConfig.validate allows only these two)


@dataclass
class TrainingRun:
    """What one run holds while it trains: made by `start_run`, advanced by `train_step`, saved by `save`."""

    cfg: Config  # the run's own copy: model.num_classes set from the dataset
    out: Path
    device: torch.device
    rank: int
    world: int
    model: MaskRCNN
    net: torch.nn.Module  # the model, wrapped for DDP when world > 1
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    dtype: torch.dtype | None  # autocast's, or None for float32
    sched: ScaledSchedule  # the one schedule: its length changes only when a time budget is planned
    dataset: Dataset
    val: Dataset | None  # evaluated at the end (train.eval_at_end)
    val_cat_ids: list[int] | None  # the model's label -> val's category id (evaluator.category_map)
    t_start: float  # the time budget's clock: when the run (or, resumed, the first run) started
    iteration: int = 0
    plan: budget.BudgetPlan | None = None  # the time budget's plan in force, once made
    window: LossWindow = field(default_factory=LossWindow)

    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def lr(self) -> float:
        """The learning rate of the next step."""
        return self.sched.lr * lr_factor(self.iteration, self.sched)


def train(
    cfg: Config,
    out_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    on_log: Callable[[dict[str, Any]], None] | None = None,
    spent_s: float = 0.0,
) -> dict[str, Any]:
    """Train (and evaluate) one run. Returns {"iteration", "metrics" (eval), "run_dir", "seconds"}.

    The run's length is the recipe's scaled to the total batch (engine/scaling.py), or train.fixed_iters; a
    time budget (train.time_budget_s) fixes it after timing iterations after warm-up and revises it at
    checkpoints (engine/budget.py). `spent_s`: seconds the caller spent before this call (the command line's
    start-up: importing torch), charged to a fresh run's budget so that the whole process fits in it.
    `cfg` is not changed: the run works on a copy, whose model.num_classes the dataset decides."""
    t_start = budget.now() - spent_s
    cfg = copy.deepcopy(cfg).validate()  # a misspelt value stops here, before any work
    out = Path(out_dir)
    # one run per folder: rank 0 holds the folder's lock (torchrun's RANK: the group is not joined yet)
    main_process = os.environ.get("RANK", "0") == "0"
    with run_folder.locked(out) if main_process else contextlib.nullcontext():
        resuming = resume and (out / "checkpoint.pt").exists()  # (--resume on a fresh folder starts it)
        run = start_run(cfg, out, t_start, pretrained=not resuming)
        if resuming:
            restore(run)
        elif dist.is_main():
            (run.out / "metrics.jsonl").write_text("")  # a fresh run starts a fresh log
        if dist.is_main():
            write_config(run)
        start, t0 = run.iteration, time.time()
        run_loop(run, progress, on_log)
        if run.iteration != start or not run.checkpoint_path.exists():
            save(run)
        result: dict[str, Any] = {
            "iteration": run.iteration,
            "run_dir": str(run.out),
            "seconds": round(time.time() - t0, 1),
            "metrics": None,
        }
        if run.val is not None:  # (eval.json is the run folder's too: still under the lock)
            result["metrics"] = evaluate_at_end(run, progress)
    dist.barrier()
    return result


def start_run(cfg: Config, out: Path, t_start: float, pretrained: bool = True) -> TrainingRun:
    """The device, the process group, the data, the model on the device, its optimizer and schedule.
    pretrained=False skips train.backbone_weights (a resumed run's checkpoint holds the weights)."""
    tc = cfg.train
    dev = dist.pick_device(tc.device)
    rank, world = dist.init_distributed(dev)
    sched = scaled_schedule(tc, world)
    if dist.is_main():
        out.mkdir(parents=True, exist_ok=True)  # config.json is written once num_classes is known
        print(sched.describe(), flush=True)
    torch.manual_seed(tc.seed + rank)
    dataset = build_dataset(tc, tc.train_split, train=True, uint8=True)  # no augmentation: flips below
    val = build_dataset(tc, tc.val_split, train=False, uint8=True) if tc.eval_at_end else None  # (budgeted)
    cfg.model.num_classes = dataset.num_classes
    # val's categories matched to the training set's now (by name where ids differ), not after training
    val_cat_ids = None if val is None else category_map(val, dataset.class_names, dataset.label_to_cat_id)
    model = MaskRCNN(cfg.model)
    if pretrained and tc.backbone_weights != "none":
        load_imagenet_weights_into(model, cfg)
    model.to(dev)
    if tc.channels_last and dev.type == "cuda":
        model.to(memory_format=torch.channels_last)
    net: torch.nn.Module = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None
        )
    dtype = amp_dtype(dev, tc.amp)
    return TrainingRun(
        cfg=cfg,
        out=out,
        device=dev,
        rank=rank,
        world=world,
        model=model,
        net=net,
        optimizer=build_optimizer(model, tc, world),
        dtype=dtype,
        scaler=torch.amp.GradScaler("cuda", enabled=dtype == torch.float16),
        sched=sched,
        dataset=dataset,
        val=val,
        val_cat_ids=val_cat_ids,
        t_start=t_start,
    )


def restore(run: TrainingRun) -> None:
    """Continue from the run folder's checkpoint: weights, optimizer, scaler, RNG state, iteration, the time
    budget's plan and clock; the log loses what was written after the checkpoint."""
    state = load_checkpoint(run.checkpoint_path)
    check_resumable(state, run.cfg, run.checkpoint_path)  # another preset's run folder: one line
    if state.get("budget_plan") is not None:  # the resumed run keeps the length its budget chose
        run.plan = budget.BudgetPlan(**state["budget_plan"])
        run.sched = dataclasses.replace(run.sched, iters=run.plan.iters)
    run.t_start = budget.now() - state.get("budget_elapsed_s", 0.0)  # the budget's clock goes on
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scaler.load_state_dict(state["scaler"])
    rngs = state["rng"]
    set_rng_state(rngs[run.rank] if run.rank < len(rngs) else rngs[0])
    run.iteration = int(state["iteration"])
    log = run.out / "metrics.jsonl"
    if dist.is_main() and log.exists():
        kept = [
            x
            for x in log.read_text().splitlines()
            if x.strip() and json.loads(x)["iteration"] <= run.iteration
        ]
        log.write_text("".join(x + "\n" for x in kept))


def run_loop(run: TrainingRun, progress: bool, on_log: Callable[[dict[str, Any]], None] | None) -> None:
    """Step until the schedule's end, logging every log_every, revising the time budget and checkpointing
    every checkpoint_every iterations."""
    tc = run.cfg.train
    loader = DataLoader(
        run.dataset,
        batch_sampler=BatchStream(run.dataset, tc.batch_size, tc.seed, run.iteration),
        collate_fn=collate,
        num_workers=tc.num_workers,
        persistent_workers=tc.num_workers > 0,
        pin_memory=run.device.type == "cuda",
        generator=torch.Generator().manual_seed(tc.seed),
    )
    # (its own generator: creating the iterator must not draw from the global RNG that resume restores)
    flip = RandomHorizontalFlip(0.5, run.dataset.keypoint_flip) if tc.hflip else None
    bar = Progress(run.sched.iters, desc="train", initial=run.iteration, enabled=progress and dist.is_main())
    timer = budget.BudgetTimer(run.iteration, run.sched.warmup_iters) if tc.time_budget_s > 0 else None
    run.net.train()
    t0, data = time.time(), iter(loader)
    try:
        while run.iteration < run.sched.iters:
            train_step(run, *next(data), flip)
            bar.update()
            if timer is not None and (rate := budget_rate(run, timer)) is not None:
                replan(run, rate, timer.first)
                timer.restart(run.iteration)
                bar.set_total(run.sched.iters)
                if dist.is_main():
                    bar.note(run.plan.describe())
                    write_config(run)
            if run.iteration % tc.log_every == 0 or run.iteration == run.sched.iters:
                record = log_step(run, t0)
                bar.log({"loss": record["loss"], "lr": record["lr"]})
                if on_log is not None and dist.is_main():
                    on_log(record)
            if run.iteration % tc.checkpoint_every == 0:
                save(run)
    finally:
        bar.close()


def train_step(
    run: TrainingRun, images: list[Tensor], targets: list[dict[str, Any]], flip: RandomHorizontalFlip | None
) -> None:
    """One optimizer step on one batch (uint8 images from the loader)."""
    for group in run.optimizer.param_groups:
        group["lr"] = run.lr()
    images = images_to_device(images, run.device)  # uint8 from pinned memory, [0, 1] floats on the device
    targets = [
        {k: v.to(run.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in t.items()}
        for t in targets
    ]
    if flip is not None:  # on the device; the coin flips come from the CPU generator
        images, targets = map(list, zip(*(flip(im, t) for im, t in zip(images, targets))))
    with torch.autocast(run.device.type, dtype=run.dtype, enabled=run.dtype is not None):
        losses = run.net(images, targets)
    total = sum(losses.values())
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(total).backward()
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.iteration += 1
    run.window.add(losses, run.iteration)


def log_step(run: TrainingRun, t0: float) -> dict[str, Any]:
    """The mean losses since the last log (all processes), appended to metrics.jsonl. Syncs the device."""
    run.window.check(run.checkpoint_path)
    record = {
        "iteration": run.iteration,
        "lr": run.lr(),
        **run.window.means(),
        "time": round(time.time() - t0, 2),
    }
    if dist.is_main():
        with open(run.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
    return record


def save(run: TrainingRun) -> None:
    """checkpoint.pt (atomically): everything `restore` needs to continue exactly."""
    run.window.check(run.checkpoint_path)  # a diverged run keeps its last good checkpoint
    rngs = dist.gather(rng_state())  # every rank's generators
    if not dist.is_main():
        return
    data = run.dataset
    save_checkpoint(
        run.checkpoint_path,
        {
            "model": run.model.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "scaler": run.scaler.state_dict(),
            "iteration": run.iteration,
            "rng": rngs,
            "config": run.cfg.to_dict(),
            "class_names": list(data.class_names),
            "label_to_cat_id": [int(c) for c in data.label_to_cat_id],
            "budget_plan": None if run.plan is None else run.plan.to_dict(),
            "budget_elapsed_s": budget.now() - run.t_start,
            "keypoint_names": list(data.keypoint_names),
            "skeleton": data.skeleton,
        },
    )


def evaluate_at_end(run: TrainingRun, progress: bool) -> dict[str, Any]:
    """COCO metrics on the validation split, written to eval.json."""
    tc = run.cfg.train
    ev = evaluate(
        run.model,
        run.val,
        run.device,
        batch_size=max(1, tc.batch_size),
        progress=progress,
        num_workers=tc.num_workers,
        label_to_cat_id=run.val_cat_ids,
    )
    metrics = {k: ev[k] for k in ("bbox", "segm", "keypoints") if k in ev}
    if dist.is_main():
        (run.out / "eval.json").write_text(json.dumps({"iteration": run.iteration, **metrics}, indent=2))
        if progress:
            print(format_metrics(metrics))
    return metrics


EVAL_COST = 0.7  # an evaluation batch (COCOeval included) costs about 0.7 early training steps on shapes


def budget_rate(run: TrainingRun, timer: budget.BudgetTimer) -> float | None:
    """The measured seconds per iteration when it is time to plan (or revise, at a checkpoint), else None."""
    rate = timer.tick(run.iteration)
    if run.plan is None:
        return rate
    due = run.iteration % run.cfg.train.checkpoint_every == 0 and budget.may_revise(run.plan, run.iteration)
    return timer.rate(run.iteration) if due else None


def replan(run: TrainingRun, rate: float, measured_from: int) -> None:
    """Plan (or revise) the run's length from the measured rate (budget.py); rank 0's plan holds for all."""
    tc = run.cfg.train
    val_batches = 0 if run.val is None else math.ceil(len(run.val) / max(1, tc.batch_size))
    plan = budget.plan(
        budget_s=tc.time_budget_s,
        elapsed_s=budget.now() - run.t_start,
        iteration=run.iteration,
        seconds_per_iter=rate,
        eval_s=val_batches * rate * EVAL_COST,
        max_iters=scaled_schedule(tc, run.world).iters,
        measured_from=measured_from,
        revision=0 if run.plan is None else run.plan.revision + 1,
    )
    run.plan = dist.broadcast_from_main(plan)
    run.sched = dataclasses.replace(run.sched, iters=run.plan.iters)


def write_config(run: TrainingRun) -> None:
    """config.json: the run's configuration, the schedule it follows (`effective`) and, under a time
    budget, the plan that fixed its length (`budget_plan`)."""
    d = {**run.cfg.to_dict(), "effective": {"world_size": run.world, **dataclasses.asdict(run.sched)}}
    if run.plan is not None:
        d["budget_plan"] = run.plan.to_dict()
    (run.out / "config.json").write_text(json.dumps(d, indent=2))


def load_imagenet_weights_into(model: MaskRCNN, cfg: Config) -> None:
    """ImageNet weights into the ResNet trunk (C4: also conv5, which lives in the RoI head)."""
    import torchvision

    net = getattr(torchvision.models, cfg.model.backbone)(weights=None)
    load_imagenet_weights(net, cfg.model.backbone, cfg.train.backbone_weights)
    state = {k: v for k, v in net.state_dict().items() if not k.startswith("fc.")}
    wanted = model.backbone.body.state_dict()
    model.backbone.body.load_state_dict({k: v for k, v in state.items() if k in wanted}, strict=False)
    if not cfg.model.fpn:
        model.roi_heads.res5.load_state_dict(
            {k[len("layer4.") :]: v for k, v in state.items() if k.startswith("layer4.")}
        )
