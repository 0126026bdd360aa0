"""minimrcnn.live: the notebook's live loss plot, tested headless (Agg, no Jupyter kernel)."""

import json

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from minimrcnn import live  # noqa: E402
from minimrcnn.live import LOSS_TERMS, LivePlot, progress_line, read_metrics  # noqa: E402


def fake_records(iterations, t_per_it=0.5, start=0):
    out = []
    for it in iterations:
        r = {"iteration": it, "lr": 1e-3 * min(1.0, it / 50), "time": round((it - start) * t_per_it, 2)}
        r |= {k: 1.0 / (1 + 0.01 * it * (j + 1)) for j, k in enumerate(LOSS_TERMS)}
        r["loss"] = sum(r[k] for k in LOSS_TERMS)
        out.append(r)
    return out


def lines_by_label(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_read_metrics_skips_blank_lines(tmp_path):
    recs = fake_records([10, 20, 30])
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs) + "\n")
    assert read_metrics(tmp_path) == recs


def test_progress_line():
    r = {"iteration": 120, "time": 30.0, "loss": 0.8123}
    assert progress_line(r, 300) == "iteration 120 / 300 (40%) · 30 s · about 45 s left · loss 0.812"
    assert progress_line(r) == "iteration 120 · 30 s · loss 0.812"
    # resumed at 100: 20 iterations took 30 s, 180 remain
    assert "about 4:30 left" in progress_line(r, 300, start=100)
    assert progress_line({"iteration": 300, "time": 75.0}, 300) == "iteration 300 / 300 (100%) · 1:15 · done"


def test_records_lines_and_title():
    plot = LivePlot(total=200, display=False)
    assert plot.display is False
    recs = fake_records(range(10, 130, 10))
    for r in recs:
        plot(r)
    assert plot.records == recs and plot.draws == len(recs) and plot.start == 0
    lines = lines_by_label(plot.ax)
    assert set(lines) == {"RPN objectness", "RPN box", "classifier", "box regression", "mask", "total"}
    assert list(lines["mask"].get_xdata()) == list(range(10, 130, 10))
    assert list(lines["total"].get_ydata()) == [r["loss"] for r in recs]
    assert plot.ax.get_yscale() == "log" and plot.ax.get_xlim() == (0, 200)
    assert plot.ax.get_title(loc="left").startswith("iteration 120 / 200 (60%)")
    assert list(plot.ax_lr.get_lines()[0].get_ydata()) == [r["lr"] for r in recs]


def test_every_and_close_draw_the_last_frame():
    plot = LivePlot(total=100, every=4, display=False)
    for r in fake_records(range(10, 70, 10)):  # 6 records: drawn after the 4th only
        plot(r)
    assert plot.draws == 1
    fig = plot.close()
    assert plot.draws == 2 and fig is plot.fig
    assert "iteration 60 / 100" in plot.ax.get_title(loc="left")


def test_missing_keys_are_skipped():
    plot = LivePlot(display=False, show_lr=False)
    for r in fake_records([10, 20]):
        del r["loss_mask"]  # e.g. a Faster R-CNN run (model.mask_on=False)
        plot(r)
    assert "mask" not in lines_by_label(plot.ax) and plot.ax_lr is None


def test_print_every(capsys):
    plot = LivePlot(total=40, print_every=20, display=False)
    for r in fake_records([10, 20, 30, 40]):
        plot(r)
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" · ")[0] for line in out] == ["iteration 20 / 40 (50%)", "iteration 40 / 40 (100%)"]


def test_resume_drops_records_after_the_checkpoint():
    # crashed at 30 with its last checkpoint at 20: the resumed run logs 30 again
    before = fake_records([10, 20, 30])
    plot = LivePlot(total=60, records=before, display=False)
    after = fake_records([30, 40], start=20)
    for r in after:
        plot(r)
    assert [r["iteration"] for r in plot.records] == [10, 20, 30, 40]
    assert plot.records[2] == after[0] and plot.start == 20
    assert "about" in plot.progress


def test_notebook_display_is_one_output_updated_in_place(monkeypatch):
    calls = []

    class Handle:
        def update(self, obj):
            calls.append(("update", obj))

    def fake_display(obj, display_id=False):
        calls.append(("display", obj))
        assert display_id is True
        return Handle()

    import IPython.display

    monkeypatch.setattr(IPython.display, "display", fake_display)
    plot = LivePlot(total=30, display=True)
    for r in fake_records([10, 20, 30]):
        plot(r)
    assert [c[0] for c in calls] == ["display", "update", "update"]
    assert all(c[1].data.startswith(b"\x89PNG") for c in calls)
    assert len(calls[-1][1].data) < 100_000  # a modest figure, not a notebook-bloating one


def test_not_in_notebook_by_default():
    assert live._in_notebook() is False
    assert LivePlot().display is False


@pytest.mark.slow
def test_feeds_on_a_real_training_run(tmp_path):
    from minimrcnn.engine.trainer import train
    from minimrcnn.presets import shapes_cpu

    cfg = shapes_cpu()
    cfg.model.fpn_channels, cfg.model.box_head_dim, cfg.model.mask_head_dim = 32, 64, 32
    cfg.model.min_size, cfg.model.max_size, cfg.model.box_batch_size_per_image = (64,), 64, 32
    tc = cfg.train
    tc.data_root, tc.num_train_images, tc.num_val_images = str(tmp_path / "shapes"), 8, 2
    tc.iters, tc.batch_size, tc.num_workers, tc.log_every, tc.warmup_iters = 4, 2, 0, 2, 2
    tc.eval_at_end, tc.time_budget_s = False, 0.0
    plot = LivePlot(total=tc.iters, display=False)
    train(cfg, tmp_path / "run", progress=False, on_log=plot)
    assert plot.records == read_metrics(tmp_path / "run")
    assert [r["iteration"] for r in plot.records] == [2, 4]
    assert set(LOSS_TERMS) <= set(plot.records[-1]) and plot.draws == 2
