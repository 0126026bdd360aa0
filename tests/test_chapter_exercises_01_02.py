"""Chapters 01-02 exercises: the checkers accept the solutions, reject typical mistakes, never raise.

The solutions themselves are checked against torchvision: a RoIPool assembled from the chapter-01
solutions, and a RoIAlign assembled from the chapter-02 solutions, reproduce torchvision's operators.
"""

from __future__ import annotations

import math

import pytest
import torch
import torchvision

from minimrcnn.solutions import ch01, ch02

# ---------------------------------------------------------------------------------------------
# chapter 01: typical wrong answers


@pytest.mark.parametrize(
    ("student", "hint"),
    [
        (lambda b, s: tuple(round(v * s) for v in b), "half to even"),
        (lambda b, s: tuple(int(v * s) for v in b), "truncate"),
        (lambda b, s: tuple(math.ceil(v * s) for v in b), "ceil"),
        (lambda b, s: tuple(ch01.round_half_away_from_zero(v / s) for v in b), "multiply"),
        (lambda b, s: tuple(ch01.round_half_away_from_zero(v) for v in b), "scale them"),
        (lambda b, s: tuple(v * s for v in b), "fractional"),
        (lambda b, s: (lambda q: (q[1], q[0], q[3], q[2]))(ch01.feature_grid_box(b, s)), "swapped"),
    ],
    ids=["bankers-round", "floor", "ceil", "divide", "unscaled", "no-rounding", "xy-swapped"],
)
def test_feature_grid_box_mistakes(student, hint, capsys):
    assert ch01.check_feature_grid_box(student) is False
    assert hint in capsys.readouterr().out


@pytest.mark.parametrize(
    ("student", "hint"),
    [
        (lambda s, L, n: ch01.bin_boundaries(0, L, n), "add roi_start"),
        (lambda s, L, n: [(s + round(i * L / n), s + round((i + 1) * L / n)) for i in range(n)], "nearest"),
        (
            lambda s, L, n: [(s + math.floor(i * L / n), s + math.floor((i + 1) * L / n)) for i in range(n)],
            "*up*",
        ),
        (lambda s, L, n: [(a, b - 1) for a, b in ch01.bin_boundaries(s, L, n)], "exclusive"),
        (lambda s, L, n: [(s + i * (L // n), s + (i + 1) * (L // n)) for i in range(n)], "Integer division"),
        (lambda s, L, n: ch01.bin_boundaries(s, L, n)[:-1], "one (start, end) pair per bin"),
    ],
    ids=["no-offset", "round", "floor-end", "inclusive-end", "int-division", "missing-bin"],
)
def test_bin_boundaries_mistakes(student, hint, capsys):
    assert ch01.check_bin_boundaries(student) is False
    assert hint in capsys.readouterr().out


def _roi_pool_from_solutions(feature, rois, out, scale):
    """RoIPool assembled from the two chapter-01 solutions (max over each bin, empty bins -> 0)."""
    n, c, h, w = feature.shape
    result = feature.new_zeros(len(rois), c, out, out)
    for k, (b, *box) in enumerate(rois.tolist()):
        x1, y1, x2, y2 = ch01.feature_grid_box(box, scale)
        rows = ch01.bin_boundaries(y1, max(y2 - y1 + 1, 1), out)
        cols = ch01.bin_boundaries(x1, max(x2 - x1 + 1, 1), out)
        for i, (ys, ye) in enumerate(rows):
            ys, ye = min(max(ys, 0), h), min(max(ye, 0), h)
            for j, (xs, xe) in enumerate(cols):
                xs, xe = min(max(xs, 0), w), min(max(xe, 0), w)
                if ye > ys and xe > xs:
                    result[k, :, i, j] = feature[int(b), :, ys:ye, xs:xe].amax(dim=(-2, -1))
    return result


def _random_rois(g, n, batch, extent):
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * extent - 0.1 * extent
    wh = torch.rand(n, 2, generator=g, dtype=torch.float64) * 0.6 * extent
    b = torch.randint(0, batch, (n, 1), generator=g).double()
    return torch.cat([b, xy, xy + wh], 1)


def test_ch01_solutions_rebuild_torchvision_roi_pool():
    g = torch.Generator().manual_seed(0)
    feature = torch.randn(2, 3, 12, 15, dtype=torch.float64, generator=g)
    rois = _random_rois(g, 60, 2, 240.0)
    rois = torch.cat([rois, torch.tensor([[0.0, 40.0, 24.0, 88.0, 136.0]], dtype=torch.float64)])  # halves
    ours = _roi_pool_from_solutions(feature, rois, 7, 1 / 16)
    torch.testing.assert_close(ours, torchvision.ops.roi_pool(feature, rois, 7, 1 / 16), rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------
# chapter 02: typical wrong answers


def _noclamp_bilinear(f, y, x):
    y0, x0 = math.floor(y), math.floor(x)
    ly, lx = y - y0, x - x0
    return (
        (1 - ly) * (1 - lx) * f[..., y0, x0]
        + (1 - ly) * lx * f[..., y0, x0 + 1]
        + ly * (1 - lx) * f[..., y0 + 1, x0]
        + ly * lx * f[..., y0 + 1, x0 + 1]
    )


def _flipped_bilinear(f, y, x):
    h, w = f.shape[-2:]
    y0, x0 = math.floor(y), math.floor(x)
    y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
    ly, lx = y - y0, x - x0
    return (
        ly * lx * f[..., y0, x0]
        + ly * (1 - lx) * f[..., y0, x1]
        + (1 - ly) * lx * f[..., y1, x0]
        + (1 - ly) * (1 - lx) * f[..., y1, x1]
    )


@pytest.mark.parametrize(
    ("student", "hint"),
    [
        (lambda f, y, x: ch02.bilinear(f, x, y), "swapped"),
        (lambda f, y, x: ch02.bilinear(f, y - 0.5, x - 0.5), "half a cell too far up-left"),
        (
            lambda f, y, x: ch02.bilinear(f, min(y + 0.5, 4), min(x + 0.5, 6)),
            "half a cell too far down-right",
        ),
        (_flipped_bilinear, "nearer* neighbour"),
        (lambda f, y, x: f[..., round(y), round(x)], "nearest-neighbour"),
        (lambda f, y, x: f[..., math.floor(y), math.floor(x)], "top-left"),
        (_noclamp_bilinear, "past the last row"),
        (lambda f, y, x: ch02.bilinear(f, y, x).item(), "return a tensor"),
        (lambda f, y, x: ch02.bilinear(f, y, x).detach(), "autograd"),
        (lambda f, y, x: ch02.bilinear(f, y, x).double(), "dtype"),
        (lambda f, y, x: ch02.bilinear(f, y, x).sum(), "one per channel"),
    ],
    ids=[
        "xy-swapped",
        "minus-half",
        "plus-half",
        "flipped-weights",
        "nearest",
        "top-left",
        "no-border-clamp",
        "item",
        "detached",
        "dtype",
        "channels",
    ],
)
def test_bilinear_mistakes(student, hint, capsys):
    assert ch02.check_bilinear(student) is False
    assert hint in capsys.readouterr().out


def _variant(**kw):
    def fn(box, out, idx, scale=1.0, sr=-1, aligned=False):
        return ch02._mistaken_sample_points(box, out, idx, scale, sr, aligned, **kw)

    return fn


@pytest.mark.parametrize(
    ("student", "hint"),
    [
        (_variant(swap_bin=True), "(row, column)"),
        (_variant(shift=0.5), "*minus* half a cell"),
        (_variant(shift=0.0), "you ignored aligned"),
        (_variant(shift_before_scale=True), "half an *image pixel*"),
        (_variant(within="edges"), "sub-cell *centers*"),
        (_variant(within="spread"), "(k + 1) / (g + 1)"),
        (_variant(adaptive="floor"), "rounds the bin size *up*"),
        (_variant(adaptive="image"), "*feature cells*"),
        (_variant(min_size="never"), "stretched to 1 cell"),
        (_variant(min_size="always"), "no minimum size"),
        (lambda *a: tuple(reversed(ch02.bin_sample_points(*a))), "you return (xs, ys)"),
    ],
    ids=[
        "bin-swapped",
        "plus-half",
        "ignored-aligned",
        "shift-before-scale",
        "edges",
        "spread",
        "adaptive-floor",
        "adaptive-image-pixels",
        "no-legacy-clamp",
        "clamp-when-aligned",
        "xs-ys",
    ],
)
def test_bin_sample_points_mistakes(student, hint, capsys):
    assert ch02.check_bin_sample_points(student) is False
    assert hint in capsys.readouterr().out


def _roi_align_from_solutions(feature, rois, out, scale, sampling_ratio, aligned):
    """RoIAlign assembled from the two chapter-02 solutions plus RoIAlign's border rule."""
    n, c, h, w = feature.shape
    result = feature.new_zeros(len(rois), c, out, out)

    def sample(fm, y, x):
        if y < -1 or y > h or x < -1 or x > w:
            return fm.new_zeros(c)
        return ch02.bilinear(fm, min(max(y, 0.0), h - 1), min(max(x, 0.0), w - 1))

    for k, (b, *box) in enumerate(rois.tolist()):
        for i in range(out):
            for j in range(out):
                ys, xs = ch02.bin_sample_points(box, out, (i, j), scale, sampling_ratio, aligned)
                vals = [sample(feature[int(b)], y, x) for y in ys for x in xs]
                if vals:
                    result[k, :, i, j] = torch.stack(vals).mean(0)
    return result


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 2])
def test_ch02_solutions_rebuild_torchvision_roi_align(aligned, sampling_ratio):
    g = torch.Generator().manual_seed(1)
    feature = torch.randn(2, 3, 9, 11, dtype=torch.float64, generator=g)
    rois = _random_rois(g, 12, 2, 170.0)
    rois = torch.cat([rois, torch.tensor([[1.0, 50.0, 60.0, 55.0, 62.0]], dtype=torch.float64)])  # tiny box
    ours = _roi_align_from_solutions(feature, rois, 5, 1 / 16, sampling_ratio, aligned)
    theirs = torchvision.ops.roi_align(feature, rois, 5, 1 / 16, sampling_ratio, aligned)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
