"""Folders of colour photographs for training and evaluation.

A typical pipeline finds every image under a folder, decodes each one once to drop
unreadable files and grayscale sources (there is no colour to learn from them),
splits the rest into training and test sets, and serves them as tensors:

>>> from colorkit.data import load_photos
>>> train, test, scan = load_photos(None, size=128)  # the bundled photos
>>> train[0].shape
torch.Size([3, 128, 128])

Training items get the pix2pix augmentation (resize to ``1.125 × size``, random
crop, random horizontal flip) drawn from torch's random number generator, so
``torch.manual_seed`` and ``DataLoader`` worker seeding make them reproducible.
Test items are resized and centre-cropped, so they are the same every time.
"""

from __future__ import annotations

import importlib.resources
import os
import random
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from colorkit.imaging import (
    IMAGE_EXTENSIONS,
    ImageReadError,
    open_image,
    pil_to_tensor,
    to_rgb,
    walk_images,
    without_path,
)
from colorkit.registry import ColorkitError

__all__ = [
    "SPLITS",
    "TRAIN_RESIZE_FACTOR",
    "DataError",
    "DataWarning",
    "PhotoDataset",
    "ScanResult",
    "embedded_photos",
    "evaluation_photos",
    "find_images",
    "load_photos",
    "photo_folder",
    "scan_images",
    "split_paths",
]

#: Pix2pix trains on crops of images resized to this multiple of the crop size (286 for 256).
TRAIN_RESIZE_FACTOR = 1.125

#: Longest side of the thumbnail the grayscale test looks at.
_THUMBNAIL = 64

#: An RGB image whose mean ``|R-G| + |G-B|`` (in 0–255 levels) is below this is grayscale.
_GRAY_THRESHOLD = 1.0

#: Which photos of a folder :func:`evaluation_photos` serves: all of them, or one side of
#: the seeded split that :func:`load_photos` (and so training) makes.
SPLITS = ("all", "test", "train")

_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "F"})


class DataError(ColorkitError, ValueError):
    """A folder, file list or option that cannot give a usable set of photographs."""


class DataWarning(UserWarning):
    """A file left out of a photo set (unreadable or grayscale), or a summary of them."""


def embedded_photos() -> Path:
    """The folder of colour photographs that ships with colorkit.

    Returns:
        The path of ``colorkit/photos`` (five small public-domain / CC0 JPEGs; see
        ``SOURCES.md`` there).

    Raises:
        DataError: if the package data is not a folder on disk (e.g. an install
            inside a zip archive).
    """
    folder = Path(str(importlib.resources.files("colorkit").joinpath("photos")))
    if not folder.is_dir():
        raise DataError(
            f"colorkit's bundled photos are not a folder on disk ({folder}); "
            "reinstall colorkit from a wheel or a source checkout"
        )
    return folder


def photo_folder(data: str | Path | None) -> Path:
    """The folder a ``data`` setting names.

    Args:
        data: a folder, or ``None`` for :func:`embedded_photos`.

    Returns:
        The folder.

    Raises:
        DataError: if ``data`` is ``None`` and the bundled photos are not on disk.
    """
    return embedded_photos() if data is None else Path(data)


def find_images(root: str | Path) -> list[Path]:
    """Every image file under a folder, recursively (:func:`colorkit.imaging.walk_images`).

    Hidden files and folders (names starting with ``.``, such as ``.git`` or
    macOS's ``._photo.jpg``) are skipped. Symbolic links to folders are followed
    once each.

    Args:
        root: the folder to search.

    Returns:
        The image paths (``root`` joined with their relative paths), sorted.

    Raises:
        DataError: if ``root`` does not exist, is not a folder, or holds no file
            ending in one of :data:`colorkit.imaging.IMAGE_EXTENSIONS`.
    """
    root = Path(root)
    expected = ", ".join(IMAGE_EXTENSIONS)
    if not root.exists():
        raise DataError(f"{root}: no such folder; expected a folder of images ({expected})")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder; expected a folder of images ({expected})")
    found = list(walk_images(root))
    if not found:
        raise DataError(
            f"{root}: no image files found (searched subfolders too for {expected}, "
            "any letter case)"
        )
    return sorted(found)


def _check_fraction(test_fraction: float) -> None:
    # `not 0 < f < 1` also rejects NaN
    if (
        isinstance(test_fraction, bool)
        or not isinstance(test_fraction, (int, float))
        or not 0.0 < test_fraction < 1.0
    ):
        raise DataError(
            f"test_fraction={test_fraction!r}: expected a number strictly between 0 and 1 "
            "(the share of images held out for testing, e.g. 0.2)"
        )


def _check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise DataError(f"size={size!r}: expected a positive whole number of pixels")


def _check_max_resize(max_resize: float) -> None:
    if not isinstance(max_resize, (int, float)) or not max_resize >= TRAIN_RESIZE_FACTOR:
        raise DataError(
            f"max_resize={max_resize!r}: expected a number of at least {TRAIN_RESIZE_FACTOR} "
            "(the shorter side of a training photo, in multiples of the crop size)"
        )


def split_paths(
    paths: Sequence[Path], test_fraction: float = 0.2, seed: int = 0
) -> tuple[list[Path], list[Path]]:
    """Split image paths into training and test sets, reproducibly.

    The paths are de-duplicated and sorted before a seeded shuffle, so the split
    depends only on the set of paths and the seed, not on their order.

    Args:
        paths: the image paths.
        test_fraction: the share of paths for the test set, strictly between 0 and 1.
            The count is rounded, then kept to at least one image in each set when
            there are two or more paths.
        seed: the shuffle's seed.

    Returns:
        ``(train, test)``: disjoint lists, each sorted. With a single path, it goes to
        ``train`` and ``test`` is empty.

    Raises:
        DataError: if ``test_fraction`` is not a number strictly between 0 and 1.
    """
    _check_fraction(test_fraction)
    ordered = sorted(dict.fromkeys(Path(p) for p in paths))
    random.Random(seed).shuffle(ordered)
    count = len(ordered)
    n_test = min(max(round(count * test_fraction), 1), count - 1) if count >= 2 else 0
    return sorted(ordered[n_test:]), sorted(ordered[:n_test])


@dataclass
class ScanResult:
    """What :func:`scan_images` found.

    Args:
        usable: colour images that decoded, in the order given.
        corrupt: ``(path, reason)`` for each file that could not be decoded.
        grayscale: files that decoded but hold no colour.
    """

    usable: list[Path] = field(default_factory=list)
    corrupt: list[tuple[Path, str]] = field(default_factory=list)
    grayscale: list[Path] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        """How many files were left out."""
        return len(self.corrupt) + len(self.grayscale)


def _is_grayscale(image: Image.Image) -> bool:
    if image.mode in _GRAY_MODES or image.mode.startswith("I;16"):
        return True
    thumb = to_rgb(image)
    if max(thumb.size) > _THUMBNAIL:
        thumb = thumb.copy()
        thumb.thumbnail((_THUMBNAIL, _THUMBNAIL), Image.Resampling.BILINEAR)
    rgb = np.asarray(thumb, dtype=np.int16)
    spread = np.abs(rgb[..., 0] - rgb[..., 1]) + np.abs(rgb[..., 1] - rgb[..., 2])
    return float(spread.mean()) < _GRAY_THRESHOLD


def _common_folder(paths: Sequence[Path]) -> str:
    try:
        return os.path.commonpath([str(Path(p).parent) for p in paths])
    except ValueError:  # mixed drives or absolute and relative paths
        return "the given files"


def scan_images(paths: Sequence[Path]) -> ScanResult:
    """Decode every file once, leaving out unreadable and grayscale ones.

    Each left-out file gets a :class:`DataWarning` naming it and why, and a final
    warning gives the counts, e.g. ``"skipped 2 of 40 files: 1 unreadable,
    1 grayscale"``. Grayscale means a single-channel mode (``L``, ``LA``, ``I;16``,
    ``1``...) or colour channels that are equal to within one level on average.

    Args:
        paths: the image files, e.g. from :func:`find_images`.

    Returns:
        The :class:`ScanResult`.

    Raises:
        DataError: if no usable colour image remains, naming the folder and the counts.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise DataError("no image files to scan; expected at least one path")
    result = ScanResult()
    for path in paths:
        try:
            image = open_image(path, _THUMBNAIL)
        except ImageReadError as exc:
            reason = without_path(str(exc), path)
            result.corrupt.append((path, reason))
            warnings.warn(f"skipping unreadable image {path}: {reason}", DataWarning, stacklevel=2)
            continue
        if _is_grayscale(image):
            result.grayscale.append(path)
            warnings.warn(
                f"skipping grayscale image {path} (mode {image.mode}): it has no colour to learn",
                DataWarning,
                stacklevel=2,
            )
            continue
        result.usable.append(path)
    if result.skipped:
        warnings.warn(
            f"skipped {result.skipped} of {len(paths)} files: {len(result.corrupt)} unreadable, "
            f"{len(result.grayscale)} grayscale",
            DataWarning,
            stacklevel=2,
        )
    if not result.usable:
        raise DataError(
            f"{_common_folder(paths)}: no usable colour image among {len(paths)} files "
            f"({len(result.corrupt)} unreadable, {len(result.grayscale)} grayscale)"
        )
    return result


def _resize_shorter(image: Image.Image, target: int) -> Image.Image:
    width, height = image.size
    shorter = min(width, height)
    if shorter == target:
        return image
    scale = target / shorter
    size = (max(target, round(width * scale)), max(target, round(height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)


class PhotoDataset(Dataset):
    """Colour photographs as ``3 × size × size`` float tensors in ``[0, 1]``.

    Training items (``train=True``) follow pix2pix: the shorter side is resized to
    ``round(1.125 × size)``, then a random ``size × size`` crop is taken and flipped
    left-right with probability 1/2, using torch's random number generator. With
    ``max_resize`` above 1.125 the factor is drawn uniformly from ``[1.125, max_resize]``
    for each item (scale augmentation), so a model trained on small crops also sees
    objects as large as a photo colorized at a larger working size shows them. Test
    items have the shorter side resized to ``size`` and are centre-cropped.
    Images smaller than that are scaled up.

    Args:
        paths: the image files (usually :attr:`ScanResult.usable`, split by
            :func:`split_paths`).
        size: the side of the square crops, in pixels.
        train: random augmentation (``True``) or the deterministic test transform.
        max_resize: the largest shorter-side factor of training items (at least 1.125).

    Raises:
        DataError: if ``size`` is not a positive integer or ``max_resize`` is below 1.125.

    Attributes:
        paths: the image files, in item order.
        size: the crop side.
        train: whether items are augmented.
        max_resize: the largest shorter-side factor of training items.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        size: int = 256,
        train: bool = True,
        max_resize: float = TRAIN_RESIZE_FACTOR,
    ) -> None:
        _check_size(size)
        _check_max_resize(max_resize)
        self.paths: list[Path] = [Path(p) for p in paths]
        self.size = size
        self.train = bool(train)
        self.max_resize = float(max_resize)

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        kind = "train" if self.train else "test"
        return f"PhotoDataset({len(self.paths)} images, size={self.size}, {kind})"

    def __getitem__(self, index: int) -> torch.Tensor:
        """One photograph, transformed.

        Args:
            index: the item's position in :attr:`paths`.

        Returns:
            A ``float32`` tensor of shape ``3 × size × size`` with values in ``[0, 1]``.

        Raises:
            IndexError: for an index out of range.
            ImageReadError: naming the file, if it can no longer be read.
        """
        path = self.paths[index]
        target = self.size
        if self.train:
            factor = TRAIN_RESIZE_FACTOR
            if self.max_resize > factor:
                factor += float(torch.rand(())) * (self.max_resize - factor)
            target = round(self.size * factor)
        image = _resize_shorter(to_rgb(open_image(path, target)), target)
        width, height = image.size
        if self.train:
            left = int(torch.randint(0, width - self.size + 1, ()).item())
            top = int(torch.randint(0, height - self.size + 1, ()).item())
            flip = bool(torch.rand(()).item() < 0.5)
        else:
            left, top, flip = (width - self.size) // 2, (height - self.size) // 2, False
        image = image.crop((left, top, left + self.size, top + self.size))
        if flip:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return pil_to_tensor(image)


def load_photos(
    data: str | Path | None,
    size: int = 256,
    test_fraction: float = 0.2,
    seed: int = 0,
    eval_data: str | Path | None = None,
    max_resize: float = TRAIN_RESIZE_FACTOR,
) -> tuple[PhotoDataset, PhotoDataset, ScanResult]:
    """Find, check and split a folder of photographs into training and test datasets.

    Args:
        data: the folder (searched recursively); ``None`` for :func:`embedded_photos`.
        size: the side of the square crops.
        test_fraction: the share of usable images held out for testing (0 < f < 1);
            not used with ``eval_data``.
        seed: the seed of the split (not of the augmentation, which follows torch's RNG).
        eval_data: a separate folder of test photos (e.g. a data set's own test split);
            then every usable photo of ``data`` is for training and ``test_fraction``
            is not used.
        max_resize: the scale augmentation of the training items (see :class:`PhotoDataset`).

    Returns:
        ``(train, test, scan)``: the augmented training :class:`PhotoDataset`, the
        deterministic test :class:`PhotoDataset`, and the :class:`ScanResult` of
        ``data`` that says which files were left out.

    Raises:
        DataError: if a folder is missing or has no image or no usable colour image,
            if ``data`` alone has fewer than two (one for each set), if the two
            folders share photos, or if an option is invalid.
    """
    # options are checked before the scan, which can take a while, so a typo fails at once
    _check_size(size)
    _check_fraction(test_fraction)
    _check_max_resize(max_resize)
    root = photo_folder(data)
    scan = scan_images(find_images(root))
    if eval_data is not None:
        test_scan = scan_images(find_images(eval_data))
        shared = {p.resolve() for p in scan.usable} & {p.resolve() for p in test_scan.usable}
        if shared:
            raise DataError(
                f"{eval_data}: {len(shared)} of its photos are also in {root} "
                f"(e.g. {min(shared)}); give a test folder disjoint from the training folder"
            )
        for folder, found in ((root, scan), (Path(eval_data), test_scan)):
            if not found.usable:
                raise DataError(f"{folder}: no usable colour image")
        train, test = scan.usable, test_scan.usable
    elif len(scan.usable) < 2:
        raise DataError(
            f"{root}: only {len(scan.usable)} usable colour image; need at least 2 "
            "(one for training, one for testing)"
        )
    else:
        train, test = split_paths(scan.usable, test_fraction, seed)
    training = PhotoDataset(train, size, train=True, max_resize=max_resize)
    return training, PhotoDataset(test, size, train=False), scan


def evaluation_photos(
    data: str | Path | None,
    size: int = 256,
    split: str = "all",
    test_fraction: float = 0.2,
    seed: int = 0,
) -> PhotoDataset:
    """The usable photos of a folder as deterministic test items, for scoring a model.

    Args:
        data: the folder (searched recursively); ``None`` for :func:`embedded_photos`.
        size: the side of the square centre crops.
        split: ``"all"`` photos, or the ``"test"`` or ``"train"`` side of the split that
            :func:`load_photos` makes with the same ``test_fraction`` and ``seed``.
        test_fraction: the share held out for testing (with a split).
        seed: the seed of the split.

    Returns:
        The test-mode :class:`PhotoDataset`.

    Raises:
        DataError: for an unknown split, a folder without usable colour photos, or an
            invalid option.
    """
    _check_size(size)
    if split not in SPLITS:
        raise DataError(f"split={split!r}: expected one of {SPLITS}")
    paths = scan_images(find_images(photo_folder(data))).usable
    if split != "all":
        train, test = split_paths(paths, test_fraction, seed)
        paths = test if split == "test" else train
    return PhotoDataset(paths, size, train=False)
