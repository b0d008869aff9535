"""N-way K-shot episodes over a labelled image set, the code `Digits` and `ImageFolder` share:
pick `ways` classes of a split, `shots + queries` distinct images of each, relabel the classes
0..ways−1 at random, and shuffle each set so that the label order carries no information.

With `rotations`, each class's images turned by 90°, 180° and 270° are three more classes (the
Omniglot convention of Santoro et al. 2016 and Vinyals et al. 2016): class id `c` is base class
`c // 4` turned by `90° × (c % 4)`. The draws are vectorized over tasks: ranking uniform keys
gives distinct choices (of classes, of images in a class) and random orders at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from metarl.envs.checks import check_int
from metarl.fewshot.data.base import SPLITS, FewShotBatch, Split
from metarl.fewshot.data.checks import check_sample

ROTATIONS = 4
"""Classes a base class gives with `rotations`: turned by 0°, 90°, 180° and 270°."""


@dataclass(frozen=True)
class EpisodeIndices:
    """What n tasks hold, as indices: the image (a row of the image set), class id and label of
    every support and query example. `ClassificationTasks.episode` turns it into a batch; tests
    read it to check that support and query sets are disjoint and the splits' classes apart."""

    support_examples: Tensor
    """Image indices `[n, S]` of the support examples (S = ways × shots), int64."""
    support_classes: Tensor
    """Class ids `[n, S]` of the support examples (with rotations, the image's turn too)."""
    support_y: Tensor
    """Labels `[n, S]` in [0, ways), int64: the class's position in the task."""
    query_examples: Tensor
    """Image indices `[n, Q]` of the query examples (Q = ways × queries)."""
    query_classes: Tensor
    """Class ids `[n, Q]` of the query examples."""
    query_y: Tensor
    """Labels `[n, Q]` of the query examples, as `support_y`."""


class ClassificationTasks:
    """N-way K-shot tasks over `images` grouped by class, with the classes of each split; the
    base of `Digits` and `ImageFolder`, which load the images and choose the splits."""

    kind: Literal["classification"] = "classification"
    """Classification: the learners take the cross-entropy loss and report accuracy."""

    def __init__(
        self,
        images: Tensor,
        counts: Sequence[int],
        class_names: Sequence[str],
        splits: Mapping[Split, Sequence[int]],
        *,
        ways: int,
        rotations: bool,
        source: str,
        class_splits: Mapping[Split, Sequence[int]] | None = None,
        shift: int = 0,
    ) -> None:
        """Tasks over `images` `[N, C, H, W]` (float32, square), whose first `counts[0]` rows
        are base class 0 (named `class_names[0]`), the next `counts[1]` class 1, and so on;
        `splits` gives each split's base classes, or `class_splits` each split's class ids (base
        class × rotations + turn: a base class's turns may then lie in different splits).
        `source` names the image set in messages. `ways` must be an integer in [2, the smaller
        split's class count]. `shift` > 0 moves every drawn image by a random offset of up to
        `shift` pixels each way (zeros fill in), so that a class's examples differ by more than
        the handwriting: what a meta-learner can learn to ignore and one support image cannot
        show."""
        self.shift = check_int("shift", shift, low=0)
        """Largest random translation of a drawn image, in pixels (0: none)."""
        self.images = images
        """All images `[N, C, H, W]`, grouped by base class."""
        self.class_names = tuple(class_names)
        """The name of each base class (a digit, a folder's relative path)."""
        self.rotations = ROTATIONS if rotations else 1
        """Class ids per base class: 4 with rotations (0°, 90°, 180°, 270°), else 1."""
        self.input_shape: tuple[int, ...] = tuple(images.shape[1:])
        """`(C, H, W)` of one image."""
        counts_tensor = torch.as_tensor(counts, dtype=torch.int64)
        self._counts = counts_tensor
        """Images per base class `[classes]`."""
        self._offsets = torch.cumsum(counts_tensor, 0) - counts_tensor
        """Row of each base class's first image `[classes]`."""
        bases = {split: torch.as_tensor(splits[split], dtype=torch.int64) for split in SPLITS}
        self._splits = {
            split: (bases[:, None] * self.rotations + torch.arange(self.rotations)).flatten()
            for split, bases in bases.items()
        }
        """Class ids of each split `[classes of the split]`: each base class's turns, or the
        ids of `class_splits`."""
        if class_splits is not None:
            self._splits = {
                split: torch.as_tensor(sorted(class_splits[split]), dtype=torch.int64)
                for split in SPLITS
            }
        self._bases = {
            split: (ids // self.rotations).unique() for split, ids in self._splits.items()
        }
        """Base classes of each split `[base classes of the split]`."""
        self.ways = check_int("ways", ways, low=2)
        """Classes per task."""
        for split in SPLITS:
            if len(self._splits[split]) < self.ways:
                raise ValueError(
                    f"the {split} split of {source} has {len(self._splits[split])} classes, "
                    f"fewer than ways = {self.ways}"
                )
        self.output_size = self.ways
        """One logit per class of a task."""

    def classes(self, split: Split) -> list[int]:
        """The class ids of `split` (base class × rotations + turn)."""
        return self._splits[split].tolist()

    def class_name(self, class_id: int) -> str:
        """The name of class `class_id`: its base class's, with the turn when rotated."""
        base, turn = divmod(class_id, self.rotations)
        return self.class_names[base] + (f" rotated {90 * turn}°" if turn else "")

    def sample(
        self, num_tasks: int, shots: int, queries: int, generator: torch.Generator, split: Split
    ) -> FewShotBatch:
        """`num_tasks` tasks of `split` with `shots` support and `queries` query images per
        class (the `TaskDistribution` contract): the images of `sample_indices`."""
        batch = self.episode(self.sample_indices(num_tasks, shots, queries, generator, split))
        if not self.shift:
            return batch
        support_x, query_x = (self._shifted(x, generator) for x in (batch.support_x, batch.query_x))
        return FewShotBatch(support_x, batch.support_y, query_x, batch.query_y)

    def _shifted(self, images: Tensor, generator: torch.Generator) -> Tensor:
        """`images` `[n, m, C, H, W]`, each translated by its own random offset in
        [−shift, shift]² drawn from `generator`, zeros where it moved away from."""
        s, (height, width) = self.shift, images.shape[-2:]
        offsets = torch.randint(
            -s, s + 1, (*images.shape[:2], 2), generator=generator, device=generator.device
        ).cpu()
        padded = torch.nn.functional.pad(images, (s, s, s, s))
        shifted = torch.empty_like(images)
        for dy in range(-s, s + 1):
            for dx in range(-s, s + 1):
                chosen = (offsets[..., 0] == dy) & (offsets[..., 1] == dx)
                window = padded[chosen][..., s - dy : s - dy + height, s - dx : s - dx + width]
                shifted[chosen] = window
        return shifted

    def sample_indices(
        self, num_tasks: int, shots: int, queries: int, generator: torch.Generator, split: Split
    ) -> EpisodeIndices:
        """The indices of the tasks `sample` gives: per task `ways` distinct classes of `split`
        (in random order: a class's position is its label), `shots + queries` distinct images of
        each (the first `shots` support, the rest query), each set shuffled. A class with fewer
        images is a one-line `ValueError`."""
        num_tasks, shots, queries, split = check_sample(num_tasks, shots, queries, generator, split)
        self._check_class_sizes(split, shots + queries)
        classes = self._splits[split]
        chosen = classes[_ranks(generator, (num_tasks, len(classes)))[:, : self.ways]]
        bases = chosen // self.rotations
        counts = self._counts[bases]
        longest = int(self._counts.max())
        keys = _keys(generator, (num_tasks, self.ways, longest))
        keys[torch.arange(longest) >= counts[..., None]] = 2.0  # past a class's images: last
        picks = keys.argsort(dim=-1, stable=True)[..., : shots + queries]  # [n, ways, m]
        examples = self._offsets[bases][..., None] + picks
        support = self._layout(examples[..., :shots], chosen, generator)
        query = self._layout(examples[..., shots:], chosen, generator)
        return EpisodeIndices(*support, *query)

    def episode(self, indices: EpisodeIndices) -> FewShotBatch:
        """The batch of `indices`: each example's image, turned by its class's rotation."""
        return FewShotBatch(
            self._images_of(indices.support_examples, indices.support_classes),
            indices.support_y,
            self._images_of(indices.query_examples, indices.query_classes),
            indices.query_y,
        )

    def _check_class_sizes(self, split: Split, per_class: int) -> None:
        """Raise a one-line `ValueError` naming the smallest base class of `split` if it has
        fewer than `per_class` images (checked over the split, not the classes a draw picks, so
        that whether a call fails does not depend on the generator)."""
        bases = self._bases[split]
        smallest = bases[self._counts[bases].argmin()].item()
        count = self._counts[smallest].item()
        if count < per_class:
            raise ValueError(
                f"class {self.class_names[smallest]!r} of the {split} split has {count} images, "
                f"fewer than shots + queries = {per_class}"
            )

    def _layout(
        self, examples: Tensor, chosen: Tensor, generator: torch.Generator
    ) -> tuple[Tensor, Tensor, Tensor]:
        """`(examples, classes, labels)` `[n, ways × m]` of the images `examples`
        `[n, ways, m]` of the classes `chosen` `[n, ways]`, in a random order per task."""
        num_tasks, ways, per_class = examples.shape
        labels = torch.arange(ways).expand(num_tasks, ways)
        columns = [t[..., None].expand(num_tasks, ways, per_class) for t in (chosen, labels)]
        order = _ranks(generator, (num_tasks, ways * per_class))
        return tuple(t.reshape(num_tasks, -1).gather(1, order) for t in (examples, *columns))

    def _images_of(self, examples: Tensor, classes: Tensor) -> Tensor:
        """The images `[n, m, C, H, W]` of `examples` `[n, m]`, each turned counter-clockwise
        by its class's rotation."""
        images = self.images[examples]
        turns = classes % self.rotations
        for turn in range(1, self.rotations):
            turned = turns == turn
            if turned.any():
                images[turned] = torch.rot90(images[turned], turn, dims=(-2, -1))
        return images


def _ranks(generator: torch.Generator, shape: tuple[int, int]) -> Tensor:
    """A uniformly random permutation of `range(shape[1])` per row `[n, m]` (int64): the order
    of uniform keys."""
    return _keys(generator, shape).argsort(dim=-1, stable=True)


def _keys(generator: torch.Generator, shape: tuple[int, ...]) -> Tensor:
    """Uniform float64 keys in [0, 1) of `shape` drawn from `generator` (on its device, so that
    a CUDA generator serves too), on the CPU where the images are; float64 makes ties, which a
    stable sort would break by position, vanishingly rare."""
    keys = torch.rand(shape, generator=generator, device=generator.device, dtype=torch.float64)
    return keys.cpu()
