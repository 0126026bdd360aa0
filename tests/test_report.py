"""The pictures a run leaves in its folder (minimrcnn.report), and what `minimrcnn.train` prints before and
after: a tiny real training run through the command line, then `minimrcnn.evaluate` on its checkpoint."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from minimrcnn.report import pick_images, save_curves, save_predictions

TINY = [
    "--set", "model.fpn_channels=32", "--set", "model.box_head_dim=64", "--set", "model.mask_head_dim=32",
    "--set", "model.min_size=64", "--set", "model.max_size=64", "--set", "model.box_batch_size_per_image=32",
    "--set", "train.num_train_images=12", "--set", "train.num_val_images=6", "--set", "train.batch_size=2",
    "--set", "train.log_every=2", "--set", "train.warmup_iters=2",
]  # fmt: skip
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def cli(module: str, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=ENV,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def png(path: Path) -> np.ndarray:
    """The picture's pixels; it must be a real, non-blank PNG."""
    assert path.is_file() and path.stat().st_size > 5000, f"{path} missing or tiny"
    with Image.open(path) as im:
        assert im.format == "PNG"
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.std() > 10, f"{path} is blank"
    return pixels


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, Path, str]:
    data, out = tmp_path_factory.mktemp("shapes"), tmp_path_factory.mktemp("run") / "tiny"
    proc = cli("minimrcnn.train", "--data-root", str(data), "--out", str(out), "--iters", "6",
               "--no-progress", *TINY)  # fmt: skip
    return data, out, proc.stdout


def test_train_writes_pictures_and_names_them(run):
    _, out, stdout = run
    curves, preds = png(out / "curves.png"), png(out / "predictions.png")
    assert curves.shape[1] > curves.shape[0]  # loss and lr side by side
    assert preds.shape[0] > preds.shape[1]  # one row per held-out image, truth | prediction
    tail = stdout[stdout.index("done. Look in") :]
    for name in ("curves.png", "predictions.png", "eval.json", "metrics.jsonl", "checkpoint.pt"):
        assert f"{out.as_posix()}/{name}" in tail, tail


def test_train_prints_what_it_will_do_first(run):
    data, out, stdout = run
    head = stdout.splitlines()[:5]
    assert head[0].startswith("minimrcnn.train: preset shapes_cpu, resnet18 + FPN"), head
    assert f"dataset  shapes at {data}: 12 train / 6 val images" in head[1]
    assert "budget   6 iterations, batch 2" in head[2]  # --iters drops the preset's time budget
    assert head[3].startswith("  device   cpu, 1 CPU thread, ")  # OMP_NUM_THREADS=1
    assert head[3].endswith(("bf16 autocast", "float32"))  # bf16 where the CPU has it natively
    assert head[4].strip() == f"writes   {out}/"


def test_summary_gives_the_time_budget_as_configured():
    from minimrcnn.presets import shapes_cpu
    from minimrcnn.train import summary

    cfg = shapes_cpu()
    cfg.train.device = "cpu"
    text = summary(cfg, "shapes_cpu", "runs/shapes_cpu", resume=True)
    from minimrcnn.engine.budget import TIMED_ITERS

    fixed = (f"its length is fixed after timing {TIMED_ITERS} iterations after warm-up and revised at "
             "checkpoints, at most 2000")
    assert f"285 s for the whole run ({fixed})" in text
    assert "runs/shapes_cpu/ (resuming from its checkpoint.pt)" in text


def test_summary_counts_a_generated_dataset_before_it_exists(tmp_path):
    from minimrcnn.presets import figures_cpu
    from minimrcnn.train import dataset_size

    tc = figures_cpu().train
    tc.data_root = str(tmp_path / "fresh")
    assert dataset_size(tc) == "1000 train / 100 val images, generated on first use"


def test_evaluate_writes_pictures_for_its_split(run, tmp_path):
    _, out, _ = run
    proc = cli("minimrcnn.evaluate", "--weights", str(out / "checkpoint.pt"), "--out", str(tmp_path))
    named = f"pictures: {(tmp_path / 'curves.png').as_posix()}, {(tmp_path / 'predictions.png').as_posix()}"
    assert named in proc.stdout
    png(tmp_path / "predictions.png")
    png(tmp_path / "curves.png")  # from the run's metrics.jsonl, next to the weights


def test_curves_follow_metrics_jsonl(tmp_path):
    assert save_curves(tmp_path) is None  # no log, no picture
    records = [{"iteration": i, "lr": 0.01 * i, "loss": 3.0 / i, "loss_mask": 1.0 / i} for i in range(1, 9)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    png(save_curves(tmp_path))


class FakeModel(torch.nn.Module):
    """Returns fixed detections with keypoints, like a keypoint R-CNN's outputs (issue 13's keys)."""

    def forward(self, images):
        h, w = images[0].shape[-2:]
        masks = torch.zeros(2, 1, h, w)
        masks[0, :, 10:30, 10:30] = 1
        kps = torch.tensor([[[12.0, 12.0, 1.0], [28.0, 28.0, 1.0]], [[40.0, 40.0, 0.0], [44.0, 44.0, 1.0]]])
        return [{"boxes": torch.tensor([[10.0, 10.0, 30.0, 30.0], [35.0, 35.0, 50.0, 50.0]]),
                 "labels": torch.tensor([1, 2]), "scores": torch.tensor([0.9, 0.8]), "masks": masks,
                 "keypoints": kps}]  # fmt: skip


class KeypointImages:
    class_names = ["__background__", "a", "b"]

    def __len__(self):
        return 3

    def __getitem__(self, i):
        image = torch.full((3, 64, 64), 0.5)
        target = {"boxes": torch.tensor([[10.0, 10.0, 30.0, 30.0]]), "labels": torch.tensor([1]),
                  "masks": torch.zeros(1, 64, 64, dtype=torch.uint8),
                  "keypoints": torch.tensor([[[12.0, 12.0, 2.0], [28.0, 28.0, 2.0]]])}  # fmt: skip
        return image, target


def test_predictions_draw_keypoints_when_present(tmp_path, monkeypatch):
    import matplotlib.axes

    seen, original = [], matplotlib.axes.Axes.scatter

    def spy(ax, x, y, *a, **k):
        seen.append(len(x))
        return original(ax, x, y, *a, **k)

    monkeypatch.setattr(matplotlib.axes.Axes, "scatter", spy)
    png(save_predictions(FakeModel(), KeypointImages(), tmp_path / "p.png", num_images=2))
    # per image: ground truth 2 visible points; predictions 2 + 1 (the one with v = 0 is not drawn)
    assert sum(seen) == 2 * (2 + 3)


def test_pick_images_spreads_over_the_dataset():
    assert pick_images(100, 4) == [0, 33, 66, 99]
    assert pick_images(2, 4) == [0, 1] and pick_images(1, 4) == [0]
