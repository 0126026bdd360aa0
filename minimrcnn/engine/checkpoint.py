"""Checkpoints: written atomically and only with finite weights, read with `torch.load(weights_only=True)`,
RNG state included; a trained model loaded back from one (its config travels inside)."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from minimrcnn.config import Config
from minimrcnn.errors import CheckpointError, TrainingDiverged
from minimrcnn.model.mask_rcnn import MaskRCNN


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write to a temporary file in the same folder, flush it to disk, then rename over `path`.

    A rename within one filesystem is atomic: a reader (or a run killed mid-write) sees either the old
    checkpoint or the new one, never half of one. Weights that are not finite are never written (they
    would be a "last good checkpoint" that is not): a TrainingDiverged names the first such tensor and
    the checkpoint kept. A failed write (a full disk) removes its temporary file and is one CheckpointError
    line; so are temporary files that dead processes left behind (a full disk, a SIGKILL), on every save.
    """
    path = Path(path)
    bad = non_finite_tensors(state.get("model", {})) + non_finite_tensors(state.get("optimizer", {}))
    if bad:
        it = state.get("iteration")
        when = f"iteration {it}: " if it is not None else ""
        raise TrainingDiverged(
            f"{when}{len(bad)} tensors of the model or optimizer are not finite "
            f"(first: {bad[0]}); not saved, {describe_kept(path)}"
        )
    remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # torch.save reports a full disk as RuntimeError "unexpected pos"
        tmp.unlink(missing_ok=True)
        why, kept = _write_error(path, e), describe_kept(path)
        raise CheckpointError(f"{path}: could not write the checkpoint ({why}); {kept}") from None


def non_finite_tensors(state: Any, prefix: str = "") -> list[str]:
    """Names of the floating-point tensors in a (nested) state dict that hold a NaN or an infinity."""
    if torch.is_tensor(state):
        return [prefix or "tensor"] if state.is_floating_point() and not bool(state.isfinite().all()) else []
    items = state.items() if isinstance(state, dict) else enumerate(state) if isinstance(state, list) else ()
    return [name for k, v in items for name in non_finite_tensors(v, f"{prefix}.{k}" if prefix else str(k))]


def describe_kept(path: Path) -> str:
    """What `path` holds now, for a message: 'the last good checkpoint is X (iteration N)' or 'none yet'."""
    if not path.is_file():
        return "no checkpoint written yet"
    try:
        it = torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("iteration")
    except Exception:  # an unreadable file is reported as such by whoever loads it
        return f"{path} is left as it was"
    return f"the last good checkpoint is {path} (iteration {it})"


def _write_error(path: Path, e: Exception) -> str:
    """Why a write failed, in a few words, and how much room its disk has left."""
    first = (str(e).splitlines() or [""])[0]
    why = e.strerror if isinstance(e, OSError) and e.strerror else f"{type(e).__name__}: {first}"
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return why
    return f"{why}; {free / 2**20:.0f} MiB free on its disk"


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete `.<name>.tmp-PID` files next to `path` whose process is no longer running; return them."""
    removed = []
    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def process_alive(pid: int) -> bool:
    """True if a process with this id runs on this machine (signal 0 tests without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path}: not a minimrcnn checkpoint (no 'model' entry)")
    return state


def load_model(weights: str | Path, device: torch.device) -> tuple[MaskRCNN, dict[str, Any]]:
    """A MaskRCNN from a minimrcnn checkpoint (its config travels inside). Returns (model, checkpoint)."""
    state = load_checkpoint(weights)
    if "config" not in state:
        raise CheckpointError(f"{weights}: has no 'config' entry (not written by minimrcnn.train)")
    cfg = Config.from_dict(state["config"])
    model = MaskRCNN(cfg.model)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        lines = str(e).splitlines()
        first = lines[1].strip() if len(lines) > 1 else str(e)
        raise CheckpointError(f"{weights}: weights do not fit the model in its config ({first})") from None
    return model.to(device).eval(), state


def check_resumable(state: dict[str, Any], cfg: Config, path: str | Path) -> None:
    """Refuse, in one line, to resume a run from a checkpoint of another model (another preset's run folder):
    loading it would fail deep in load_state_dict, or worse, fit and silently continue another run."""
    saved = Config.from_dict(state.get("config", {}))
    mine, theirs = dataclasses.asdict(cfg.model), dataclasses.asdict(saved.model)
    diff = [k for k in mine if json.dumps(mine[k]) != json.dumps(theirs.get(k))]
    if diff:
        k = diff[0]
        raise CheckpointError(
            f"--resume: {path} is a run of {saved.name!r} (model.{k}={theirs.get(k)!r}), not of {cfg.name!r} "
            f"(model.{k}={mine[k]!r}); use another --out, or the same preset and --set values"
        )


def rng_state() -> dict[str, Any]:
    """Every random number generator the training loop draws from, in weights_only-loadable types."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
