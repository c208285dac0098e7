"""Shared fixtures: tiny model settings and a smooth colour test batch."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import colorkit
from colorkit.registry import default_registry

# The tests run tiny tensors, where intra-op threads cost more than they give and,
# when other processes share the cores, spin-waiting threads slow steps down tenfold.
torch.set_num_threads(1)

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


@pytest.fixture
def tiny() -> Callable[..., colorkit.Colorizer]:
    """:func:`build_tiny`: ``tiny("pix2pix", seed=0, **overrides)``."""
    return build_tiny


@pytest.fixture
def rgb_batch() -> torch.Tensor:
    """:func:`smooth_batch` at 32×32."""
    return smooth_batch()


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """A folder of six small colour PNG "photos" (ramps plus seeded noise)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 48, dtype=np.float32)
    for i in range(6):
        channels = [
            np.add.outer(ramp, ramp) / 2,
            np.tile(ramp, (48, 1)),
            rng.uniform(0, 255, (48, 48)),
        ]
        image = np.stack(channels, axis=-1).astype(np.uint8)
        Image.fromarray(image).save(folder / f"photo{i}.png")
    return folder
