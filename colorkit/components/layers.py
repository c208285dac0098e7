"""Building blocks shared by the built-in networks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NORMS = ("batch", "instance", "none")


def norm_layer(norm: str, channels: int) -> nn.Module:
    """A 2-D normalisation layer by name: ``batch``, ``instance`` or ``none``.

    Raises:
        ValueError: for another name.
    """
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")


def pix2pix_init(module: nn.Module, std: float = 0.02) -> None:
    """The pix2pix initialisation: conv weights N(0, std), norm weights N(1, std), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


def pad_to(x: torch.Tensor, multiple: int, minimum: int = 0) -> tuple[torch.Tensor, int, int]:
    """Pad the bottom and right of ``x`` by edge replication.

    The padded height and width are multiples of ``multiple`` and at least ``minimum``.

    Returns:
        The padded tensor and the original height and width, to crop back with.
    """
    height, width = x.shape[-2:]
    target_h = max(-(-height // multiple) * multiple, minimum)
    target_w = max(-(-width // multiple) * multiple, minimum)
    if (target_h, target_w) != (height, width):
        x = F.pad(x, (0, target_w - width, 0, target_h - height), mode="replicate")
    return x, height, width
