"""Reading photographs of any mode into colorkit's tensors, and writing results.

The file-level colorization path works at full resolution without holding many
full-size float images: the networks run on a small copy of the gray image
(``working_size``), and their chroma is upsampled and combined with the file's own
lightness in horizontal bands, straight into 8-bit output.

>>> import colorkit
>>> from colorkit.imaging import colorize_paths
>>> model = colorkit.build("pix2pix+mlp")
>>> report = colorize_paths(model, ["photos/"], "colorized/")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from colorkit.color import (
    _KAPPA,
    _RGB_TO_XYZ,
    _WHITE_D65,
    _XYZ_TO_RGB,
    _lab_f,
    linear_to_srgb,
    srgb_to_linear,
)
from colorkit.files import atomic_path, remove_stale_temporaries
from colorkit.registry import ColorkitError

if TYPE_CHECKING:
    from colorkit.engine import Colorizer

__all__ = [
    "IMAGE_EXTENSIONS",
    "ColorizeReport",
    "ImageReadError",
    "ImageWriteError",
    "collect_inputs",
    "colorize_file",
    "colorize_paths",
    "open_image",
    "output_path",
    "read_gray",
    "recombine",
    "save_image",
]

#: File name endings recognised as images (compared case-insensitively).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")

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
    try:
        if path.stat().st_size == 0:
            raise ImageReadError(f"{path}: empty file (0 bytes), expected an image")
        with Image.open(path) as image:
            if min_size is not None and image.format == "JPEG":
                image.draft("RGB", (min_size, min_size))
            image.load()
            upright = ImageOps.exif_transpose(image)
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
    return _to_srgb(upright, path)


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


# -- reading -------------------------------------------------------------------------------
@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one thread for banded work.

    Each band is only ~2**18 pixels and goes through ~20 small operations: intra-op
    threads gain little there, and when other processes share the cores, threads that
    spin at every join make the same work ten times slower.
    """
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _luminance_tables() -> tuple[np.ndarray, ...]:
    # sRGB decoding of the 256 codes, weighted by each primary's share of Y: three table
    # look-ups and two additions replace three powers per pixel
    codes = srgb_to_linear(torch.arange(256, dtype=torch.float64) / 255.0)
    return tuple((codes * _RGB_TO_XYZ[1, c]).to(torch.float32).numpy() for c in range(3))


_LUMINANCE_TABLES = _luminance_tables()


def _gray_from_rgb8(rgb: np.ndarray) -> torch.Tensor:
    """``rgb_to_gray`` of an ``H×W×C`` uint8 array (first three channels), banded."""
    height, width = rgb.shape[:2]
    step = max(1, _BAND_PIXELS // max(width, 1))
    gray = torch.empty(height, width, dtype=torch.float32)
    luminance = np.empty((min(step, height), width), dtype=np.float32)
    scratch = np.empty_like(luminance)
    red, green, blue = _LUMINANCE_TABLES
    with _one_thread():
        for top in range(0, height, step):
            band = rgb[top : top + step]
            lum, tmp = luminance[: len(band)], scratch[: len(band)]
            np.take(red, band[..., 0], out=lum)
            np.take(green, band[..., 1], out=tmp)
            lum += tmp
            np.take(blue, band[..., 2], out=tmp)
            lum += tmp
            gray[top : top + len(band)] = linear_to_srgb(torch.from_numpy(lum)).clamp_(0.0, 1.0)
    return gray


def _scaled(values: np.ndarray, scale: float) -> torch.Tensor:
    gray = torch.empty(values.shape, dtype=torch.float32)
    np.multiply(values, np.float32(1.0 / scale), out=gray.numpy(), dtype=np.float32)
    return gray.clamp_(0.0, 1.0)


def _high_range_gray(image: Image.Image) -> torch.Tensor:
    values = np.asarray(image)
    if image.mode.startswith("I;16"):
        return _scaled(values, 65535.0)
    peak = float(values.max()) if values.size else 0.0
    if image.mode == "F":
        # floats are taken as [0, 1] intensities unless they clearly use a larger range
        return _scaled(values, max(1.0, peak))
    # 32-bit integers usually carry 16-bit data (PNG and TIFF readers); larger ranges scale
    # by their own maximum
    return _scaled(values, 65535.0 if peak <= 65535 else peak)


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
            gray = _gray_from_rgb8(values)
            if plain.mode == "RGBA":
                alpha = _scaled(values[..., 3], 255.0)
            del values
        else:
            gray = _high_range_gray(plain)
    except (OSError, ValueError) as exc:
        raise ImageReadError(f"{path}: cannot convert {image.mode} image to gray ({exc})") from None
    del plain
    gray = gray[None, None]
    return gray, None if alpha is None else alpha[None, None], image


# -- recombining ---------------------------------------------------------------------------
def _linear_taps(source: int, target: int) -> tuple[torch.Tensor, ...]:
    """Indices and weights of 1-D linear resampling, as ``F.interpolate`` (align_corners=False).

    PyTorch computes the source position ``scale * (i + 0.5) - 0.5`` in float32 with
    one rounding (a fused multiply-add); positions are rounded the same way here, since
    an error of one float32 step in a position of a few hundred is visible in ``ab``.
    """
    scale = torch.tensor(float(source), dtype=torch.float32) / target
    position = (scale.double() * (torch.arange(target, dtype=torch.float64) + 0.5) - 0.5).float()
    position.clamp_(min=0.0)
    first = position.long().clamp_(max=source - 1)
    second = (first + 1).clamp_(max=source - 1)
    weight = (position - first).clamp_(0.0, 1.0)
    return first, second, 1.0 - weight, weight


def _lab_f_inverse_(f: torch.Tensor) -> torch.Tensor:
    """The inverse of CIELAB's ``f``; overwrites ``f``."""
    linear = (f * (116.0 / _KAPPA)).sub_(16.0 / _KAPPA)
    cube = f.mul(f).mul_(f)
    return torch.where(f > _F_KNEE, cube, linear, out=f)


def _srgb8_table(size: int = 65536) -> np.ndarray:
    levels = linear_to_srgb(torch.arange(size, dtype=torch.float64) / (size - 1))
    return levels.clamp(0.0, 1.0).mul(255.0).add(0.5).to(torch.uint8).numpy()


_F_KNEE = 6.0 / 29.0  # f(t) at t = epsilon, where CIELAB's f turns from linear to cube root
_XYZ_TO_RGB_32 = _XYZ_TO_RGB.to(torch.float32)
_WHITE_32 = _WHITE_D65.to(torch.float32)
# linear light quantised to 16 bits -> 8-bit sRGB: within 0.03 of a level of the exact curve,
# for a fraction of the cost of evaluating it per channel and pixel
_SRGB8_TABLE = _srgb8_table()
_SRGB8_STEPS = float(len(_SRGB8_TABLE) - 1)
_BAND_PIXELS = 2**18  # bands this small stay in cache between the ~20 passes over them


def _band_to_rgb8(gray: torch.Tensor, ab: torch.Tensor, out: np.ndarray) -> None:
    """Write uint8 sRGB of CIELAB (L of ``gray`` (H×W), ``ab`` (2×H×W)) into ``out`` (H×W×3)."""
    luminance = srgb_to_linear(gray)
    fy = _lab_f(luminance)
    xyz = torch.empty((3, *gray.shape), dtype=torch.float32)
    torch.mul(_lab_f_inverse_(ab[0].mul(1.0 / 500.0).add_(fy)), _WHITE_32[0], out=xyz[0])
    # Y is the gray's luminance itself (Yn = 1): the same as decoding L, without the round trip
    xyz[1] = luminance
    torch.mul(_lab_f_inverse_(ab[1].mul(-1.0 / 200.0).add_(fy)), _WHITE_32[2], out=xyz[2])
    del fy
    rgb = torch.mm(_XYZ_TO_RGB_32, xyz.view(3, -1)).view_as(xyz)
    del xyz
    # Colours outside sRGB are desaturated towards their gray in linear light, just enough
    # to fit: luminance is linear in linear RGB, so it stays exactly the gray's, where
    # clipping each channel would brighten or darken them. The largest channel is never
    # below Y nor the smallest above it, so both ratios are at least 1 for colours inside.
    top, bottom = rgb.amax(0), rgb.amin(0)
    fit = (1.0 - luminance).div_(top.sub_(luminance).clamp_min_(1e-12))
    bottom.neg_().add_(luminance).clamp_min_(1e-12)
    fit = torch.minimum(fit, luminance.div(bottom)).clamp_max_(1.0)
    del top, bottom
    rgb.sub_(luminance).mul_(fit).add_(luminance)
    del fit
    levels = rgb.clamp_(0.0, 1.0).mul_(_SRGB8_STEPS).add_(0.5).to(torch.int32)
    np.take(_SRGB8_TABLE, levels.permute(1, 2, 0).numpy(), out=out)


def recombine(gray: torch.Tensor, ab: torch.Tensor, rows_per_chunk: int = 512) -> np.ndarray:
    """Full-resolution 8-bit sRGB from a gray image and low-resolution chroma.

    The result is CIELAB with ``L`` from ``gray`` (:func:`colorkit.color.gray_to_lightness`)
    and ``a``, ``b`` upsampled bilinearly from ``ab`` exactly as
    ``F.interpolate(ab, size=(H, W), mode="bilinear", align_corners=False)``. Colours
    outside the sRGB gamut are desaturated towards their own gray (in linear light)
    until they fit, so the output keeps the gray's luminance everywhere. Linear light is
    encoded to 8-bit sRGB through a 16-bit table (within 0.03 of a level of the exact
    curve). The work is done in horizontal bands: memory beyond the output is a few bands
    of float32.

    Args:
        gray: ``1×1×H×W`` gray in ``[0, 1]``.
        ab: ``1×2×h×w`` CIELAB chroma (unscaled, as :meth:`Colorizer.predict_chroma`
            returns it), on any device.
        rows_per_chunk: the most output rows per band (bands are also kept to about
            2**18 pixels, which keeps them in cache).

    Returns:
        ``H×W×3`` uint8 sRGB array.

    Raises:
        ValueError: if the shapes are not as above or ``rows_per_chunk`` is below 1.
    """
    if gray.dim() != 4 or gray.shape[:2] != (1, 1) or not gray.is_floating_point():
        raise ValueError(f"gray must be a float tensor shaped 1×1×H×W, got {tuple(gray.shape)}")
    if ab.dim() != 4 or ab.shape[:2] != (1, 2) or not ab.is_floating_point():
        raise ValueError(f"ab must be a float tensor shaped 1×2×h×w, got {tuple(ab.shape)}")
    if rows_per_chunk < 1:
        raise ValueError(f"rows_per_chunk must be at least 1, got {rows_per_chunk}")
    with torch.no_grad(), _one_thread():
        gray = gray.detach()[0, 0].to("cpu", torch.float32)
        chroma = ab.detach()[0].to("cpu", torch.float32)
        height, width = gray.shape
        # horizontal pass once at the low resolution (2×h×W, small); the vertical pass per
        # band then gives F.interpolate's separable bilinear result row for row
        left, right, left_weight, right_weight = _linear_taps(chroma.shape[2], width)
        chroma = chroma.index_select(2, left).mul_(left_weight) + chroma.index_select(
            2, right
        ).mul_(right_weight)
        upper, lower, upper_weight, lower_weight = _linear_taps(chroma.shape[1], height)
        out = np.empty((height, width, 3), dtype=np.uint8)
        step = min(rows_per_chunk, max(1, _BAND_PIXELS // width))
        for top in range(0, height, step):
            rows = slice(top, min(height, top + step))
            band = chroma.index_select(1, upper[rows]).mul_(upper_weight[rows, None])
            band += chroma.index_select(1, lower[rows]).mul_(lower_weight[rows, None])
            _band_to_rgb8(gray[rows], band, out[rows])
    return out


# -- writing -------------------------------------------------------------------------------
def _same_file(a: Path, b: Path) -> bool:
    # case-folded comparison errs on the safe side on case-insensitive file systems
    if str(a.resolve()).casefold() == str(b.resolve()).casefold():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _output_suffix(src: Path, has_alpha: bool) -> str:
    return ".png" if has_alpha else _OUTPUT_SUFFIX.get(src.suffix.lower(), ".png")


def _candidates(src: Path, out_dir: Path, has_alpha: bool) -> Iterator[Path]:
    suffix = _output_suffix(src, has_alpha)
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
    for candidate in _candidates(src, out_dir, has_alpha):
        if not _same_file(candidate, src):
            return candidate
    raise AssertionError("unreachable")  # pragma: no cover


def _exif_bytes(image: Image.Image) -> bytes | None:
    try:
        exif = image.getexif()
        # the pixels are already upright; a stale orientation would rotate them again
        exif.pop(_EXIF_ORIENTATION, None)
        return exif.tobytes() if len(exif) else None
    except Exception:  # damaged metadata must not cost the picture
        return None


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


def _colorize_to(
    model: Colorizer,
    src: Path,
    out_dir: Path,
    working_size: int,
    taken: set[str] | None = None,
) -> Path:
    gray, alpha, image = read_gray(src)
    metadata = _metadata(image)
    del image  # the decoded pixels are not needed again
    if taken is None:
        target = output_path(src, out_dir, alpha is not None)
    else:
        target = next(
            candidate
            for candidate in _candidates(src, out_dir, alpha is not None)
            if _key(candidate) not in taken and not _same_file(candidate, src)
        )
    ab = model.predict_chroma(gray, working_size=working_size)
    rgb = recombine(gray, ab)
    del gray, ab
    _write_result(rgb, alpha, metadata, target)
    return target


def colorize_file(
    model: Colorizer, src: str | Path, out_dir: str | Path, working_size: int = 256
) -> Path:
    """Colorize one image file at its full resolution.

    The networks run on the gray image resized to ``working_size``; their chroma is
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
    """

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _Input:
    path: Path
    subfolder: Path  # where its output goes, relative to the output folder
    exists: bool = True


def _key(path: Path) -> str:
    return str(path.resolve()).casefold()


def _walk_images(root: Path, exclude: Path | None) -> Iterator[Path]:
    excluded = _key(exclude) if exclude is not None else None
    for folder, subfolders, files in os.walk(root):
        # hidden entries are skipped: temporary files, and the "._name.jpg" resource forks
        # macOS leaves on shared drives, which are not images
        subfolders[:] = sorted(
            name
            for name in subfolders
            if not name.startswith(".") and _key(Path(folder, name)) != excluded
        )
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                yield Path(folder, name)


def _collect(inputs: Sequence[str | Path], exclude: Path | None = None) -> list[_Input]:
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    seen: set[str] = set()
    found: list[_Input] = []

    def add(item: _Input) -> None:
        key = _key(item.path)
        if key not in seen:
            seen.add(key)
            found.append(item)

    for given in inputs:
        path = Path(given)
        if path.is_dir():
            for file in _walk_images(path, exclude):
                add(_Input(file, file.parent.relative_to(path)))
        else:
            add(_Input(path, Path(), path.is_file()))
    return found


def collect_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """The image files named by files and folders.

    Files are taken as given, whatever their suffix; folders are searched
    recursively (in sorted order, skipping hidden entries) for files whose suffix is
    in :data:`IMAGE_EXTENSIONS`, case-insensitively. A path that does not exist is
    kept in the list, so that :func:`colorize_paths` reports it as failed. A file
    named twice is listed once.

    Args:
        inputs: files and folders.

    Returns:
        The files, in the order given.
    """
    return [item.path for item in _collect(inputs)]


def _reason(exc: BaseException, path: Path) -> str:
    message = str(exc) or type(exc).__name__
    prefix = f"{path}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def colorize_paths(
    model: Colorizer,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    working_size: int = 256,
    progress: bool = True,
) -> ColorizeReport:
    """Colorize every image named by files and folders, carrying on past bad files.

    Inputs are gathered by :func:`collect_inputs`; images found in a folder keep
    their subfolder under ``out_dir``. Each is written by :func:`colorize_file`'s
    rules, and never onto any input of the run or onto another output of the run
    (``.colorized`` or ``.colorized-2``, ... is added to the name instead). A file
    that is missing, empty, corrupt or cannot be written is recorded in
    :attr:`ColorizeReport.failed` and the others go on.

    Args:
        model: the colorization model.
        inputs: image files and folders (folders are searched recursively).
        out_dir: the output folder (created if needed; never searched as an input
            when it lies inside an input folder).
        working_size: longer side, in pixels, the networks run at.
        progress: show a progress bar on stderr.

    Returns:
        The files written and the inputs that failed, with the reason.

    Raises:
        ImageWriteError: if ``out_dir`` cannot be created.
        ValueError: if ``working_size`` is not a positive integer.
    """
    _check_working_size(working_size)
    out_dir = _output_folder(out_dir)
    items = _collect(inputs, exclude=out_dir)
    # every input is off limits as an output, and so is every output already written
    taken = {_key(item.path) for item in items}
    for folder in sorted({out_dir / item.subfolder for item in items}):
        remove_stale_temporaries(folder)
    report = ColorizeReport()
    bar = tqdm(items, desc="colorize", unit="image", file=sys.stderr, disable=not progress)
    for item in bar:
        if not item.exists:
            report.failed.append((item.path, "no such file or folder"))
            continue
        try:
            written = _colorize_to(model, item.path, out_dir / item.subfolder, working_size, taken)
        except (ColorkitError, OSError, ValueError, MemoryError) as exc:
            report.failed.append((item.path, _reason(exc, item.path)))
            continue
        taken.add(_key(written))
        report.written.append(written)
    return report
