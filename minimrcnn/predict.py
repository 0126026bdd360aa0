"""Run a trained model on images and save pictures of its masks, boxes, labels, scores and keypoints.

python -m minimrcnn.predict photo.png other.jpg --weights runs/shapes_cpu/checkpoint.pt --out preds/
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, UnidentifiedImageError  # noqa: E402

from minimrcnn.engine.checkpoint import load_model
from minimrcnn.errors import (
    UserError,  # noqa: E402
    run_command,  # noqa: E402
)
from minimrcnn.viz import draw_detections  # noqa: E402


def read_image(path: Path) -> torch.Tensor:
    """[3, H, W] float in [0, 1], whatever the file's mode (grayscale, RGBA, palette)."""
    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise UserError(f"{path}: image not found") from None
    except (UnidentifiedImageError, OSError) as e:
        raise UserError(f"{path}: not a readable image ({type(e).__name__})") from None
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m minimrcnn.predict", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--weights", required=True)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--score-thresh", type=float, default=0.5)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)

    from minimrcnn.engine.distributed import pick_device

    device = pick_device(args.device)
    model, state = load_model(args.weights, device)
    names = state.get("class_names")
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.images:
        image = read_image(path)
        with torch.no_grad():
            det = {k: v.cpu() for k, v in model([image.to(device)])[0].items()}
        h, w = image.shape[-2:]
        fig = plt.figure(figsize=(w / 100 * 3, h / 100 * 3), dpi=100)
        draw_detections(image, det, names, args.score_thresh, ax=fig.add_axes((0, 0, 1, 1)),
                        skeleton=state.get("skeleton"))  # fmt: skip
        target = args.out / f"{path.stem}.png"
        fig.savefig(target)
        plt.close(fig)
        n = int((det["scores"] >= args.score_thresh).sum())
        print(f"{path.name}: {n} detections -> {target}")
    return 0


if __name__ == "__main__":
    run_command(main)
