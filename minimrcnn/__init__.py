"""minimrcnn: Mask R-CNN (He, Gkioxari, Dollar, Girshick, ICCV 2017), built piece by piece.

Set MINIMRCNN_SMOKE=1 to shorten the genuinely long cells of the chapters (used by CI only).
"""

import os
import time

__version__ = "0.1.0"
STARTED: float = time.perf_counter()  # first import: the command line charges its start-up to its time budget

SMOKE: bool = os.environ.get("MINIMRCNN_SMOKE", "0") not in ("", "0", "false", "False")
