"""Architecture diagrams drawn from the real model, so that a picture cannot drift from the code.

`record_shapes(cfg)` runs the model once with forward hooks and returns the shape of every
tensor the drawings label. Every number on an arrow comes from there; nothing is typed in. Labels read
`C x H x W` for a map (per image) or a RoI feature (per RoI), `D` for a vector; anchors and proposals are per
image, `[count, 4]`.

    draw_architecture(cfg)   backbone -> FPN -> RPN -> RoIAlign -> box / mask / keypoint heads (chapter 00)
    you_are_here(chapter)    the same drawing as a one-row strip, that chapter's part highlighted
    draw_roi_bins()          RoIPool's quantized bins against RoIAlign's bilinear samples (paper, Figure 3)
    draw_fpn(cfg)            the top-down pathway with its lateral 1x1 and output 3x3 convs (chapter 03)
    draw_rpn_head(cfg)       the shared 3x3 conv, the two 1x1 siblings and the anchors of one position (04)
    draw_mask_head(cfg)      the box and mask heads (paper, Figure 4: right for FPN, left for C4) (05)
    draw_keypoint_head(cfg)  the keypoint head: convs, deconv, 2x upsampling to heatmaps (10)

Each returns a matplotlib Figure on a white background (readable in a dark notebook theme too); `show(fig)`
displays one in a notebook as a small PNG (`png(fig)`).
`python -m minimrcnn.diagrams --out docs/` writes architecture.png (`--all`: every drawing).

shapes.py        record_shapes: the model run once with forward hooks, cached per model config
drawing.py       the parts and their colours, boxes and arrows on a half-inch canvas; png and show
architecture.py  draw_architecture and you_are_here
roi_bins.py      draw_roi_bins
heads.py         draw_fpn, draw_rpn_head, draw_mask_head, draw_keypoint_head
cli.py           python -m minimrcnn.diagrams
"""

from minimrcnn.diagrams.architecture import (
    CHAPTER_PARTS,
    HEADS,
    STRIP,
    TOPICS,
    draw_architecture,
    you_are_here,
)
from minimrcnn.diagrams.cli import DRAWINGS, main
from minimrcnn.diagrams.drawing import COLORS, FONT, GREY_EDGE, GREY_FILL, GREY_TEXT, PARTS, Point, png, show
from minimrcnn.diagrams.heads import draw_fpn, draw_keypoint_head, draw_mask_head, draw_rpn_head
from minimrcnn.diagrams.roi_bins import draw_roi_bins
from minimrcnn.diagrams.shapes import Shapes, label, record_shapes

__all__ = [
    "CHAPTER_PARTS",
    "COLORS",
    "DRAWINGS",
    "FONT",
    "GREY_EDGE",
    "GREY_FILL",
    "GREY_TEXT",
    "HEADS",
    "PARTS",
    "STRIP",
    "TOPICS",
    "Point",
    "Shapes",
    "draw_architecture",
    "draw_fpn",
    "draw_keypoint_head",
    "draw_mask_head",
    "draw_roi_bins",
    "draw_rpn_head",
    "label",
    "main",
    "png",
    "record_shapes",
    "show",
    "you_are_here",
]
