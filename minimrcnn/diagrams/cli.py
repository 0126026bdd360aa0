"""`python -m minimrcnn.diagrams --out docs/` writes architecture.png (`--all`: every drawing)."""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib.pyplot as plt

from minimrcnn.diagrams.architecture import draw_architecture
from minimrcnn.diagrams.drawing import png
from minimrcnn.diagrams.heads import draw_fpn, draw_keypoint_head, draw_mask_head, draw_rpn_head
from minimrcnn.diagrams.roi_bins import draw_roi_bins

DRAWINGS = {
    "architecture": draw_architecture,
    "roi_bins": draw_roi_bins,
    "fpn": draw_fpn,
    "rpn_head": draw_rpn_head,
    "mask_head": draw_mask_head,
    "keypoint_head": draw_keypoint_head,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m minimrcnn.diagrams", description="Draw the architecture diagrams from the real model."
    )
    parser.add_argument("--out", default="docs", help="folder for the PNGs (default: docs)")
    parser.add_argument("--all", action="store_true", help="every drawing, not only architecture.png")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, draw in DRAWINGS.items() if args.all else [("architecture", draw_architecture)]:
        fig = draw()
        (out / f"{name}.png").write_bytes(png(fig))
        plt.close(fig)
        print(f"wrote {out / f'{name}.png'} ({(out / f'{name}.png').stat().st_size // 1024} KB)")
