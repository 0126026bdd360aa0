"""A sweep's results as numbers and tables: means and spreads over seeds, paired gains, Markdown and HTML.

`python -m minimrcnn.ablations` writes `results.json`: {"iters", "seeds", "sets", "labels", "overrides",
"table": summarize(runs), "runs": {variant: [eval per seed]}}. The functions here read it; what a set
means (its variants, the paper's numbers) comes from `minimrcnn.ablations.sets`.

A table row is a dict: "variant" (name), "label", "role" ("baseline" or "variant"), "source" ("500 it",
"live, 100 it" or "not run"), "seeds", "<mask|box|keypoint> <AP|AP50|AP75>" and the same with " std",
"mask − box" (and its " std"), "paper AP".
"""

from __future__ import annotations

import html
import json
import statistics
from pathlib import Path
from typing import Any

from minimrcnn.ablations.sets import BASELINE, SETS, STUDIES, TABLE_WORD, study_of
from minimrcnn.engine.evaluator import KEYPOINT_METRICS, METRICS
from minimrcnn.errors import DataError

RESULTS = Path(STUDIES["shapes"].out) / "results.json"
COLUMNS = ("mask AP", "mask AP50", "mask AP75", "box AP", "mask − box")
KEYPOINT_COLUMNS = ("keypoint AP", "keypoint AP50", "keypoint AP75", "box AP")


# --------------------------------------------------------------------------------------------- statistics
def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, dict[str, float]]]:
    """{variant: [eval per seed]} -> {variant: {"bbox"|"segm"|"keypoints": {metric: mean, metric_std: spread,
    seeds}}}, plus "gap": mask AP - box AP (mean and spread of the per-seed differences) where both were
    measured.

    Values in AP points (percent); the spread is the sample standard deviation, 0 for a single seed. A metric
    COCOeval found not applicable (None: no ground truth in that size range) stays None.
    """
    table: dict[str, dict[str, dict[str, float]]] = {}
    for name, evals in runs.items():
        table[name] = {}
        for iou_type in ("bbox", "segm", "keypoints"):
            per_seed = [e[iou_type] for e in evals if iou_type in e]
            if not per_seed:
                continue
            row: dict[str, float] = {}
            for m in KEYPOINT_METRICS if iou_type == "keypoints" else METRICS:  # (None: no object that size)
                row[m], row[f"{m}_std"] = points_mean_and_spread([s.get(m) for s in per_seed])
            row["seeds"] = len(per_seed)
            table[name][iou_type] = row
        gaps = [100 * (e["segm"]["AP"] - e["bbox"]["AP"]) for e in evals if "segm" in e and "bbox" in e]
        if gaps:  # what the mask head adds beyond finding the object: mask AP - box AP, paired by seed
            table[name]["gap"] = {"AP": statistics.fmean(gaps), "AP_std": _spread(gaps), "seeds": len(gaps)}
    return table


def _spread(values: list[float]) -> float:
    """The sample standard deviation (n - 1), 0 for a single value."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


def points_mean_and_spread(fractions: list[float | None]) -> tuple[float | None, float | None]:
    """One metric over seeds (fractions, as in eval.json) -> (mean, sample spread) in AP points, over the
    seeds that measured it; (None, None) where none did (COCOeval's "not applicable", e.g. APl without
    large objects)."""
    points = [100 * f for f in fractions if f is not None]
    return (statistics.fmean(points), _spread(points)) if points else (None, None)


def paired_gain(
    runs_a: list[dict[str, Any]], runs_b: list[dict[str, Any]], iou_type: str = "segm", metric: str = "AP"
) -> tuple[float, float]:
    """runs_a, runs_b: one eval dict per seed, same seed order ({"segm": {"AP": 0.31, ...}, "bbox": ...},
    values as fractions). Returns (mean, spread) of 100 * (a - b) over the seeds, in AP points; the spread
    is the sample standard deviation (n - 1 in the denominator), 0 for a single seed."""
    diffs = [100 * (a[iou_type][metric] - b[iou_type][metric]) for a, b in zip(runs_a, runs_b)]
    return statistics.fmean(diffs), _spread(diffs)


def seed_pairs(
    results: dict[str, Any], a: str, b: str, runs_dir: str | Path | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The evals of a and b for every seed both finished, in the same seed order (runs with the same seed
    see the same data in the same order). Read from <runs_dir>/<name>-s<seed>/eval.json when given (a
    partial sweep may lack some seeds); otherwise results["runs"] must hold every seed, in order."""
    if runs_dir is None:
        ra, rb = results["runs"].get(a, []), results["runs"].get(b, [])
        return (ra, rb) if len(ra) == len(rb) == len(results["seeds"]) else ([], [])
    runs_a, runs_b = [], []
    for seed in results["seeds"]:
        evs = []
        for name in (a, b):
            f = Path(runs_dir) / f"{name}-s{seed}" / "eval.json"
            ev = {**json.loads(f.read_text()), "seed": seed} if f.is_file() else {}
            evs.append(ev if ev.get("iteration") == results["iters"] else None)
        if all(evs):
            runs_a.append(evs[0])
            runs_b.append(evs[1])
    return runs_a, runs_b


def compare(
    results: dict[str, Any],
    better: str,
    worse: str,
    iou_type: str = "segm",
    metric: str = "AP",
    runs_dir: str | Path | None = None,
) -> tuple[float, float, int]:
    """`paired_gain` of `better` over `worse` on the seeds both have: (mean, spread, number of pairs);
    (nan, nan, 0) when there is no pair."""
    runs_a, runs_b = seed_pairs(results, better, worse, runs_dir)
    pairs = [(x, y) for x, y in zip(runs_a, runs_b) if iou_type in x and iou_type in y]
    if not pairs:
        return float("nan"), float("nan"), 0
    mean, spread = paired_gain([x for x, _ in pairs], [y for _, y in pairs], iou_type, metric)
    return mean, spread, len(pairs)


def interaction(
    results: dict[str, Any], iou_type: str = "segm", metric: str = "AP", runs_dir: str | Path | None = None
) -> tuple[float, float, int]:
    """The 2x2 factorial's interaction, paired by seed, in AP points: (RoIAlign's gain with the sigmoid
    loss) - (RoIAlign's gain with the softmax loss). > 0: the fixes are super-additive (each helps more
    when the other is in place); < 0: sub-additive; near 0 within its spread: they simply add.
    Returns (mean, sample spread, number of seeds); (nan, nan, 0) without a seed that ran all four cells."""
    gains = []  # {seed: RoIAlign's gain} with sigmoid, then with softmax
    for align, pool in ((BASELINE.name, "roipool"), ("softmax", "roipool_softmax")):
        a, b = seed_pairs(results, align, pool, runs_dir)
        gains.append({x["seed"]: 100 * (x[iou_type][metric] - y[iou_type][metric]) for x, y in zip(a, b)})
    diffs = [gains[0][seed] - gains[1][seed] for seed in gains[0] if seed in gains[1]]
    if not diffs:
        return float("nan"), float("nan"), 0
    return statistics.fmean(diffs), _spread(diffs), len(diffs)


def verdicts(results: dict[str, Any] | None, set_name: str, runs_dir: str | Path | None = None) -> list[str]:
    """One sentence per comparison the paper makes in this set: our paired gain and whether it agrees."""
    aset = SETS[set_name]
    if not aset.paper_gaps():
        return ["the paper makes no claim here to compare with"]
    if results is None:
        return ["no results to compare with yet"]
    out = []
    for better, worse, paper_gap in aset.paper_gaps():
        pair = f"{aset.label(better)} vs {aset.label(worse)}"
        if better not in results.get("runs", {}) or worse not in results.get("runs", {}):
            out.append(f"{pair}: not in these results")
            continue
        gain, spread, n = compare(results, better, worse, aset.iou_type, runs_dir=runs_dir)
        if n == 0:
            out.append(f"{pair}: no seed run for both yet")
            continue
        gain = round(gain, 1) or 0.0  # no "-0.0"
        if n >= 2 and abs(gain) <= max(spread, 0.3):
            word = "within the seed-to-seed noise"
        elif (gain > 0) == (paper_gap > 0):
            word = "the paper's direction"
        else:
            word = "the opposite of the paper"
        noise = f" ± {spread:.1f} over {n} seeds" if n >= 2 else " (one seed: no noise estimate)"
        out.append(f"{pair}: {gain:+.1f}{noise} {aset.metric} (paper: {paper_gap:+.1f}): {word}")
    return out


# ------------------------------------------------------------------------------------------------ tables
def results_file(path: str | Path = RESULTS) -> Path:
    """A sweep's results.json: `path` itself, or the results.json in it when it is a folder (the sweep's
    --out)."""
    path = Path(path)
    return path / "results.json" if path.is_dir() else path


def load_results(path: str | Path = RESULTS) -> dict[str, Any] | None:
    """The sweep's results.json (written by `python -m minimrcnn.ablations`; `path` may be its folder), or
    None if it is not there. A file that is not a sweep's results (truncated, or of another shape) is a
    DataError whose one line names the file and what is wrong with it."""
    path = results_file(path)
    if not path.is_file():
        return None
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(
            f"{path.as_posix()}: not valid JSON ({e.msg}, line {e.lineno} column {e.colno}; truncated?)"
        ) from None
    problem = shape_problem(results)
    if problem:
        raise DataError(f"{path.as_posix()}: not a sweep's results.json: {problem}")
    return results


def shape_problem(results: Any) -> str:
    """What keeps `results` from being read as a sweep's results ("" when nothing does)."""
    if not isinstance(results, dict):
        return f"a JSON {type(results).__name__}, not an object"
    fields = {"iters": int, "seeds": list, "sets": dict, "table": dict, "runs": dict}
    for key, kind in fields.items():
        if not isinstance(results.get(key), kind):
            return f'"{key}" is missing' if key not in results else f'"{key}" is not a {kind.__name__}'
    unknown = [s for s in results["sets"] if s not in SETS]
    if unknown:
        return f"unknown set(s) {', '.join(unknown)}"
    for name, row in results["table"].items():
        if not (isinstance(row, dict) and all(isinstance(r, dict) and "AP" in r for r in row.values())):
            return f'the table entry "{name}" is not {{"bbox"|"segm"|...: {{"AP": ..., ...}}}}'
    for name, evals in results["runs"].items():
        if not (isinstance(evals, list) and all(isinstance(e, dict) and "seed" in e for e in evals)):
            return f'the runs of "{name}" are not a list of evals with their seeds'
    return ""


def missing_message(path: str | Path = RESULTS) -> str:
    return (
        f"No ablation results at {results_file(path).as_posix()} yet: they are produced by "
        "`python -m minimrcnn.ablations` (ten variants x three seeds of 900 iterations: about three hours "
        "on a 2-core CPU). Showing the paper's numbers only."
    )


def _row(set_name: str, name: str, table: dict[str, Any], source: str) -> dict[str, Any]:
    aset = SETS[set_name]
    r: dict[str, Any] = {
        "variant": name,
        "label": aset.label(name),
        "role": "baseline" if name == aset.baseline.name else "variant",
        "source": source,
    }
    for iou_type, key in TABLE_WORD.items():
        t = table.get(iou_type)
        for m in ("AP", "AP50", "AP75"):
            r[f"{key} {m}"] = None if t is None else round(t[m], 1)
            r[f"{key} {m} std"] = None if t is None else round(t[f"{m}_std"], 1)
    gap = table.get("gap")
    r["mask − box"] = None if gap is None else round(gap["AP"], 1)
    r["mask − box std"] = None if gap is None else round(gap["AP_std"], 1)
    r["seeds"] = (table.get("segm") or table.get("keypoints") or table.get("bbox") or {}).get("seeds", 0)
    r["paper AP"] = aset.paper.get(name, {}).get("AP")
    return r


def table_rows(
    results: dict[str, Any] | None, set_name: str, names: list[str] | None = None, live: dict | None = None
) -> list[dict[str, Any]]:
    """One row per variant of the set (or of `names`): our mean and spread over seeds, and the paper's.

    `live` is a {variant: {"iters", "table": summarize()-row}} dict of runs made on the spot; their rows
    (source "live, N it") follow the sweep's.
    """
    names = names if names is not None else SETS[set_name].names
    live = live or {}
    rows = []
    for name in names:
        if results is not None and name in results.get("table", {}):
            rows.append(_row(set_name, name, results["table"][name], f"{results['iters']} it"))
        elif name not in live:
            rows.append(_row(set_name, name, {}, "not run"))
    rows += [_row(set_name, n, live[n]["table"], f"live, {live[n]['iters']} it") for n in names if n in live]
    return rows


def columns(set_name: str) -> tuple[str, ...]:
    """The numbers a set's table shows: mask and box AP for chapter 09's sets, keypoint and box AP for
    chapter 10's."""
    return KEYPOINT_COLUMNS if SETS[set_name].iou_type == "keypoints" else COLUMNS


def _cell(r: dict[str, Any], key: str) -> str:
    if r[key] is None:
        return "—"
    return f"{r[key]:.1f} ± {r[key + ' std']:.1f}" if r["seeds"] > 1 else f"{r[key]:.1f}"


def _cells(r: dict[str, Any], set_name: str) -> list[str]:
    """What one row shows: the variant (its role in brackets), the runs, our numbers, the paper's AP."""
    label = f"{r['label']} ({r['role']})" if r["role"] == "baseline" else r["label"]
    runs = r["source"] if r["seeds"] == 0 else f"{r['seeds']} seed{'s' * (r['seeds'] > 1)}, {r['source']}"
    paper = "—" if r["paper AP"] is None else f"{r['paper AP']:.1f}"
    return [label, runs, *(_cell(r, k) for k in columns(set_name)), paper]


def size_rows(results: dict[str, Any], names: list[str]) -> list[dict[str, Any]]:
    """Small vs medium objects: mask and box APs / APm per variant (mean and spread over seeds; None where the
    size range held no object). Large objects do not exist on the 128-px shapes images, so APl is left out."""
    rows = []
    for name in names:
        t = results["table"].get(name, {})
        row: dict[str, Any] = {"variant": name}
        for key, iou_type in (("mask", "segm"), ("box", "bbox")):
            for m in ("APs", "APm"):
                v = t.get(iou_type, {}).get(m)
                row[f"{key} {m}"] = None if v is None else round(v, 1)
                row[f"{key} {m} std"] = None if v is None else round(t[iou_type][f"{m}_std"], 1)
        row["seeds"] = t.get("segm", t.get("bbox", {})).get("seeds", 0)
        rows.append(row)
    return rows


def size_markdown(results: dict[str, Any], names: list[str]) -> str:
    """`size_rows` as a Markdown table (mean ± spread over seeds; "—" where a size range had no object)."""
    head = ["variant", "seeds", "mask APs", "mask APm", "box APs", "box APm"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in size_rows(results, names):
        label = results.get("labels", {}).get(r["variant"], r["variant"])
        lines.append("| " + " | ".join([label, str(r["seeds"]), *(_cell(r, k) for k in head[2:])]) + " |")
    return "\n".join(lines)


def table_markdown(rows: list[dict[str, Any]], set_name: str) -> str:
    """The rows as a Markdown table (mean ± spread over seeds; the paper's AP in the last column)."""
    head = ["variant", "runs", *columns(set_name), f"paper {SETS[set_name].metric}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cells(r, set_name)) + " |" for r in rows]
    return "\n".join(lines)


def table_html(rows: list[dict[str, Any]], set_name: str) -> str:
    """The same table as HTML, with the paper's setting and note underneath (what the panel shows)."""
    aset = SETS[set_name]
    head = ["variant", "runs", *columns(set_name), f"paper {aset.metric}"]
    out = ["<table>", "<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(r, set_name)) + "</tr>")
    out.append("</table>")
    out.append(f"<p><i>paper: {html.escape(aset.paper_setting)}. {html.escape(aset.note)}</i></p>")
    return "\n".join(out)


def results_markdown(results: dict[str, Any]) -> str:
    """results.md: every set of the sweep, its table and the paper's numbers."""
    study = study_of(list(results["sets"]))
    lines = [f"# {study.title} ({results['iters']} iterations, seeds {results['seeds']})", ""]
    for set_name in results["sets"]:
        aset = SETS[set_name]
        names = [n for n in aset.names if n in results["table"]]
        rows = table_rows(results, set_name, names)
        lines += [f"## {aset.title}", "", f"_{aset.paper_line()}_", "", table_markdown(rows, set_name), ""]
    return "\n".join(lines)
