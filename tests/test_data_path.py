"""The data path at scale: uint8 images converted on the device, annotations held as compact byte records
(not a COCO index per worker), evaluation that decodes no ground-truth mask, and a training loop that
never reads a tensor on the host outside logging steps, yet still stops on a non-finite loss."""

import re
import sys

import numpy as np
import pytest
import torch

from minimrcnn.data import coco as coco_module
from minimrcnn.data.coco import CocoInstances
from minimrcnn.data.shapes import ensure_shapes
from minimrcnn.data.transforms import images_to_device
from minimrcnn.engine.evaluator import predict_dataset
from minimrcnn.engine.trainer import train
from minimrcnn.errors import TrainingDiverged
from minimrcnn.presets import get_preset


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    ensure_shapes(root, "train", 12, image_size=64)
    return root


def test_uint8_samples_equal_the_float_samples_after_device_conversion(shapes):
    ann = shapes / "annotations" / "instances_train.json"
    ref = CocoInstances(shapes / "train", ann, drop_crowd=True, skip_empty=True)
    u8 = CocoInstances(shapes / "train", ann, drop_crowd=True, skip_empty=True, uint8=True)
    for i in range(len(ref)):
        (a, ta), (b, tb) = ref[i], u8[i]
        assert b.dtype == torch.uint8 and torch.equal(images_to_device([b], torch.device("cpu"))[0], a)
        assert all(torch.equal(ta[k], tb[k]) for k in ("boxes", "labels", "masks", "area", "iscrowd"))


def test_annotations_are_compact_records_and_decode_like_pycocotools(shapes):
    ds = CocoInstances(shapes / "train", shapes / "annotations" / "instances_train.json")
    assert ds._coco is None  # no pycocotools index (a dict per annotation) is held, or copied into workers
    assert isinstance(ds._records, np.ndarray) and ds._records.dtype == np.uint8
    big = [k for k, v in vars(ds).items() if isinstance(v, (list, dict)) and len(v) > len(ds) + 1]
    assert big == []  # nothing grows with the number of annotations but the byte array
    coco = ds.coco  # built on demand, for COCOeval
    for i, img_id in enumerate(ds.ids):
        anns = coco.imgToAnns[img_id]
        want = np.stack([coco.annToMask(a) for a in anns]) if anns else np.zeros((0, 64, 64), np.uint8)
        got = ds[i][1]["masks"].numpy()
        assert got.shape[0] <= want.shape[0] and np.array_equal(got, want[want.any(axis=(1, 2))])


def test_evaluation_decodes_no_ground_truth_mask(shapes, monkeypatch):
    from minimrcnn.model.mask_rcnn import MaskRCNN

    ds = CocoInstances(shapes / "train", shapes / "annotations" / "instances_train.json")

    def fail(*args):
        raise AssertionError("evaluation decoded a ground-truth mask")

    monkeypatch.setattr(coco_module, "segmentation_to_mask", fail)
    cfg = get_preset("shapes_cpu").model
    cfg.min_size, cfg.max_size = (64,), 64
    results = predict_dataset(MaskRCNN(cfg), ds, torch.device("cpu"), batch_size=4, progress=False)
    assert {r["image_id"] for r in results} <= set(ds.ids)


def _tiny(shapes, tmp_path, **train):
    cfg = get_preset("shapes_cpu")
    cfg.model.min_size, cfg.model.max_size, cfg.model.fpn_channels = (64,), 64, 32
    cfg.train.data_root, cfg.train.num_train_images, cfg.train.eval_at_end = str(shapes), 12, False
    cfg.train.time_budget_s, cfg.train.batch_size, cfg.train.warmup_iters = 0.0, 2, 0
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return cfg


def test_training_loop_reads_tensors_only_at_logging_steps(shapes, tmp_path, monkeypatch):
    calls: list[str] = []
    for name in ("item", "tolist", "__bool__", "__float__", "__int__"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, _name=name):
            caller = sys._getframe(1).f_code.co_filename
            if caller.endswith(("engine/trainer.py", "engine/loss_window.py")):
                calls.append(_name)
            return _original(self, *args)

        monkeypatch.setattr(torch.Tensor, name, counted)
    cfg = _tiny(shapes, tmp_path, iters=12, log_every=6, checkpoint_every=1000)
    cfg.train.device = "cpu"
    train(cfg, tmp_path / "run", progress=False)
    # 2 logging steps (one check, one read of the means each) and the final checkpoint's check: 5 reads in
    # 12 iterations. Reading every loss each iteration, as before, was 12 x (6 terms + isfinite) = 84.
    assert len(calls) == 5, calls


def test_non_finite_loss_found_at_a_logging_step_names_its_first_iteration(shapes, tmp_path):
    cfg = _tiny(shapes, tmp_path, iters=12, log_every=12, checkpoint_every=1000, optimizer="sgd", lr=1e12)
    with pytest.raises(TrainingDiverged) as e:
        cfg.train.device = "cpu"
        train(cfg, tmp_path / "nan", progress=False)
    msg = str(e.value)
    m = re.fullmatch(r"iteration (\d+): non-finite loss \((loss_\w+=nan|loss_\w+=inf)(, .*)?\); stopped, "
                     r"no checkpoint yet", msg)  # fmt: skip
    assert m and 1 < int(m.group(1)) < 12, msg  # the first bad iteration, found 12 iterations in
    assert not (tmp_path / "nan" / "checkpoint.pt").exists()  # no diverged weights were saved


def test_cocoeval_runs_on_rank_0_only(shapes, monkeypatch):
    from minimrcnn.engine import evaluator

    ds = CocoInstances(shapes / "train", shapes / "annotations" / "instances_train.json")
    scored = dict.fromkeys(evaluator.METRICS, 0.5)
    monkeypatch.setattr(evaluator, "predict_dataset", lambda *a, **k: [{"image_id": ds.ids[0]}])
    monkeypatch.setattr(evaluator, "model_has_masks", lambda model: True)
    monkeypatch.setattr(evaluator.dist, "is_main", lambda: False)  # as rank 1 of 2
    monkeypatch.setattr(evaluator.dist, "gather_to_main", lambda obj: None)
    metrics = {"bbox": scored, "segm": scored}
    monkeypatch.setattr(evaluator.dist, "broadcast_from_main", lambda obj: (metrics, None))  # (metrics, note)
    monkeypatch.setattr(evaluator, "coco_evaluate", lambda *a, **k: pytest.fail("COCOeval ran on rank 1"))
    ev = evaluator.evaluate(None, ds, torch.device("cpu"))
    assert ev["bbox"] == scored and ev["results"] == [] and ev["note"] is None  # rank 0's metrics, no results
    assert ds._coco is None  # rank 1 never built the COCO index
