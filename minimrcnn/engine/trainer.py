"""The training loop. It counts iterations, not epochs: schedules, logs and checkpoints are iteration counts.

One iteration = one batch per process. The run folder holds `config.json`, `metrics.jsonl` (one line per
logging step), `checkpoint.pt` (model, optimizer, scheduler, AMP scaler, iteration, RNG state, written
atomically) and, after evaluation, `eval.json`. `resume=True` continues from `checkpoint.pt` exactly:
the same data order, the same random flips, the same learning rate.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler
from tqdm.auto import tqdm

from minimrcnn.config import Config, TrainConfig, check_device
from minimrcnn.data import build_dataset
from minimrcnn.data.samplers import GroupedBatchSampler, aspect_ratio_groups, collate, images_to_device
from minimrcnn.data.transforms import RandomHorizontalFlip
from minimrcnn.engine import budget
from minimrcnn.engine import distributed as dist
from minimrcnn.engine.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from minimrcnn.engine.evaluator import evaluate, format_metrics
from minimrcnn.engine.loss_window import LossWindow
from minimrcnn.engine.scaling import scaled_schedule
from minimrcnn.errors import ConfigError
from minimrcnn.model.backbone import load_imagenet_weights
from minimrcnn.model.mask_rcnn import MaskRCNN


def pick_device(name: str) -> torch.device:
    check_device(name, "--device")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: CUDA is not available on this machine")
        if name == "cuda":
            name = f"cuda:{dist.local_rank()}"
    return torch.device(name)


class BatchStream:
    """An endless, deterministic stream of batches of dataset indices for this process.

    Epoch e shuffles with seed (seed, e) via DistributedSampler, groups images by aspect ratio, and
    yields batches; the stream can start at any iteration, which is how `--resume` finds its place.
    """

    def __init__(self, dataset, batch_size: int, seed: int, start_iter: int = 0):
        self.sampler = DistributedSampler(dataset, dist.world_size(), dist.rank(), shuffle=True, seed=seed)
        self.batches = GroupedBatchSampler(self.sampler, aspect_ratio_groups(dataset), batch_size)
        self.start_iter = start_iter

    def __iter__(self) -> Iterator[list[int]]:
        it, epoch = 0, 0
        while True:
            self.batches.set_epoch(epoch)
            for batch in self.batches:  # index lists only: skipping ahead loads no images
                if it >= self.start_iter:
                    yield batch
                it += 1
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
    # fused: one kernel for the whole update instead of a chain of per-tensor ops. Measured on one CPU
    # thread for the CPU preset's ~13M parameters: AdamW's step 62 -> 15 ms (8% of a 2-thread iteration).
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, fused=True)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    raise ConfigError(f"train.optimizer={cfg.optimizer!r}: expected 'sgd' or 'adamw'")


def cpu_has_native_bf16() -> bool:
    """True where the CPU computes bf16 in hardware (x86 avx512_bf16 / AMX, Arm bf16): there bf16 autocast
    halves the convolutions' cost. Elsewhere bf16 is emulated and slower than float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return any(f in flags for f in ("avx512_bf16", "amx_bf16", "bf16"))


def amp_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """The autocast dtype for training, or None for float32."""
    if not enabled:
        return None
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_native_bf16() else None
    if device.type != "cuda":
        return None
    # not torch.cuda.is_bf16_supported(): it also counts emulated bf16 (V100, T4), slower than fp16 there
    return torch.bfloat16 if torch.cuda.get_device_capability(device)[0] >= 8 else torch.float16


def train(
    cfg: Config,
    out_dir: str | Path,
    resume: bool = False,
    device: str | None = None,
    progress: bool = True,
    on_log: Callable[[dict[str, Any]], None] | None = None,
    iters: int | None = None,
    spent_s: float = 0.0,
) -> dict[str, Any]:
    """Train (and evaluate) one run. Returns {"iteration", "metrics" (eval), "run_dir", "seconds"}.

    `iters` (the command line's --iters) wins over the recipe's length scaled to the total batch; a time
    budget (train.time_budget_s) fixes the length after timing iterations after warm-up, and revises it at
    checkpoints (engine/budget.py). `spent_s`: seconds the caller spent before this call (the command line's
    start-up, its imports take ~5 s), charged to a fresh run's budget so that the whole process fits in it.
    `cfg` is not changed: the run works on a copy, whose model.num_classes the dataset decides."""
    t_start = budget.now() - spent_s
    cfg = copy.deepcopy(cfg)
    tc = cfg.train
    cfg.model.validate(), tc.validate()  # a misspelt value stops here, before any work
    dev = pick_device(device or tc.device)
    rank, world = dist.init_distributed(dev)
    sched = scaled_schedule(tc, world, iters)
    out = Path(out_dir)
    ckpt_path = out / "checkpoint.pt"
    if dist.is_main():
        out.mkdir(parents=True, exist_ok=True)  # config.json is written below, once num_classes is known
        print(sched.describe(), flush=True)

    torch.manual_seed(tc.seed + rank)
    dataset = build_dataset(tc, tc.train_split, train=True, uint8=True)  # no augmentation: flips below
    val = build_dataset(tc, tc.val_split, train=False, uint8=True) if tc.eval_at_end else None  # (budgeted)
    cfg.model.num_classes = dataset.num_classes
    model = MaskRCNN(cfg.model)
    if tc.backbone_weights != "none" and not (resume and ckpt_path.exists()):  # --resume on a fresh folder
        load_imagenet_weights_into(model, cfg)
    model.to(dev)
    if tc.channels_last and dev.type == "cuda":
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, tc, world)
    scaled = dataclasses.replace(tc, iters=sched.iters, lr_steps=sched.lr_steps,
                                 warmup_iters=sched.warmup_iters)  # fmt: skip
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: lr_factor(it, scaled))
    dtype = amp_dtype(dev, tc.amp)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)

    start = 0
    plan: dict[str, Any] | None = None  # the time budget's plan (budget.py), once made
    if resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path)
        plan = state.get("budget_plan")
        if plan is not None:  # the resumed run keeps the iteration count its budget chose
            scaled.iters = int(plan["iters"])
        t_start = budget.now() - state.get("budget_elapsed_s", 0.0)  # the budget's clock goes on from there
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"][rank] if rank < len(state["rng"]) else state["rng"][0])
        start = int(state["iteration"])
        if dist.is_main() and (out / "metrics.jsonl").exists():  # drop what was logged after the checkpoint
            lines = (out / "metrics.jsonl").read_text().splitlines()
            kept = [x for x in lines if x.strip() and json.loads(x)["iteration"] <= start]
            (out / "metrics.jsonl").write_text("".join(x + "\n" for x in kept))
    elif dist.is_main():
        (out / "metrics.jsonl").write_text("")  # a fresh run starts a fresh log
    if dist.is_main():
        _write_config(out, cfg, world, sched, plan)

    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None
        )
    loader = DataLoader(dataset, batch_sampler=BatchStream(dataset, tc.batch_size, tc.seed, start),
                        collate_fn=collate, num_workers=tc.num_workers, persistent_workers=tc.num_workers > 0,
                        pin_memory=dev.type == "cuda",
                        generator=torch.Generator().manual_seed(tc.seed))  # fmt: skip
    # (its own generator: creating the iterator must not draw from the global RNG that resume restores)
    flip = RandomHorizontalFlip(0.5, dataset.keypoint_flip) if tc.hflip else None

    window = LossWindow()  # losses stay on the device; the host reads them at logging steps only

    def checkpoint(it: int) -> None:
        window.check(ckpt_path)
        rngs = dist.gather(rng_state())  # every rank's generators
        if dist.is_main():
            save_checkpoint(ckpt_path, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "iteration": it,
                "rng": rngs, "config": cfg.to_dict(), "class_names": list(dataset.class_names),
                "label_to_cat_id": [int(c) for c in dataset.label_to_cat_id], "budget_plan": plan,
                "budget_elapsed_s": budget.now() - t_start,
                "keypoint_names": list(dataset.keypoint_names), "skeleton": dataset.skeleton,
            })  # fmt: skip

    net.train()
    t0, it = time.time(), start
    bar = tqdm(total=scaled.iters, initial=start, desc="train", disable=not (progress and dist.is_main()),
               dynamic_ncols=True, mininterval=0.5)  # fmt: skip
    timer = budget.BudgetTimer(start, scaled.warmup_iters) if tc.time_budget_s > 0 else None
    data = iter(loader)
    try:
        while it < scaled.iters:
            images, targets = next(data)
            images = images_to_device(images, dev)  # uint8 from pinned memory, [0, 1] floats on the device
            targets = [{k: v.to(dev, non_blocking=True) if torch.is_tensor(v) else v for k, v in t.items()}
                       for t in targets]  # fmt: skip
            if flip is not None:  # on the device; the coin flips come from the CPU generator, as before
                images, targets = map(list, zip(*(flip(im, t) for im, t in zip(images, targets))))
            with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
                losses = net(images, targets)
            total = sum(losses.values())
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(total).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            it += 1
            window.add(losses, it)
            if timer is not None and (rate := _budget_rate(timer, plan, it, tc.checkpoint_every)) is not None:
                revision = 0 if plan is None else plan.get("revision", 0) + 1
                elapsed = budget.now() - t_start
                plan = _plan_budget(scaled, sched.iters, it, rate, timer.first, elapsed, val, revision)
                timer.restart(it)
                bar.total = scaled.iters
                if dist.is_main():
                    tqdm.write(budget.BudgetPlan(**plan).describe())
                    _write_config(out, cfg, world, sched, plan)
            bar.update(1)
            if it % tc.log_every == 0 or it == scaled.iters:
                window.check(ckpt_path)
                means = window.means()
                record = {"iteration": it, "lr": optimizer.param_groups[0]["lr"], **means,
                          "time": round(time.time() - t0, 2)}  # fmt: skip
                bar.set_postfix(loss=f"{means['loss']:.3f}", lr=f"{record['lr']:.2e}")
                if dist.is_main():
                    with open(out / "metrics.jsonl", "a") as f:
                        f.write(json.dumps(record) + "\n")
                    if on_log is not None:
                        on_log(record)
            if it % tc.checkpoint_every == 0:
                checkpoint(it)
    finally:
        bar.close()
    if it != start or not ckpt_path.exists():
        checkpoint(it)
    seconds = time.time() - t0

    result: dict[str, Any] = {
        "iteration": it,
        "run_dir": str(out),
        "seconds": round(seconds, 1),
        "metrics": None,
    }
    if val is not None:
        ev = evaluate(model, val, dev, batch_size=max(1, tc.batch_size), progress=progress,
                      num_workers=tc.num_workers)  # fmt: skip
        metrics = {k: ev[k] for k in ("bbox", "segm", "keypoints") if k in ev}
        result["metrics"] = metrics
        if dist.is_main():
            (out / "eval.json").write_text(json.dumps({"iteration": it, **metrics}, indent=2))
            if progress:
                print(format_metrics(metrics))
    dist.barrier()
    return result


EVAL_COST = 0.7  # an evaluation batch (COCOeval included) costs 0.7 early training steps (shapes, measured)


def _budget_rate(timer: budget.BudgetTimer, plan: dict[str, Any] | None, it: int, every: int) -> float | None:
    """The measured seconds per iteration when it is time to plan (or revise, at a checkpoint), else None."""
    rate = timer.tick(it)
    if plan is None:
        return rate
    return timer.rate(it) if it % every == 0 and budget.may_revise(plan, it) else None


def _plan_budget(
    tc: TrainConfig, cap: int, it: int, rate: float, first: int, elapsed: float, val, revision: int
) -> dict[str, Any]:
    """Fix tc.iters (the schedule's length, at most `cap`) from the measured rate (see budget.py); the same on
    every rank."""
    eval_s = 0.0 if val is None else math.ceil(len(val) / max(1, tc.batch_size)) * rate * EVAL_COST
    plan = budget.plan(budget_s=tc.time_budget_s, elapsed_s=elapsed, iteration=it, seconds_per_iter=rate,
                       eval_s=eval_s, max_iters=cap, measured_from=first,
                       revision=revision).to_dict()  # fmt: skip
    plan = dist.broadcast_from_main(plan)  # rank 0's measurement decides for everyone
    tc.iters = int(plan["iters"])
    return plan


def _write_config(out: Path, cfg: Config, world: int, sched, plan: dict[str, Any] | None) -> None:
    """config.json: the run's configuration, the schedule it follows (`effective`) and, under a time
    budget, the plan that fixed its length (`budget_plan`, whose `iters` is then the schedule's)."""
    effective = {"world_size": world, **dataclasses.asdict(sched)}
    if plan is not None:
        effective["iters"] = plan["iters"]
    d = {**cfg.to_dict(), "effective": effective} | ({"budget_plan": plan} if plan is not None else {})
    (out / "config.json").write_text(json.dumps(d, indent=2))


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
