"""Reading photographs of any mode into colorkit's tensors, and writing results."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from colorkit.registry import ColorkitError

__all__ = ["ImageReadError", "open_image"]


class ImageReadError(ColorkitError, OSError):
    """A file that could not be read as an image."""


def open_image(path: str | Path) -> Image.Image:
    """Open and fully decode an image file, upright (EXIF orientation applied).

    Args:
        path: the file.

    Returns:
        The decoded PIL image in its own mode.

    Raises:
        ImageReadError: naming the file, if it is missing, empty, not an image,
            truncated, or declares more pixels than PIL's decompression-bomb limit.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageReadError(f"{path}: empty file (0 bytes), expected an image")
        with Image.open(path) as image:
            image.load()
            return ImageOps.exif_transpose(image)
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
