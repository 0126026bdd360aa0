"""The ablation sets of chapter 09 as data: what each set changes, and what the paper measured for it.

A set is the paper's question (RoIPool or RoIAlign? softmax or sigmoid? ...) asked in miniature: a few
variants, each the `shapes_cpu` preset with one or two `key=value` overrides, always next to the baseline.
Everything else reads these descriptions: `ablate` trains the variants, `ablation_results` tabulates and
compares them, `ablation_plots` draws them, the panel in `widgets` shows them.

    from minimrcnn.ablations.sets import SETS
    SETS["pooler"].label("baseline")      # 'RoIAlign': what the baseline stands for in this set
    SETS["pooler"].paper_gaps()           # [('baseline', 'roipool', 3.4), ('baseline', 'roiwarp', 3.1)]
"""

from __future__ import annotations

from dataclasses import dataclass, field

PAPER_METRICS = ("AP", "AP50", "AP75")


@dataclass(frozen=True)
class Variant:
    name: str  # short id, used in folder names and as the key of every table
    label: str  # what a table or a bar shows
    overrides: tuple[str, ...] = ()  # `key=value` changes to the preset


BASELINE = Variant("baseline", "RoIAlign, sigmoid, FCN-4, 28x28")  # the shapes_cpu preset itself


@dataclass(frozen=True)
class AblationSet:
    """One of the paper's questions: its variants (the baseline among them) and the paper's answer.

    paper:   the paper's numbers per variant, {"AP": ..., "AP50": ..., "AP75": ...} in the set's metric
             (COCO, percent); variants the paper did not run are absent.
    iou_type: the headline metric: "segm" (mask AP) or "bbox" (box AP, for the mask-branch question).
    """

    name: str
    title: str
    variants: tuple[Variant, ...]
    baseline_role: str  # what the baseline is called when this set compares it ("RoIAlign", "FCN-4", ...)
    iou_type: str = "segm"
    paper_setting: str = "not ablated in the paper"
    paper: dict[str, dict[str, float]] = field(default_factory=dict)
    note: str = ""

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.variants]

    @property
    def metric(self) -> str:
        """The headline metric in words: 'mask AP' or 'box AP'."""
        return "box AP" if self.iou_type == "bbox" else "mask AP"

    def label(self, name: str) -> str:
        """A variant's short name in this set (the baseline by its role here)."""
        if name == BASELINE.name:
            return self.baseline_role
        return next((v.label for v in self.variants if v.name == name), name)

    def paper_gaps(self) -> list[tuple[str, str, float]]:
        """The paper's claims here: (baseline, variant, baseline AP - variant AP) for each variant it ran."""
        base = self.paper.get(BASELINE.name, {}).get("AP")
        if base is None:
            return []
        return [
            (BASELINE.name, n, round(base - ap["AP"], 1))
            for n, ap in self.paper.items()
            if n != BASELINE.name
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
                Variant("roipool_softmax", "RoIPool + softmax",
                        ("model.pooler=roipool", "model.mask_loss=softmax")),  # fmt: skip
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
    )
}


def variants() -> dict[str, Variant]:
    """Every variant of every set, by name."""
    return {v.name: v for s in SETS.values() for v in s.variants}
