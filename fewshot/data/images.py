"""N-way K-shot classification on a local folder of images the user points to (Omniglot,
mini-ImageNet, ...; nothing is downloaded). A class is a leaf folder holding image files, at any
depth: Omniglot's `alphabet/character/*.png` and mini-ImageNet's `class/*.jpg` both read as they
are. If the root holds `train` and `test` folders they are the splits (a `val` folder is
ignored); else the classes, sorted by relative path, split deterministically: the last
`test_fraction` of them are held out.

All images are read once, at construction, resized to `image_size`² (bilinear, antialiased) into
one float32 tensor in [0, 1], and kept per process for the same root and image options.
"""

from __future__ import annotations

import functools
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from metarl.envs.checks import check_bool, check_int, describe
from metarl.fewshot.data.base import SPLITS, Split
from metarl.fewshot.data.checks import check_fraction
from metarl.fewshot.data.classes import ClassificationTasks

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
"""The files read as images (compared case-insensitively)."""

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
"""RGB → grey weights (ITU-R BT.601, Pillow's "L" conversion)."""

_RESIZE_CHUNK = 256
"""Images of one size resized together (bounds the memory of the originals held at once)."""


class ImageFolder(ClassificationTasks):
    """N-way K-shot tasks on the image classes under `root`; `input_shape` is
    `(1 or 3, image_size, image_size)`."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        ways: int = 5,
        image_size: int = 28,
        grayscale: bool = True,
        rotations: bool = False,
        invert: bool = False,
        test_fraction: float = 0.25,
        shift: int = 0,
    ) -> None:
        """Read every image under `root` (a one-line `ValueError` for a missing root, no class
        folders, an unreadable image, a split with fewer than `ways` classes).

        `grayscale`: one channel (RGB by luminance) or three (grey repeated). `rotations`: each
        class's turns by 90°, 180°, 270° are classes too (Omniglot's convention). `invert`:
        x ← 1 − x (Omniglot's black strokes on white become white on black). `test_fraction`
        (in (0, 1)): the share of classes held out when `root` has no `train`/`test` folders.
        `shift`: each drawn image moved by up to that many pixels (`ClassificationTasks`).
        """
        self.root = Path(_check_root(root))
        """The folder the images are read from."""
        self.image_size = check_int("image_size", image_size, low=1)
        """Height and width of the images, in pixels."""
        self.grayscale = check_bool("grayscale", grayscale)
        """Whether the images have one channel (else three)."""
        self.invert = check_bool("invert", invert)
        """Whether pixel values are inverted (1 − x)."""
        self.test_fraction = check_fraction("test_fraction", test_fraction)
        """The share of classes held out when the root has no `train`/`test` folders."""
        folder = _read_folder(
            os.path.realpath(self.root), self.image_size, self.grayscale, self.invert
        )
        super().__init__(
            folder.images,
            folder.counts,
            folder.class_names,
            folder.splits or _split_by_fraction(len(folder.class_names), self.test_fraction),
            ways=ways,
            rotations=check_bool("rotations", rotations),
            source=repr(str(root)),
            shift=shift,
        )


@dataclass(frozen=True)
class _Folder:
    """The images of a root, grouped by class."""

    images: Tensor
    """All images `[N, C, image_size, image_size]`, float32 in [0, 1], class after class."""
    counts: list[int]
    """Images per class."""
    class_names: list[str]
    """Each class's folder relative to the root, with `/` separators."""
    splits: dict[Split, list[int]] | None
    """The classes of the root's `train` and `test` folders; None without them."""


def _check_root(root: Any) -> str | os.PathLike[str]:
    """`root` if it is a path (a string or `os.PathLike`) of an existing folder."""
    if not isinstance(root, str | os.PathLike):
        raise ValueError(
            f"root must be the path of a folder of image classes, got {describe(root)}"
        )
    if not os.path.isdir(root):
        what = "is not a folder" if os.path.exists(root) else "does not exist"
        raise ValueError(f"root {str(root)!r} {what}: give the folder of the image classes")
    return root


@functools.cache
def _read_folder(root: str, image_size: int, grayscale: bool, invert: bool) -> _Folder:
    """The classes under `root` and their images, once per process for these arguments (a
    folder changed on disk later in the process is not read again)."""
    present = {split: (Path(root) / split).is_dir() for split in SPLITS}
    if present["train"] != present["test"]:
        there, absent = ("train", "test") if present["train"] else ("test", "train")
        raise ValueError(
            f"root {root!r} holds a {there!r} folder but no {absent!r} folder: give both, or "
            "neither to split the classes by test_fraction"
        )
    if present["train"]:
        found = {split: _class_folders(Path(root), Path(root) / split) for split in SPLITS}
        folders = [folder for split in SPLITS for folder in found[split]]
        splits: dict[Split, list[int]] | None = _splits(len(found["train"]), len(folders))
    else:
        folders, splits = _class_folders(Path(root), Path(root)), None
    if not folders:
        raise ValueError(
            f"root {root!r} holds no class folders: no leaf folder under it holds image files "
            f"({' '.join(IMAGE_SUFFIXES)})"
        )
    files = [_image_files(folder) for folder in folders]
    images = _read_images([f for class_files in files for f in class_files], image_size, grayscale)
    return _Folder(
        1.0 - images if invert else images,
        [len(class_files) for class_files in files],
        [folder.relative_to(root).as_posix() for folder in folders],
        splits,
    )


def _class_folders(root: Path, top: Path) -> list[Path]:
    """The leaf folders under `top` (itself included) that hold image files, sorted by their
    path relative to `root`; hidden folders are skipped."""
    leaves = []
    for folder, subfolders, _ in os.walk(top, followlinks=True):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        if not subfolders and _image_files(Path(folder)):
            leaves.append(Path(folder))
    return sorted(leaves, key=lambda folder: folder.relative_to(root).as_posix())


def _image_files(folder: Path) -> list[Path]:
    """The image files of `folder` (not hidden, by suffix), sorted by name."""
    return sorted(
        path
        for path in folder.iterdir()
        if path.suffix.lower() in IMAGE_SUFFIXES
        and not path.name.startswith(".")
        and path.is_file()
    )


def _split_by_fraction(num_classes: int, test_fraction: float) -> dict[Split, list[int]]:
    """The last `round(test_fraction × classes)` classes (at least one, and one left to train
    on when there are two) held out, the rest for training."""
    held_out = min(max(1, round(test_fraction * num_classes)), max(num_classes - 1, 1))
    return _splits(num_classes - held_out, num_classes)


def _splits(first_test: int, num_classes: int) -> dict[Split, list[int]]:
    """Classes 0..first_test−1 for training, the rest held out."""
    return {"train": list(range(first_test)), "test": list(range(first_test, num_classes))}


def _read_images(files: list[Path], image_size: int, grayscale: bool) -> Tensor:
    """The images of `files` `[N, C, image_size, image_size]`, float32 in [0, 1]: read one by
    one, resized together in chunks of one original size."""
    channels = 1 if grayscale else 3
    images = torch.empty(len(files), channels, image_size, image_size)
    pending: dict[tuple[int, ...], list[tuple[int, Tensor]]] = defaultdict(list)

    def resize(shape: tuple[int, ...]) -> None:
        """Resize the pending images of `shape` into their rows of `images`."""
        rows, originals = zip(*pending.pop(shape), strict=True)
        batch = torch.stack(originals)
        if batch.shape[-2:] != (image_size, image_size):
            batch = F.interpolate(
                batch,
                size=(image_size, image_size),
                mode="bilinear",
                antialias=True,
                align_corners=False,
            )
        images[list(rows)] = batch.clamp(0.0, 1.0)

    for row, path in enumerate(files):
        image = _read_image(path, grayscale)
        pending[tuple(image.shape)].append((row, image))
        if len(pending[tuple(image.shape)]) == _RESIZE_CHUNK:
            resize(tuple(image.shape))
    for shape in list(pending):
        resize(shape)
    return images


def _read_image(path: Path, grayscale: bool) -> Tensor:
    """The image at `path` `[C, H, W]` in [0, 1]: one channel (RGB by luminance) if
    `grayscale`, else three (grey repeated); an alpha channel is dropped, a GIF's first frame
    read. A file that is no image is a one-line `ValueError` naming it."""
    try:
        array = np.asarray(iio.imread(path, index=0, plugin="pillow"))
    except Exception as error:  # every reader's failure: truncated, not an image, unknown format
        reason = " ".join(f"{type(error).__name__}: {error}".split())[:200]
        raise ValueError(f"cannot read the image {str(path)!r} ({reason})") from error
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4) or array.dtype.kind not in "biuf":
        raise ValueError(
            f"cannot read the image {str(path)!r}: shape {array.shape} of {array.dtype} is not an "
            "image of 1 to 4 channels"
        )
    values = array.astype(np.float32)
    if array.dtype.kind in "iu":
        values /= np.iinfo(array.dtype).max
    colour = values[..., :3] if array.shape[-1] >= 3 else values[..., :1]
    if grayscale and colour.shape[-1] == 3:
        colour = colour @ LUMA[:, None]
    elif not grayscale and colour.shape[-1] == 1:
        colour = colour.repeat(3, axis=-1)
    return torch.from_numpy(np.ascontiguousarray(colour.transpose(2, 0, 1)))
