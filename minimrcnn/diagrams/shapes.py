"""The shapes the drawings print, recorded by running the real model once with forward hooks.

`record_shapes(cfg)` builds `MaskRCNN` from the config, runs it once (training mode, one dummy image and one
object, so that every branch runs) with forward hooks, and returns the shape of every tensor the drawings
label. Every number on an arrow comes from there; nothing is typed in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import torch
from torch.utils.hooks import RemovableHandle

from minimrcnn.config import Config, ModelConfig
from minimrcnn.model.mask_rcnn import MaskRCNN

Shapes = dict[str, tuple[int, ...]]


def record_shapes(cfg: Config | ModelConfig) -> Shapes:
    """Run the model once with forward hooks and return {name: shape}. Cached per model config.

    Names: image; C2..C5 (backbone stages); L2..L5 (FPN lateral 1x1), P2..P6 (FPN outputs); per level
    rpn.conv.<level>, rpn.logits.<level>, rpn.deltas.<level>; anchors, proposals (per image); roi.pooled, res5
    (C4); box.pooled, box.features, box.class_logits, box.deltas; mask.pooled, mask.convs, mask.deconv,
    mask.logits; the same four for keypoint.
    """
    m = cfg.model if isinstance(cfg, Config) else cfg
    return dict(_record(tuple(dataclasses.asdict(m).items())))


@lru_cache(maxsize=16)
def _record(key: tuple) -> tuple[tuple[str, tuple[int, ...]], ...]:
    cfg = ModelConfig(**dict(key))
    shapes: Shapes = {}
    seen: dict[str, torch.Tensor] = {}

    def on(
        module: torch.nn.Module,
        name: str,
        pick: Callable[[Any], torch.Tensor] = lambda out: out,
        pre: bool = False,
    ) -> RemovableHandle:
        """Record pick(output).shape (pre: the first input's shape) under `name`, at every call."""

        def save(_m: torch.nn.Module, *args: Any) -> None:
            t = pick(args[0][0] if pre else args[-1])
            shapes[name], seen[name] = tuple(t.shape), t

        return module.register_forward_pre_hook(save) if pre else module.register_forward_hook(save)

    with torch.random.fork_rng(devices=[]):  # leave the caller's random state as it was
        torch.manual_seed(0)
        model = MaskRCNN(cfg).train()  # training: every branch runs on the sampled RoIs, whatever the weights
        model.transform.eval()  # the test-time short side, not a random one of a multi-scale recipe
        body, fpn, rpn, heads = model.backbone.body, model.backbone.fpn, model.rpn, model.roi_heads
        levels = [f"P{i + 2}" for i in range(len(body.stages) + 1)] if fpn is not None else ["C4"]
        hooks = [
            on(model.backbone, "image", pre=True),
            on(rpn.anchor_generator, "anchors", lambda o: o[0]),
            on(rpn, "proposals", lambda o: o[0][0]),
            on(heads.box_predictor, "box.features", pre=True),
            on(heads.box_predictor, "box.class_logits", lambda o: o[0]),
            on(heads.box_predictor, "box.deltas", lambda o: o[1]),
        ]
        hooks += [on(getattr(body, stage), f"C{i + 2}") for i, stage in enumerate(body.stages)]
        for i, lv in enumerate(levels):
            hooks += [
                on(rpn.head, f"rpn.logits.{lv}", lambda o, i=i: o[0][i]),
                on(rpn.head, f"rpn.deltas.{lv}", lambda o, i=i: o[1][i]),
            ]
            hooks += [on(fpn, lv, lambda o, i=i: o[i])] if fpn is not None else []
        if fpn is not None:
            hooks += [on(lat, f"L{i + 2}") for i, lat in enumerate(fpn.lateral)]
            hooks.append(on(heads.box_pooler, "box.pooled"))
        else:
            hooks += [on(heads.pooler, "roi.pooled"), on(heads.res5, "res5")]
        for b in ("mask", "keypoint"):
            head = getattr(heads, f"{b}_head")
            if head is not None:
                hooks += [on(head, f"{b}.pooled", pre=True), on(head, f"{b}.logits")]
                hooks += [on(head.convs, f"{b}.convs")] if hasattr(head, "convs") else []
        rpn_conv: list[tuple[int, ...]] = []  # the shared conv runs once per level, in the levels' order
        hooks.append(rpn.head.conv.register_forward_hook(lambda _m, _i, o: rpn_conv.append(tuple(o.shape))))
        size = min(cfg.min_size[-1], cfg.max_size)
        target = {
            "boxes": torch.tensor([[0.2, 0.25, 0.7, 0.8]]) * size,
            "labels": torch.tensor([1]),
            "masks": torch.zeros(1, size, size, dtype=torch.uint8),
        }
        target["masks"][:, size // 4 : size * 3 // 4, size // 4 : size * 3 // 4] = 1
        if cfg.keypoint_on:
            xy = torch.rand(1, cfg.num_keypoints, 2) * 0.4 * size + 0.3 * size  # inside the box
            target["keypoints"] = torch.cat([xy, torch.full((1, cfg.num_keypoints, 1), 2.0)], dim=2)
        with torch.no_grad():
            model([torch.rand(3, size, size)], [target])
            for b in ("mask", "keypoint"):  # the mask head folds its deconv into matmuls: run the layer
                head = getattr(heads, f"{b}_head")
                if f"{b}.convs" in seen and hasattr(head, "deconv"):
                    shapes[f"{b}.deconv"] = tuple(head.deconv(seen[f"{b}.convs"]).shape)
        for h in hooks:
            h.remove()
    shapes |= {f"rpn.conv.{lv}": s for lv, s in zip(levels, rpn_conv)}
    return tuple(shapes.items())


def label(shapes: Shapes, name: str) -> str:
    """The text a drawing prints for a recorded tensor: 64×32×32 (batch or RoI dimension dropped)."""
    s = shapes[name]
    return "×".join(map(str, s if name in ("anchors", "proposals") else s[1:]))
