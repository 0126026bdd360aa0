"""The ablation sets of chapters 09 and 10 as data: what each set changes, and what the paper measured.

A set is one of the paper's questions (RoIPool or RoIAlign? softmax or sigmoid? ...) asked in miniature: a
few variants, each a CPU preset with one or two `key=value` overrides, always next to that preset itself
(the set's baseline). A study is the sets that share a preset, an iteration budget and a results folder:
chapter 09's on the shapes (`shapes_cpu`, masks), chapter 10's on the stick figures (`figures_cpu`,
keypoints). Everything else reads these descriptions: `sweep` trains the variants, `results` tabulates and
compares them, `plots` draws them, the `panel` shows them.

    from minimrcnn.ablations.sets import SETS
    SETS["pooler"].label("baseline")      # 'RoIAlign': what the baseline stands for in this set
    SETS["pooler"].paper_gaps()           # [('baseline', 'roipool', 3.4), ('baseline', 'roiwarp', 3.1)]
"""

from __future__ import annotations

from dataclasses import dataclass, field

from minimrcnn.errors import ConfigError

PAPER_METRICS = ("AP", "AP50", "AP75")
TABLE_WORD = {"segm": "mask", "bbox": "box", "keypoints": "keypoint"}  # COCOeval's iou_type -> tables' word


@dataclass(frozen=True)
class Variant:
    name: str  # short id, used in folder names and as the key of every table (unique over all studies)
    label: str  # what a table or a bar shows
    overrides: tuple[str, ...] = ()  # `key=value` changes to the preset
    preset: str = "shapes_cpu"  # the preset the overrides change


BASELINE = Variant("baseline", "RoIAlign, sigmoid, FCN-4, 28x28")  # the shapes_cpu preset itself
KEYPOINT_BASELINE = Variant("keypoint", "RoIAlign, keypoint-only (figures_cpu)", (), "figures_cpu")


@dataclass(frozen=True)
class AblationSet:
    """One of the paper's questions: its variants (the baseline among them) and the paper's answer.

    paper:   the paper's numbers per variant, {"AP": ..., "AP50": ..., "AP75": ...} in the set's metric
             (COCO, percent); variants the paper did not run are absent.
    iou_type: the headline metric: "segm" (mask AP), "bbox" (box AP, for the mask-branch question) or
             "keypoints" (keypoint AP).
    baseline: the preset itself, which every variant is compared with.
    """

    name: str
    title: str
    variants: tuple[Variant, ...]
    baseline_role: str  # what the baseline is called when this set compares it ("RoIAlign", "FCN-4", ...)
    iou_type: str = "segm"
    paper_setting: str = "not ablated in the paper"
    paper: dict[str, dict[str, float]] = field(default_factory=dict)
    note: str = ""
    baseline: Variant = BASELINE

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.variants]

    @property
    def word(self) -> str:
        """What the tables call the headline metric's kind: 'mask', 'box' or 'keypoint'."""
        return TABLE_WORD[self.iou_type]

    @property
    def metric(self) -> str:
        """The headline metric in words: 'mask AP', 'box AP' or 'keypoint AP'."""
        return f"{self.word} AP"

    def label(self, name: str) -> str:
        """A variant's short name in this set (the baseline by its role here)."""
        if name == self.baseline.name:
            return self.baseline_role
        return next((v.label for v in self.variants if v.name == name), name)

    def paper_gaps(self) -> list[tuple[str, str, float]]:
        """The paper's claims here: (baseline, variant, baseline AP - variant AP) for each variant it ran."""
        base = self.paper.get(self.baseline.name, {}).get("AP")
        if base is None:
            return []
        return [
            (self.baseline.name, n, round(base - ap["AP"], 1))
            for n, ap in self.paper.items()
            if n != self.baseline.name
        ]

    def paper_line(self) -> str:
        """The paper's numbers as one sentence (the results' Markdown prints it under the title)."""
        if not self.paper:
            return f"paper: {self.paper_setting}"
        numbers = ", ".join(f"{self.label(n)} {ap['AP']:.1f}" for n, ap in self.paper.items())
        return f"paper, {self.paper_setting}: {numbers}"


_C4_BASELINE = {"AP": 30.3, "AP50": 51.2, "AP75": 31.5}  # R50-C4 Mask R-CNN, Tables 2b and 2c

SETS: dict[str, AblationSet] = {
    s.name: s
    for s in (
        AblationSet(
            "pooler",
            "RoI pooling (Table 2c)",
            (
                Variant("roipool", "RoIPool", ("model.pooler=roipool",)),
                Variant("roiwarp", "RoIWarp", ("model.pooler=roiwarp",)),
                BASELINE,
            ),
            baseline_role="RoIAlign",
            paper_setting="ResNet-50-C4 (stride 16), COCO minival, mask AP (Table 2c)",
            paper={
                "roipool": {"AP": 26.9, "AP50": 48.8, "AP75": 26.4},
                "roiwarp": {"AP": 27.2, "AP50": 49.2, "AP75": 27.1},
                "baseline": _C4_BASELINE,
            },
            note="With stride-32 C5 features (Table 2d) the gap grows: RoIPool 23.6 vs RoIAlign 30.9 mask AP "
            "(AP75 21.6 vs 32.1). With FPN's finer strides the paper reports only +1.5 mask AP for RoIAlign.",
        ),
        AblationSet(
            "mask_loss",
            "Mask loss (Table 2b)",
            (
                Variant("softmax", "softmax over classes", ("model.mask_loss=softmax",)),
                Variant("agnostic", "class-agnostic sigmoid", ("model.mask_loss=agnostic",)),
                BASELINE,
            ),
            baseline_role="per-class sigmoid",
            paper_setting="ResNet-50-C4, COCO minival, mask AP (Table 2b and text)",
            paper={
                "softmax": {"AP": 24.8, "AP50": 44.1, "AP75": 25.1},
                "agnostic": {"AP": 29.7},
                "baseline": _C4_BASELINE,
            },
            note="Decoupling mask and class (sigmoid) is what matters; one mask per class adds 0.6 AP.",
        ),
        AblationSet(
            "mask_head",
            "Mask head (Table 2e)",
            (
                Variant("mlp", "MLP head", ("model.mask_head=mlp",)),
                Variant("fcn2", "FCN-2", ("model.mask_head=fcn2",)),
                BASELINE,
            ),
            baseline_role="FCN-4",
            paper_setting="ResNet-50-FPN, COCO minival, mask AP (Table 2e)",
            paper={
                "mlp": {"AP": 31.5, "AP50": 53.7, "AP75": 32.8},
                "baseline": {"AP": 33.6, "AP50": 55.2, "AP75": 35.3},
            },
            note="The paper's MLP is fc 1024, fc 1024, fc 784; FCN-2 vs FCN-4 is our own extra variant.",
        ),
        AblationSet(
            "resolution",
            "Mask resolution",
            (BASELINE, Variant("res56", "56x56 masks", ("model.mask_resolution=56",))),
            baseline_role="28x28 masks",
            paper_setting="not ablated in the paper for masks",
            note="The paper uses 28x28 masks throughout; only its keypoint head goes to 56x56, because a "
            "keypoint is a single pixel and needs the finer grid. 56x56 here is our extra.",
        ),
        AblationSet(
            "factorial",
            "RoI layer x mask loss (2x2, not in the paper)",
            (
                Variant("roipool", "RoIPool", ("model.pooler=roipool",)),
                Variant("softmax", "softmax over classes", ("model.mask_loss=softmax",)),
                Variant(
                    "roipool_softmax",
                    "RoIPool + softmax",
                    ("model.pooler=roipool", "model.mask_loss=softmax"),
                ),
                BASELINE,
            ),
            baseline_role="RoIAlign + sigmoid",
            paper_setting="not run in the paper (Tables 2b and 2c change one factor at a time)",
            note="Does fixing the RoI layer matter more, less or the same when the mask loss is also fixed? "
            "The interaction is (RoIAlign gain with sigmoid) - (RoIAlign gain with softmax), paired by seed.",
        ),
        AblationSet(
            "mask_branch",
            "Does the mask branch help boxes? (Table 3)",
            (Variant("no_mask", "no mask branch", ("model.mask_on=false",)), BASELINE),
            baseline_role="with mask branch",
            iou_type="bbox",
            paper_setting="ResNet-101-FPN, COCO test-dev, box AP (Table 3)",
            paper={
                "no_mask": {"AP": 37.3, "AP50": 59.6, "AP75": 40.3},
                "baseline": {"AP": 38.2, "AP50": 60.3, "AP75": 41.7},
            },
            note="The same network with and without the mask branch (Faster R-CNN with RoIAlign): +0.9 box "
            "AP from multi-task training alone (Table 5, person only, R50-FPN minival: 52.5 -> 53.6).",
        ),
        AblationSet(
            "keypoint_pooler",
            "Keypoints: RoI pooling (Table 6)",
            (
                Variant(
                    "keypoint_roipool",
                    "RoIPool, keypoint-only",
                    ("model.pooler=roipool",),
                    "figures_cpu",
                ),
                KEYPOINT_BASELINE,
            ),
            baseline_role="RoIAlign, keypoint-only",
            iou_type="keypoints",
            paper_setting="ResNet-50-FPN, COCO minival, keypoint AP (Table 6)",
            paper={
                "keypoint_roipool": {"AP": 59.8, "AP50": 86.2, "AP75": 66.7, "APm": 55.1, "APl": 67.4},
                "keypoint": {"AP": 64.2, "AP50": 86.6, "AP75": 69.7, "APm": 58.7, "APl": 73.0},
            },
            note="A keypoint is one pixel of the paper's 56x56 heatmap: RoIPool's half-cell shifts hurt it "
            "more than they hurt masks (+4.4 keypoint AP for RoIAlign, against +3.4 mask AP in Table 2c).",
            baseline=KEYPOINT_BASELINE,
        ),
        AblationSet(
            "keypoint_multitask",
            "Keypoints: with masks (Table 4)",
            (
                KEYPOINT_BASELINE,
                Variant(
                    "keypoint_mask",
                    "RoIAlign, keypoint & mask",
                    ("model.mask_on=true",),
                    "figures_cpu",
                ),
            ),
            baseline_role="RoIAlign, keypoint-only",
            iou_type="keypoints",
            paper_setting="ResNet-50-FPN, COCO test-dev, keypoint AP (Table 4)",
            paper={
                "keypoint": {"AP": 62.7, "AP50": 87.0, "AP75": 68.4, "APm": 57.4, "APl": 71.1},
                "keypoint_mask": {"AP": 63.1, "AP50": 87.3, "AP75": 68.7, "APm": 57.8, "APl": 71.4},
            },
            note="Multi-task training: the mask branch helps the keypoint model a little (+0.4 keypoint AP).",
            baseline=KEYPOINT_BASELINE,
        ),
    )
}


@dataclass(frozen=True)
class Study:
    """The sets one sweep runs together: one preset, one iteration budget, one results folder."""

    name: str
    title: str  # the heading of the sweep's results.md
    sets: tuple[str, ...]
    iters: int  # iterations per run (the same for every variant and seed)
    out: str  # results folder: results.json, results.md, results.png and runs/<variant>-s<seed>/


STUDIES: dict[str, Study] = {
    s.name: s
    for s in (
        # chapter 09; 900 iterations: long enough for the variants to separate beyond the seeds' spread
        # (what the baseline reaches: benchmarks/RESULTS.md)
        Study(
            "shapes",
            "Ablations on shapes",
            ("pooler", "mask_loss", "mask_head", "resolution", "factorial", "mask_branch"),
            iters=900,
            out="results/ablations",
        ),
        # chapter 10
        Study(
            "keypoints",
            "Keypoint ablations on figures",
            ("keypoint_pooler", "keypoint_multitask"),
            iters=600,
            out="results/keypoints",
        ),
    )
}


def study_sets(study: str) -> list[AblationSet]:
    """The sets of one study ("shapes": chapter 09's, "keypoints": chapter 10's), in order."""
    return [SETS[s] for s in STUDIES[study].sets]


def study_of(set_names: list[str]) -> Study:
    """The one study these sets belong to; a ConfigError for an unknown set or sets of two studies."""
    unknown = [s for s in set_names if s not in SETS]
    if unknown:
        raise ConfigError(f"unknown ablation set(s) {', '.join(unknown)}; available: {', '.join(SETS)}")
    found = {study.name: study for s in set_names for study in STUDIES.values() if s in study.sets}
    if len(found) != 1:
        raise ConfigError(
            f"sets {', '.join(set_names)} belong to the studies {', '.join(found)}: one at a time "
            "(each study has its own preset, budget and results folder)"
        )
    return next(iter(found.values()))


def variants() -> dict[str, Variant]:
    """Every variant of every set, by name (names are unique over all studies: they name run folders)."""
    return {v.name: v for s in SETS.values() for v in s.variants}
