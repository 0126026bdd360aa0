"""Checkpoints: written atomically, read with `torch.load(weights_only=True)`, RNG state included; a trained
model loaded back from one (its config travels inside)."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from minimrcnn.config import Config
from minimrcnn.errors import CheckpointError
from minimrcnn.model.mask_rcnn import MaskRCNN


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write to a temporary file in the same folder, flush it to disk, then rename over `path`.

    A rename within one filesystem is atomic: a reader (or a run killed mid-write) sees either the old
    checkpoint or the new one, never half of one.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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
