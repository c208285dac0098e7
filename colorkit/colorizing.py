"""Colorizing image and video files at their full resolution.

The networks run on a small copy of the gray image (``working_size``), and their chroma
is upsampled and combined with the file's own lightness in horizontal bands, straight
into 8-bit output (:func:`colorkit.color.recombine`), so no full-size float image is
held. Alpha, EXIF metadata and resolution are carried over, and nothing is written
over an input. Video files, recognised by their content whatever their name, are
colorized by :func:`colorkit.video.colorize_video` into a video beside the images.

>>> import colorkit
>>> from colorkit.colorizing import colorize_paths
>>> model = colorkit.build("pix2pix+mlp")
>>> report = colorize_paths(model, ["photos/"], "colorized/")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from colorkit.color import recombine
from colorkit.files import remove_stale_temporaries
from colorkit.imaging import (
    ImageWriteError,
    file_key,
    read_gray,
    same_file,
    save_image,
    walk_images,
    without_path,
)
from colorkit.registry import ColorkitError
from colorkit.video import VideoSettings, colorize_video, is_video, output_suffix

if TYPE_CHECKING:
    from colorkit.engine import Colorizer

__all__ = [
    "ColorizeReport",
    "collect_inputs",
    "colorize_file",
    "colorize_paths",
    "output_path",
]

# input suffix -> output suffix; anything else (BMP, GIF, ...) is written as PNG
_OUTPUT_SUFFIX = {
    ".jpg": ".jpg",
    ".jpeg": ".jpg",
    ".jpe": ".jpg",
    ".jfif": ".jpg",
    ".png": ".png",
    ".webp": ".webp",
    ".tif": ".tif",
    ".tiff": ".tif",
}
_SAVE_FORMAT = {".jpg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".tif": "TIFF"}
_SAVE_OPTIONS: dict[str, dict[str, Any]] = {
    "JPEG": {"quality": 95},
    "WEBP": {"quality": 95},
    # zlib level 6 (Pillow's default) takes several seconds on a 24-megapixel photo
    "PNG": {"compress_level": 3},
    "TIFF": {"compression": "tiff_deflate"},
}
_EXIF_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
_EXIF_ORIENTATION = 0x0112


def _output_suffix(src: Path, has_alpha: bool) -> str:
    return ".png" if has_alpha else _OUTPUT_SUFFIX.get(src.suffix.lower(), ".png")


def _candidates(src: Path, out_dir: Path, suffix: str) -> Iterator[Path]:
    yield out_dir / f"{src.stem}{suffix}"
    yield out_dir / f"{src.stem}.colorized{suffix}"
    number = 2
    while True:
        yield out_dir / f"{src.stem}.colorized-{number}{suffix}"
        number += 1


def output_path(src: Path, out_dir: Path, has_alpha: bool) -> Path:
    """Where the colorized version of ``src`` is written.

    The name is the input's stem with the suffix of a format that can hold the result:
    JPEG inputs give ``.jpg``, PNG ``.png``, WEBP ``.webp``, TIFF ``.tif``; BMP and any
    other format give ``.png``, and so does any image with alpha. If that path is the
    input file itself (``out_dir`` is the input's folder and the suffix is unchanged),
    ``.colorized`` is added before the suffix.

    Args:
        src: the input file.
        out_dir: the output folder.
        has_alpha: whether the result has an alpha channel.

    Returns:
        ``out_dir / name``, never the same file as ``src``.
    """
    src, out_dir = Path(src), Path(out_dir)
    return _free_path(src, out_dir, _output_suffix(src, has_alpha), None)


def _exif_bytes(image: Image.Image) -> bytes | None:
    try:
        exif = image.getexif()
        # the pixels are already upright; a stale orientation would rotate them again
        exif.pop(_EXIF_ORIENTATION, None)
        return exif.tobytes() if len(exif) else None
    except Exception:  # damaged metadata must not cost the picture
        return None


def _metadata(image: Image.Image) -> dict[str, Any]:
    """What is carried over to the result: EXIF (less the orientation) and resolution."""
    kept: dict[str, Any] = {}
    if exif := _exif_bytes(image):
        kept["exif"] = exif
    dpi = image.info.get("dpi")
    with contextlib.suppress(TypeError, ValueError):
        if len(dpi) == 2 and all(float(v) > 0 for v in dpi):
            kept["dpi"] = tuple(round(float(v)) for v in dpi)
    return kept


def _write_result(
    rgb: np.ndarray, alpha: torch.Tensor | None, metadata: dict[str, Any], target: Path
) -> None:
    result = Image.fromarray(rgb)
    if alpha is not None:
        levels = alpha[0, 0].mul(255.0).round_().to(torch.uint8).numpy()
        result.putalpha(Image.fromarray(levels))
    image_format = _SAVE_FORMAT[target.suffix.lower()]
    options: dict[str, Any] = {"format": image_format, **_SAVE_OPTIONS[image_format]}
    if image_format in _EXIF_FORMATS and "exif" in metadata:
        options["exif"] = metadata["exif"]
    if "dpi" in metadata:
        options["dpi"] = metadata["dpi"]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImageWriteError(f"{target}: cannot create its folder ({exc})") from None
    save_image(result, target, options)


def _output_folder(out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImageWriteError(f"{out_dir}: cannot create output folder ({exc})") from None
    return out_dir


def _check_working_size(working_size: int) -> None:
    if isinstance(working_size, bool) or not isinstance(working_size, int) or working_size < 1:
        raise ValueError(f"working_size must be a positive number of pixels, got {working_size!r}")


def _free_path(src: Path, out_dir: Path, suffix: str, taken: set[str] | None) -> Path:
    """The first output name for ``src`` that is neither the input nor taken in this run."""
    return next(
        candidate
        for candidate in _candidates(src, out_dir, suffix)
        if (taken is None or file_key(candidate) not in taken) and not same_file(candidate, src)
    )


def _colorize_to(
    model: Colorizer,
    src: Path,
    out_dir: Path,
    working_size: int,
    taken: set[str] | None = None,
    video: VideoSettings | None = None,
    progress: bool = False,
    notes: list[str] | None = None,
) -> Path:
    if is_video(src):
        target = _free_path(src, out_dir, output_suffix(src), taken)
        report = colorize_video(model, src, target, working_size, video, progress)
        if notes is not None:
            notes.extend(report.notes)
        return target
    gray, alpha, image = read_gray(src)
    metadata = _metadata(image)
    del image  # the decoded pixels are not needed again
    target = _free_path(src, out_dir, _output_suffix(src, alpha is not None), taken)
    ab = model.predict_chroma(gray, working_size=working_size)
    rgb = recombine(gray, ab)
    del gray, ab
    _write_result(rgb, alpha, metadata, target)
    return target


def colorize_file(
    model: Colorizer, src: str | Path, out_dir: str | Path, working_size: int = 256
) -> Path:
    """Colorize one image or video file at its full resolution.

    A video (recognised by :func:`colorkit.video.is_video`) is colorized by
    :func:`colorkit.video.colorize_video` with its default settings into
    ``out_dir/<stem>.mp4`` (``.mkv`` where MP4 cannot hold its streams). For an image, the
    networks run on the gray image resized to ``working_size``; their chroma is
    upsampled and combined with the file's own lightness (:func:`recombine`), alpha is
    re-attached, and the result is written to :func:`output_path` through a temporary
    file, so a failed write leaves any earlier file there intact. JPEG and WEBP are
    written at quality 95; EXIF metadata (less the orientation) and DPI are kept.

    Args:
        model: the colorization model.
        src: the image file.
        out_dir: the output folder (created if needed).
        working_size: longer side, in pixels, the networks run at.

    Returns:
        The path written.

    Raises:
        ImageReadError: naming the file, if it cannot be read.
        ImageWriteError: naming the output, if it cannot be written.
        ValueError: if ``working_size`` is not a positive integer.
    """
    _check_working_size(working_size)
    out_dir = _output_folder(out_dir)
    return _colorize_to(model, Path(src), out_dir, working_size)


# -- many files ----------------------------------------------------------------------------
@dataclass
class ColorizeReport:
    """What :func:`colorize_paths` did.

    Attributes:
        written: the output files, in input order.
        failed: ``(input, reason)`` for every input that could not be colorized.
        notes: what a user should know about inputs that were colorized: a video
            already in colour, damaged or with a variable frame rate, and so on.
    """

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Input:
    path: Path
    subfolder: Path  # where its output goes, relative to the output folder
    exists: bool = True


def _collect(inputs: Sequence[str | Path], exclude: Path | None = None) -> list[_Input]:
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    seen: set[str] = set()
    found: list[_Input] = []

    def add(item: _Input) -> None:
        key = file_key(item.path)
        if key not in seen:
            seen.add(key)
            found.append(item)

    for given in inputs:
        path = Path(given)
        if path.is_dir():
            for file in walk_images(path, exclude):
                add(_Input(file, file.parent.relative_to(path)))
        else:
            add(_Input(path, Path(), path.is_file()))
    return found


def collect_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """The image files named by files and folders.

    Files are taken as given, whatever their suffix; folders are searched by
    :func:`colorkit.imaging.walk_images`. A path that does not exist is
    kept in the list, so that :func:`colorize_paths` reports it as failed. A file
    named twice is listed once.

    Args:
        inputs: files and folders.

    Returns:
        The files, in the order given.
    """
    return [item.path for item in _collect(inputs)]


def colorize_paths(
    model: Colorizer,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    working_size: int = 256,
    progress: bool = True,
    video: VideoSettings | None = None,
) -> ColorizeReport:
    """Colorize every image and video named by files and folders, carrying on past bad files.

    Inputs are gathered by :func:`collect_inputs`; images found in a folder keep
    their subfolder under ``out_dir``. Each is written by :func:`colorize_file`'s
    rules, and never onto any input of the run or onto another output of the run
    (``.colorized`` or ``.colorized-2``, ... is added to the name instead). A file
    that is missing, empty, corrupt or cannot be written is recorded in
    :attr:`ColorizeReport.failed` and the others go on. Files named directly are
    colorized as videos when their content is a video (:func:`colorkit.video.is_video`),
    with ``video``'s settings; folders are searched for images only.

    Args:
        model: the colorization model.
        inputs: image files and folders (folders are searched recursively).
        out_dir: the output folder (created if needed; never searched as an input
            when it lies inside an input folder).
        working_size: longer side, in pixels, the networks run at.
        progress: show a progress bar on stderr (and one per video).
        video: stabilizer, encoder and batch size for videos; the defaults of
            :class:`~colorkit.video.VideoSettings` if ``None``.

    Returns:
        The files written, the inputs that failed with the reason, and notes.

    Raises:
        ImageWriteError: if ``out_dir`` cannot be created.
        ValueError: if ``working_size`` is not a positive integer.
    """
    _check_working_size(working_size)
    out_dir = _output_folder(out_dir)
    items = _collect(inputs, exclude=out_dir)
    # every input is off limits as an output, and so is every output already written
    taken = {file_key(item.path) for item in items}
    for folder in sorted({out_dir / item.subfolder for item in items}):
        remove_stale_temporaries(folder)
    report = ColorizeReport()
    bar = tqdm(items, desc="colorize", unit="image", file=sys.stderr, disable=not progress)
    for item in bar:
        if not item.exists:
            report.failed.append((item.path, "no such file or folder"))
            continue
        try:
            written = _colorize_to(
                model,
                item.path,
                out_dir / item.subfolder,
                working_size,
                taken,
                video,
                progress,
                report.notes,
            )
        except (ColorkitError, OSError, ValueError, MemoryError) as exc:
            reason = without_path(str(exc) or type(exc).__name__, item.path)
            report.failed.append((item.path, reason))
            continue
        taken.add(file_key(written))
        report.written.append(written)
    return report
