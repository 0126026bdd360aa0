"""The ablation study (minimrcnn.ablations): the sweep, its tables, and chapter 09's panel exercised without a
browser; the committed sweeps are reused as they are.

ipywidgets catches exceptions raised in callbacks and only logs them, so a notebook can execute "fine" with a
broken panel. These tests set the widgets' values and click the button, then assert on what the callbacks
produced: the table rows, the bars of the figure, the predicted-mask images, and a real "run live" training
run (4 iterations of a tiny model on a tiny generated shapes set).
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from minimrcnn.ablations import previews, sweep
from minimrcnn.ablations import results as ablation_results
from minimrcnn.ablations.panel import AblationPanel
from minimrcnn.ablations.sets import SETS, STUDIES, Variant, study_of, study_sets, variants
from minimrcnn.errors import ConfigError, DataError

TINY = (
    "model.fpn_channels=32",
    "model.box_head_dim=64",
    "model.mask_head_dim=32",
    "model.min_size=64",
    "model.max_size=64",
    "model.box_batch_size_per_image=32",
    "model.rpn_post_nms_top_n_test=50",
    "train.num_train_images=8",
    "train.num_val_images=5",
    "train.batch_size=2",
    "train.num_workers=0",
    "train.log_every=1",
    "train.warmup_iters=2",
)


@contextmanager
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fake_eval(name: str, seed: int) -> dict:
    """A deterministic, distinct eval per (variant, seed): AP = base(variant) + seed offset."""
    base = {
        "baseline": 0.30,
        "roipool": 0.25,
        "roiwarp": 0.26,
        "roialign_aligned": 0.305,
        "softmax": 0.20,
        "agnostic": 0.29,
        "mlp": 0.27,
        "fcn2": 0.29,
        "res56": 0.30,
        "no_mask": 0.28,
        "roipool_softmax": 0.14,
    }[name]
    off = 0.01 * seed + (0.005 * seed if name == "roipool_softmax" else 0.0)
    metrics = {m: base + off + (0.1 if m == "AP50" else 0.0) for m in ablation_results.METRICS}
    out = {"iteration": 7, "seed": seed, "bbox": {m: v + 0.05 for m, v in metrics.items()}}
    if name != "no_mask":
        out["segm"] = metrics
    return out


@pytest.fixture(scope="module")
def fake_sweep(tmp_path_factory) -> Path:
    """results.json written by the real sweep.run_sets, with run_variant replaced by fake_eval."""
    out = tmp_path_factory.mktemp("ablations")
    real = sweep.run_variant
    sweep.run_variant = lambda v, seed, iters, out, data_root, progress=False: fake_eval(v.name, seed)
    try:
        sweep.run_sets(list(STUDIES["shapes"].sets), [0, 1], 7, out, progress=False)
    finally:
        sweep.run_variant = real
    return out / "results.json"


def walk(widget):
    """A widget and everything inside it."""
    yield widget
    for child in getattr(widget, "children", ()):
        yield from walk(child)


def bar_heights(ax) -> list[float]:
    return [round(p.get_height(), 4) for p in ax.patches]


def test_factorial_interaction_is_paired_by_seed(fake_sweep):
    results = ablation_results.load_results(fake_sweep)
    # RoIAlign's gain: with sigmoid 30 - 25 = 5 points on both seeds; with softmax 20 - 14 = 6 (seed 0)
    # and 21 - 15.5 = 5.5 (seed 1). Interaction per seed: -1.0 and -0.5.
    mean, spread, n = ablation_results.interaction(results)
    assert n == 2 and mean == pytest.approx(-0.75) and spread == pytest.approx(0.3536, abs=1e-3)
    first_seed_only = results["runs"]["roipool_softmax"][:1]
    one_seed = dict(results, runs=dict(results["runs"], roipool_softmax=first_seed_only))
    assert ablation_results.interaction(one_seed)[2] == 0  # seed_pairs refuses incomplete seed lists
    empty = dict(results, runs={k: v for k, v in results["runs"].items() if k != "roipool_softmax"})
    assert ablation_results.interaction(empty)[2] == 0


def test_table_rows_and_verdicts(fake_sweep):
    results = ablation_results.load_results(fake_sweep)
    rows = ablation_results.table_rows(results, "mask_loss")
    assert [r["variant"] for r in rows] == ["softmax", "agnostic", "baseline"]
    # the baseline is named by its role in the set, and the role is a field of its own
    assert [(r["label"], r["role"]) for r in rows] == [
        ("softmax over classes", "variant"),
        ("class-agnostic sigmoid", "variant"),
        ("per-class sigmoid", "baseline"),
    ]
    softmax = rows[0]
    assert softmax["mask AP"] == pytest.approx(20.5) and softmax["mask AP std"] == pytest.approx(
        0.7, abs=0.05
    )
    assert softmax["paper AP"] == 24.8 and softmax["seeds"] == 2
    # mask AP - box AP, paired by seed (the fake box AP is 5 points above the mask AP on every seed)
    assert softmax["mask − box"] == pytest.approx(-5.0) and softmax["mask − box std"] == pytest.approx(0.0)
    no_mask = ablation_results.table_rows(results, "mask_branch")[0]
    assert no_mask["variant"] == "no_mask" and no_mask["mask − box"] is None and no_mask["box AP"] is not None
    sizes = {r["variant"]: r for r in ablation_results.size_rows(results, ["softmax", "no_mask"])}
    assert sizes["softmax"]["mask APs"] == pytest.approx(20.5)
    assert sizes["softmax"]["box APm"] == pytest.approx(25.5)
    assert sizes["no_mask"]["mask APs"] is None and sizes["no_mask"]["box APs"] == pytest.approx(33.5)
    md = ablation_results.size_markdown(results, ["softmax", "no_mask"]).splitlines()
    assert md[2] == "| softmax over classes | 2 | 20.5 ± 0.7 | 20.5 ± 0.7 | 25.5 ± 0.7 | 25.5 ± 0.7 |"
    assert md[3].startswith("| no mask branch | 2 | — | — | 33.5 ± 0.7 |")
    md = ablation_results.table_markdown(rows, "mask_loss")
    assert "| softmax over classes | 2 seeds, 7 it | 20.5 ± 0.7 |" in md and "24.8" in md
    assert "| per-class sigmoid (baseline) | 2 seeds, 7 it | 30.5 ± 0.7 |" in md
    gain, spread, n = ablation_results.compare(results, "baseline", "softmax")
    assert gain == pytest.approx(10.0) and spread == pytest.approx(0.0, abs=1e-9) and n == 2
    # paired by the runs' folders: the sweep's eval.json files are fakes here, so write two
    runs = fake_sweep.parent / "runs"
    for name, ap in (("baseline", 0.30), ("softmax", 0.21)):
        (runs / f"{name}-s1").mkdir(parents=True, exist_ok=True)
        (runs / f"{name}-s1" / "eval.json").write_text(json.dumps({"iteration": 7, "segm": {"AP": ap}}))
    assert ablation_results.compare(results, "baseline", "softmax", runs_dir=runs) == pytest.approx(
        (9.0, 0.0, 1)
    )
    incomplete = dict(results, runs=dict(results["runs"], softmax=results["runs"]["softmax"][:1]))
    assert (
        ablation_results.compare(incomplete, "baseline", "softmax")[2] == 0
    )  # no positional pairing when seeds are missing
    lines = ablation_results.verdicts(results, "mask_loss")
    assert lines[0].startswith(
        "per-class sigmoid vs softmax over classes: +10.0 ± 0.0 over 2 seeds mask AP (paper: +5.5)"
    )
    assert "the paper's direction" in lines[0] and lines[1].startswith("per-class sigmoid vs class-agnostic")
    assert ablation_results.verdicts(results, "resolution") == [
        "the paper makes no claim here to compare with"
    ]
    box_lines = ablation_results.verdicts(results, "mask_branch")
    assert box_lines == [
        "with mask branch vs no mask branch: +2.0 ± 0.0 over 2 seeds box AP (paper: +0.9): "
        "the paper's direction"
    ]
    # results.md (written by run_sets): each set's table under the paper's numbers, from the same rows
    md = (fake_sweep.parent / "results.md").read_text()
    assert "## Mask loss (Table 2b)\n\n_paper, ResNet-50-C4, COCO minival, mask AP (Table 2b and text): " \
        "softmax over classes 24.8, class-agnostic sigmoid 29.7, per-class sigmoid 30.3_" in md  # fmt: skip
    assert ablation_results.table_markdown(rows, "mask_loss") in md
    assert results["sets"]["mask_loss"]["baseline"] == "per-class sigmoid" and results["labels"][
        "baseline"
    ] == ("RoIAlign, sigmoid, FCN-4, 28x28")
    box = ablation_results.table_rows(results, "mask_branch")
    assert box[0]["mask AP"] is None and box[0]["box AP"] == pytest.approx(33.5)


def test_panel_set_and_variant_selection(fake_sweep, tmp_path):
    panel = AblationPanel(fake_sweep, data_root=tmp_path / "no_data", live_out=tmp_path / "live")
    assert panel.set_selector.value == "pooler"
    # what a browser test finds: one drop-down (the set), one button ("run live"), a progress bar,
    # the table and the outputs of the bars and the masks
    widgets_shown = list(walk(panel.widget))
    kinds = [type(w).__name__ for w in widgets_shown]
    assert kinds.count("Dropdown") == 1 and kinds.count("IntProgress") == 1 and kinds.count("Output") == 2
    assert [w.description for w in widgets_shown if type(w).__name__ == "Button"] == ["run live"]
    assert panel.table in widgets_shown and "<table>" in panel.table.value
    assert [r["variant"] for r in panel.rows] == SETS["pooler"].names
    # choosing a set refills the variants (all selected) and redraws everything
    panel.set_selector.value = "mask_loss"
    assert panel.variant_selector.value == ("softmax", "agnostic", "baseline")
    assert [r["label"] for r in panel.rows] == [
        "softmax over classes",
        "class-agnostic sigmoid",
        "per-class sigmoid",
    ]
    assert "<td>per-class sigmoid (baseline)</td>" in panel.table.value
    assert "<td>20.5 ± 0.7</td>" in panel.table.value and "24.8" in panel.table.value
    ours, paper = panel.bar_fig.axes
    assert bar_heights(ours) == pytest.approx([20.5, 29.5, 30.5, 20.5, 29.5, 30.5])  # AP bars, then AP75 bars
    assert bar_heights(paper) == pytest.approx([24.8, 29.7, 30.3])
    # the sweep's runs have neither samples.json nor checkpoints here: no mask figure, and it says so
    assert panel.mask_fig is None and panel.missing_masks == ["softmax", "agnostic", "baseline"]
    # a sub-selection
    panel.variant_selector.value = ("softmax", "baseline")
    assert [r["variant"] for r in panel.rows] == ["softmax", "baseline"]
    assert len(panel.bar_fig.axes[0].patches) == 4
    # the mask-branch set plots box AP
    panel.set_selector.value = "mask_branch"
    assert bar_heights(panel.bar_fig.axes[0])[:2] == pytest.approx([33.5, 35.5])
    assert bar_heights(panel.bar_fig.axes[1]) == pytest.approx([37.3, 38.2])


def test_panel_without_results(tmp_path):
    panel = AblationPanel(tmp_path / "missing.json", data_root=tmp_path, live_out=tmp_path / "live")
    assert panel.results is None and "No ablation results" in panel.status.value
    assert all(r["source"] == "not run" for r in panel.rows)
    paper = {"roipool": 26.9, "roiwarp": 27.2, "baseline": 30.3}
    assert [r["paper AP"] for r in panel.rows] == [paper.get(n) for n in SETS["pooler"].names]
    assert len(panel.bar_fig.axes) == 1 and bar_heights(panel.bar_fig.axes[0]) == pytest.approx(
        [26.9, 27.2, 30.3]
    )
    assert ablation_results.verdicts(None, "pooler") == ["no results to compare with yet"]


@pytest.fixture(scope="module")
def live_panel(fake_sweep, tmp_path_factory):
    """Click "run live" for one variant with a 4-iteration budget on a tiny generated dataset, and click it
    again while it trains (the second click must not start a second run)."""
    root = tmp_path_factory.mktemp("live")
    panel = AblationPanel(
        fake_sweep,
        data_root=root / "shapes",
        live_out=root / "out",
        live_iters=4,
        extra_overrides=TINY,
        set_name="mask_loss",
    )
    panel.variant_selector.value = ("softmax",)
    panel.iters.value = 4
    logs, during = [], []

    def on_progress(change):
        # what a person sees while it trains: the bar's value, the button's state, the status line
        during.append((change["new"], panel.run_button.disabled, panel.running, panel.status.value))
        if len(during) == 1:
            panel.run_button.click()  # a second click while the first run trains

    panel.status.observe(lambda change: logs.append(change["new"]), names="value")
    panel.progress.observe(on_progress, names="value")
    with one_thread():
        panel.run_button.click()  # exceptions would be swallowed by ipywidgets: check the results below
    return panel, root, logs, during


def test_run_live_shows_progress_and_cannot_start_twice(live_panel):
    panel, root, logs, during = live_panel
    # the bar counted the iterations as they were logged (log_every=1), not only at the end
    values = [v for v, *_ in during]
    assert values[:4] == [1, 2, 3, 4] and values == sorted(values) and panel.progress.max == 4
    assert all(disabled and running for _, disabled, running, _ in during)
    assert "iteration 1 / 4 (25%)" in during[0][3] and "loss " in during[0][3]
    # the second click was refused, and only one run trained: 4 records in its log, not 8
    assert any("a live run is going already" in s for s in logs)
    records = (root / "out" / "runs" / "softmax-s0" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["iteration"] for r in records] == [1, 2, 3, 4]
    # afterwards the button works again and the bar says it succeeded
    assert not panel.run_button.disabled and not panel.running and panel.progress.bar_style == "success"


def test_run_live_trains_and_shows(live_panel):
    panel, root, logs, _ = live_panel
    assert "softmax" in panel.live, panel.status.value
    run_dir = root / "out" / "runs" / "softmax-s0"
    ev = json.loads((run_dir / "eval.json").read_text())
    assert ev["iteration"] == 4 and set(ev["segm"]) == set(ablation_results.METRICS)
    assert any("iteration 4 / 4 (100%)" in s for s in logs) and panel.status.value.startswith("done")
    # the table: the sweep's row, then the live one
    assert [(r["variant"], r["source"]) for r in panel.rows] == [
        ("softmax", "7 it"),
        ("softmax", "live, 4 it"),
    ]
    assert "<td>1 seed, live, 4 it</td>" in panel.table.value
    assert panel.rows[1]["mask AP"] == pytest.approx(round(100 * ev["segm"]["AP"], 1))
    # the bars: sweep + live, AP and AP75
    heights = bar_heights(panel.bar_fig.axes[0])
    assert len(heights) == 4 and heights[1] == pytest.approx(round(100 * ev["segm"]["AP"], 1), abs=1e-3)
    labels = [t.get_text() for t in panel.bar_fig.axes[0].get_xticklabels()]
    assert labels == ["softmax over classes", "softmax over classes, live"]
    # the masks: the chosen image's ground truth, then the live run, each panel an image
    assert panel.mask_fig is not None and panel.missing_masks == ["softmax"]  # the sweep's run has no masks
    samples = json.loads((run_dir / previews.SAMPLES_FILE).read_text())
    assert samples["image_ids"] == [2, 4] and samples["iteration"] == 4  # the sample ids this tiny set has
    axes = panel.mask_fig.axes
    assert len(axes) == 2 and all(len(ax.images) == 1 for ax in axes)
    assert [ax.get_title() for ax in axes] == ["ground truth, image 2", "softmax over classes, live"]
    # choosing another image redraws only the masks
    rows = panel.rows
    panel.image_selector.value = 4
    assert panel.mask_fig.axes[0].get_title() == "ground truth, image 4" and panel.rows is rows


def test_samples_cli_and_mask_figure(live_panel):
    panel, root, *_ = live_panel
    run_dir = root / "out" / "runs" / "softmax-s0"
    (run_dir / previews.SAMPLES_FILE).unlink()
    assert previews.main([str(root / "out"), "--data-root", str(root / "shapes")]) == 0
    samples = previews.load_samples(run_dir)
    assert samples is not None and all(d["image_id"] in samples["image_ids"] for d in samples["detections"])
    stale = dict(samples, iteration=999)  # samples of an older run in the same folder: made again
    (run_dir / previews.SAMPLES_FILE).write_text(json.dumps(stale))
    assert previews.main([str(root / "out"), "--data-root", str(root / "shapes")]) == 0
    done = json.loads((run_dir / "eval.json").read_text())["iteration"]
    assert previews.load_samples(run_dir)["iteration"] == done != 999
    fig, missing = previews.mask_figure(
        root / "out", ["softmax", "agnostic"], 0, root / "shapes", max_images=2
    )
    assert missing == ["agnostic"] and len(fig.axes) == 2 * 2  # two images, ground truth + softmax each
    assert [ax.get_title() for ax in fig.axes] == [
        "ground truth, image 2",
        "softmax over classes",
        "ground truth, image 4",
        "",
    ]


def test_finished_runs_are_reused_only_with_the_same_configuration(live_panel):
    _, root, *_ = live_panel
    out, data_root = root / "out", str(root / "shapes")
    softmax = variants()["softmax"]
    same = Variant("softmax", softmax.label, softmax.overrides + TINY)
    done = sweep.finished(same, 0, 4, out, data_root)
    assert done is not None and done["seed"] == 0 and done["iteration"] == 4
    assert sweep.finished(same, 0, 5, out, data_root) is None  # another budget
    assert sweep.finished(same, 1, 4, out, data_root) is None  # another seed: never ran
    # the preset changed since (here: a variant override differs): the old run must not be reused
    changed = Variant("softmax", softmax.label, (*same.overrides, "model.box_head_dim=32"))
    assert sweep.finished(changed, 0, 4, out, data_root) is None
    # a run saved before a config field existed ran with that field's default
    config = out / "runs" / "softmax-s0" / "config.json"
    original = config.read_text()
    saved = json.loads(original)
    del saved["model"]["box_head_convs"]  # the preset keeps its default, 4
    config.write_text(json.dumps(saved))
    assert sweep.finished(same, 0, 4, out, data_root) is not None
    saved["model"]["box_head_convs"] = 2
    config.write_text(json.dumps(saved))
    assert sweep.finished(same, 0, 4, out, data_root) is None
    # the config's name is a label, not a setting
    saved = dict(json.loads(original), name="another-name")
    config.write_text(json.dumps(saved))
    assert sweep.finished(same, 0, 4, out, data_root) is not None
    config.write_text(original)


# ------------------------------------------------------------------------------- the results file (issue 28)
def test_panel_reads_the_results_json_of_a_folder(fake_sweep, tmp_path):
    """The sweep's --out folder names its results as well as the results.json in it."""
    panel = AblationPanel(fake_sweep.parent, data_root=tmp_path / "no_data", live_out=tmp_path / "live")
    assert panel.results is not None and panel.results_path == fake_sweep
    assert "No ablation results" not in panel.status.value
    assert [(r["source"], r["seeds"]) for r in panel.rows] == [("7 it", 2)] * 3
    assert ablation_results.load_results(fake_sweep.parent) == ablation_results.load_results(fake_sweep)
    # a folder without results.json: the message names the file it looked for
    panel = AblationPanel(tmp_path, data_root=tmp_path / "no_data", live_out=tmp_path / "live")
    assert panel.results is None and f"{(tmp_path / 'results.json').as_posix()} yet" in panel.status.value


def _without_table(text: str) -> str:
    return json.dumps({k: v for k, v in json.loads(text).items() if k != "table"})


@pytest.mark.parametrize(
    "damage, problem",
    [
        pytest.param(lambda text: text[: len(text) // 2], "not valid JSON", id="truncated"),
        pytest.param(lambda text: "[1, 2]", "a JSON list, not an object", id="a-list"),
        pytest.param(_without_table, '"table" is missing', id="no-table"),
        pytest.param(
            lambda text: json.dumps({**json.loads(text), "seeds": 3}),
            '"seeds" is not a list',
            id="seeds-a-number",
        ),
        pytest.param(
            lambda text: json.dumps({**json.loads(text), "table": {"baseline": [0.3]}}),
            'table entry "baseline"',
            id="row-a-list",
        ),
        pytest.param(
            lambda text: json.dumps({**json.loads(text), "sets": {"pooling": {}}}),
            "unknown set(s) pooling",
            id="unknown-set",
        ),
    ],
)
def test_a_damaged_results_json_is_one_line_naming_the_file(fake_sweep, tmp_path, damage, problem):
    bad = tmp_path / "results.json"
    bad.write_text(damage(fake_sweep.read_text()))
    with pytest.raises(DataError) as err:
        ablation_results.load_results(bad)
    message = str(err.value)
    assert message.startswith(bad.as_posix() + ": ") and problem in message and "\n" not in message
    panel = AblationPanel(tmp_path, data_root=tmp_path / "no_data", live_out=tmp_path / "live")  # no raise
    assert panel.results is None and "cannot read the results" in panel.status.value
    assert problem.replace('"', "&quot;") in panel.status.value
    assert all(r["source"] == "not run" for r in panel.rows)  # the paper's numbers still shown


# ----------------------------------------------------------------------------------------- the sweep itself
def test_every_committed_run_is_reused(monkeypatch):
    """The committed sweeps of chapters 09 and 10 (results/*/runs) are found finished with the sets' current
    configurations: nothing would train, and their summary is the committed results.json."""
    from minimrcnn.engine import trainer

    monkeypatch.setattr(trainer, "train", lambda *a, **k: pytest.fail("a committed run would train again"))
    for study in STUDIES.values():
        committed = ablation_results.load_results(study.out)
        assert committed is not None, f"no committed results in {study.out}"
        sets = list(committed["sets"])
        assert study_of(sets) is study and committed["iters"] == study.iters
        again = sweep.run_sets(
            sets, committed["seeds"], study.iters, Path(study.out), progress=False, dry_run=True
        )
        assert {n: len(r) for n, r in again["runs"].items()} == {
            n: len(committed["seeds"]) for n in again["labels"]
        }, study.name
        assert again == committed, study.name


def test_sweep_lines_are_plain_when_not_a_terminal(monkeypatch, tmp_path, capsys):
    """One line per run, never a carriage return (stdout here is pytest's capture, not a terminal); a run
    that finished earlier is reused, a dry run trains nothing and writes nothing."""
    calls = []

    def fake_run(v, seed, iters, out, data_root, progress=False):
        calls.append((v.name, seed))
        return fake_eval(v.name, seed)

    monkeypatch.setattr(sweep, "run_variant", fake_run)
    sweep.run_sets(["mask_branch"], [0, 1], 7, tmp_path, progress=True)
    out = capsys.readouterr().out
    assert "\r" not in out and calls == [("no_mask", 0), ("baseline", 0), ("no_mask", 1), ("baseline", 1)]
    lines = out.splitlines()
    assert (
        lines[0]
        == f"[1/4] no mask branch, seed 0: training 7 iterations in {tmp_path / 'runs' / 'no_mask-s0'}"
    )
    assert lines[1].startswith("[1/4] no mask branch, seed 0: box AP 33.0 (") and len(lines) == 8
    assert json.loads((tmp_path / "results.json").read_text())["table"]["no_mask"]["bbox"]["seeds"] == 2
    (tmp_path / "results.json").unlink()
    sweep.main(["--sets", "mask_branch", "--seeds", "0", "--iters", "7", "--out", str(tmp_path), "--dry-run"])
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "[1/2] no mask branch, seed 0: would train",
        "[2/2] RoIAlign, sigmoid, FCN-4, 28x28, seed 0: would train",
    ]
    assert not (tmp_path / "results.json").exists() and len(calls) == 4


def test_studies_and_their_sets():
    # run folders are named by variant: a name means one configuration in every study
    names = [v.name for s in SETS.values() for v in s.variants]
    assert len(variants()) == len(
        {(v.name, v.overrides, v.preset) for s in SETS.values() for v in s.variants}
    )
    assert set(names) == set(variants())
    assert sorted(s for st in STUDIES.values() for s in st.sets) == sorted(SETS)  # each set in one study
    assert [s.name for s in study_sets("keypoints")] == ["keypoint_pooler", "keypoint_multitask"]
    assert study_of(["pooler", "factorial"]) is STUDIES["shapes"]
    assert study_of(["keypoint_pooler"]) is STUDIES["keypoints"]
    with pytest.raises(ConfigError, match="one at a time"):
        study_of(["pooler", "keypoint_pooler"])
    with pytest.raises(ConfigError, match="unknown ablation set"):
        study_of(["pooling"])
    # the keypoint sets compare with figures_cpu itself, in keypoint AP
    kp = SETS["keypoint_pooler"]
    assert kp.metric == "keypoint AP" and kp.paper_gaps() == [("keypoint", "keypoint_roipool", 4.4)]
    assert SETS["keypoint_multitask"].paper_gaps() == [("keypoint", "keypoint_mask", -0.4)]
    with pytest.raises(SystemExit):
        sweep.main(["--study", "keypoints", "--sets", "pooler", "--dry-run"])
