"""Batching: aspect-ratio grouping and the collate function.

Images in a batch are padded to the largest height and width among them. Mixing a portrait and a
landscape image pads each to a square and wastes about half of the pixels, so, like Detectron and
torchvision, we batch portrait images with portrait images and landscape with landscape.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from torch.utils.data import Dataset, Sampler, Subset


def aspect_ratio_groups(dataset: Dataset) -> list[int]:
    """Group id of every sample: 0 portrait (width < height), 1 landscape or square.

    Needs `dataset.aspect_ratio(i)` (width / height without opening the image, as `CocoInstances` has);
    a `torch.utils.data.Subset` of such a dataset works too.
    """
    if isinstance(dataset, Subset):
        parent = aspect_ratio_groups(dataset.dataset)
        return [parent[i] for i in dataset.indices]
    if not hasattr(dataset, "aspect_ratio"):
        raise TypeError(f"{type(dataset).__name__} has no aspect_ratio(i) method to group batches by")
    return [0 if dataset.aspect_ratio(i) < 1 else 1 for i in range(len(dataset))]


class GroupedBatchSampler(Sampler[list[int]]):
    """Batches of `batch_size` indices from one group, drawn in the order `sampler` yields them.

    Each group fills its own bucket; a full bucket is yielded as a batch. When the sampler is exhausted,
    the partly filled buckets come out last, as smaller batches (still one group each). `sampler` may be any
    sampler over dataset indices, e.g. RandomSampler or DistributedSampler (whose `set_epoch` we forward).
    """

    def __init__(self, sampler: Iterable[int], group_ids: Sequence[int], batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.sampler, self.group_ids, self.batch_size = sampler, list(group_ids), batch_size

    def __iter__(self) -> Iterator[list[int]]:
        buckets: dict[int, list[int]] = {}
        for index in self.sampler:
            bucket = buckets.setdefault(self.group_ids[index], [])
            bucket.append(index)
            if len(bucket) == self.batch_size:
                yield bucket[:]
                bucket.clear()
        for bucket in buckets.values():  # leftovers, smaller than batch_size
            if bucket:
                yield bucket

    def __len__(self) -> int:
        """Number of batches in an epoch.

        A sampler as long as the dataset (Sequential/RandomSampler) yields every index once, so the group
        sizes are known without drawing it (drawing a RandomSampler would use up random numbers). A shard
        (DistributedSampler) depends on the epoch, so we walk it; that is deterministic. Ranks can get
        different counts: in distributed training, loop over iterations, not epochs.
        """
        indices = range(len(self.group_ids)) if len(self.sampler) == len(self.group_ids) else self.sampler
        counts: dict[int, int] = {}
        for index in indices:
            counts[self.group_ids[index]] = counts.get(self.group_ids[index], 0) + 1
        return sum(-(-n // self.batch_size) for n in counts.values())  # ceil division

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)


def collate(batch: Sequence[tuple[Any, Any]]) -> tuple[list[Any], list[Any]]:
    """[(image, target), ...] -> ([image, ...], [target, ...]): images differ in size, so no stacking."""
    images = [image for image, _ in batch]
    targets = [target for _, target in batch]
    return images, targets
