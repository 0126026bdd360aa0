"""Architecture diagrams drawn from the real model (being split into one module per drawing)."""

from minimrcnn.diagrams.heads import (
    CHAPTER_PARTS, COLORS, DRAWINGS, FONT, GREY_EDGE, GREY_FILL, GREY_TEXT, HEADS, PARTS, STRIP, TOPICS,
    Point, Shapes, draw_architecture, draw_fpn, draw_keypoint_head, draw_mask_head, draw_roi_bins,
    draw_rpn_head, label, main, png, record_shapes, show, you_are_here,
)
