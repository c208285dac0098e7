"""Image files: reading photographs of any mode, writing results, finding images.

Everything that touches an image file goes through here: :func:`open_image` decodes
(upright, in sRGB), :func:`load_rgb` and :func:`read_gray` convert any PIL mode to what
training and colorizing need, :func:`save_image` writes atomically, and
:func:`walk_images` finds the images under a folder.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from colorkit.color import srgb8_to_gray
from colorkit.files import atomic_path
from colorkit.registry import ColorkitError

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageReadError",
    "ImageWriteError",
    "check_pixels",
    "file_key",
    "load_rgb",
    "open_image",
    "pil_to_tensor",
    "read_gray",
    "same_file",
    "save_image",
    "tensor_to_pil",
    "to_rgb",
    "walk_images",
    "without_path",
]

#: File name endings recognised as images (compared case-insensitively).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


class ImageReadError(ColorkitError, OSError):
    """A file that could not be read as an image."""


class ImageWriteError(ColorkitError, OSError):
    """A result that could not be written (the destination is left as it was)."""


def open_image(path: str | Path, min_size: int | None = None) -> Image.Image:
    """Open and fully decode an image file, upright and in sRGB.

    EXIF orientation is applied. Colour images (RGB, RGBA, CMYK) with an embedded ICC
    profile other than sRGB (Adobe RGB, Display P3, a press CMYK, ...) are converted
    to sRGB, which colorkit's colour space conversions assume; a profile that cannot be
    read is ignored with a warning naming the file. Gray images keep their values.

    Args:
        path: the file.
        min_size: if given, JPEGs are decoded at a reduced DCT scale (1/2, 1/4 or 1/8)
            that keeps both sides at least this many pixels, several times faster for
            large photos. Truncated data still fails: every coefficient is still
            entropy-decoded.

    Returns:
        The decoded PIL image: in its own mode, or ``RGB``/``RGBA`` after a
        conversion from a colour profile.

    Raises:
        ImageReadError: naming the file, if it is missing, empty, not an image,
            truncated, or declares more pixels than PIL's decompression-bomb limit.
    """
    path = Path(path)
    with _reading(path), Image.open(path) as image:
        if min_size is not None and image.format == "JPEG":
            image.draft("RGB", (min_size, min_size))
        image.load()
        upright = ImageOps.exif_transpose(image)
    return _to_srgb(upright, path)


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn what reading an image file raises into an :class:`ImageReadError` naming it."""
    try:
        if path.stat().st_size == 0:
            raise ImageReadError(f"{path}: empty file (0 bytes), expected an image")
        yield
    except ImageReadError:
        raise
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image file PIL can read") from None
    except Image.DecompressionBombError as exc:
        raise ImageReadError(f"{path}: image too large ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"{path}: cannot decode image ({exc})") from None


def check_pixels(path: str | Path, max_pixels: int) -> tuple[int, int]:
    """The size an image file declares, refused above a pixel limit, without decoding it.

    Only the header is read, so a small file that would decode to a huge image (a
    decompression bomb) is refused before it takes any memory. The size is the stored
    one, before any EXIF rotation.

    Args:
        path: the file.
        max_pixels: the most pixels (width × height) accepted.

    Returns:
        ``(width, height)``.

    Raises:
        ImageReadError: naming the file, if it has more than ``max_pixels`` pixels or
            more than PIL's decompression-bomb limit, or is missing, empty or not an image.
    """
    path = Path(path)
    with _reading(path), Image.open(path) as image:
        width, height = image.size
    if width * height > max_pixels:
        raise ImageReadError(
            f"{path}: image too large ({width}×{height} pixels, "
            f"{width * height / 1e6:.3g} megapixels; the limit is {max_pixels / 1e6:.3g})"
        )
    return width, height


@functools.cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _to_srgb(image: Image.Image, path: Path) -> Image.Image:
    """A colour image with an embedded ICC profile, converted to sRGB."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "RGBA", "CMYK"):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if ImageCms.getProfileDescription(source).strip().startswith("sRGB"):
            return image
        converted = ImageCms.profileToProfile(
            image,
            source,
            _srgb_profile(),
            renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
            outputMode="RGBA" if image.mode == "RGBA" else "RGB",
        )
    except (ImageCms.PyCMSError, OSError, ValueError) as exc:
        warnings.warn(
            f"{path}: ignoring its embedded ICC profile, which cannot be used ({exc}); "
            "the pixels are taken as sRGB",
            stacklevel=3,
        )
        return image
    converted.info = {key: value for key, value in image.info.items() if key != "icc_profile"}
    return converted


# -- converting modes ----------------------------------------------------------------------
def _scaled(values: np.ndarray, scale: float) -> torch.Tensor:
    gray = torch.empty(values.shape, dtype=torch.float32)
    np.multiply(values, np.float32(1.0 / scale), out=gray.numpy(), dtype=np.float32)
    return gray.clamp_(0.0, 1.0)


def _normalise_mode(image: Image.Image) -> Image.Image:
    """Convert to one of L, LA, RGB, RGBA, I, I;16*, F, keeping transparency as alpha."""
    mode = image.mode
    if mode in ("L", "RGB") and image.has_transparency_data:
        return image.convert(mode + "A")
    if mode in ("L", "LA", "RGB", "RGBA", "I", "F") or mode.startswith("I;16"):
        return image
    if mode in ("1", "La"):
        return image.convert("LA" if mode == "La" or image.has_transparency_data else "L")
    if mode in ("P", "PA", "RGBa") or image.has_transparency_data:
        return image.convert("RGBA" if mode != "P" or image.has_transparency_data else "RGB")
    # CMYK, YCbCr, HSV, RGBX, ...: Pillow's own conversion to RGB
    return image.convert("RGB")


def _levels(image: Image.Image) -> np.ndarray:
    """Values in ``[0, 1]`` of a 16-bit, 32-bit or floating single-channel image."""
    values = np.asarray(image)
    if image.mode.startswith("I;16"):
        return values / np.float32(65535.0)
    peak = float(values.max()) if values.size else 0.0
    if image.mode == "F":
        # floats are taken as [0, 1] intensities unless they clearly use a larger range
        return values / np.float32(max(1.0, peak))
    # 32-bit integers usually carry 16-bit data (PNG and TIFF readers); larger ranges scale
    # by their own maximum
    return values / np.float32(65535.0 if peak <= 65535 else peak)


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert an image of any PIL mode to 8-bit RGB, compositing transparency on white.

    16-bit, 32-bit and floating images are rescaled as :func:`read_gray` reads them,
    not clipped.

    Args:
        image: the image (e.g. from :func:`open_image`).

    Returns:
        The image in mode ``"RGB"``.
    """
    mode = image.mode
    if mode == "RGB" and not image.has_transparency_data:
        return image
    if mode.startswith("I") or mode == "F":
        gray = np.clip(np.rint(_levels(image) * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    if mode == "La":
        # premultiplied, which Pillow cannot convert; over white that is L + (255 - A)
        lum, alpha = (np.asarray(band, dtype=np.int16) for band in image.split())
        gray = np.clip(lum + 255 - alpha, 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    plain = _normalise_mode(image)
    if plain.mode in ("LA", "RGBA"):
        rgba = plain.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return plain.convert("RGB")


def load_rgb(path: str | Path) -> Image.Image:
    """Read an image of any mode as 8-bit RGB.

    Grayscale, palette, CMYK and 16-bit images are converted (16-bit values are
    rescaled, not clipped); transparency is composited on white; EXIF orientation
    is applied.

    Args:
        path: the image file.

    Returns:
        The upright image in mode ``"RGB"``.

    Raises:
        ImageReadError: naming the file, if it is missing, empty, not an image,
            truncated or too large.
    """
    return to_rgb(open_image(path))


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """An 8-bit RGB image as a ``3×H×W`` float32 tensor in ``[0, 1]``.

    Args:
        image: a PIL image in mode ``"RGB"``.

    Returns:
        The tensor.
    """
    array = np.ascontiguousarray(np.asarray(image, dtype=np.uint8).transpose(2, 0, 1))
    return torch.from_numpy(array).to(torch.float32).div_(255.0)


def tensor_to_pil(rgb: torch.Tensor) -> Image.Image:
    """A ``3×H×W`` RGB tensor in ``[0, 1]`` as an 8-bit PIL image (clamped and rounded).

    Args:
        rgb: the tensor, on any device and of any floating dtype.

    Returns:
        The image in mode ``"RGB"``.
    """
    array = (rgb.clamp(0, 1).permute(1, 2, 0).float().cpu().numpy() * 255.0).round()
    return Image.fromarray(array.astype(np.uint8))


def read_gray(path: str | Path) -> tuple[torch.Tensor, torch.Tensor | None, Image.Image]:
    """Read an image file as colorkit's gray at full resolution, with its alpha.

    Gray is the sRGB-encoded relative luminance (:func:`colorkit.color.rgb_to_gray`)
    of colour images, and the stored values of gray ones: ``L`` divided by 255,
    16-bit ``I;16`` by 65535, 32-bit ``I`` by 65535 (or by its maximum when larger),
    floating ``F`` as it is (or divided by its maximum when above 1). CMYK and other
    colour modes are converted to RGB first; palette images to RGB, or RGBA when they
    have transparency. EXIF orientation is applied.

    Args:
        path: the image file.

    Returns:
        ``(gray, alpha, image)``: gray as a ``1×1×H×W`` float32 tensor in ``[0, 1]``;
        alpha as ``1×1×H×W`` in ``[0, 1]``, or ``None`` if the image has no
        transparency; and the opened (upright) PIL image.

    Raises:
        ImageReadError: naming the file, if it cannot be read or its mode converted.
    """
    image = open_image(path)
    try:
        plain = _normalise_mode(image)
        alpha = None
        if plain.mode in ("L", "LA"):
            gray = _scaled(np.asarray(plain.getchannel("L")), 255.0)
            if plain.mode == "LA":
                alpha = _scaled(np.asarray(plain.getchannel("A")), 255.0)
        elif plain.mode in ("RGB", "RGBA"):
            values = np.asarray(plain)
            gray = srgb8_to_gray(values)
            if plain.mode == "RGBA":
                alpha = _scaled(values[..., 3], 255.0)
            del values
        else:
            gray = torch.from_numpy(np.clip(_levels(plain), 0.0, 1.0).astype(np.float32))
    except (OSError, ValueError) as exc:
        raise ImageReadError(f"{path}: cannot convert {image.mode} image to gray ({exc})") from None
    del plain
    gray = gray[None, None]
    return gray, None if alpha is None else alpha[None, None], image


# -- writing -------------------------------------------------------------------------------
def save_image(image: Image.Image, target: Path, options: dict[str, Any]) -> None:
    """Save an image atomically: a temporary file in the same folder, fsync, then a rename.

    A crash at any moment leaves either the previous ``target`` or the new one, whole.

    Args:
        image: the image to write.
        target: the final path (its folder must exist).
        options: keyword options of ``PIL.Image.save`` (``format`` among them).

    Raises:
        ImageWriteError: naming ``target``, if it cannot be written.
    """
    try:
        with atomic_path(target) as temporary, open(temporary, "xb") as stream:
            image.save(stream, **options)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ImageWriteError(f"{target}: cannot write ({reason})") from None


# -- finding -------------------------------------------------------------------------------
def walk_images(root: str | Path, exclude: str | Path | None = None) -> Iterator[Path]:
    """The image files under a folder, recursively, folder by folder.

    Hidden files and folders (names starting with ``.``: temporary files, ``.git``, the
    ``._photo.jpg`` resource forks macOS leaves on shared drives) are skipped, and so
    are names without one of :data:`IMAGE_EXTENSIONS` (any letter case). Symbolic links
    to folders are followed once each, so a link loop ends.

    Args:
        root: the folder to search (nothing is found if it is not one).
        exclude: a folder under ``root`` not to search (e.g. an output folder).

    Yields:
        ``root`` joined with each file's relative path: a folder's files in sorted
        order, then its subfolders in sorted order.
    """
    excluded = file_key(Path(exclude)) if exclude is not None else None
    seen: set[str] = set()
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a symlink loop, or two links to one folder
            subfolders[:] = []
            continue
        seen.add(real)
        subfolders[:] = sorted(
            name
            for name in subfolders
            if not name.startswith(".") and file_key(Path(folder, name)) != excluded
        )
        base = Path(folder)
        for name in sorted(files):
            path = base / name
            image = not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)
            if image and path.is_file():  # not a broken link or a device
                yield path


def file_key(path: str | Path) -> str:
    """The text by which two paths are told apart: resolved and case-folded.

    Case-folding errs on the safe side on case-insensitive file systems: two names that
    differ only in case are taken for one file.

    Args:
        path: a path.

    Returns:
        The key.
    """
    return str(Path(path).resolve()).casefold()


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same file (case-insensitively, to be safe).

    Args:
        a: a path.
        b: another path.

    Returns:
        True if they resolve to the same path, ignoring letter case, or are the same
        existing file.
    """
    a, b = Path(a), Path(b)
    if file_key(a) == file_key(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def without_path(message: str, path: str | Path) -> str:
    """An error message about a file without the file's name in front.

    colorkit's file errors read ``"<path>: <reason>"``; a report that names the file
    already wants the reason alone.

    Args:
        message: the message.
        path: the file it is about.

    Returns:
        The reason.
    """
    prefix = f"{path}: "
    return message[len(prefix) :] if message.startswith(prefix) else message
