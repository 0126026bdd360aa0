"""Just enough torch.distributed: pick the device, join torchrun's processes, shard work, gather results."""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist

from minimrcnn.config import check_device
from minimrcnn.errors import ConfigError


def pick_device(name: str) -> torch.device:
    """ "auto" | "cpu" | "cuda" | "cuda:N" -> a torch.device; "cuda" under torchrun is this process's GPU."""
    check_device(name, "--device")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: CUDA is not available on this machine")
        if name == "cuda":
            name = f"cuda:{local_rank()}"
    return torch.device(name)


def init_distributed(device: torch.device) -> tuple[int, int]:
    """Join the process group when launched by torchrun (gloo on CPU, nccl on GPU). Returns (rank, world).

    On GPUs each process is pinned to its own device first (cuda:LOCAL_RANK), as torchvision's and
    Detectron2's launchers do: NCCL's object collectives (all_gather_object, used for checkpoints and
    evaluation) and barrier() run on the *current* device, which is cuda:0 on every rank unless set.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
            dist.init_process_group("nccl", device_id=device)
        else:
            dist.init_process_group("gloo")
    return rank(), world_size()


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    return rank() == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def mean_over_processes(t: torch.Tensor) -> torch.Tensor:
    """Mean of a tensor over all processes (on each process's own device)."""
    if not dist.is_initialized():
        return t
    t = t.clone()
    dist.all_reduce(t)
    return t / world_size()


def gather(obj: Any) -> list[Any]:
    """Every process's obj, in rank order (on every process)."""
    if not dist.is_initialized():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


_CPU_GROUP: dist.ProcessGroup | None = None


def cpu_group() -> dist.ProcessGroup:
    """A gloo group over the same processes, for Python objects that live on the CPU anyway (as
    Detectron2 does): they travel through host memory, not through the GPUs, and gather works on it."""
    global _CPU_GROUP
    if _CPU_GROUP is None:
        _CPU_GROUP = dist.new_group(backend="gloo") if dist.get_backend() != "gloo" else dist.group.WORLD
    return _CPU_GROUP


def gather_to_main(obj: Any) -> list[Any] | None:
    """Every process's obj in rank order, on rank 0 only (None elsewhere): the others never hold it all."""
    if not dist.is_initialized():
        return [obj]
    out: list[Any] | None = [None] * world_size() if is_main() else None
    dist.gather_object(obj, out, dst=0, group=cpu_group())
    return out


def broadcast_from_main(obj: Any) -> Any:
    """Rank 0's obj, on every process."""
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0, group=cpu_group())
    return box[0]
