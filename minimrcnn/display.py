"""Showing a matplotlib figure in a notebook as a JPEG.

Pictures of textured images (photos, the shapes dataset, predicted masks) compress several times better as
JPEG than as PNG, which keeps the committed chapters small; line plots and small images should keep the
default PNG (`plt.show()`).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def show_jpeg(fig: Figure, quality: int = 80) -> None:
    """Display `fig` (in the current cell, or inside an ipywidgets Output's `with` block) and close it."""
    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    buf = io.BytesIO()
    fig.savefig(buf, format="jpeg", pil_kwargs={"quality": quality}, bbox_inches="tight")
    plt.close(fig)
    display(Image(data=buf.getvalue(), format="jpeg"))
