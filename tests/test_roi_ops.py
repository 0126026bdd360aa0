"""roi_align, roi_pool, roi_warp: equal to torchvision's kernels, forward and backward, on awkward boxes."""

from __future__ import annotations

import importlib

import pytest
import torch
import torchvision
from torch import Tensor

from minimrcnn.ops import roi_align, roi_pool, roi_warp

roi_align_module = importlib.import_module("minimrcnn.ops.roi_align")  # the package re-exports the function

TOL = {torch.float32: dict(rtol=1e-4, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-12)}


def random_rois(
    g: torch.Generator, k: int, n: int, h: int, w: int, scale: float, dtype: torch.dtype
) -> Tensor:
    """[K, 5] image-coordinate boxes over an [h, w] map.

    Inside, straddling, far outside, tiny, zero-size, inverted and half-pixel-aligned ones.
    """
    size = torch.tensor([w, h], dtype=dtype) / scale  # image size
    xy = (torch.rand(k, 2, generator=g, dtype=dtype) * 1.6 - 0.3) * size  # some corners outside the image
    wh = torch.rand(k, 2, generator=g, dtype=dtype) * 0.8 * size
    kind = torch.randint(0, 10, (k,), generator=g)
    wh[kind == 0] *= 0.02  # tiny: well under one feature pixel
    wh[kind == 1] = 0.0  # zero-size
    wh[kind == 2, 0] = 0.0  # zero width only
    wh[kind == 3] *= -0.1  # inverted (x2 < x1): torchvision does not reject these
    xy[kind == 4] = (
        torch.rand(int((kind == 4).sum()), 2, generator=g, dtype=dtype) * 2 + 1.05
    ) * size  # far out
    on_grid = kind == 5  # corners on half-pixel multiples: samples land exactly on -1, 0, H-1, H ...
    xy[on_grid] = torch.round(xy[on_grid] * scale * 2) / (scale * 2)
    wh[on_grid] = torch.round(wh[on_grid] * scale * 2) / (scale * 2)
    image = torch.randint(0, n, (k, 1), generator=g).to(dtype)
    return torch.cat([image, xy, xy + wh], dim=1)


def as_list(rois: Tensor, n: int) -> list[Tensor]:
    return [rois[rois[:, 0] == i, 1:] for i in range(n)]


def forward_backward(op, x: Tensor, boxes, *args, **kwargs) -> tuple[Tensor, Tensor]:
    x = x.detach().requires_grad_(True)
    out = op(x, boxes, *args, **kwargs)
    grad_out = torch.linspace(-1, 1, out.numel(), dtype=x.dtype).reshape(out.shape)  # [K, C, h, w]
    (grad,) = torch.autograd.grad(out, x, grad_out, allow_unused=True)
    return out.detach(), torch.zeros_like(x) if grad is None else grad


def assert_matches_torchvision(ours, theirs, x: Tensor, boxes, *args, **kwargs) -> None:
    out, grad = forward_backward(ours, x, boxes, *args, **kwargs)
    ref_out, ref_grad = forward_backward(theirs, x, boxes, *args, **kwargs)
    torch.testing.assert_close(out, ref_out, **TOL[x.dtype])
    torch.testing.assert_close(grad, ref_grad, **TOL[x.dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("sampling_ratio", [-1, 0, 1, 2, 3])
@pytest.mark.parametrize("aligned", [False, True])
def test_roi_align_matches_torchvision(aligned: bool, sampling_ratio: int, dtype: torch.dtype) -> None:
    seed = 100 * sampling_ratio + 10 * aligned + (dtype == torch.float64)
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = 3, 4, 11, 14
    for scale, out_size in [(1.0, 3), (0.25, (4, 2)), (1 / 3, [2, 5])]:
        x = torch.randn(n, c, h, w, generator=g, dtype=dtype)
        rois = random_rois(g, 60, n, h, w, scale, dtype)
        args = (out_size, scale, sampling_ratio, aligned)
        assert_matches_torchvision(roi_align, torchvision.ops.roi_align, x, rois, *args)
        assert_matches_torchvision(roi_align, torchvision.ops.roi_align, x, as_list(rois, n), *args)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_roi_pool_matches_torchvision(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(7 + (dtype == torch.float64))
    n, c, h, w = 2, 5, 13, 10
    for scale, out_size in [(1.0, 3), (0.5, (2, 4)), (0.25, 7), (1 / 3, [5, 1])]:
        x = torch.randn(n, c, h, w, generator=g, dtype=dtype)
        rois = random_rois(g, 60, n, h, w, scale, dtype)
        args = (out_size, scale)
        assert_matches_torchvision(roi_pool, torchvision.ops.roi_pool, x, rois, *args)
        assert_matches_torchvision(roi_pool, torchvision.ops.roi_pool, x, as_list(rois, n), *args)


def test_roi_pool_ties_send_the_gradient_to_the_first_maximum() -> None:
    # after a ReLU most bins hold several equal zeros: the gradient must go to the first (row-major) one
    g = torch.Generator().manual_seed(3)
    x = torch.relu(torch.randn(2, 3, 9, 9, generator=g) - 1.0)
    x[0, 0] = 1.0  # a whole constant channel
    rois = random_rois(g, 40, 2, 9, 9, 1.0, torch.float32)
    assert_matches_torchvision(roi_pool, torchvision.ops.roi_pool, x, rois, (3, 2), 1.0)


def test_roi_pool_rounds_halves_away_from_zero() -> None:
    # C's round(): 0.5 -> 1, 1.5 -> 2, 2.5 -> 3, -0.5 -> -1 (torch.round would give 0, 2, 2, -0)
    x = torch.arange(2 * 8 * 8, dtype=torch.float32).reshape(1, 2, 8, 8)
    coords = torch.tensor([-1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 4.5])
    x1, y1 = torch.meshgrid(coords, coords, indexing="ij")
    rois = torch.stack(
        [torch.zeros(x1.numel()), x1.flatten(), y1.flatten(), x1.flatten() + 2, y1.flatten() + 3], 1
    )
    assert_matches_torchvision(roi_pool, torchvision.ops.roi_pool, x, rois, 2, 1.0)
    assert_matches_torchvision(roi_pool, torchvision.ops.roi_pool, x, rois * 2, 2, 0.5)


def test_roi_align_on_exact_boundary_samples() -> None:
    # samples exactly at -1 (kept), just below -1 (zero), at H-1 and at H (clamped)
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64)
    rows = [(-1.5, -0.5), (-1.5001, -0.5001), (3.5, 4.5), (4.5, 5.5), (4.5001, 5.5001), (-2.0, 7.0)]
    rois = torch.tensor(
        [[0.0, 1.0, y1, 3.0, y2] for y1, y2 in rows] + [[0.0, y1, 1.0, y2, 3.0] for y1, y2 in rows],
        dtype=torch.float64,
    )
    for aligned in (False, True):
        for sr in (1, 2):
            args = ((1, 1), 1.0, sr, aligned)
            assert_matches_torchvision(roi_align, torchvision.ops.roi_align, x, rois, *args)
            assert_matches_torchvision(roi_align, torchvision.ops.roi_align, x.float(), rois.float(), *args)


@pytest.mark.parametrize("shape", [(1, 3, 1, 7), (1, 3, 6, 1), (1, 3, 1, 1)])
def test_one_pixel_wide_maps(shape: tuple[int, int, int, int]) -> None:
    g = torch.Generator().manual_seed(11)
    x = torch.randn(*shape, generator=g, dtype=torch.float64)
    rois = random_rois(g, 30, 1, shape[2], shape[3], 1.0, torch.float64)
    for sr in (-1, 2):
        assert_matches_torchvision(roi_align, torchvision.ops.roi_align, x, rois, 3, 1.0, sr, False)
        assert_matches_torchvision(roi_align, torchvision.ops.roi_align, x, rois, 3, 1.0, sr, True)
    assert_matches_torchvision(roi_pool, torchvision.ops.roi_pool, x, rois, 3, 1.0)


def test_large_adaptive_grid_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # big boxes on a fine map need many samples per bin; force the chunked path and compare
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, 40, 50, generator=g)
    rois = random_rois(g, 12, 2, 40, 50, 1.0, torch.float32)
    rois[:4, 1:] = torch.tensor(
        [[-5.0, -3.0, 52.0, 41.0], [0.0, 0.0, 50.0, 40.0], [3, 2, 40, 33], [1, 1, 2, 39]]
    )
    expected = forward_backward(torchvision.ops.roi_align, x, rois, (2, 3), 1.0, -1, True)
    monkeypatch.setattr(roi_align_module, "_MAX_BAG_ENTRIES", 500)  # a few rows of samples at a time
    actual = forward_backward(roi_align, x, rois, (2, 3), 1.0, -1, True)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)


OPS = {  # ours, torchvision's (None: no counterpart), arguments after the boxes
    "align": (roi_align, torchvision.ops.roi_align, ((2, 3), 0.5, 2)),
    "pool": (roi_pool, torchvision.ops.roi_pool, ((2, 3), 0.5)),
    "warp": (roi_warp, None, ((2, 3), 0.5, 2)),
}


@pytest.mark.parametrize("name", list(OPS))
def test_empty_boxes(name: str) -> None:
    op, tv_op, args = OPS[name]
    x = torch.randn(2, 3, 8, 9, requires_grad=True)
    for boxes in (torch.zeros(0, 5), [torch.zeros(0, 4), torch.zeros(0, 4)], []):
        out = op(x, boxes, *args)
        assert out.shape == (0, 3, 2, 3) and out.dtype == x.dtype
        out.sum().backward()  # still part of the graph
        assert x.grad is not None and not x.grad.any()
    if tv_op is not None:  # one image with boxes, one without
        boxes = [torch.zeros(0, 4), torch.tensor([[1.0, 2.0, 9.0, 12.0], [4.0, 0.0, 5.0, 3.0]])]
        assert_matches_torchvision(op, tv_op, x, boxes, *args)


def test_boxes_get_no_gradient_and_non_contiguous_input() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 6, 10, 12, generator=g).contiguous(memory_format=torch.channels_last)
    rois = random_rois(g, 20, 2, 10, 12, 1.0, torch.float32).requires_grad_(True)
    for op, tv_op, args in [
        (roi_align, torchvision.ops.roi_align, (4, 1.0, 2, True)),
        (roi_pool, torchvision.ops.roi_pool, (4, 1.0)),
    ]:
        out = op(x, rois, *args)
        assert out.is_contiguous()
        torch.testing.assert_close(out, tv_op(x, rois.detach(), *args))
        assert not out.requires_grad and rois.grad is None
    assert_matches_torchvision(roi_align, torchvision.ops.roi_align, x[:, ::2], rois.detach(), 3, 1.0, 2)


def test_roi_align_gradcheck() -> None:
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 2, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    rois = random_rois(g, 6, 2, 5, 6, 1.0, torch.float64)
    assert torch.autograd.gradcheck(lambda t: roi_align(t, rois, (2, 3), 1.0, -1, True), (x,))
    assert torch.autograd.gradcheck(lambda t: roi_warp(t, rois, (3, 2), 1.0, 2), (x,))


def round_half_away(v: Tensor) -> Tensor:  # the test's own copy of C's round()
    return torch.where(v >= 0, torch.floor(v + 0.5), -torch.floor(-v + 0.5))


@pytest.mark.parametrize("scale", [1.0, 0.5, 0.25])
@pytest.mark.parametrize("sampling_ratio", [-1, 2])
def test_roi_warp_is_roi_align_of_rounded_boxes(scale: float, sampling_ratio: int) -> None:
    g = torch.Generator().manual_seed(9)
    x = torch.randn(2, 3, 12, 16, generator=g, dtype=torch.float64)
    rois = random_rois(g, 40, 2, 12, 16, scale, torch.float64)
    rounded = torch.cat([rois[:, :1], round_half_away(rois[:, 1:] * scale) / scale], dim=1)
    args = ((3, 4), scale, sampling_ratio)
    warp, warp_grad = forward_backward(roi_warp, x, rois, *args)
    align, align_grad = forward_backward(roi_align, x, rounded, *args, aligned=False)
    torch.testing.assert_close(warp, align)
    torch.testing.assert_close(warp_grad, align_grad)
    # list-of-boxes form, and torchvision's kernel on the rounded boxes
    by_image = torch.cat([rois[rois[:, 0] == i] for i in range(2)])  # the order of the list form
    torch.testing.assert_close(roi_warp(x, as_list(rois, 2), *args), roi_warp(x, by_image, *args))
    torch.testing.assert_close(warp, torchvision.ops.roi_align(x, rounded, *args, aligned=False))
    # the rounding matters: for off-grid boxes RoIWarp is not RoIAlign
    inside = random_rois(g, 40, 2, 12, 16, scale, torch.float64)
    inside[:, 1:] = (torch.rand(40, 4, generator=g, dtype=torch.float64) * 4 + 3.2) / scale
    inside[:, 3:] += 3.0 / scale
    off_grid = (inside[:, 1:] * scale - round_half_away(inside[:, 1:] * scale)).abs().amax(dim=1) > 0.1
    differ = (roi_warp(x, inside, *args) - roi_align(x, inside, *args)).abs().flatten(1).amax(dim=1) > 1e-6
    assert off_grid.all() and differ.all()


def test_roi_warp_equals_roi_align_on_grid_boxes() -> None:
    g = torch.Generator().manual_seed(12)
    x = torch.randn(2, 4, 10, 13, generator=g)
    corners = torch.randint(-3, 15, (30, 4), generator=g).float()
    rois = torch.cat([torch.randint(0, 2, (30, 1), generator=g).float(), corners], dim=1)
    for scale in (1.0, 0.5):
        on_grid = torch.cat([rois[:, :1], rois[:, 1:] / scale], dim=1)  # integer once scaled
        for sr in (-1, 1, 2):
            torch.testing.assert_close(
                roi_warp(x, on_grid, 5, scale, sr), roi_align(x, on_grid, 5, scale, sr)
            )


def test_roi_align_sampling_by_hand() -> None:
    # a linear ramp is reproduced exactly by bilinear sampling: each bin is the ramp at the bin centre
    h, w = 6, 8
    ramp = torch.arange(w, dtype=torch.float64) * 2 + torch.arange(h, dtype=torch.float64)[:, None] * 10
    x = ramp[None, None]  # [1, 1, H, W], value 10*y + 2*x
    rois = torch.tensor([[0.0, 1.0, 0.5, 5.0, 4.5]])  # inside the map, 4 x 4
    out = roi_align(x, rois, (2, 2), 1.0, 2, aligned=False)  # bins of 2 x 2, centres at +1
    centres_y, centres_x = torch.tensor([1.5, 3.5]), torch.tensor([2.0, 4.0])
    expected = 10 * centres_y[:, None] + 2 * centres_x[None, :]
    torch.testing.assert_close(out[0, 0], expected.double())
