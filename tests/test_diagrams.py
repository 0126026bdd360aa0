"""minimrcnn.diagrams: every shape a drawing prints is the model's, on both backbones.

The expected shapes are recorded here independently of `diagrams.record_shapes`: a fresh model, hooks of
this file's own, one training-mode forward pass. A drawing's shape labels carry gid "shape:<name>", so each
printed label is compared with the tensor it names.
"""

from __future__ import annotations

import re
from functools import cache

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from minimrcnn import diagrams
from minimrcnn.model.mask_rcnn import MaskRCNN
from minimrcnn.presets import figures_cpu, shapes_cpu


def c4_cpu():
    cfg = shapes_cpu()
    cfg.model.fpn = False
    cfg.model.box_pool_size = cfg.model.mask_resolution = 14  # C4: masks upsample conv5's 7x7 output
    cfg.model.box_batch_size_per_image = 16  # conv5 runs on every sampled RoI: fewer keep the test fast
    return cfg


CONFIGS = {"fpn": shapes_cpu, "c4": c4_cpu, "keypoints": figures_cpu}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@cache
def model_shapes(kind: str) -> dict[str, tuple[int, ...]]:
    """The shapes of the tensors the drawings name, from one training step of a fresh model (one per kind)."""
    m = CONFIGS[kind]().model
    torch.manual_seed(1)
    model = MaskRCNN(m).train()
    got: dict[str, tuple[int, ...]] = {}

    def keep(module, name, pick=lambda o: o, pre=False):
        if pre:
            module.register_forward_pre_hook(lambda _m, a: got.__setitem__(name, tuple(a[0].shape)))
        else:
            module.register_forward_hook(lambda _m, _a, o: got.__setitem__(name, tuple(pick(o).shape)))

    bb, rpn, heads = model.backbone, model.rpn, model.roi_heads
    keep(bb, "image", pre=True)
    for i, stage in enumerate(bb.body.stages):
        keep(getattr(bb.body, stage), f"C{i + 2}")
    levels = [f"P{i + 2}" for i in range(len(bb.body.stages) + 1)] if m.fpn else ["C4"]
    bb.register_forward_hook(lambda _m, _a, o: got.update({lv: tuple(t.shape) for lv, t in zip(levels, o)}))
    if m.fpn:
        for i, lat in enumerate(bb.fpn.lateral):
            keep(lat, f"L{i + 2}")
        keep(heads.box_pooler, "box.pooled")
    else:
        keep(heads.res5, "res5")
        keep(heads.pooler, "roi.pooled")
    rpn.head.register_forward_hook(lambda _m, _a, o: got.update(
        {f"rpn.{kind}.{lv}": tuple(t.shape) for kind, ts in zip(("logits", "deltas"), o)
         for lv, t in zip(levels, ts)}))  # fmt: skip
    calls = []
    rpn.head.conv.register_forward_hook(lambda _m, _a, o: calls.append(tuple(o.shape)))
    keep(rpn.anchor_generator, "anchors", lambda o: o[0])
    keep(heads.box_predictor, "box.features", pre=True)
    keep(heads.box_predictor, "box.class_logits", lambda o: o[0])
    keep(heads.box_predictor, "box.deltas", lambda o: o[1])
    for branch in ("mask", "keypoint"):
        head = getattr(heads, f"{branch}_head")
        if head is not None:
            keep(head, f"{branch}.pooled", pre=True)
            keep(head, f"{branch}.logits")
            keep(head.convs, f"{branch}.convs")
    if heads.keypoint_head is not None:
        keep(heads.keypoint_head.deconv, "keypoint.deconv")
    size = m.min_size[-1]
    target = {"boxes": torch.tensor([[30.0, 20.0, 90.0, 100.0]]), "labels": torch.tensor([1]),
              "masks": torch.ones(1, size, size, dtype=torch.uint8)}  # fmt: skip
    if m.keypoint_on:
        target["keypoints"] = torch.cat([torch.rand(1, m.num_keypoints, 2) * 40 + 40,
                                         torch.ones(1, m.num_keypoints, 1)], dim=2)  # fmt: skip
    with torch.no_grad():
        model([torch.rand(3, size, size)], [target])
    got |= {f"rpn.conv.{lv}": s for lv, s in zip(levels, calls)}
    if "mask.convs" in got:  # the mask head computes its deconv as matmuls: [N, C, S, S] -> [N, dim, 2S, 2S]
        n, _, side, _ = got["mask.convs"]
        got["mask.deconv"] = (n, heads.mask_head.deconv.out_channels, 2 * side, 2 * side)
    return got


def shown(name: str, shape: tuple[int, ...]) -> str:
    """How a label writes a shape: per image / per RoI (the first dimension dropped), anchors whole."""
    return "×".join(map(str, shape if name == "anchors" else shape[1:]))


def check_labels(fig, expected: dict[str, tuple[int, ...]], cfg) -> set[str]:
    """Every shape label in fig names a tensor of the model and prints its shape; returns the names seen."""
    seen = set()
    for t in fig.findobj(Text):
        gid = t.get_gid()
        if not gid or not gid.startswith("shape:"):
            continue
        name = gid[len("shape:"):]
        seen.add(name)
        if name == "proposals":  # how many survive NMS depends on the weights; at most the configured number
            n = int(re.search(r"(\d+)×4", t.get_text()).group(1))
            assert 0 < n <= cfg.model.rpn_post_nms_top_n_train
            continue
        assert name in expected, f"{name}: a label for a tensor the model does not have"
        text = t.get_text()
        if text.endswith((" anchors", " classes")):  # the strip counts them: 4080 anchors, 4 classes
            assert text.split()[0] == str(expected[name][0 if name == "anchors" else 1]), (name, text)
        else:
            assert shown(name, expected[name]) in text, (name, text, expected[name])
    return seen


@pytest.mark.parametrize("kind", ["fpn", "c4", "keypoints"])
def test_architecture_prints_the_model_shapes(kind):
    cfg = CONFIGS[kind]()
    seen = check_labels(diagrams.draw_architecture(cfg), model_shapes(kind), cfg)
    maps = {"fpn": {"C2", "C3", "C4", "P2", "P3", "P4", "P5"}, "c4": {"C2", "C3", "C4"},
            "keypoints": {"C5", "P6"}}[kind]  # fmt: skip
    heads = {"box.features", "box.class_logits", "box.deltas", "image", "anchors", "proposals"}
    heads |= {"keypoint.logits", "keypoint.pooled"} if kind == "keypoints" else {"mask.logits"}
    assert maps | heads <= seen


@pytest.mark.parametrize("kind", ["fpn", "c4"])
@pytest.mark.parametrize("draw", ["draw_fpn", "draw_rpn_head", "draw_mask_head", "draw_keypoint_head"])
def test_each_drawing_on_both_backbones(kind, draw):
    cfg = CONFIGS[kind]()
    if draw == "draw_keypoint_head":  # a keypoint head needs the FPN; drawn from figures_cpu instead
        with pytest.raises(ValueError, match="no keypoint head"):
            diagrams.draw_keypoint_head(cfg)
        if kind == "c4":
            return
        kind, cfg = "keypoints", figures_cpu()
    fig = getattr(diagrams, draw)(cfg)
    assert fig.get_facecolor()[:3] == (1.0, 1.0, 1.0)
    seen = check_labels(fig, model_shapes(kind), cfg)
    must = {
        "draw_fpn": {"C2", "C3", "C4"} | ({"L2", "L4", "P2", "P3", "P4", "P5"} if kind == "fpn" else set()),
        "draw_rpn_head": {"rpn.logits.P2", "rpn.deltas.P5", "rpn.conv.P3"} if kind == "fpn"
        else {"rpn.logits.C4", "rpn.deltas.C4", "rpn.conv.C4"},
        "draw_mask_head": {"mask.logits", "mask.deconv", "box.features", "box.class_logits", "box.deltas"}
        | ({"mask.pooled", "mask.convs", "box.pooled"} if kind == "fpn" else {"roi.pooled", "res5"}),
        "draw_keypoint_head": {"keypoint.pooled", "keypoint.convs", "keypoint.deconv", "keypoint.logits"},
    }[draw]  # fmt: skip
    assert must <= seen


def test_mask_head_needs_a_mask_branch():
    with pytest.raises(ValueError, match="no mask head"):
        diagrams.draw_mask_head(figures_cpu())  # keypoints only


ALL = "image backbone fpn rpn roi box mask outputs"  # all that shapes_cpu has: no keypoint head


def highlighted(fig) -> set[str]:
    grey = mcolors.to_rgba(diagrams.GREY_FILL)
    parts = [p for p in fig.findobj(Rectangle) if (p.get_gid() or "").startswith("part:")]
    assert {p.get_gid()[5:] for p in parts} == set(diagrams.PARTS)
    return {p.get_gid()[5:] for p in parts if p.get_facecolor() != grey}


@pytest.mark.parametrize(
    "chapter, parts",
    [(0, ALL), (1, "roi"), (2, "roi"), (3, "backbone fpn"), (4, "rpn"), (5, "mask"), (6, "rpn box mask"),
     (7, ALL), (8, "outputs"), (9, "box mask"), (10, "keypoint")],
)  # fmt: skip
def test_you_are_here_highlights_the_chapters_part(chapter, parts):
    fig = diagrams.you_are_here(chapter)
    assert highlighted(fig) == set(parts.split())
    assert any(f"Chapter {chapter:02d}" in t.get_text() for t in fig.findobj(Text))
    kind = "keypoints" if chapter == 10 else "fpn"
    check_labels(fig, model_shapes(kind), CONFIGS[kind]())


def test_architecture_highlight_greys_the_rest():
    fig = diagrams.draw_architecture(shapes_cpu(), highlight=("rpn",))
    grey = mcolors.to_rgba(diagrams.GREY_FILL)
    colours = {p.get_gid(): p.get_facecolor() != grey for p in fig.findobj(Rectangle) if p.get_gid()}
    assert colours["part:rpn"] and not colours["part:roi"] and not colours["part:backbone"]


def test_record_shapes_is_cached_and_leaves_the_random_state():
    cfg = shapes_cpu()
    cfg.model.fpn_channels = 32  # a config no other test recorded: this call runs the model
    torch.manual_seed(5)
    shapes = diagrams.record_shapes(cfg)
    after = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(after, torch.rand(3))
    assert shapes["P3"] == (1, 32, 16, 16)
    shapes["P3"] = (0,)  # the caller's copy; the cache keeps its own
    assert diagrams.record_shapes(cfg)["P3"] == (1, 32, 16, 16)
    assert diagrams.record_shapes(cfg.model) == diagrams.record_shapes(cfg)


@pytest.mark.parametrize("aligned", [True, False])
def test_roi_bins_draws_the_operators_samples_and_cells(aligned):
    box, stride = (11.3, 9.8, 46.6, 38.5), 8
    fig = diagrams.draw_roi_bins(box, stride=stride, output_size=2, sampling_ratio=2, aligned=aligned)
    pool_ax, align_ax = fig.axes
    # RoIPool: corners rounded to the grid (halves away from 0), the far edge inclusive: cells 1..6 x 1..5
    (snapped,) = [p for p in pool_ax.patches if p.get_label() == "what RoIPool reads"]
    assert (snapped.get_x(), snapped.get_y(), snapped.get_width(), snapped.get_height()) == (8, 8, 48, 40)
    # RoIAlign: 4 x 4 samples at the centres of the quarter-bins; aligned=False reads them half a cell on
    (points,) = [c for c in align_ax.collections if c.get_label() == "sampling points"]
    xy = torch.tensor(points.get_offsets().data)
    shift = 0 if aligned else stride / 2
    k = torch.arange(4, dtype=torch.float64)
    xs = box[0] + (k + 0.5) * (box[2] - box[0]) / 4 + shift  # [4]
    ys = box[1] + (k + 0.5) * (box[3] - box[1]) / 4 + shift
    torch.testing.assert_close(xy[:, 0].reshape(4, 4), xs[None].expand(4, 4), rtol=0, atol=1e-9)
    torch.testing.assert_close(xy[:, 1].reshape(4, 4), ys[:, None].expand(4, 4), rtol=0, atol=1e-9)
    weights = [float(t.get_text()) for t in align_ax.texts if re.fullmatch(r"0\.\d\d|1\.00", t.get_text())]
    assert len(weights) == 4 and abs(sum(weights) - 1) < 0.02  # bilinear: four neighbours, weights sum to 1


def test_main_writes_small_pngs(tmp_path):
    diagrams.main(["--out", str(tmp_path)])
    assert [p.name for p in tmp_path.iterdir()] == ["architecture.png"]
    diagrams.main(["--out", str(tmp_path), "--all"])
    sizes = {p.name: p.stat().st_size for p in tmp_path.iterdir()}
    assert set(sizes) == {f"{name}.png" for name in diagrams.DRAWINGS}
    assert max(sizes.values()) < 200_000
