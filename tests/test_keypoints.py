"""The keypoint branch: head shapes, one-hot targets, the loss, heatmap decoding, the figures dataset,
keypoint flips, and the COCOeval keypoint path (OKS with the dataset's sigmas)."""

import json

import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch
import torch.nn.functional as F
from pycocotools.coco import COCO
from torchvision.models.detection import roi_heads as tv_roi_heads
from torchvision.models.detection.keypoint_rcnn import KeypointRCNNHeads, KeypointRCNNPredictor

from minimrcnn.data.coco import CocoInstances, flip_indices
from minimrcnn.data.figures import KEYPOINTS, SIGMAS, SKELETON, ensure_figures, generate_image
from minimrcnn.data.transforms import RandomHorizontalFlip
from minimrcnn.engine.evaluator import coco_evaluate, keypoint_sigmas, to_coco_results
from minimrcnn.model.keypoint_head import (
    KeypointHead,
    bicubic_matrix,
    heatmaps_to_keypoints,
    keypoint_loss,
    keypoint_targets,
)
from minimrcnn.model.transform import ImageTransform


# ---------------------------------------------------------------------------------------------- head
def test_head_shapes_and_torchvision_layout():
    head = KeypointHead(in_channels=32, num_keypoints=17, dim=48, num_convs=8)
    out = head(torch.randn(3, 32, 14, 14))
    assert out.shape == (3, 17, 56, 56)
    assert len([m for m in head.modules() if isinstance(m, torch.nn.Conv2d)]) == 8
    # the same weights in torchvision's two modules give the same logits
    torch.manual_seed(0)
    tv_head, tv_pred = KeypointRCNNHeads(32, [48] * 8), KeypointRCNNPredictor(48, 17)
    state = {f"convs.{k}": v for k, v in tv_head.state_dict().items()}
    state |= {k.replace("kps_score_lowres", "deconv"): v for k, v in tv_pred.state_dict().items()}
    head.load_state_dict(state)
    x = torch.randn(2, 32, 14, 14)
    torch.testing.assert_close(head(x), tv_pred(tv_head(x)))


def test_head_width_and_depth_are_parameters():
    head = KeypointHead(in_channels=16, num_keypoints=9, dim=8, num_convs=2)
    assert head(torch.randn(1, 16, 14, 14)).shape == (1, 9, 56, 56)
    assert KeypointHead(16, 9, dim=8, num_convs=0)(torch.randn(1, 16, 7, 7)).shape == (1, 9, 28, 28)


# ---------------------------------------------------------------------------------------------- targets
def test_targets_visible_hidden_unlabelled_and_outside():
    roi = torch.tensor([[10.0, 20.0, 66.0, 76.0]])  # 56 x 56 px: one pixel per cell
    kps = torch.tensor(
        [
            [
                [10.0, 20.0, 2],  # top-left corner: cell (0, 0)
                [30.5, 41.9, 2],  # visible: col 20, row 21
                [30.5, 41.9, 1],  # labelled but hidden: used all the same (COCO v = 1)
                [30.5, 41.9, 0],  # not labelled: ignored
                [9.9, 40.0, 2],  # just left of the box: ignored
                [66.0, 76.0, 2],  # exactly on the right/bottom edge: the last cell
                [66.1, 40.0, 2],  # right of the box: ignored
            ]
        ]
    )
    index, valid = keypoint_targets(kps, roi, 56)
    assert valid.tolist() == [[True, True, True, False, False, True, False]]
    assert index[0, :3].tolist() == [0, 21 * 56 + 20, 21 * 56 + 20]
    assert index[0, 5].item() == 56 * 56 - 1
    assert index[0, 3].item() == index[0, 4].item() == index[0, 6].item() == 0


def test_targets_equal_torchvision_on_random_cases():
    g = torch.Generator().manual_seed(0)
    n, k = 50, 17
    xy = torch.rand(n, 2, generator=g) * 300
    wh = torch.rand(n, 2, generator=g) * 150 + 0.5
    rois = torch.cat([xy, xy + wh], 1)
    kps = torch.cat(
        [
            xy[:, None] - 0.2 * wh[:, None] + 1.4 * wh[:, None] * torch.rand(n, k, 2, generator=g),
            torch.randint(0, 3, (n, k, 1), generator=g).float(),
        ],
        2,
    )
    kps[:5, 0, 0] = rois[:5, 2]  # right edges
    for size in (56, 28):
        want_index, want_valid = tv_roi_heads.keypoints_to_heatmap(kps, rois, size)
        index, valid = keypoint_targets(kps, rois, size)
        assert torch.equal(valid, want_valid.bool())
        assert torch.equal(index, want_index)


# ---------------------------------------------------------------------------------------------- loss
def test_loss_is_softmax_cross_entropy_over_positions():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 4, 8, 8, generator=g, requires_grad=True)
    index = torch.randint(0, 64, (3, 4), generator=g)
    valid = torch.tensor([[True, False, True, True], [False, False, False, False], [True, True, False, True]])
    loss = keypoint_loss(logits, index, valid)
    # by hand: -log softmax over the 64 positions at the target cell, averaged over the 7 valid joints
    logp = logits.detach().flatten(2).log_softmax(-1)
    by_hand = -torch.stack([logp[i, j, index[i, j]] for i, j in valid.nonzero().tolist()]).mean()
    torch.testing.assert_close(loss.detach(), by_hand)
    # uniform logits: ln(M^2)
    flat = keypoint_loss(
        torch.zeros(2, 3, 56, 56), torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 3, dtype=torch.bool)
    )
    assert abs(flat.item() - np.log(56 * 56)) < 1e-5
    # invalid joints get no gradient
    loss.backward()
    assert logits.grad[1].abs().sum() == 0 and logits.grad[0, 1].abs().sum() == 0
    assert logits.grad[0, 0].abs().sum() > 0


def test_loss_equals_torchvision_and_is_zero_without_valid_joints():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(6, 5, 56, 56, generator=g)
    rois = torch.tensor([[0.0, 0.0, 50.0, 80.0]] * 3 + [[10.0, 10.0, 40.0, 30.0]] * 3)
    gt = torch.cat(
        [torch.rand(2, 5, 2, generator=g) * 60, torch.randint(0, 3, (2, 5, 1), generator=g).float()], 2
    )
    matched = torch.tensor([0, 1, 0, 1, 1, 0])
    want = tv_roi_heads.keypointrcnn_loss(logits, [rois], [gt], [matched])
    index, valid = keypoint_targets(gt[matched], rois, 56)
    torch.testing.assert_close(keypoint_loss(logits, index, valid), want)
    x = torch.randn(2, 5, 56, 56, requires_grad=True)
    zero = keypoint_loss(x, torch.zeros(2, 5, dtype=torch.long), torch.zeros(2, 5, dtype=torch.bool))
    assert zero.item() == 0.0 and zero.requires_grad


# ---------------------------------------------------------------------------------------------- decoding
def test_bicubic_matrix_is_f_interpolate():
    x = torch.randn(5, 56)
    for out in (1, 7, 56, 57, 130):
        m = bicubic_matrix(torch.tensor([out]), 56, out)[0]  # [out, 56]
        want = F.interpolate(x[None, :, None, :], size=(1, out), mode="bicubic", align_corners=False)[0, :, 0]
        torch.testing.assert_close(x @ m.T, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("max_elements", [1 << 25, 5000])  # one chunk, and one RoI per chunk
def test_decoding_equals_torchvision(max_elements):
    g = torch.Generator().manual_seed(3)
    n, k = 25, 17
    maps = torch.randn(n, k, 56, 56, generator=g)
    xy = torch.rand(n, 2, generator=g) * 300
    wh = torch.rand(n, 2, generator=g) * 180 + 0.2  # including boxes under a pixel (clamped to 1)
    rois = torch.cat([xy, xy + wh], 1)
    want_xy, want_scores = tv_roi_heads.heatmaps_to_keypoints(maps, rois)
    got_xy, got_scores = heatmaps_to_keypoints(maps, rois, max_elements=max_elements)
    torch.testing.assert_close(got_xy, want_xy)
    torch.testing.assert_close(got_scores, want_scores, rtol=1e-4, atol=1e-4)
    empty_xy, empty_scores = heatmaps_to_keypoints(maps[:0], rois[:0])
    assert empty_xy.shape == (0, k, 3) and empty_scores.shape == (0, k)


def test_decoding_finds_a_one_hot_peak_at_its_cell_centre():
    maps = torch.zeros(1, 2, 56, 56)
    maps[0, 0, 10, 30] = 10.0  # row 10, col 30
    maps[0, 1, 55, 0] = 10.0
    roi = torch.tensor([[100.0, 200.0, 156.0, 256.0]])  # 1 px per cell: the centre of cell (r, c)
    xy, _ = heatmaps_to_keypoints(maps, roi)
    torch.testing.assert_close(xy[0, :, :2], torch.tensor([[130.5, 210.5], [100.5, 255.5]]))


# ---------------------------------------------------------------------------------------------- dataset
@pytest.fixture(scope="module")
def figures_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("figures")
    ensure_figures(root, "val", 24)
    return root


def test_figures_format_through_pycocotools(figures_root):
    ann_file = figures_root / "annotations" / "person_keypoints_val.json"
    coco = COCO(str(ann_file))
    (cat,) = coco.loadCats(coco.getCatIds())
    assert cat["keypoints"] == KEYPOINTS and cat["skeleton"] == SKELETON and len(SIGMAS) == len(KEYPOINTS)
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) >= 24
    seen = set()
    for ann in anns:
        kps = np.array(ann["keypoints"]).reshape(-1, 3)
        assert kps.shape == (9, 3) and ann["num_keypoints"] == int((kps[:, 2] > 0).sum())
        mask = coco.annToMask(ann)
        assert ann["area"] == mask.sum() > 0
        x, y, w, h = ann["bbox"]
        assert mask[int(y) : int(y + h), int(x) : int(x + w)].sum() == mask.sum()
        for px, py, v in kps:
            seen.add(int(v))
            if v == 0:
                assert px == py == 0
            else:
                assert 0 <= px < 128 and 0 <= py < 128
    assert seen == {0, 1, 2}  # visible, hidden by a later figure, and out of frame all occur
    heights = [a["bbox"][3] for a in anns]
    assert min(heights) < 40 and max(heights) > 80  # small to large


def test_visible_joints_lie_on_their_figure_and_hidden_ones_under_another():
    image, figs = generate_image("val", 5)
    again, _ = generate_image("val", 5)
    assert np.array_equal(image, again)  # deterministic
    from minimrcnn.data.figures import keypoint_triplets

    for j, fig in enumerate(figs):
        kps = np.array(keypoint_triplets(fig, figs[j + 1 :], 128, 128)).reshape(-1, 3)
        for x, y, v in kps:
            if v == 2:
                assert fig.visible[int(y), int(x)] or fig.full[int(y), int(x)]
            if v == 1:
                assert any(o.full[int(y), int(x)] for o in figs[j + 1 :])


def test_read_by_the_coco_dataset_class(figures_root):
    ds = CocoInstances(figures_root / "val", figures_root / "annotations" / "person_keypoints_val.json")
    assert ds.keypoint_names == KEYPOINTS and ds.skeleton == SKELETON
    assert [ds.keypoint_names[i] for i in ds.keypoint_flip][2:4] == ["right_hand", "left_hand"]
    image, target = ds[0]
    n = target["boxes"].shape[0]
    assert target["keypoints"].shape == (n, 9, 3) and target["keypoints"].dtype == torch.float32
    assert target["masks"].shape == (n, 128, 128)


def test_flip_indices_and_keypoint_flip():
    names = ["nose", "left_eye", "right_eye", "left_ankle", "right_ankle"]
    assert flip_indices(names) == [0, 2, 1, 4, 3]
    kps = torch.tensor([[[10.0, 5.0, 2], [20.0, 6.0, 1], [30.0, 7.0, 2], [0.0, 0.0, 0], [40.0, 8.0, 2]]])
    masks = torch.zeros(1, 16, 64, dtype=torch.uint8)
    target = {"boxes": torch.tensor([[5.0, 4.0, 45.0, 9.0]]), "masks": masks, "keypoints": kps}
    _, out = RandomHorizontalFlip(1.0, flip_indices(names))(torch.zeros(3, 16, 64), target)
    want = torch.tensor([[[54.0, 5.0, 2], [34.0, 7.0, 2], [44.0, 6.0, 1], [24.0, 8.0, 2], [0.0, 0.0, 0]]])
    torch.testing.assert_close(out["keypoints"], want)
    transform = ImageTransform((32,), 1000, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # the model's resize: 16 -> 32
    _, resized = transform.resize(torch.zeros(3, 16, 64), target)
    torch.testing.assert_close(resized["keypoints"][0, 0], torch.tensor([20.0, 10.0, 2.0]))
    assert resized["keypoints"][0, 3].tolist() == [0.0, 0.0, 0.0]


# ---------------------------------------------------------------------------------------------- COCOeval
def _detections_from_gt(coco, image_id, noise=0.0, seed=0):
    """Turn an image's GT into detections: boxes, scores, labels, keypoints [N, K, 3] (x, y, 1)."""
    anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
    rng = np.random.default_rng(seed)
    boxes = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]  # xywh -> xyxy
    kps = torch.tensor([a["keypoints"] for a in anns], dtype=torch.float32).reshape(-1, 9, 3)
    kps[..., :2] += torch.from_numpy(rng.normal(0, noise, size=kps[..., :2].shape)).float()
    kps[..., 2] = 1
    n = len(anns)
    return {"boxes": boxes, "scores": torch.linspace(0.9, 0.5, n), "labels": torch.ones(n, dtype=torch.long),
            "keypoints": kps, "keypoints_scores": torch.ones(n, 9)}  # fmt: skip


def test_cocoeval_keypoints_path(figures_root):
    ann_file = figures_root / "annotations" / "person_keypoints_val.json"
    ds = CocoInstances(figures_root / "val", ann_file)
    np.testing.assert_allclose(keypoint_sigmas(ds.coco), SIGMAS)

    def score(noise):
        results = []
        for image_id in ds.ids:
            det = _detections_from_gt(ds.coco, image_id, noise)
            results += to_coco_results(det, image_id, ds.label_to_cat_id)
        assert len(results[0]["keypoints"]) == 27
        return coco_evaluate(ds.coco, results, ("bbox", "keypoints"), image_ids=list(ds.ids))

    perfect = score(0.0)
    assert set(perfect["keypoints"]) == {"AP", "AP50", "AP75", "APm", "APl"}
    assert perfect["keypoints"]["AP"] == pytest.approx(1.0)
    a_little, more = score(1.0), score(3.0)
    assert 0.0 < more["keypoints"]["AP"] < a_little["keypoints"]["AP"] < 0.99  # OKS punishes pixel error
    assert more["bbox"]["AP"] == pytest.approx(1.0)  # (the boxes were not moved)
    assert a_little["keypoints"]["APm"] > 0 and a_little["keypoints"]["APl"] is None  # no figure is > 96^2 px


def test_sigmas_fall_back_to_coco_for_17_joints_and_fail_clearly_otherwise():
    coco = COCO()
    coco.dataset = {
        "images": [],
        "annotations": [],
        "categories": [{"id": 1, "name": "person", "keypoints": ["a"] * 17}],
    }
    coco.createIndex()
    assert len(keypoint_sigmas(coco)) == 17 and keypoint_sigmas(coco)[0] == pytest.approx(0.026)
    coco.dataset["categories"][0]["keypoints"] = ["a"] * 5
    coco.createIndex()
    with pytest.raises(ValueError, match="keypoint_sigmas"):
        keypoint_sigmas(coco)


def test_bad_keypoints_field_is_one_line(tmp_path, figures_root):
    data = json.loads((figures_root / "annotations" / "person_keypoints_val.json").read_text())
    data["annotations"][0]["keypoints"] = data["annotations"][0]["keypoints"][:-3]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"annotation 1: 'keypoints' must hold 27 numbers, not 24"):
        CocoInstances(figures_root / "val", bad)  # found when the annotations are read, before training


def test_masks_of_figures_decode_to_their_pixels(figures_root):
    coco = COCO(str(figures_root / "annotations" / "person_keypoints_val.json"))
    ann = coco.loadAnns(coco.getAnnIds(imgIds=1))[0]
    rle = ann["segmentation"]
    assert (
        mask_utils.area(mask_utils.frPyObjects(rle, 128, 128) if isinstance(rle, list) else rle)
        == ann["area"]
    )
