"""Live explorers: thin ipywidgets panels over the package's own functions, for reading and for teaching.

Each explorer is a pure draw function (control values -> a picture on a reused Figure, and the numbers it
shows), a `*_figure()` that draws its starting state as a plain figure (what a reader without a kernel sees
in the committed notebook), and a `*_explorer()` panel that redraws on every change (`panel.Explorer`):

- ch01 `roi.roipool_explorer`: move the RoI, output size, stride (`ops.roi_pool`)
- ch02 `roi.roialign_explorer`: sample points, bilinear weights, `aligned` (`ops.roi_align`, `ops.roi_pool`)
- ch04 `anchors.anchors_explorer`: anchors, matching, NMS (`AnchorGenerator`, `RPN.assign_targets`, `ops.nms`)
- ch05 `masks.masks_explorer`: m x m and threshold (`mask_head.mask_targets`, `paste.paste_masks_in_image`)
- ch08 `ap.ap_explorer`: IoU and score thresholds -> matches, PR curves, AP (pycocotools' COCOeval)

`benchmarks/explorer_redraw.py` measures how long a redraw takes. ipywidgets is imported only when a panel
is made.
"""

from minimrcnn.explorers.anchors import anchors_explorer, anchors_figure, draw_anchors
from minimrcnn.explorers.ap import ap_explorer, ap_figure, draw_ap
from minimrcnn.explorers.masks import draw_masks, masks_explorer, masks_figure
from minimrcnn.explorers.panel import Explorer
from minimrcnn.explorers.roi import (
    draw_roialign,
    draw_roipool,
    roialign_explorer,
    roialign_figure,
    roipool_explorer,
    roipool_figure,
)

__all__ = [
    "Explorer",
    "anchors_explorer",
    "anchors_figure",
    "ap_explorer",
    "ap_figure",
    "draw_anchors",
    "draw_ap",
    "draw_masks",
    "draw_roialign",
    "draw_roipool",
    "masks_explorer",
    "masks_figure",
    "roialign_explorer",
    "roialign_figure",
    "roipool_explorer",
    "roipool_figure",
]
