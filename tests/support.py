"""Tiny models and test images shared by the test modules (imported as ``support``)."""

from __future__ import annotations

import math
import struct
import subprocess
import sys
from typing import Any

import torch

import colorkit
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
