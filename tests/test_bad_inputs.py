"""Bad input, as students and COCO users meet it, against train, evaluate, predict and the ablation panel.

One table: each case builds its input in a temporary folder and calls a command's `main(argv)` in this
process (the way `run_command` does: a UserError becomes one `error:` line and exit 1), or the panel's
loader. Every case asserts that no traceback reaches the user, and either a non-zero exit with one line
naming the file, field or value at fault, or a right result with nothing dropped unsaid. A real process
is used only where one is needed: a run that used to hang (under a timeout) and a run holding a lock.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CATEGORIES = [{"id": 1, "name": "circle"}, {"id": 3, "name": "square"}, {"id": 7, "name": "triangle"}]
HANG_TIMEOUT_S = 60  # a run refused at load time ends in ~10 s (start-up included); the hangs never did


# ---------------------------------------------------------------------------------------------- inputs
def square(x: float, y: float, s: float) -> list[list[float]]:
    return [[x, y, x + s, y, x + s, y + s, x, y + s]]


def write_coco(
    root: Path,
    split: str,
    n_images: int = 2,
    anns: list[dict] | None = None,
    size: int = 64,
    edit: Callable[[dict], None] | None = None,
    categories: list[dict] | None = None,
) -> Path:
    """root/<split>/NNN.png and root/annotations/instances_<split>.json; by default one square per image."""
    (root / split).mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    images = []
    for i in range(1, n_images + 1):
        pixels = np.full((size, size, 3), 90, np.uint8)
        pixels[10:30, 10:30] = (230, 40, 40)
        Image.fromarray(pixels).save(root / split / f"{i:03d}.png")
        images.append({"id": i, "file_name": f"{i:03d}.png", "width": size, "height": size})
    if anns is None:
        anns = [{"image_id": i, "bbox": [10, 10, 20, 20], "segmentation": square(10, 10, 20)}
                for i in range(1, n_images + 1)]  # fmt: skip
    full = [{"id": k + 1, "category_id": 3, "area": 400.0, "iscrowd": 0, **a} for k, a in enumerate(anns)]
    dataset = {"images": images, "annotations": full, "categories": categories or CATEGORIES}
    if edit is not None:
        edit(dataset)
    ann_file = root / "annotations" / f"instances_{split}.json"
    ann_file.write_text(json.dumps(dataset))
    return ann_file


def coco_root(tmp: Path, **train_edits) -> Path:
    """A tiny COCO-format dataset: train (edited as asked) and a clean val split."""
    root = tmp / "coco"
    write_coco(root, "train", **train_edits)
    write_coco(root, "val")
    return root


def train_argv(root: Path, out: Path, *extra: str) -> list[str]:
    return ["--preset", "shapes_cpu", "--data-root", str(root), "--out", str(out), "--device", "cpu",
            "--set", "train.dataset=coco", "--set", "train.train_split=train", "--set", "train.val_split=val",
            "--set", "model.min_size=64", "--set", "model.max_size=64",  # the images' size: the cheapest
            "--iters", "1", "--no-progress", "--no-eval", *extra]  # fmt: skip


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """An untrained shapes_cpu model's checkpoint, saved as minimrcnn.train saves one, for a COCO-format
    dataset with the shapes' categories (circle 1, square 3, triangle 7)."""
    from minimrcnn.model.mask_rcnn import MaskRCNN
    from minimrcnn.presets import shapes_cpu

    tmp = tmp_path_factory.mktemp("weights")
    root = tmp / "coco"
    write_coco(root, "val", n_images=1)
    cfg = shapes_cpu()
    cfg.train.dataset, cfg.train.data_root, cfg.train.val_split = "coco", str(root), "val"
    cfg.model.min_size, cfg.model.max_size = (64,), 64  # the images' own size: the cheapest forward pass
    torch.manual_seed(0)
    model = MaskRCNN(cfg.model)
    path = tmp / "run" / "checkpoint.pt"
    path.parent.mkdir()
    torch.save({"model": model.state_dict(), "config": cfg.to_dict(), "iteration": 0,
                "class_names": ["__background__", "circle", "square", "triangle"],
                "label_to_cat_id": [0, 1, 3, 7], "keypoint_names": [], "skeleton": []}, path)  # fmt: skip
    return path


# ---------------------------------------------------------------------------------------------- running
@dataclass
class Outcome:
    code: int | None  # the exit status; None when an exception other than a UserError escaped
    out: str
    err: str
    logged: str  # warnings logged meanwhile
    traceback: str | None

    def error_line(self) -> str:
        lines = [x for x in self.err.splitlines() if x.strip()]
        return lines[-1] if lines else ""


def call(main: Callable[[list[str]], int | None], argv: list[str]) -> Outcome:
    """main(argv) as `run_command` runs it, stdout, stderr and the logged warnings captured."""
    from minimrcnn.errors import run_command

    out, err, log = io.StringIO(), io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(log)
    handler.setLevel(logging.WARNING)
    logging.getLogger("minimrcnn").addHandler(handler)
    code, tb = None, None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            run_command(lambda: main(argv))
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:  # noqa: BLE001  (what would reach the user as a traceback)
        tb = traceback.format_exc()
    finally:
        logging.getLogger("minimrcnn").removeHandler(handler)
    return Outcome(code, out.getvalue(), err.getvalue(), log.getvalue(), tb)


def run_process(args: list[str], timeout: float = HANG_TIMEOUT_S) -> Outcome:
    """`python -m ...` in a fresh process; a run still going after `timeout` seconds fails as a hang."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    try:
        p = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hang: still running after {timeout} s")
    tb = p.stderr if "Traceback" in p.stderr else None
    return Outcome(p.returncode, p.stdout, p.stderr, p.stderr, tb)


def expect_error(o: Outcome, *words: str) -> None:
    """Non-zero exit, no traceback, and a last line 'error: ...' naming each of `words`."""
    assert o.traceback is None, f"traceback reached the user:\n{o.traceback[-1500:]}"
    assert o.code not in (0, None), f"exit {o.code}, expected an error; stdout: {o.out[-500:]}"
    line = o.error_line()
    assert line.startswith("error: "), f"last stderr line is not one error line: {o.err[-800:]!r}"
    for w in words:
        assert w in line, f"{w!r} not in {line!r}"


def expect_ok(o: Outcome) -> None:
    assert o.traceback is None, f"traceback reached the user:\n{o.traceback[-1500:]}"
    assert o.code == 0, f"exit {o.code}: {o.err[-800:]}"


def train_main(argv: list[str]) -> int | None:
    from minimrcnn.train import main

    return main(argv)


def evaluate_main(argv: list[str]) -> int | None:
    from minimrcnn.evaluate import main

    return main(argv)


def predict_main(argv: list[str]) -> int | None:
    from minimrcnn.predict import main

    return main(argv)


def panel_loader() -> Callable[[Path], dict | None]:
    try:  # where it lived before the ablations package (tried first: an editable install finds both)
        from minimrcnn.ablation_results import load_results
    except ImportError:
        from minimrcnn.ablations.results import load_results
    return load_results


def panel_load(path: Path) -> Outcome:
    """The panel's public loader of results.json (minimrcnn/ablations/results.py, or where it lived)."""
    load_results = panel_loader()

    def main(argv: list[str]) -> int:
        load_results(path)
        return 0

    return call(main, [])


# ---------------------------------------------------------------------------------------------- the table
CASES: dict[str, tuple[str, Callable[[Path, Path], None]]] = {}


def case(tool: str, name: str):
    def register(fn: Callable[[Path, Path], None]) -> Callable[[Path, Path], None]:
        CASES[f"{tool}: {name}"] = (tool, fn)
        return fn

    return register


# -- train: the annotation file (a dataset with nothing to learn from used to hang: run in a process)
def _no_learning(tmp: Path, words: tuple[str, ...], **edits) -> None:
    root = coco_root(tmp, **edits)
    o = run_process(["-m", "minimrcnn.train", *train_argv(root, tmp / "run")])
    expect_error(o, "instances_train.json", *words)


@case("train", "empty annotation list (hung)")
def _(tmp, weights):
    _no_learning(tmp, ("nothing to train on", "0 annotations"), anns=[])


@case("train", "every annotation iscrowd=1 (hung)")
def _(tmp, weights):
    anns = [{"image_id": i, "bbox": [10, 10, 20, 20], "iscrowd": 1,
             "segmentation": {"size": [64, 64], "counts": [640, 20, 44] * 20 + [64 * 64 - 640 - 64 * 20]}}
            for i in (1, 2)]  # fmt: skip
    _no_learning(tmp, ("nothing to train on", "2 crowd"), anns=anns)


@case("train", "detection-only export, segmentation [] everywhere (hung)")
def _(tmp, weights):
    anns = [{"image_id": i, "bbox": [10, 10, 20, 20], "segmentation": []} for i in (1, 2)]
    _no_learning(tmp, ("nothing to train on", "without a mask"), anns=anns)


def _train_data_error(tmp: Path, words: tuple[str, ...], **edits) -> None:
    root = coco_root(tmp, **edits)
    expect_error(call(train_main, train_argv(root, tmp / "run")), *words)


def _dup_image(d):
    d["images"][1]["id"] = 1


@case("train", "two images with one id")
def _(tmp, weights):
    _train_data_error(tmp, ("instances_train.json", "image id 1", "001.png", "002.png"), edit=_dup_image)


def _dup_ann(d):
    d["annotations"][1]["id"] = 1


@case("train", "two annotations with one id")
def _(tmp, weights):
    _train_data_error(tmp, ("instances_train.json", "same id 1"), edit=_dup_ann)


@case("train", "bbox given as strings")
def _(tmp, weights):
    anns = [{"image_id": 1, "bbox": ["10", "10", "20", "20"], "segmentation": square(10, 10, 20)}]
    _train_data_error(tmp, ("instances_train.json", "annotations[0]", "bbox"), anns=anns)


@case("train", "segmentation: null")
def _(tmp, weights):
    anns = [{"image_id": 1, "bbox": [10, 10, 20, 20], "segmentation": None}]
    _train_data_error(tmp, ("instances_train.json", "annotations[0]", "segmentation"), anns=anns)


@case("train", "bbox with a NaN")
def _(tmp, weights):
    anns = [{"image_id": 1, "bbox": [10, 10, float("nan"), 20], "segmentation": square(10, 10, 20)}]
    _train_data_error(tmp, ("instances_train.json", "bbox"), anns=anns)


@case("train", "RLE whose size is not its image's")
def _(tmp, weights):
    rle = {"size": [32, 32], "counts": [100, 10, 32 * 32 - 110]}
    anns = [{"image_id": 1, "bbox": [10, 10, 20, 20], "segmentation": rle}]
    _train_data_error(tmp, ("instances_train.json", "RLE", "size"), anns=anns)


def _width_str(d):
    d["images"][0]["width"] = "64"


@case("train", "image width given as a string")
def _(tmp, weights):
    _train_data_error(tmp, ("instances_train.json", "width"), edit=_width_str)


@case("train", "a listed image file is missing (found at load time, not when first drawn)")
def _(tmp, weights):
    from minimrcnn.data.coco import CocoInstances

    root = coco_root(tmp, n_images=3)
    (root / "train" / "002.png").unlink()
    words = ("002.png", "not found", "instances_train.json")
    expect_error(call(train_main, train_argv(root, tmp / "run")), *words)
    ann_file = root / "annotations" / "instances_train.json"
    expect_error(call(lambda argv: CocoInstances(root / "train", ann_file) and 0, []), *words)


@case("train", "malformed JSON")
def _(tmp, weights):
    root = coco_root(tmp)
    f = root / "annotations" / "instances_train.json"
    f.write_text(f.read_text()[:-20])
    expect_error(call(train_main, train_argv(root, tmp / "run")), "instances_train.json", "not valid JSON")


def _no_anns_key(d):
    del d["annotations"]


@case("train", "missing 'annotations' key")
def _(tmp, weights):
    _train_data_error(tmp, ("instances_train.json", "'annotations'"), edit=_no_anns_key)


@case("train", "unknown category id")
def _(tmp, weights):
    anns = [{"image_id": 1, "bbox": [10, 10, 20, 20], "segmentation": square(10, 10, 20), "category_id": 4}]
    _train_data_error(tmp, ("instances_train.json", "category_id 4"), anns=anns)


@case("train", "unknown image id")
def _(tmp, weights):
    anns = [{"image_id": 9, "bbox": [10, 10, 20, 20], "segmentation": square(10, 10, 20)}]
    _train_data_error(tmp, ("instances_train.json", "image_id 9"), anns=anns)


@case("train", "--out is a file")
def _(tmp, weights):
    root = coco_root(tmp)
    (tmp / "file").write_text("x")
    expect_error(call(train_main, train_argv(root, tmp / "file")), "--out", "file")


@case("train", "--out not writable")
def _(tmp, weights):
    expect_error(call(train_main, train_argv(coco_root(tmp), Path("/sys/minimrcnn-run"))), "--out", "/sys")


@case("train", "--set train.lr=nan")
def _(tmp, weights):
    expect_error(
        call(train_main, train_argv(coco_root(tmp), tmp / "run", "--set", "train.lr=nan")), "train.lr"
    )


@case("train", "--set train.schedule=cosin (misspelt)")
def _(tmp, weights):
    o = call(train_main, train_argv(coco_root(tmp), tmp / "run", "--set", "train.schedule=cosin"))
    expect_error(o, "train.schedule", "cosine")


@case("train", "--set train.batch_size=0")
def _(tmp, weights):
    o = call(train_main, train_argv(coco_root(tmp), tmp / "run", "--set", "train.batch_size=0"))
    expect_error(o, "train.batch_size")


@case("train", "--resume into another preset's run folder")
def _(tmp, weights):
    from minimrcnn.model.mask_rcnn import MaskRCNN
    from minimrcnn.presets import figures_cpu

    other = figures_cpu()
    run = tmp / "run"
    run.mkdir()
    torch.save({"model": MaskRCNN(other.model).state_dict(), "config": other.to_dict(), "iteration": 3},
               run / "checkpoint.pt")  # fmt: skip
    o = call(train_main, train_argv(coco_root(tmp), run, "--resume"))
    expect_error(o, "--resume", "checkpoint.pt", "figures_cpu")


@case("train", "a second run on a run folder in use")
def _(tmp, weights):
    run = tmp / "run"
    holder = subprocess.Popen(  # a run that holds the folder: the real lock, taken in another process
        [sys.executable, "-c", "import sys, time\nfrom minimrcnn.engine import run_folder\n"
         f"with run_folder.locked({str(run)!r}):\n    print('locked', flush=True)\n    time.sleep(120)"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        o = call(train_main, train_argv(coco_root(tmp), run))
        expect_error(o, "--out", "another run", f"pid {holder.pid}")
    finally:
        holder.kill()
        holder.wait()


@case("train", "the lock and a half-written checkpoint of a killed run")
def _(tmp, weights):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run = tmp / "run"
    run.mkdir()
    (run / ".lock").write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename}))
    (run / f".checkpoint.pt.tmp-{dead.pid}").write_bytes(b"\0" * 1000)
    o = call(train_main, train_argv(coco_root(tmp), run))
    expect_ok(o)
    assert f"pid {dead.pid}" in o.out and "took over" in o.out
    assert not (run / f".checkpoint.pt.tmp-{dead.pid}").exists()
    assert not (run / ".lock").exists()  # released at the end


@case("train", "diverging run (--set train.lr=1e6): the named checkpoint is finite")
def _(tmp, weights):
    run = tmp / "run"
    argv = train_argv(coco_root(tmp), run, "--set", "train.lr=1e6", "--set", "train.checkpoint_every=2",
                      "--set", "train.log_every=2")  # fmt: skip
    argv[argv.index("--iters") + 1] = "12"
    o = call(train_main, argv)
    expect_error(o, "iteration")
    assert "finite" in o.error_line()
    if (run / "checkpoint.pt").exists():
        state = torch.load(run / "checkpoint.pt", weights_only=True)
        bad = [k for k, v in state["model"].items() if v.is_floating_point() and not v.isfinite().all()]
        assert not bad, f"the kept checkpoint has {len(bad)} non-finite tensors"
        assert f"iteration {state['iteration']}" in o.error_line()


@case("train", "disk full while a checkpoint is written")
def _(tmp, weights):
    from minimrcnn.engine import checkpoint as ckpt

    path = tmp / "checkpoint.pt"
    path.write_bytes(b"old")
    real_save = torch.save

    def full_disk_save(obj, f, *args, **kwargs):
        f.write(b"\0" * 4096)
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 4096 vs 4000")

    torch.save = full_disk_save
    try:
        o = call(lambda argv: ckpt.save_checkpoint(path, {"model": {"w": torch.ones(2)}, "iteration": 7}), [])
    finally:
        torch.save = real_save
    expect_error(o, "checkpoint.pt", "could not write")
    assert path.read_bytes() == b"old"  # the previous checkpoint is kept
    assert sorted(p.name for p in tmp.iterdir()) == ["checkpoint.pt"]  # and no temporary file is left


@case("train", "unusable annotations are counted by reason in the log")
def _(tmp, weights):
    from minimrcnn.data.coco import CocoInstances

    anns = [{"image_id": 1, "bbox": [10, 10, 20, 20], "segmentation": square(10, 10, 20)},
            {"image_id": 1, "bbox": [10, 10, 0.5, 20], "segmentation": square(10, 10, 20)},
            {"image_id": 2, "bbox": [10, 10, 20, 20], "segmentation": [[1, 2, 3, 4]]}]  # fmt: skip
    root = coco_root(tmp, anns=anns)
    o = call(lambda argv: len(CocoInstances(root / "train", root / "annotations" / "instances_train.json",
                                            drop_crowd=True, skip_empty=True)) and 0, [])  # fmt: skip
    expect_ok(o)
    assert "dropped 2 of 3 annotations" in o.logged and "box under 1 px" in o.logged and "polygon" in o.logged


@case("train", "a phone photo (EXIF orientation 6) is read upright in datasets")
def _(tmp, weights):
    from minimrcnn.data.coco import CocoInstances

    root = coco_root(tmp)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    Image.new("RGB", (64, 32), (200, 10, 10)).save(root / "train" / "001.png", exif=exif)  # viewed as 32x64
    f = root / "annotations" / "instances_train.json"
    d = json.loads(f.read_text())
    d["images"][0].update(width=32, height=64)
    f.write_text(json.dumps(d))
    ds = CocoInstances(root / "train", f)
    assert tuple(ds.load_image(0).shape) == (3, 64, 32)


@case("train", "a 16-bit PNG is scaled, not clipped to white")
def _(tmp, weights):
    from minimrcnn.data.coco import CocoInstances

    root = coco_root(tmp)
    Image.fromarray(np.full((64, 64), 30000, np.uint16)).save(root / "train" / "001.png")
    ds = CocoInstances(root / "train", root / "annotations" / "instances_train.json")
    image = ds.load_image(0)
    assert abs(float(image.mean()) - 30000 / 65535) < 0.01, float(image.mean())


# -- evaluate
def eval_argv(weights: Path, root: Path, out: Path, *extra: str) -> list[str]:
    return ["--weights", str(weights), "--data-root", str(root), "--split", "val", "--out", str(out),
            "--device", "cpu", *extra]  # fmt: skip


@case("evaluate", "--batch-size 0")
def _(tmp, weights):
    o = call(evaluate_main, eval_argv(weights, coco_root(tmp), tmp / "ev", "--batch-size", "0"))
    expect_error(o, "--batch-size")


@case("evaluate", "val file with the same names under other ids: mapped by name")
def _(tmp, weights):
    def named_results(categories: list[dict], folder: str) -> list[tuple[float, str]]:
        root = tmp / folder
        anns = [{"image_id": 1, "bbox": [10, 10, 20, 20], "segmentation": square(10, 10, 20),
                 "category_id": categories[1]["id"]}]  # fmt: skip
        write_coco(root, "val", n_images=1, categories=categories, anns=anns)
        o = call(evaluate_main, eval_argv(weights, root, tmp / folder / "ev"))
        expect_ok(o)
        names = {c["id"]: c["name"] for c in categories}
        results = json.loads((tmp / folder / "ev" / "results.json").read_text())
        return sorted((round(r["score"], 5), names[r["category_id"]]) for r in results)

    same = named_results(CATEGORIES, "same")  # circle 1, square 3, triangle 7: the model's own ids
    other = [{"id": 11, "name": "square"}, {"id": 12, "name": "triangle"}, {"id": 13, "name": "circle"}]
    assert same, "the untrained model detects something"
    assert named_results(other, "other") == same  # each detection keeps its class name under the new ids


@case("evaluate", "val file missing one of the model's categories")
def _(tmp, weights):
    root = tmp / "coco"
    write_coco(root, "val", categories=CATEGORIES[1:])
    o = call(evaluate_main, eval_argv(weights, root, tmp / "ev"))
    expect_error(o, "instances_val.json", "circle")


@case("evaluate", "val file with a category the model does not know")
def _(tmp, weights):
    root = tmp / "coco"
    write_coco(root, "val", categories=[*CATEGORIES, {"id": 9, "name": "star"}])
    o = call(evaluate_main, eval_argv(weights, root, tmp / "ev"))
    expect_error(o, "instances_val.json", "star")


@case("evaluate", "crowd-only val: AP is '—' and the run says why")
def _(tmp, weights):
    root = tmp / "coco"
    rle = {"size": [64, 64], "counts": [640, 20, 64 * 64 - 660]}
    crowd = {"image_id": 1, "bbox": [0, 10, 1, 20], "segmentation": rle, "iscrowd": 1}
    write_coco(root, "val", n_images=1, anns=[crowd])
    o = call(evaluate_main, eval_argv(weights, root, tmp / "ev"))
    expect_ok(o)
    assert "—" in o.out and "all crowd regions" in (o.logged + o.err)


@case("evaluate", "val with no annotation: AP is '—' and the run says why")
def _(tmp, weights):
    root = tmp / "coco"
    write_coco(root, "val", n_images=1, anns=[])
    o = call(evaluate_main, eval_argv(weights, root, tmp / "ev"))
    expect_ok(o)
    assert "1 images and no annotation" in (o.logged + o.err)
    ev = json.loads((tmp / "ev" / "eval.json").read_text())
    assert ev["segm"]["AP"] is None  # not 0.0: nothing was there to find


@case("evaluate", "two val images with one id")
def _(tmp, weights):
    root = tmp / "coco"
    write_coco(root, "val", edit=_dup_image)
    expect_error(
        call(evaluate_main, eval_argv(weights, root, tmp / "ev")), "image id 1", "001.png", "002.png"
    )


@case("evaluate", "missing weights file")
def _(tmp, weights):
    o = call(evaluate_main, eval_argv(tmp / "nope.pt", coco_root(tmp), tmp / "ev"))
    expect_error(o, "nope.pt")


@case("evaluate", "corrupt weights file")
def _(tmp, weights):
    (tmp / "bad.pt").write_bytes(b"not a checkpoint")
    expect_error(call(evaluate_main, eval_argv(tmp / "bad.pt", coco_root(tmp), tmp / "ev")), "bad.pt")


@case("evaluate", "--out is a file")
def _(tmp, weights):
    (tmp / "file").write_text("x")
    expect_error(call(evaluate_main, eval_argv(weights, coco_root(tmp), tmp / "file")), "--out", "file")


# -- predict
def picture(path: Path, size: tuple[int, int] = (64, 48), value=(90, 90, 90)) -> Path:
    Image.new("RGB", size, value).save(path)
    return path


def predict_argv(weights: Path, images: list[Path], out: Path, *extra: str) -> list[str]:
    return [*map(str, images), "--weights", str(weights), "--out", str(out), "--device", "cpu", *extra]


@case("predict", "a.png and a.jpg: both pictures kept")
def _(tmp, weights):
    a, b = picture(tmp / "a.png"), picture(tmp / "a.jpg", value=(10, 200, 10))
    o = call(predict_main, predict_argv(weights, [a, b], tmp / "out"))
    expect_ok(o)
    pngs = sorted(p.name for p in (tmp / "out").glob("*.png"))
    assert len(pngs) == 2, pngs


@case("predict", "an unreadable image among good ones: reported, the rest done, exit non-zero")
def _(tmp, weights):
    bad = tmp / "bad.png"
    bad.write_bytes(b"not a png")
    good = picture(tmp / "good.png")
    o = call(predict_main, predict_argv(weights, [bad, good], tmp / "out"))
    assert o.traceback is None and o.code not in (0, None)
    assert "bad.png" in o.err and (tmp / "out" / "good.png").is_file()


@case("predict", "a missing image file")
def _(tmp, weights):
    o = call(predict_main, predict_argv(weights, [tmp / "missing.png"], tmp / "out"))
    assert o.traceback is None and o.code not in (0, None) and "missing.png" in o.err


@case("predict", "--score-thresh 5")
def _(tmp, weights):
    o = call(
        predict_main, predict_argv(weights, [picture(tmp / "a.png")], tmp / "out", "--score-thresh", "5")
    )
    expect_error(o, "--score-thresh")


@case("predict", "--out is a file")
def _(tmp, weights):
    (tmp / "file").write_text("x")
    expect_error(call(predict_main, predict_argv(weights, [picture(tmp / "a.png")], tmp / "file")), "--out")


@case("predict", "--out not writable")
def _(tmp, weights):
    o = call(predict_main, predict_argv(weights, [picture(tmp / "a.png")], Path("/sys/minimrcnn-preds")))
    expect_error(o, "--out", "/sys")


@case("predict", "a phone photo (EXIF orientation 6) is drawn upright")
def _(tmp, weights):
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (96, 48), (90, 90, 90)).save(tmp / "phone.jpg", exif=exif)  # viewed as 48 x 96
    o = call(predict_main, predict_argv(weights, [tmp / "phone.jpg"], tmp / "out"))
    expect_ok(o)
    w, h = Image.open(tmp / "out" / "phone.png").size
    assert h > w, (w, h)


@case("predict", "a 16-bit PNG is not clipped to white")
def _(tmp, weights):
    Image.fromarray(np.full((48, 64), 30000, np.uint16)).save(tmp / "deep.png")
    o = call(predict_main, predict_argv(weights, [tmp / "deep.png"], tmp / "out", "--score-thresh", "1"))
    expect_ok(o)
    mean = np.asarray(Image.open(tmp / "out" / "deep.png").convert("L")).mean()
    assert abs(mean - 255 * 30000 / 65535) < 5, mean


@case("predict", "a 24-megapixel photo: a bounded picture, and the resize is said")
def _(tmp, weights):
    Image.new("RGB", (6000, 4000), (90, 90, 90)).save(tmp / "big.jpg", quality=50)
    o = call(predict_main, predict_argv(weights, [tmp / "big.jpg"], tmp / "out"))
    expect_ok(o)
    assert max(Image.open(tmp / "out" / "big.png").size) <= 2000
    assert "6000x4000" in o.out and "model sees" in o.out


@case("predict", "detections written as data (COCO results JSON)")
def _(tmp, weights):
    o = call(
        predict_main, predict_argv(weights, [picture(tmp / "a.png")], tmp / "out", "--score-thresh", "0")
    )
    expect_ok(o)
    results = json.loads((tmp / "out" / "detections.json").read_text())
    assert results and {"image_id", "category_id", "bbox", "score", "segmentation"} <= set(results[0])
    assert {r["category_id"] for r in results} <= {1, 3, 7}


@case("predict", "--out is the input's folder: the input image is not overwritten")
def _(tmp, weights):
    a = picture(tmp / "a.png")
    before = a.read_bytes()
    expect_ok(call(predict_main, predict_argv(weights, [a], tmp)))
    assert a.read_bytes() == before


@case("predict", "corrupt weights file")
def _(tmp, weights):
    (tmp / "bad.pt").write_bytes(b"\x80\x02garbage")
    expect_error(
        call(predict_main, predict_argv(tmp / "bad.pt", [picture(tmp / "a.png")], tmp / "out")), "bad.pt"
    )


# -- the ablation panel's results.json
@case("panel", "a folder holding results.json instead of the file")
def _(tmp, weights):
    (tmp / "sweep").mkdir()
    (tmp / "sweep" / "results.json").write_text(json.dumps({"runs": {}}))
    o = panel_load(tmp / "sweep")
    assert o.traceback is None and (o.code == 0 or o.error_line().startswith("error: "))
    if o.code == 0:  # read from the folder, not "No ablation results yet"
        assert panel_loader()(tmp / "sweep") is not None


@case("panel", "a truncated results.json")
def _(tmp, weights):
    (tmp / "results.json").write_text('{"runs": {"baseline": [')
    expect_error(panel_load(tmp / "results.json"), "results.json")


@case("panel", "a results.json of the wrong shape (a list)")
def _(tmp, weights):
    (tmp / "results.json").write_text("[1, 2, 3]")
    expect_error(panel_load(tmp / "results.json"), "results.json")


@case("panel", "no results.json yet")
def _(tmp, weights):
    expect_ok(panel_load(tmp / "results.json"))


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name, tmp_path, weights, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tool, fn = CASES[name]
    fn(tmp_path, weights)


def test_the_table_covers_every_tool_with_forty_cases():
    tools = [tool for tool, _ in CASES.values()]
    assert len(CASES) >= 40
    assert {"train", "evaluate", "predict", "panel"} <= set(tools)
