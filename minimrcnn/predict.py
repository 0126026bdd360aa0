"""Run a trained model on images: a picture of its masks, boxes, labels, scores (and keypoints) per image,
and the detections as data in `detections.json` (COCO results format, plus each image's file name).

python -m minimrcnn.predict photo.png other.jpg --weights runs/shapes_cpu/checkpoint.pt --out preds/

Images are read upright (their EXIF orientation applied) and 16-bit images scaled, as in training. The
model sees every image at its own input size (model.min_size / max_size), and says so: a larger image is
resized to that size before the model (not after, so a 24-megapixel photo does not cost gigabytes of
pasted masks), and the picture is drawn at that size, at most DRAW_MAX pixels on its long side.
`detections.json` has the boxes and masks in the original image's pixels. Two inputs with one name
(a.png, a.jpg) get two pictures (a.png, a_jpg.png). An image that cannot be read is reported and
skipped; the others are still done, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pycocotools.mask as mask_utils  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

from minimrcnn.data.images import open_rgb  # noqa: E402
from minimrcnn.engine import run_folder  # noqa: E402
from minimrcnn.engine.checkpoint import load_model  # noqa: E402
from minimrcnn.errors import UserError, run_command  # noqa: E402
from minimrcnn.viz import draw_detections  # noqa: E402

DRAW_MAX = 1600  # pixels on a picture's long side: 3x a 128-px image, and a 1333-px one not enlarged
RESULTS = "detections.json"


def model_input_scale(h: int, w: int, min_size: int, max_size: int) -> float:
    """The factor the model's ImageTransform resizes an h x w image by (short side to min_size, long side
    at most max_size)."""
    return min(min_size / min(h, w), max_size / max(h, w))


def read_for_model(path: Path, min_size: int, max_size: int) -> tuple[torch.Tensor, tuple[int, int], float]:
    """([3, h, w] float in [0, 1], original (H, W), scale). An image larger than the model's input comes
    resized to it (scale < 1, PIL's antialiased bilinear); a smaller one as it is (scale 1), the model
    enlarges it."""
    rgb = open_rgb(path)  # [H, W, 3] uint8, upright
    h, w = rgb.shape[:2]
    scale = model_input_scale(h, w, min_size, max_size)
    if scale < 1:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR))
    else:
        scale = 1.0
    image = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float().div_(255)  # [3, h, w]
    return image, (h, w), scale


def output_name(path: Path, taken: set[str], inputs: set[Path]) -> str:
    """`<stem>.png`, unless an earlier image of this call took it (a.png, a.jpg -> a_jpg.png) or it would
    overwrite an input image (--out beside the inputs)."""
    candidates = [f"{path.stem}.png", f"{path.stem}_{path.suffix.lstrip('.') or 'image'}.png"]
    candidates += [f"{path.stem}_{k}.png" for k in range(2, len(taken) + 3)]
    return next(c for c in candidates if c not in taken and c not in {p.name for p in inputs})


def to_results(
    det: dict[str, torch.Tensor],
    keep: torch.Tensor,
    scale: float,
    size: tuple[int, int],
    image_id: int,
    file_name: str,
    label_to_cat_id: list[int] | None,
    names: list[str] | None,
) -> list[dict[str, Any]]:
    """The kept detections as COCO results in the original image's pixels (masks resized one at a time)."""
    out = []
    boxes = det["boxes"][keep] / scale  # [N, 4] xyxy, original pixels
    for i, k in enumerate(keep.nonzero()[:, 0].tolist()):
        label = int(det["labels"][k])
        x1, y1, x2, y2 = boxes[i].tolist()
        r: dict[str, Any] = {
            "image_id": image_id,
            "file_name": file_name,
            "category_id": int(label_to_cat_id[label]) if label_to_cat_id else label,
            "bbox": [x1, y1, x2 - x1, y2 - y1],
            "score": float(det["scores"][k]),
        }
        if names:
            r["category"] = names[label]
        if "masks" in det:  # [1, 1, h, w] probabilities -> the original size -> binary -> RLE
            prob = det["masks"][k : k + 1]
            if scale != 1:
                prob = F.interpolate(prob, size=size, mode="bilinear", align_corners=False)
            binary = np.asfortranarray((prob[0, 0] >= 0.5).numpy().astype(np.uint8))  # [H, W]
            rle = mask_utils.encode(binary)
            r["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
        if "keypoints" in det:  # [K, 3] (x, y, v): x, y to the original pixels
            kps = det["keypoints"][k].clone()
            kps[:, :2] /= scale
            r["keypoints"] = kps.flatten().tolist()
        out.append(r)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m minimrcnn.predict",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--weights", required=True)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--score-thresh", type=float, default=0.5, help="in [0, 1] (default: 0.5)")
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    if not 0 <= args.score_thresh <= 1:
        raise UserError(f"--score-thresh {args.score_thresh:g}: expected a score in [0, 1]")

    from minimrcnn.engine.distributed import pick_device

    out = run_folder.prepare(args.out, "--out")
    device = pick_device(args.device)
    model, state = load_model(args.weights, device)
    names, cat_ids = state.get("class_names"), state.get("label_to_cat_id")
    min_size, max_size = model.cfg.min_size[-1], model.cfg.max_size
    taken: set[str] = set()
    inputs = {path.resolve() for path in args.images if path.parent.resolve() == out.resolve()}
    results: list[dict[str, Any]] = []
    failed = []
    for image_id, path in enumerate(args.images, start=1):
        try:
            image, (h, w), scale = read_for_model(path, min_size, max_size)
        except UserError as e:  # report it and go on with the others
            print(f"error: {e}", file=sys.stderr)
            failed.append(path)
            continue
        with torch.no_grad():
            det = {k: v.cpu() for k, v in model([image.to(device)])[0].items()}
        keep = det["scores"] >= args.score_thresh  # [N]
        target = out / output_name(path, taken, inputs)
        taken.add(target.name)
        draw(image, det, names, args.score_thresh, state.get("skeleton"), target)
        results += to_results(det, keep, scale, (h, w), image_id, str(path), cat_ids, names)
        sh, sw = image.shape[-2:]
        seen = model_input_scale(sh, sw, min_size, max_size)
        size = f"{w}x{h}, the model sees {round(sw * seen)}x{round(sh * seen)}"
        print(f"{path.name} ({size}): {int(keep.sum())} detections -> {target}")
    (out / RESULTS).write_text(json.dumps(results))
    print(f"detections (score >= {args.score_thresh:g}, in original pixels, COCO results): {out / RESULTS}")
    if failed:
        n = len(args.images)
        if n > 1:  # (one image: its own error line says it all)
            print(f"error: {len(failed)} of {n} images could not be read (named above)", file=sys.stderr)
        return 1
    return 0


def draw(
    image: torch.Tensor,
    det: dict[str, torch.Tensor],
    names: list[str] | None,
    score_thresh: float,
    skeleton: list[list[int]] | None,
    target: Path,
) -> None:
    """The picture of one image's detections, 3x the model's input but at most DRAW_MAX pixels wide/high."""
    h, w = image.shape[-2:]
    zoom = min(3.0, DRAW_MAX / max(h, w))
    fig = plt.figure(figsize=(w * zoom / 100, h * zoom / 100), dpi=100)
    draw_detections(image, det, names, score_thresh, ax=fig.add_axes((0, 0, 1, 1)), skeleton=skeleton)
    fig.savefig(target)
    plt.close(fig)


if __name__ == "__main__":
    run_command(main)
