"""Tiny models and test images shared by the test modules (imported as ``support``)."""

from __future__ import annotations

import math
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
