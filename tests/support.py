"""Tiny models and test images shared by the test modules (imported as ``support``)."""

from __future__ import annotations

import math
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

import colorkit
from colorkit.color import rgb_to_gray
from colorkit.registry import default_registry

#: Overrides that make every built-in recipe small enough for a unit test.
TINY: dict[str, Any] = {
    "generator_depth": 3,
    "base_channels": 8,
    "refiner_hidden": 16,
    "refiner_patch": 4,
}


def smooth_batch(height: int = 32, width: int = 32) -> torch.Tensor:
    """Two smooth, saturated colour images, ``2×3×height×width`` in ``[0, 1]``.

    Made from ramps and a sine, without random numbers, so every test sees the same pixels.
    """
    y, x = torch.meshgrid(
        torch.linspace(0.0, 1.0, height), torch.linspace(0.0, 1.0, width), indexing="ij"
    )
    first = torch.stack([0.15 + 0.7 * x, 0.25 + 0.5 * y, 0.85 - 0.6 * x * y])
    second = torch.stack(
        [0.85 - 0.6 * y, 0.2 + 0.6 * x * (1 - y), 0.3 + 0.4 * torch.sin(math.pi * x)]
    )
    return torch.stack([first, second])


def tiny_overrides(recipe: str = "pix2pix+mlp", **overrides: Any) -> dict[str, Any]:
    """:data:`TINY` reduced to what the recipe's components take, merged with ``overrides``.

    The components are those of the recipe after ``overrides`` (so ``refiner="conv"``
    or ``discriminator=None`` get fitting sizes).
    """
    registry = default_registry()
    base = registry.create("recipe", recipe)
    parts = {
        part: overrides.get(part, getattr(base, part))
        for part in ("generator", "discriminator", "refiner")
    }

    def takes(part: str, option: str) -> bool:
        name = parts[part]
        return name is not None and option in registry.get(part, name).options()

    chosen: dict[str, Any] = {}
    if takes("generator", "depth"):
        chosen["generator_depth"] = TINY["generator_depth"]
    for part in ("generator", "discriminator"):
        if takes(part, "base_channels"):
            chosen[f"{part}_base_channels"] = TINY["base_channels"]
    for option in ("hidden", "patch"):
        if takes("refiner", option):
            chosen[f"refiner_{option}"] = TINY[f"refiner_{option}"]
    return {**chosen, **overrides}


def build_tiny(recipe: str = "pix2pix+mlp", seed: int = 0, **overrides: Any) -> colorkit.Colorizer:
    """A tiny model of a recipe, built after seeding torch's generator."""
    torch.manual_seed(seed)
    return colorkit.build(recipe, **tiny_overrides(recipe, **overrides))


def linear_rgb_icc() -> bytes:
    """An ICC v2 display profile: sRGB's primaries and white, but a linear tone curve.

    Pixel values tagged with it are linear light, so 128 means what sRGB writes as 188:
    a profile that visibly differs from sRGB, built here because no profile file can
    be fetched.
    """

    def s15(value: float) -> bytes:
        return struct.pack(">i", round(value * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + bytes(4) + s15(x) + s15(y) + s15(z)

    text = b"linear sRGB\0"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(4 + 4 + 2 + 1 + 67)
    linear = b"curv" + bytes(4) + struct.pack(">I", 0)  # no entries: the identity curve
    tags = [
        (b"desc", desc),
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.4361, 0.2225, 0.0139)),
        (b"gXYZ", xyz(0.3851, 0.7169, 0.0971)),
        (b"bXYZ", xyz(0.1431, 0.0606, 0.7141)),
        (b"rTRC", linear),
        (b"gTRC", linear),
        (b"bTRC", linear),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, data = [struct.pack(">I", len(tags))], []
    for signature, body in tags:
        body += bytes(-len(body) % 4)
        table.append(signature + struct.pack(">II", offset, len(body)))
        data.append(body)
        offset += len(body)
    header = bytearray(128)
    header[0:4] = struct.pack(">I", offset)
    header[8:12] = bytes([2, 0x10, 0, 0])
    header[12:24] = b"mntrRGB XYZ "
    header[36:40] = b"acsp"
    header[68:80] = s15(0.9642) + s15(1.0) + s15(0.8249)
    return bytes(header) + b"".join(table) + b"".join(data)


def dead_pid() -> int:
    """The id of a process that has exited (and been reaped): a killed writer's."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)


# -- made-up image files ----------------------------------------------------------------------
WIDTH, HEIGHT = 37, 23  # odd sizes, wider than tall, so a transposition shows


def colour_pixels(width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """A ``height×width×3`` uint8 picture: smooth ramps plus a fine, fixed texture."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = x / max(width - 1, 1), y / max(height - 1, 1)
    texture = 0.08 * np.sin(1.7 * x + 0.9 * y)
    rgb = np.stack(
        [0.1 + 0.8 * u + texture, 0.2 + 0.6 * v - texture, 0.9 - 0.7 * u * v + texture], axis=-1
    )
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)


def alpha_pixels(width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return ((x * 7 + y * 11) % 256).astype(np.uint8)


def gray_of(rgb: np.ndarray) -> np.ndarray:
    """Reference gray of 8-bit RGB: :func:`colorkit.color.rgb_to_gray`."""
    tensor = torch.from_numpy(np.array(rgb[..., :3])).permute(2, 0, 1)[None]
    return rgb_to_gray(tensor.double() / 255.0)[0, 0].numpy()


def output_gray(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return gray_of(np.asarray(image.convert("RGB")))


def make_l(tmp: Path) -> tuple[Path, np.ndarray, np.ndarray | None]:
    values = colour_pixels()[..., 1]
    Image.fromarray(values).save(tmp / "l.png")
    return tmp / "l.png", values / 255.0, None


def make_la(tmp: Path) -> tuple[Path, np.ndarray, np.ndarray | None]:
    values, alpha = colour_pixels()[..., 0], alpha_pixels()
    Image.fromarray(np.stack([values, alpha], axis=-1), "LA").save(tmp / "la.png")
    return tmp / "la.png", values / 255.0, alpha


def make_rgb(tmp: Path) -> tuple[Path, np.ndarray, np.ndarray | None]:
    rgb = colour_pixels()
    Image.fromarray(rgb).save(tmp / "rgb.png")
    return tmp / "rgb.png", gray_of(rgb), None


def make_rgba(tmp: Path) -> tuple[Path, np.ndarray, np.ndarray | None]:
    rgb, alpha = colour_pixels(), alpha_pixels()
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp / "rgba.png")
    return tmp / "rgba.png", gray_of(rgb), alpha


def make_p(tmp: Path) -> tuple[Path, np.ndarray, np.ndarray | None]:
    image = Image.fromarray(colour_pixels()).quantize(colors=32)
    image.save(tmp / "p.png")
    return tmp / "p.png", gray_of(np.asarray(image.convert("RGB"))), None


def make_p_transparent(tmp: Path) -> tuple[Path, np.ndarray, np.ndarray | None]:
    image = Image.fromarray(colour_pixels()).quantize(colors=32)
    image.info["transparency"] = 3
    image.save(tmp / "pt.png", transparency=3)
    alpha = np.where(np.asarray(image) == 3, 0, 255).astype(np.uint8)
    assert 0 < (alpha == 0).sum() < alpha.size  # both kinds of pixel are present
    return tmp / "pt.png", gray_of(np.asarray(image.convert("RGB"))), alpha


def make_i16(tmp: Path) -> tuple[Path, np.ndarray, np.ndarray | None]:
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    values = (x * 1700 + y * 97 + 13).astype(np.uint16)
    Image.fromarray(values).save(tmp / "i16.png")
    with Image.open(tmp / "i16.png") as image:
        assert image.mode.startswith("I")
    return tmp / "i16.png", values / 65535.0, None


def make_cmyk(tmp: Path) -> tuple[Path, np.ndarray, np.ndarray | None]:
    image = Image.fromarray(colour_pixels()).convert("CMYK")
    image.save(tmp / "cmyk.tif")
    return tmp / "cmyk.tif", gray_of(np.asarray(image.convert("RGB"))), None


def make_exif_rotated(tmp: Path) -> tuple[Path, np.ndarray, np.ndarray | None]:
    rgb = colour_pixels()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: viewers rotate 90° clockwise
    exif[0x010F] = "Colorkit Test Camera"  # Make: metadata worth keeping
    Image.fromarray(rgb).save(tmp / "rotated.png", exif=exif)
    upright = np.rot90(rgb, k=-1)
    return tmp / "rotated.png", gray_of(upright), None


def make_jpeg(tmp: Path) -> tuple[Path, np.ndarray, np.ndarray | None]:
    Image.fromarray(colour_pixels()).save(tmp / "photo.jpg", quality=95)
    with Image.open(tmp / "photo.jpg") as image:
        decoded = np.asarray(image)
    return tmp / "photo.jpg", gray_of(decoded), None


MODES: dict[str, Callable[[Path], tuple[Path, np.ndarray, np.ndarray | None]]] = {
    "L": make_l,
    "LA": make_la,
    "RGB": make_rgb,
    "RGBA": make_rgba,
    "P": make_p,
    "P-transparency": make_p_transparent,
    "I;16": make_i16,
    "CMYK": make_cmyk,
    "EXIF-rotated": make_exif_rotated,
    "JPEG": make_jpeg,
}


def color_array(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth colour image (survives JPEG) with a seed-dependent tint."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    tint = rng.uniform(0.3, 1.0, size=3)
    red = 255 * tint[0] * x / max(width - 1, 1)
    green = 255 * tint[1] * y / max(height - 1, 1)
    blue = 255 * tint[2] * (1 - x / max(width - 1, 1))
    return np.stack([red, green, blue], axis=-1).round().astype(np.uint8)


def noise_array(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def save(path: Path, image: Image.Image, **options: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **options)
    return path


def save_rgb(path: Path, height: int = 24, width: int = 32, seed: int = 0, **options) -> Path:
    return save(path, Image.fromarray(color_array(height, width, seed)), **options)


def truncated_jpeg(path: Path) -> Path:
    # large enough that the scan's reduced-scale JPEG decoding is in play
    full = path.with_name("full_" + path.name)
    save(full, Image.fromarray(noise_array(256, 256)), quality=95)
    data = full.read_bytes()
    full.unlink()
    path.write_bytes(data[: len(data) // 2])
    return path


def exif_rotated_jpeg(path: Path, width: int = 40, height: int = 20) -> Path:
    """Stored left red / right blue; EXIF orientation 6 says "rotate 90° clockwise to view"."""
    array = np.zeros((height, width, 3), dtype=np.uint8)
    array[:, : width // 2] = (220, 20, 20)
    array[:, width // 2 :] = (20, 20, 220)
    exif = Image.Exif()
    exif[0x0112] = 6
    return save(path, Image.fromarray(array), exif=exif, quality=95)


def make_mixed_folder(tmp_path: Path) -> Path:
    """A folder of good, bad and grayscale files of many formats and modes."""
    root = tmp_path / "photos"
    save_rgb(root / "a.jpg", seed=1)
    save_rgb(root / "B.PNG", seed=2)
    save_rgb(root / "nested" / "c.webp", seed=3)
    save_rgb(root / "nested" / "deeper" / "d.bmp", seed=4)
    save_rgb(root / "nested" / "e.TIFF", seed=5)
    save_rgb(root / "f.JPEG", seed=6)
    save(root / "rgba.png", Image.fromarray(color_array(24, 32, 7)).convert("RGBA"))
    save(root / "palette.png", Image.fromarray(color_array(24, 32, 8)).convert("P"))
    save(root / "cmyk.jpg", Image.fromarray(color_array(24, 32, 9)).convert("CMYK"))
    exif_rotated_jpeg(root / "rotated.jpg")
    # grayscale sources
    gray = color_array(24, 32, 10)[..., 0]
    save(root / "gray_l.jpg", Image.fromarray(gray, "L"))
    save(root / "gray_rgb.jpg", Image.fromarray(np.stack([gray] * 3, axis=-1)))
    save(root / "gray_l.png", Image.fromarray(gray, "L"))
    save(root / "gray16.png", Image.fromarray(gray.astype(np.uint16) * 257))
    # unreadable files
    (root / "empty.jpg").write_bytes(b"")
    truncated_jpeg(root / "truncated.jpg")
    (root / "notes.png").write_text("not an image at all\n")
    # ignored: hidden file, hidden folder, other extensions
    save_rgb(root / ".hidden.jpg")
    save_rgb(root / ".cache" / "thumb.jpg")
    (root / "readme.txt").write_text("hello")
    save_rgb(root / "anim.gif")
    return root


#: What :func:`make_mixed_folder` holds, by kind.
USABLE = {
    "a.jpg",
    "B.PNG",
    "nested/c.webp",
    "nested/deeper/d.bmp",
    "nested/e.TIFF",
    "f.JPEG",
    "rgba.png",
    "palette.png",
    "cmyk.jpg",
    "rotated.jpg",
}
GRAYSCALE = {"gray_l.jpg", "gray_rgb.jpg", "gray_l.png", "gray16.png"}
CORRUPT = {"empty.jpg", "truncated.jpg", "notes.png"}


def moving_frames(count: int, height: int, width: int, colour: bool = False) -> list[np.ndarray]:
    """``count`` 8-bit RGB frames of a smooth textured pattern drifting right and down.

    Gray (R = G = B) unless ``colour``; made without random numbers.
    """
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for index in range(count):
        u, v = x - 1.5 * index, y - 0.5 * index
        level = 128 + 60 * np.sin(u / 5.0) * np.cos(v / 7.0) + 30 * np.sin((u + v) / 11.0)
        gray = np.clip(level, 0, 255).astype(np.uint8)
        rgb = np.repeat(gray[..., None], 3, axis=2)
        if colour:
            rgb[..., 0] = np.clip(level + 50, 0, 255).astype(np.uint8)
            rgb[..., 2] = np.clip(level * 0.5, 0, 255).astype(np.uint8)
        frames.append(np.ascontiguousarray(rgb))
    return frames


def make_video(
    path: Path,
    frames: list[np.ndarray],
    rate: int = 10,
    codec: str = "libx264",
    timestamps: list[int] | None = None,
    audio: bool = False,
    subtitles: str | None = None,
) -> Path:
    """Write frames as a video with PyAV: ``codec`` at ``rate`` frames per second.

    ``timestamps`` (in 1/1000 s) give each frame its own time, for a variable rate;
    ``audio`` adds a mono AAC track as long as the video; ``subtitles`` is the text of an
    SRT file whose cues are muxed as a subtitle stream.
    """
    import fractions

    import av

    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=rate)
        video.width, video.height = width, height
        video.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        time_base = fractions.Fraction(1, 1000) if timestamps else fractions.Fraction(1, rate)
        video.time_base = video.codec_context.time_base = time_base
        sound = None
        if audio:
            sound = container.add_stream("aac", rate=8000)
            sound.layout = "mono"
        srt_input = srt_stream = None
        if subtitles is not None:
            srt_path = path.with_suffix(".srt")
            srt_path.write_text(subtitles)
            srt_input = av.open(str(srt_path))
            srt_stream = container.add_stream_from_template(srt_input.streams[0])
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = timestamps[index] if timestamps else index
            frame.time_base = time_base
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None:
            samples = round(8000 * len(frames) / rate)
            tone = (0.2 * np.sin(np.arange(samples) * 0.3)).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = tone[start : start + 1024][None]
                piece = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                piece.sample_rate, piece.pts = 8000, start
                container.mux(sound.encode(piece))
            container.mux(sound.encode(None))
        if srt_input is not None:
            for packet in srt_input.demux(srt_input.streams[0]):
                if packet.dts is not None:
                    packet.stream = srt_stream
                    container.mux(packet)
            srt_input.close()
    return path


def read_video(path: Path) -> tuple[list[np.ndarray], list[float], str]:
    """The RGB frames of a video file, their times in seconds, and its pixel format."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pixel_format = stream.codec_context.pix_fmt
        frames, times = [], []
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(float(frame.pts * frame.time_base))
        return frames, times, pixel_format
