"""What the command-line tools share: one-line errors instead of tracebacks, loading a trained model."""

from __future__ import annotations

import sys
from collections.abc import Callable

import torch

from minimrcnn.config import Config
from minimrcnn.engine.checkpoint import load_checkpoint
from minimrcnn.errors import CheckpointError, UserError
from minimrcnn.model.mask_rcnn import MaskRCNN


def run(main: Callable[[], int | None]) -> None:
    """Call main(); a UserError (a bad file, key or value) exits 1 with one line on stderr."""
    try:
        code = main()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)


def load_model(weights: str, device: torch.device) -> tuple[MaskRCNN, dict]:
    """A MaskRCNN from a minimrcnn checkpoint (its config travels inside). Returns (model, checkpoint)."""
    state = load_checkpoint(weights)
    if "config" not in state:
        raise CheckpointError(f"{weights}: has no 'config' entry (not written by minimrcnn.train)")
    cfg = Config.from_dict(state["config"])
    model = MaskRCNN(cfg.model)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise CheckpointError(f"{weights}: weights do not fit the model in its config ({first})") from None
    return model.to(device).eval(), state
