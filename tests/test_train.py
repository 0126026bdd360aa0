"""The training system end to end on a tiny shapes dataset: CLI, checkpoints, resume after SIGKILL, NaN stop,
two-process DDP with gloo, evaluation and prediction, and the one-line errors for bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from minimrcnn.engine.checkpoint import load_checkpoint

TINY = [
    "--set", "model.fpn_channels=32", "--set", "model.box_head_dim=64", "--set", "model.mask_head_dim=32",
    "--set", "model.min_size=64", "--set", "model.max_size=64", "--set", "model.box_batch_size_per_image=32",
    "--set", "train.num_train_images=12", "--set", "train.num_val_images=6", "--set", "train.batch_size=2",
    "--set", "train.num_workers=0", "--set", "train.log_every=1", "--set", "train.warmup_iters=2",
]  # fmt: skip
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def cli(module: str, *args: str, check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=ENV,
                          timeout=timeout)  # fmt: skip
    if check and proc.returncode != 0:
        raise AssertionError(f"{module} {args} failed:\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("shapes")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_root) -> Path:
    out = tmp_path_factory.mktemp("run")
    proc = cli("minimrcnn.train", "--data-root", str(data_root), "--out", str(out), "--iters", "6", *TINY)
    (out.parent / f"{out.name}.log").write_text(proc.stdout + proc.stderr)  # what `... > log 2>&1` would hold
    return out


def test_output_to_a_file_is_plain_lines(trained):
    """Not a terminal: no carriage-return bar fragments, one line per logging step with the loss and lr."""
    log = (trained.parent / f"{trained.name}.log").read_text()
    assert "\r" not in log
    steps = [line for line in log.splitlines() if line.startswith("train ")]
    assert [line.split()[1] for line in steps] == [f"{i}/6" for i in range(1, 7)]  # train.log_every=1
    assert all(" loss " in line and " lr " in line and " s/it " in line and " eta " in line for line in steps)


def test_run_folder_contents(trained):
    assert {"config.json", "metrics.jsonl", "checkpoint.pt", "eval.json"} <= {
        p.name for p in trained.iterdir()
    }
    lines = [json.loads(x) for x in (trained / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in lines] == [1, 2, 3, 4, 5, 6]
    assert {"loss", "loss_mask", "loss_classifier", "lr"} <= set(lines[0])
    ev = json.loads((trained / "eval.json").read_text())
    assert set(ev["segm"]) == {"AP", "AP50", "AP75", "APs", "APm", "APl"} and ev["iteration"] == 6
    state = torch.load(trained / "checkpoint.pt", weights_only=True)  # loads without pickle of arbitrary code
    assert state["iteration"] == 6 and state["class_names"][0] == "__background__"
    saved = json.loads((trained / "config.json").read_text())
    assert saved["effective"]["iters"] == 6  # config.json adds the schedule the run followed
    assert {k: saved[k] for k in state["config"]} == json.loads(json.dumps(state["config"]))


def test_train_leaves_the_callers_config_alone(tmp_path, data_root):
    """The dataset decides num_classes; config.json says so, as the checkpoint does; cfg stays as given."""
    from minimrcnn.config import apply_overrides
    from minimrcnn.engine.trainer import train
    from minimrcnn.presets import shapes_cpu

    cfg = apply_overrides(shapes_cpu(), [x for x in TINY if x != "--set"] + [
        f"train.data_root={data_root}", "train.iters=1", "train.eval_at_end=false"])  # fmt: skip
    cfg.model.num_classes = 91  # a wrong guess, corrected by the data
    before = cfg.to_dict()
    train(cfg, tmp_path / "run", progress=False)
    assert cfg.to_dict() == before
    written = json.loads((tmp_path / "run" / "config.json").read_text())
    carried = json.loads(json.dumps(load_checkpoint(tmp_path / "run" / "checkpoint.pt")["config"]))
    assert {k: written[k] for k in carried} == carried
    assert written["model"]["num_classes"] == 4


def test_evaluate_and_predict_cli(trained, data_root, tmp_path):
    proc = cli("minimrcnn.evaluate", "--weights", str(trained / "checkpoint.pt"), "--out", str(tmp_path))
    assert "segm" in proc.stdout
    ev = json.loads((tmp_path / "eval.json").read_text())
    assert 0.0 <= ev["bbox"]["AP"] <= 1.0
    assert isinstance(json.loads((tmp_path / "results.json").read_text()), list)
    image = next((data_root / "val").glob("*.png"))
    proc = cli("minimrcnn.predict", str(image), "--weights", str(trained / "checkpoint.pt"),
               "--out", str(tmp_path / "pred"), "--score-thresh", "0.0")  # fmt: skip
    assert (tmp_path / "pred" / f"{image.stem}.png").stat().st_size > 1000


def _kill_after_checkpoint(cmd: list[str], ckpt: Path, min_iter: int) -> int:
    """Start training, SIGKILL it once a checkpoint at >= min_iter is on disk; return that iteration."""
    proc = subprocess.Popen([sys.executable, "-m", *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=ENV, text=True)  # fmt: skip
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            if ckpt.exists() and torch.load(ckpt, weights_only=True)["iteration"] >= min_iter:
                break
            if proc.poll() is not None:
                raise AssertionError(
                    f"training ended before it could be killed:\n{proc.stderr.read()[-2000:]}"
                )
            time.sleep(0.05)
        else:
            raise AssertionError("no checkpoint appeared")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return load_checkpoint(ckpt)["iteration"]


def test_resume_after_sigkill_continues_exactly(tmp_path, data_root):
    common = ["--data-root", str(data_root), "--iters", "8", "--no-progress", "--no-eval", *TINY,
              "--set", "train.checkpoint_every=3"]  # fmt: skip
    cli("minimrcnn.train", "--out", str(tmp_path / "straight"), *common)
    killed = _kill_after_checkpoint(["minimrcnn.train", "--out", str(tmp_path / "killed"), *common],
                                    tmp_path / "killed" / "checkpoint.pt", 3)  # fmt: skip
    assert killed in (3, 6)
    cli("minimrcnn.train", "--out", str(tmp_path / "killed"), "--resume", *common)
    a = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "killed" / "checkpoint.pt")
    assert a["iteration"] == b["iteration"] == 8
    for k, v in a["model"].items():  # same data order, same flips, same sampling, same lr: same weights
        torch.testing.assert_close(b["model"][k], v, rtol=1e-5, atol=1e-6, msg=f"{k} differs after resume")
    logged = [
        json.loads(x)["iteration"] for x in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()
    ]
    assert logged == list(range(1, 9))  # lines logged after the checkpoint were dropped, then redone


def test_nan_loss_stops_with_clear_message(tmp_path, data_root):
    out = tmp_path / "nan"
    proc = cli("minimrcnn.train", "--data-root", str(data_root), "--out", str(out), "--iters", "20",
               "--no-progress", *TINY, "--set", "train.optimizer=sgd", "--set", "train.lr=1e12",
               "--set", "train.warmup_iters=0", "--set", "train.checkpoint_every=1", check=False)  # fmt: skip
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: iteration ") and "non-finite loss (loss_" in last and "checkpoint" in last
    good = load_checkpoint(out / "checkpoint.pt")  # the last good checkpoint is intact
    assert all(torch.isfinite(v).all() for v in good["model"].values() if v.is_floating_point())


def test_two_process_gloo(tmp_path, data_root):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29517",
           "-m", "minimrcnn.train", "--data-root", str(data_root), "--out", str(out), "--iters", "3",
           "--no-progress", *TINY, "--set", "train.checkpoint_every=2"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["iteration"] == 3 and len(state["rng"]) == 2  # both ranks' generators are saved
    assert json.loads((out / "eval.json").read_text())["iteration"] == 3


@pytest.mark.parametrize(
    "args,expected",
    [
        (["--preset", "nope"], "error: unknown preset 'nope'"),
        (["--set", "model.flux=3"], "error: unknown config key 'model.flux'"),
        (["--set", "model.pooler=roiwhat"], "error: model.pooler='roiwhat'"),
        (["--set", "train.lr=abc"], "error: --set train.lr='abc': expected a value like 0.001"),
        (["--preset", "coco_r50_fpn_1x", "--data-root", "/nonexistent/coco"], "/nonexistent/coco/train2017"),
    ],
)
def test_bad_training_input_is_one_line(args, expected):
    proc = cli("minimrcnn.train", "--no-progress", *args, check=False)
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1 and expected in proc.stderr, proc.stderr


def test_corrupt_annotation_file_is_one_line(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "train2017").mkdir()
    (tmp_path / "annotations" / "instances_train2017.json").write_text("{not json")
    proc = cli("minimrcnn.train", "--no-progress", "--preset", "coco_r50_fpn_1x",
               "--data-root", str(tmp_path), check=False)  # fmt: skip
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    assert "instances_train2017.json" in proc.stderr


def test_unreadable_checkpoint_and_missing_image(tmp_path, trained):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"definitely not a checkpoint")
    for module, extra in (
        ("minimrcnn.evaluate", []),
        ("minimrcnn.predict", ["x.png", "--out", str(tmp_path)]),
    ):
        proc = cli(module, *extra, "--weights", str(bad), check=False)
        assert (
            proc.returncode == 1
            and proc.stderr.strip() == f"error: {bad}: not a readable checkpoint (UnpicklingError)"
        )
    weights = str(trained / "checkpoint.pt")
    missing = str(tmp_path / "missing.png")
    proc = cli("minimrcnn.predict", missing, "--weights", weights, "--out", str(tmp_path), check=False)
    assert (
        proc.returncode == 1 and proc.stderr.strip() == f"error: {tmp_path / 'missing.png'}: image not found"
    )
