"""Chapter 10's checkers name the usual mistakes (the shared contract is in test_chapter_checkers.py)."""

import json
import math

import numpy as np
import pytest

from minimrcnn.solutions import ch10


def _cell_rounded(x, y, v, box, m):
    x1, y1, x2, y2 = box
    col, row = round((x - x1) * m / (x2 - x1)), round((y - y1) * m / (y2 - y1))
    return row * m + col if v > 0 and 0 <= col < m and 0 <= row < m else -1


def _cell_swapped(x, y, v, box, m):
    cell = ch10.keypoint_cell(x, y, v, box, m)
    return cell if cell < 0 else (cell % m) * m + cell // m


def _cell_visible_only(x, y, v, box, m):
    return ch10.keypoint_cell(x, y, v, box, m) if v == 2 else -1


@pytest.mark.parametrize(
    ("student", "message"),
    [(_cell_rounded, "round down"), (_cell_swapped, "swapped"), (_cell_visible_only, "v = 1 is labelled")],
)
def test_keypoint_cell_mistakes(student, message, capsys):
    assert ch10.check_keypoint_cell(student) is False
    assert message in capsys.readouterr().out


def _oks_all_joints(det, gt, area, sigmas):
    d2 = ((det - gt[None, :, :2]) ** 2).sum(-1)
    return np.exp(-d2 / (2 * sigmas) ** 2 / area / 2).mean(axis=1)


def _oks_sigma(det, gt, area, sigmas):
    d2 = ((det - gt[None, :, :2]) ** 2).sum(-1)
    return np.exp(-d2 / sigmas**2 / area / 2)[:, gt[:, 2] > 0].mean(axis=1)


def _oks_sqrt_area(det, gt, area, sigmas):
    d2 = ((det - gt[None, :, :2]) ** 2).sum(-1)
    return np.exp(-d2 / (2 * sigmas) ** 2 / math.sqrt(area) / 2)[:, gt[:, 2] > 0].mean(axis=1)


@pytest.mark.parametrize(
    ("student", "message"),
    [(_oks_all_joints, "labelled joints only"), (_oks_sigma, "2 * sigma"), (_oks_sqrt_area, "area itself")],
)
def test_oks_mistakes(student, message, capsys):
    assert ch10.check_oks(student) is False
    assert message in capsys.readouterr().out


def test_oks_equals_cocoeval():
    from pycocotools.cocoeval import COCOeval

    det, gt, area, sigmas = ch10._oks_cases()[0]
    ev = COCOeval(iouType="keypoints")
    ev.params.kpt_oks_sigmas = sigmas
    ev.params.imgIds, ev.params.catIds = [1], [1]
    ev._gts = {(1, 1): [{"keypoints": gt.reshape(-1).tolist(), "area": area, "bbox": [0, 0, 100, 100]}]}
    ev._dts = {(1, 1): [{"keypoints": np.concatenate([d, np.ones((len(d), 1))], 1).reshape(-1).tolist(),
                         "score": 1.0 - i / 10} for i, d in enumerate(det)]}  # fmt: skip
    ev.params.maxDets = [100]
    np.testing.assert_allclose(ev.computeOks(1, 1)[:, 0], ch10.oks(det, gt, area, sigmas), rtol=1e-12)


def test_keypoint_sweep_configs_and_summary(monkeypatch, tmp_path):
    """Chapter 10's study is sets like chapter 09's: figures_cpu plus one change, the same runner, the same
    summary."""
    from minimrcnn.ablations import sweep
    from minimrcnn.ablations.results import table_rows, verdicts
    from minimrcnn.ablations.sets import SETS, STUDIES
    from minimrcnn.engine.evaluator import KEYPOINT_METRICS

    roipool, baseline = SETS["keypoint_pooler"].variants
    both = SETS["keypoint_multitask"].variants[1]
    pool = sweep.ablation_config(roipool, seed=2, iters=40)
    both = sweep.ablation_config(both, seed=1, iters=40)
    assert (pool.model.pooler, pool.model.mask_on, pool.train.seed, pool.train.iters) == (
        "roipool",
        False,
        2,
        40,
    )
    assert both.model.mask_on and both.model.keypoint_on and both.model.pooler == "roialign"
    assert pool.train.time_budget_s == 0  # the same budget in iterations whatever the machine
    assert pool.train.data_root == "data/figures" and pool.model.num_keypoints == 9
    # the baseline is figures_cpu itself (with the mask head width its runs recorded)
    base = sweep.ablation_config(baseline, seed=0, iters=40)
    assert base.model.pooler == "roialign" and not base.model.mask_on and base.model.keypoint_on

    calls = []

    def fake_run(v, seed, iters, out, data_root, progress=False):
        calls.append((v.name, seed))
        ap = {"keypoint_roipool": 0.2, "keypoint": 0.3, "keypoint_mask": 0.31}[v.name] + 0.01 * seed
        return {
            "iteration": iters,
            "seed": seed,
            "keypoints": dict.fromkeys(KEYPOINT_METRICS, ap),
            "bbox": dict.fromkeys(("AP", "AP50", "AP75", "APs", "APm", "APl"), 0.5),
        }

    monkeypatch.setattr(sweep, "run_variant", fake_run)
    results = sweep.run_sets(list(STUDIES["keypoints"].sets), [0, 1, 2], 40, tmp_path, progress=False)
    assert calls[:3] == [("keypoint_roipool", 0), ("keypoint", 0), ("keypoint_mask", 0)]  # seeds outermost
    assert len(calls) == 9  # the RoIAlign keypoint-only runs serve both tables
    row = results["table"]["keypoint"]["keypoints"]
    assert row["AP"] == pytest.approx(31.0) and row["AP_std"] == pytest.approx(1.0) and row["seeds"] == 3
    saved = json.loads((tmp_path / "results.json").read_text())
    assert (
        saved == json.loads(json.dumps(results))
        and "Keypoint ablations on figures (40 iterations" in (tmp_path / "results.md").read_text()
    )
    rows = table_rows(results, "keypoint_pooler")
    assert [(r["label"], r["keypoint AP"], r["paper AP"]) for r in rows] == [
        ("RoIPool, keypoint-only", 21.0, 59.8),
        ("RoIAlign, keypoint-only", 31.0, 64.2),  # the baseline, by its role in the set
    ]
    assert verdicts(results, "keypoint_pooler")[0].startswith(
        "RoIAlign, keypoint-only vs RoIPool, keypoint-only: +10.0 ± 0.0 over 3 seeds keypoint AP "
        "(paper: +4.4)"
    )


def test_keypoint_sweep_reuses_a_finished_run(monkeypatch, tmp_path):
    """A run folder whose config.json (as the trainer writes it, with its "effective" schedule) matches the
    sweep's configuration and whose eval.json reached the budget is read, not trained again."""
    from minimrcnn.ablations import sweep
    from minimrcnn.ablations.sets import SETS
    from minimrcnn.engine import trainer

    variant = SETS["keypoint_pooler"].variants[0]
    cfg = sweep.ablation_config(variant, seed=1, iters=40)
    run_dir = tmp_path / "runs" / f"{variant.name}-s1"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({**cfg.to_dict(), "effective": {"iters": 40}}))
    metrics = {"keypoints": {"AP": 0.25}, "bbox": {"AP": 0.3}}
    (run_dir / "eval.json").write_text(json.dumps({"iteration": 40, **metrics}))
    monkeypatch.setattr(trainer, "train", lambda *a, **k: pytest.fail("a finished run was trained again"))
    assert sweep.run_variant(variant, 1, 40, tmp_path) == {"iteration": 40, **metrics, "seed": 1}
    (run_dir / "eval.json").write_text(json.dumps({"iteration": 20, **metrics}))  # stopped early: redo
    with pytest.raises(pytest.fail.Exception, match="trained again"):
        sweep.run_variant(variant, 1, 40, tmp_path)
