"""The operators the chapters derive: RoI pooling (three ways), boxes, matching and sampling."""

from minimrcnn.ops.boxes import (
    BoxCoder,
    batched_nms,
    box_area,
    box_iou,
    clip_boxes_to_image,
    nms,
    remove_small_boxes,
)
from minimrcnn.ops.roi_align import roi_align, roi_warp
from minimrcnn.ops.roi_pool import roi_pool
from minimrcnn.ops.sampling import BACKGROUND, IGNORE, BalancedSampler, Matcher

__all__ = [
    "BACKGROUND",
    "IGNORE",
    "BalancedSampler",
    "BoxCoder",
    "Matcher",
    "batched_nms",
    "box_area",
    "box_iou",
    "clip_boxes_to_image",
    "nms",
    "remove_small_boxes",
    "roi_align",
    "roi_pool",
    "roi_warp",
]
