"""coco_evaluate: masks are sized by their own area, and an empty size range is "not applicable"."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from minimrcnn.engine.evaluator import coco_evaluate, format_metrics, to_coco_results

H = W = 200


def _rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def _square(x0: int, y0: int, side: int) -> np.ndarray:
    m = np.zeros((H, W), dtype=np.uint8)
    m[y0 : y0 + side, x0 : x0 + side] = 1
    return m


def _ground_truth(objects: list[np.ndarray]) -> COCO:
    coco = COCO()
    anns = []
    for i, m in enumerate(objects, start=1):
        rle = _rle(m)
        area, box = float(mask_utils.area(rle)), mask_utils.toBbox(rle).tolist()
        anns.append({"id": i, "image_id": 1, "category_id": 1, "segmentation": rle, "iscrowd": 0,
                     "area": area, "bbox": box})  # fmt: skip
    coco.dataset = {"images": [{"id": 1, "width": W, "height": H}], "annotations": anns,
                    "categories": [{"id": 1, "name": "thing"}]}  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _cocoeval_stats(coco_gt: COCO, results: list[dict]) -> np.ndarray:
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(coco_gt, coco_gt.loadRes(results), "segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def test_a_small_mask_inside_a_large_box_is_scored_as_small():
    # One small object (16 x 16 = 256 px < 32^2). The detector finds it (score 0.8), and also fires on a small
    # empty patch (score 0.9, a false positive). Both masks are small, but both come with a 150-px box.
    small = _square(20, 20, 16)
    coco_gt = _ground_truth([small])
    big_box = [10.0, 10.0, 150.0, 150.0]
    results = [
        {"image_id": 1, "category_id": 1, "score": 0.8, "segmentation": _rle(small), "bbox": big_box},
        {"image_id": 1, "category_id": 1, "score": 0.9, "segmentation": _rle(_square(120, 120, 16)),
         "bbox": big_box},
    ]  # fmt: skip
    got = coco_evaluate(coco_gt, [dict(r) for r in results], ("segm",))["segm"]

    # COCOeval on the masks alone (no "bbox": loadRes sizes each by its mask) is the reference.
    truth = _cocoeval_stats(coco_gt, [{k: v for k, v in r.items() if k != "bbox"} for r in results])
    sized_by_box = _cocoeval_stats(coco_gt, [dict(r) for r in results])
    assert truth[3] == pytest.approx(0.5, abs=0.01)  # APs: the small false positive ranks first
    assert sized_by_box[3] == pytest.approx(1.0)  # ... unless its big box hides it from the small range
    assert got["APs"] == pytest.approx(truth[3]) and got["AP"] == pytest.approx(truth[0])

    # Medium and large: no ground truth of that size -> COCOeval's -1 -> None, shown as a dash.
    assert truth[4] == truth[5] == -1
    assert got["APm"] is None and got["APl"] is None
    assert "—" in format_metrics({"segm": got}).splitlines()[1]


def test_to_coco_results_keeps_the_box_but_segm_scoring_ignores_it():
    mask = torch.zeros(1, 1, H, W)
    mask[..., 20:36, 20:36] = 1.0
    det = {"boxes": torch.tensor([[10.0, 10.0, 160.0, 160.0]]), "scores": torch.tensor([0.9]),
           "labels": torch.tensor([1]), "masks": mask}  # fmt: skip
    results = to_coco_results(det, 1, {1: 1})
    assert "bbox" in results[0] and "segmentation" in results[0]  # the bbox metric still needs it
    coco_gt = _ground_truth([_square(20, 20, 16)])
    got = coco_evaluate(coco_gt, results, ("bbox", "segm"))
    assert got["segm"]["APs"] == pytest.approx(1.0) and got["segm"]["AP"] == pytest.approx(1.0)
    assert got["bbox"]["AP"] == pytest.approx(0.0)  # the box is far too big for the object: IoU < 0.5
    assert results[0]["bbox"] == pytest.approx([10.0, 10.0, 150.0, 150.0])  # the caller's results unchanged


# ---------------------------------------------------------------------------------------------- categories
class _Evaluated:
    """What category_map reads of an evaluated dataset."""

    ann_file = "val.json"

    def __init__(self, cats: list[tuple[int, str]]):
        self.class_names = ["__background__"] + [n for _, n in cats]
        self.label_to_cat_id = [0] + [i for i, _ in cats]


MODEL = (["__background__", "circle", "square", "triangle"], [0, 1, 3, 7])


def test_category_map_keeps_the_models_ids_or_matches_by_name():
    from minimrcnn.engine.evaluator import category_map

    assert category_map(_Evaluated([(1, "circle"), (3, "square"), (7, "triangle")]), *MODEL) == [0, 1, 3, 7]
    # the same names under other ids, in another order: label 1 (circle) is id 13 here, not the first id
    other = _Evaluated([(11, "square"), (12, "triangle"), (13, "circle")])
    assert category_map(other, *MODEL) == [0, 13, 11, 12]


@pytest.mark.parametrize(
    "cats, message",
    [
        ([(3, "square"), (7, "triangle")], r"^val\.json: has no category 'circle', which the model predicts"),
        (
            [(1, "circle"), (3, "square"), (7, "triangle"), (9, "star")],
            r"category 'star' \(id 9\), which the",
        ),
    ],
)
def test_category_map_refuses_other_categories(cats, message):
    from minimrcnn.engine.evaluator import category_map
    from minimrcnn.errors import DataError

    with pytest.raises(DataError, match=message):
        category_map(_Evaluated(cats), *MODEL)


def test_nothing_to_score_says_why_and_ap_is_not_applicable(tmp_path):
    from minimrcnn.engine.evaluator import nothing_to_score

    class _Data:
        ids = [1]

        def __init__(self, anns):
            self.coco = COCO()
            self.coco.dataset = {"images": [{"id": 1, "width": W, "height": H}], "annotations": anns,
                                 "categories": [{"id": 1, "name": "thing"}]}  # fmt: skip
            with contextlib.redirect_stdout(io.StringIO()):
                self.coco.createIndex()

    crowd = {"id": 1, "image_id": 1, "category_id": 1, "segmentation": _rle(_square(5, 5, 20)), "iscrowd": 1,
             "area": 400.0, "bbox": [5, 5, 20, 20]}  # fmt: skip
    assert "1 images and no annotation" in nothing_to_score(_Data([]))
    assert "1 annotations, all crowd regions" in nothing_to_score(_Data([crowd]))
    assert nothing_to_score(_Data([{**crowd, "iscrowd": 0}])) is None
    # no detection at all: AP is 0 where there was an object to find, "not applicable" where there was none
    assert coco_evaluate(_Data([crowd]).coco, [], ("segm",), image_ids=[1])["segm"]["AP"] is None
    assert (
        coco_evaluate(_Data([{**crowd, "iscrowd": 0}]).coco, [], ("segm",), image_ids=[1])["segm"]["AP"]
        == 0.0
    )
