"""Image files -> RGB pixels, as a camera or a scanner wrote them: EXIF orientation applied, 16-bit scaled.

A phone stores a portrait photo as landscape pixels plus an EXIF tag (Orientation 6: "rotate 90 degrees
to view"); every viewer applies it, so the pixels we read must too (`ImageOps.exif_transpose`). A 16-bit
PNG (PIL mode I;16, or I) holds 0..65535: converting it straight to RGB clips every value above 255 to
white, so it is scaled to 0..255 first. Grayscale, palette, RGBA and CMYK become RGB as usual.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from minimrcnn.errors import DataError

WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")  # more than 8 bits per pixel


def open_rgb(path: Path, listed_in: Path | None = None) -> np.ndarray:
    """An image file -> [H, W, 3] uint8 RGB, upright. A missing or unreadable file is a one-line DataError."""
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)  # a new, upright image (the same one if there is no tag)
            return to_rgb8(img)
    except FileNotFoundError:
        listed = f" (listed in {listed_in.name})" if listed_in is not None else ""
        raise DataError(f"{path}: image not found{listed}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:  # truncated, not an image, ...
        raise DataError(f"{path}: cannot read image ({type(e).__name__}: {e})") from None


def to_rgb8(img: Image.Image) -> np.ndarray:
    """A PIL image of any mode -> [H, W, 3] uint8; wide (16-bit, 32-bit, float) gray scaled, not clipped."""
    if img.mode not in WIDE_MODES:
        return np.asarray(img.convert("RGB"))  # L, P, RGBA, CMYK, ... -> RGB
    gray = np.asarray(img, dtype=np.float64)  # [H, W]
    if img.mode == "F":  # floats: [0, 1] when they fit there, else taken as 0..255
        top = 1.0 if gray.max(initial=0) <= 1 else 255.0
    else:  # I;16* and I (Pillow opens 16-bit PNGs as either): 0..65535
        top = 65535.0
    gray8 = np.clip(np.rint(gray * (255.0 / top)), 0, 255).astype(np.uint8)  # [H, W]
    return np.repeat(gray8[:, :, None], 3, axis=2)  # [H, W, 3]


def read_image(path: Path, listed_in: Path | None = None, uint8: bool = False) -> Tensor:
    """An image file -> [3, H, W] RGB: float32 in [0, 1], or uint8 in [0, 255] with `uint8=True`."""
    rgb = open_rgb(path, listed_in)  # [H, W, 3]
    if uint8:
        return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))  # [3, H, W], a writable copy
    chw = np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32)  # [3, H, W], a writable copy
    chw /= 255
    return torch.from_numpy(chw)
