"""Colorize photos with an exported colorkit model, without PyTorch or colorkit.

Needs only numpy, Pillow and onnxruntime (``pip install numpy pillow onnxruntime``)::

    colorkit export runs/mine/step-00020000.safetensors --format onnx -o colorkit.onnx
    python examples/onnx_colorize.py colorkit.onnx old-photo.jpg -o old-photo-colour.jpg

The graph does all the colour work at the photo's full resolution: it resizes the gray
image to the working size it was exported with, predicts the chroma there, upsamples it
onto the photo's own lightness and returns sRGB. This script only turns the file into
colorkit's gray (the sRGB-encoded luminance of a colour photo; the stored values of a
gray one) and the result back into an image file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

# sRGB primaries' shares of the luminance Y (D65), as colorkit.color uses them
_LUMINANCE = np.array([0.2126729, 0.7151522, 0.0721750])


def read_gray(path: str | Path) -> np.ndarray:
    """An image file as colorkit's gray: ``H×W`` float32 in ``[0, 1]``, upright.

    Args:
        path: the image file.

    Returns:
        The gray image.
    """
    with Image.open(path) as opened:
        image = ImageOps.exif_transpose(opened)
    if image.mode in ("L", "LA"):
        return np.asarray(image.getchannel("L"), dtype=np.float32) / 255.0
    if image.mode in ("RGBA", "PA") or "transparency" in image.info:
        # transparency composited on white, as colorkit reads it
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
    linear = np.where(
        rgb > 0.04045, ((np.maximum(rgb, 0.04045) + 0.055) / 1.055) ** 2.4, rgb / 12.92
    )
    y = linear @ _LUMINANCE
    gray = np.where(y > 0.0031308, 1.055 * np.maximum(y, 0.0031308) ** (1 / 2.4) - 0.055, 12.92 * y)
    return np.clip(gray, 0.0, 1.0).astype(np.float32)


def colorize(session: ort.InferenceSession, gray: np.ndarray) -> np.ndarray:
    """Colorize one gray image with the exported graph.

    Args:
        session: an onnxruntime session of the exported file.
        gray: ``H×W`` float32 in ``[0, 1]``.

    Returns:
        ``H×W×3`` uint8 sRGB with the gray image's lightness.
    """
    (rgb,) = session.run(["rgb"], {"gray": gray[None, None]})
    return (rgb[0].transpose(1, 2, 0) * 255.0 + 0.5).astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    """Colorize the files named on the command line.

    Args:
        argv: ``MODEL INPUT -o OUTPUT``; ``sys.argv[1:]`` if ``None``.

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the .onnx file `colorkit export --format onnx` wrote")
    parser.add_argument("input", help="an image file (JPEG, PNG, ...)")
    parser.add_argument("-o", "--out", required=True, help="the image file to write")
    args = parser.parse_args(argv)
    try:
        session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        print(f"error: {args.model}: cannot load the model ({exc})", file=sys.stderr)
        return 2
    try:
        gray = read_gray(args.input)
    except OSError as exc:
        print(f"error: {args.input}: cannot read the image ({exc})", file=sys.stderr)
        return 2
    out = Path(args.out)
    kind = Image.registered_extensions().get(out.suffix.lower())
    if kind is None:
        print(f"error: {out}: unknown image type {out.suffix!r}", file=sys.stderr)
        return 2
    rgb = colorize(session, gray)
    # written beside the target, then renamed: a failed save leaves no half-written file
    temporary = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        Image.fromarray(rgb).save(temporary, format=kind, quality=95)
        os.replace(temporary, out)
    except (OSError, ValueError, KeyError) as exc:
        temporary.unlink(missing_ok=True)
        print(f"error: {out}: cannot write the image ({exc})", file=sys.stderr)
        return 2
    working = json.loads(session.get_modelmeta().custom_metadata_map.get("working_size", "null"))
    print(f"{args.input} -> {out} ({gray.shape[1]}×{gray.shape[0]}, networks at {working} px)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
