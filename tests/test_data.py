"""The data pipeline: the shapes generator, the COCO reader, transforms and batching."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch
from PIL import Image
from pycocotools.coco import COCO
from torch.utils.data import DataLoader, RandomSampler, SequentialSampler, Subset
from torch.utils.data.distributed import DistributedSampler

from minimrcnn.config import TrainConfig
from minimrcnn.data import DataError, build_dataset
from minimrcnn.data.coco import CocoInstances
from minimrcnn.data.samplers import GroupedBatchSampler, aspect_ratio_groups, collate
from minimrcnn.data.shapes import ensure_shapes, uncompressed_rle
from minimrcnn.data.transforms import RandomHorizontalFlip
from minimrcnn.errors import UserError


# ---------------------------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shapes")
    ensure_shapes(root, "train", 40)
    ensure_shapes(root, "val", 10)
    return root


def train_set(root: Path, train: bool = True) -> CocoInstances:
    return CocoInstances(
        root / "train", root / "annotations" / "instances_train.json", drop_crowd=train, skip_empty=train
    )


def mask_box(mask: torch.Tensor) -> torch.Tensor:
    """Tight (x1, y1, x2, y2) box of a [H, W] mask, in the same pixel-edge convention as COCO's bbox."""
    ys, xs = torch.where(mask.bool())
    return torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)


def assert_boxes_tight(target: dict, tol: float = 1.0) -> None:
    assert len(target["boxes"]) == len(target["masks"]) > 0
    for box, mask in zip(target["boxes"], target["masks"]):
        assert torch.allclose(box, mask_box(mask), atol=tol), (box, mask_box(mask))


def write_coco(folder: Path, images: list[dict], annotations: list[dict], name: str = "tiny") -> Path:
    """A small COCO dataset by hand: each image dict has id, width, height and optionally mode ("RGB")."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    entries = []
    for img in images:
        file_name = f"{img['id']:03d}.png"
        w, h = img["width"], img["height"]
        Image.new(img.get("mode", "RGB"), (w, h), img.get("colour", 128)).save(folder / "images" / file_name)
        entries.append({"id": img["id"], "file_name": file_name, "width": w, "height": h})
    anns = []
    for k, ann in enumerate(annotations):
        x, y, w, h = ann["bbox"]
        poly = [x, y, x + w, y, x + w, y + h, x, y + h]
        anns.append({"id": k + 1, "image_id": ann.get("image_id", 1), "bbox": [x, y, w, h], "area": w * h,
                     "category_id": ann.get("category_id", 5), "iscrowd": ann.get("iscrowd", 0),
                     "segmentation": ann.get("segmentation", [poly])})
    dataset = {"images": entries, "annotations": anns,
               "categories": [{"id": 5, "name": "thing"}, {"id": 9, "name": "other"}]}
    ann_file = folder / f"instances_{name}.json"
    ann_file.write_text(json.dumps(dataset))
    return ann_file


# ---------------------------------------------------------------------------------------------- generator
def test_generation_is_deterministic(tmp_path):
    a_img, a_json = ensure_shapes(tmp_path / "a", "train", 6)
    b_img, b_json = ensure_shapes(tmp_path / "b", "train", 6)
    assert a_json.read_bytes() == b_json.read_bytes()
    pngs = sorted(p.name for p in a_img.glob("*.png"))
    assert len(pngs) == 6
    assert all((a_img / p).read_bytes() == (b_img / p).read_bytes() for p in pngs)
    # another split and another seed draw other images
    v_img, _ = ensure_shapes(tmp_path / "a", "val", 6)
    s_img, _ = ensure_shapes(tmp_path / "c", "train", 6, seed=1)
    for other in (v_img, s_img):
        assert all((a_img / p).read_bytes() != (other / p).read_bytes() for p in pngs)


def test_ensure_shapes_reuses_or_regenerates(tmp_path):
    images_dir, ann_file = ensure_shapes(tmp_path, "train", 5)
    stamp = ann_file.stat().st_mtime_ns
    ensure_shapes(tmp_path, "train", 5)
    assert ann_file.stat().st_mtime_ns == stamp  # complete and matching: reused
    ensure_shapes(tmp_path, "train", 3)  # another count: regenerated, stale images removed
    assert len(json.loads(ann_file.read_text())["images"]) == 3
    assert len(list(images_dir.glob("*.png"))) == 3
    (images_dir / "000001.png").unlink()  # incomplete: regenerated
    ensure_shapes(tmp_path, "train", 3)
    assert (images_dir / "000001.png").is_file()
    ensure_shapes(tmp_path, "train", 3, image_size=64)
    assert Image.open(images_dir / "000000.png").size == (64, 64)


def test_annotations_are_valid_coco(shapes):
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(shapes / "annotations" / "instances_train.json"))
    assert sorted(coco.cats) == [1, 3, 7]
    assert [coco.cats[c]["name"] for c in (1, 3, 7)] == ["circle", "square", "triangle"]
    kinds = {"polygon": 0, "rle": 0, "uncompressed": 0}
    sides = []
    for ann in coco.anns.values():
        seg = ann["segmentation"]
        if isinstance(seg, list):
            kind = "polygon"
        else:
            kind = "uncompressed" if isinstance(seg["counts"], list) else "rle"
        kinds[kind] += 1
        assert (kind == "uncompressed") == bool(ann["iscrowd"])  # crowds are stored like COCO's
        rle = coco.annToRLE(ann)
        assert mask_utils.area(rle) == ann["area"] > 0
        assert mask_utils.toBbox(rle).tolist() == ann["bbox"]  # bbox is the tight box of the mask
        if not ann["iscrowd"]:
            sides.append(max(ann["bbox"][2:]))
    assert kinds["polygon"] > kinds["rle"] > 0 and kinds["uncompressed"] > 0
    assert min(sides) <= 10 and max(sides) >= 50  # small and large objects
    per_image = [sum(not a["iscrowd"] for a in coco.imgToAnns[i]) for i in coco.imgs]
    assert min(per_image) >= 1 and max(per_image) <= 6
    info = coco.imgs[1]
    size = Image.open(shapes / "train" / info["file_name"]).size
    assert size == (info["width"], info["height"]) == (128, 128)


def test_uncompressed_rle_round_trips():
    mask = np.zeros((5, 4), dtype=bool)
    mask[1:3, 1] = mask[4, 3] = True
    rle = uncompressed_rle(mask)
    assert rle == {"counts": [6, 2, 11, 1], "size": [5, 4]}  # column-major runs, zeros first
    decoded = mask_utils.decode(mask_utils.frPyObjects(rle, 5, 4))
    assert (decoded.astype(bool) == mask).all()
    assert uncompressed_rle(np.ones((2, 2), dtype=bool))["counts"] == [0, 4]


# ---------------------------------------------------------------------------------------------- dataset
def test_dataset_outputs(shapes):
    ds = train_set(shapes)
    assert ds.num_classes == 4
    assert ds.class_names == ["__background__", "circle", "square", "triangle"]
    assert ds.label_to_cat_id == [0, 1, 3, 7]
    assert ds.cat_id_to_label == {1: 1, 3: 2, 7: 3}
    assert len(ds) == len(ds.ids) == 40 and ds.aspect_ratio(0) == 1.0 and ds.image_sizes[0] == (128, 128)
    for i in range(len(ds)):
        image, target = ds[i]
        assert image.shape == (3, 128, 128) and image.dtype == torch.float32
        assert 0 <= image.min() and image.max() <= 1
        n = len(target["labels"])
        assert target["boxes"].shape == (n, 4) and target["boxes"].dtype == torch.float32
        assert target["labels"].dtype == torch.int64 and set(target["labels"].tolist()) <= {1, 2, 3}
        assert target["masks"].shape == (n, 128, 128) and target["masks"].dtype == torch.uint8
        assert set(target["masks"].unique().tolist()) <= {0, 1}
        assert target["area"].shape == (n,) and target["iscrowd"].dtype == torch.int64
        assert target["image_id"] == ds.ids[i]
        assert torch.equal(target["area"], target["masks"].sum((1, 2)).float())
        assert_boxes_tight(target, tol=0.0)
        cat_ids = sorted(ds.coco.anns[a]["category_id"] for a in ds.coco.getAnnIds(ds.ids[i], iscrowd=False))
        assert sorted(ds.label_to_cat_id[label] for label in target["labels"].tolist()) == cat_ids


def test_crowd_dropped_for_training_kept_for_evaluation(shapes):
    train, evaluation = train_set(shapes, train=True), train_set(shapes, train=False)
    crowd_images = sorted({a["image_id"] for a in train.coco.anns.values() if a["iscrowd"]})
    assert crowd_images
    for img_id in crowd_images:
        _, t_train = train[train.ids.index(img_id)]
        _, t_eval = evaluation[evaluation.ids.index(img_id)]
        assert t_train["iscrowd"].sum() == 0
        assert t_eval["iscrowd"].sum() >= 1
        assert len(t_eval["labels"]) == len(t_train["labels"]) + t_eval["iscrowd"].sum()


def test_images_without_objects_skipped_only_when_asked(tmp_path):
    images = [{"id": 1, "width": 20, "height": 10}, {"id": 2, "width": 20, "height": 10},
              {"id": 3, "width": 20, "height": 10}]
    anns = [{"image_id": 1, "bbox": [2, 2, 5, 5]},
            {"image_id": 2, "bbox": [2, 2, 5, 5], "iscrowd": 1,
             "segmentation": uncompressed_rle(np.pad(np.ones((5, 5), bool), ((2, 3), (2, 13))))}]
    ann_file = write_coco(tmp_path, images, anns)
    assert CocoInstances(tmp_path / "images", ann_file, drop_crowd=True, skip_empty=True).ids == [1]
    assert CocoInstances(tmp_path / "images", ann_file, skip_empty=True).ids == [1, 2]  # 2 has a crowd region
    assert CocoInstances(tmp_path / "images", ann_file, drop_crowd=True).ids == [1, 2, 3]
    _, target = CocoInstances(tmp_path / "images", ann_file)[2]  # no annotation at all
    assert target["boxes"].shape == (0, 4) and target["masks"].shape == (0, 10, 20)


def test_degenerate_boxes_dropped_and_logged(tmp_path, caplog):
    images = [{"id": 1, "width": 20, "height": 10}, {"id": 2, "width": 20, "height": 10}]
    anns = [{"bbox": [2, 2, 5, 5], "category_id": 9},
            {"bbox": [2, 2, 0.5, 5]},  # under a pixel wide
            {"bbox": [25, 2, 4, 4]},  # entirely right of the image: nothing left after clipping
            {"bbox": [2, 2, 5, 5], "segmentation": []},  # no polygon
            {"image_id": 2, "bbox": [3, 3, 4, 0]}]  # zero height: image 2 has no usable object
    ann_file = write_coco(tmp_path, images, anns)
    with caplog.at_level(logging.WARNING, logger="minimrcnn.data.coco"):
        ds = CocoInstances(tmp_path / "images", ann_file, skip_empty=True)
    assert [r.getMessage() for r in caplog.records] == [
        "instances_tiny.json: dropped 4 of 5 annotations: 3 with a box under 1 px once clipped to the image, "
        "1 without a mask (no polygon of 3 points in 'segmentation'); skipped 1 of 2 images (no object left)"
    ]
    assert ds.ids == [1]
    _, target = ds[0]
    assert target["labels"].tolist() == [2]  # category 9 is the second category: label 2
    assert target["boxes"].tolist() == [[2.0, 2.0, 7.0, 7.0]]


def test_grayscale_and_rgba_become_rgb(tmp_path):
    images = [{"id": 1, "width": 16, "height": 8, "mode": "L", "colour": 51},
              {"id": 2, "width": 16, "height": 8, "mode": "RGBA", "colour": (255, 0, 102, 40)}]
    anns = [{"image_id": 1, "bbox": [1, 1, 4, 4]}, {"image_id": 2, "bbox": [1, 1, 4, 4]}]
    ds = CocoInstances(tmp_path / "images", write_coco(tmp_path, images, anns), skip_empty=True)
    gray, _ = ds[0]
    rgba, _ = ds[1]
    assert gray.shape == rgba.shape == (3, 8, 16)
    assert torch.allclose(gray, torch.full_like(gray, 0.2))
    assert torch.allclose(rgba[:, 0, 0], torch.tensor([1.0, 0.0, 0.4]))


@pytest.mark.parametrize(
    "breakage, message",
    [
        ("missing_file", r"instances_tiny\.json: annotation file not found"),
        ("corrupt_json", r"instances_tiny\.json: not valid JSON"),
        ("no_annotations", r"instances_tiny\.json: missing required field 'annotations'"),
        ("no_bbox", r"instances_tiny\.json: annotations\[0\] is missing field 'bbox'"),
        ("no_file_name", r"instances_tiny\.json: images\[0\] is missing field 'file_name'"),
        ("unknown_category", r"instances_tiny\.json: annotations\[0\] has unknown category_id 4"),
        ("missing_images_dir", r"nowhere: image directory not found"),
    ],
)
def test_bad_annotation_input_is_named(tmp_path, breakage, message):
    ann_file = write_coco(tmp_path, [{"id": 1, "width": 8, "height": 8}], [{"bbox": [1, 1, 3, 3]}])
    dataset = json.loads(ann_file.read_text())
    images_dir = tmp_path / "images"
    if breakage == "missing_file":
        ann_file.unlink()
    elif breakage == "corrupt_json":
        ann_file.write_text(ann_file.read_text()[:-10])
    elif breakage == "missing_images_dir":
        images_dir = tmp_path / "nowhere"
    else:
        if breakage == "no_annotations":
            del dataset["annotations"]
        elif breakage == "no_bbox":
            del dataset["annotations"][0]["bbox"]
        elif breakage == "no_file_name":
            del dataset["images"][0]["file_name"]
        elif breakage == "unknown_category":
            dataset["annotations"][0]["category_id"] = 4
        ann_file.write_text(json.dumps(dataset))
    with pytest.raises(DataError, match=message) as info:
        CocoInstances(images_dir, ann_file, skip_empty=True)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, UserError)  # one error family: the command-line tools print it as one line


def test_bad_image_input_is_named(tmp_path):
    images = [{"id": 1, "width": 8, "height": 8}, {"id": 2, "width": 8, "height": 8},
              {"id": 3, "width": 8, "height": 8}]
    anns = [{"image_id": i, "bbox": [1, 1, 3, 3]} for i in (1, 2, 3)]
    ann_file = write_coco(tmp_path, images, anns)
    (tmp_path / "images" / "001.png").unlink()
    (tmp_path / "images" / "002.png").write_bytes(b"not a png")
    Image.new("RGB", (9, 8)).save(tmp_path / "images" / "003.png")
    # a missing file is found when the annotations are loaded, not when a long run first draws it
    with pytest.raises(DataError, match=r"001\.png: image file not found \(listed in instances_tiny\.json\)"):
        CocoInstances(tmp_path / "images", ann_file, skip_empty=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "001.png")
    ds = CocoInstances(tmp_path / "images", ann_file, skip_empty=True)
    with pytest.raises(DataError, match=r"002\.png: cannot read image"):
        ds[1]
    with pytest.raises(DataError, match=r"003\.png: image is 9x8 .* but instances_tiny\.json says 8x8"):
        ds[2]


# ---------------------------------------------------------------------------------------------- transforms
def test_flip_moves_boxes_with_masks(shapes):
    ds = train_set(shapes)
    image, target = ds[3]
    flipped, f_target = RandomHorizontalFlip(p=1.0)(image, target)
    assert torch.equal(flipped, image.flip(-1)) and torch.equal(f_target["masks"], target["masks"].flip(-1))
    assert_boxes_tight(f_target, tol=0.0)
    assert torch.equal(f_target["labels"], target["labels"])
    same, s_target = RandomHorizontalFlip(p=0.0)(image, target)
    assert same is image and s_target is target


# ---------------------------------------------------------------------------------------------- batching
class _Ratios(torch.utils.data.Dataset):
    def __init__(self, ratios: list[float]) -> None:
        self.ratios = ratios

    def __len__(self) -> int:
        return len(self.ratios)

    def aspect_ratio(self, i: int) -> float:
        return self.ratios[i]


def _check_batches(batches: list[list[int]], groups: list[int], batch_size: int) -> None:
    for batch in batches:
        assert len({groups[i] for i in batch}) == 1  # one group per batch
    sizes = [len(b) for b in batches]
    first_partial = next((k for k, s in enumerate(sizes) if s < batch_size), len(sizes))
    assert all(s < batch_size for s in sizes[first_partial:])  # partial batches only at the end
    assert sum(s < batch_size for s in sizes) <= len(set(groups))


def test_grouped_batch_sampler():
    ratios = [0.75, 1.33, 1.0, 0.5, 1.5, 0.7, 2.0, 0.8, 1.2, 0.6, 1.1]
    groups = aspect_ratio_groups(_Ratios(ratios))
    assert groups == [0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1]
    assert aspect_ratio_groups(Subset(_Ratios(ratios), [3, 4])) == [0, 1]
    sampler = GroupedBatchSampler(SequentialSampler(range(11)), groups, batch_size=2)
    batches = list(sampler)
    assert batches == [[1, 2], [0, 3], [4, 6], [5, 7], [8, 10], [9]]
    assert len(sampler) == 6
    random_sampler = GroupedBatchSampler(RandomSampler(range(11)), groups, batch_size=3)
    batches = list(random_sampler)
    _check_batches(batches, groups, 3)
    assert sorted(i for b in batches for i in b) == list(range(11)) and len(random_sampler) == len(batches)


def test_grouped_batch_sampler_with_distributed_sampler():
    groups = [i % 3 == 0 for i in range(50)]
    seen = []
    for rank in range(2):
        inner = DistributedSampler(range(50), num_replicas=2, rank=rank, shuffle=True, seed=0)
        sampler = GroupedBatchSampler(inner, [int(g) for g in groups], batch_size=4)
        sampler.set_epoch(3)
        batches = list(sampler)
        assert len(sampler) == len(batches)
        _check_batches(batches, [int(g) for g in groups], 4)
        seen += [i for b in batches for i in b]
    assert sorted(seen) == list(range(50))  # the two ranks split the epoch between them


def test_dataloader_batches(shapes):
    ds = train_set(shapes)
    sampler = GroupedBatchSampler(RandomSampler(ds), aspect_ratio_groups(ds), batch_size=4)
    images, targets = next(iter(DataLoader(ds, batch_sampler=sampler, collate_fn=collate)))
    assert isinstance(images, list) and len(images) == len(targets) == 4
    assert images[0].shape == (3, 128, 128) and "boxes" in targets[0]


# ---------------------------------------------------------------------------------------------- build_dataset
def test_build_dataset(tmp_path):
    root = str(tmp_path / "shapes")
    cfg = TrainConfig(dataset="shapes", data_root=root, num_train_images=8, num_val_images=3)
    train = build_dataset(cfg, "train", train=True)
    val = build_dataset(cfg, "val", train=False)
    assert len(train) <= 8 and len(val) == 3 and train.num_classes == 4
    assert (train.drop_crowd, train.skip_empty, val.drop_crowd, val.skip_empty) == (True, True, False, False)
    assert json.loads((tmp_path / "shapes" / "annotations" / "instances_train.json").read_text())["images"][7]
    cfg = TrainConfig(dataset="coco", data_root=str(tmp_path / "coco"))
    (tmp_path / "coco" / "val2017").mkdir(parents=True)
    with pytest.raises(DataError, match=r"annotations/instances_val2017\.json: annotation file not found"):
        build_dataset(cfg, "val2017", train=False)
