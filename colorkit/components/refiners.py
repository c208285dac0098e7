"""Refiners: post-process the generator's colour prediction."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from colorkit.components.layers import pad_to
from colorkit.hookspecs import hookimpl
from colorkit.registry import Component


class MLPImprover(nn.Module):
    """The paper's Improver: a patch-wise MLP denoiser with a residual connection.

    The prediction and the gray condition are cut into non-overlapping
    ``patch×patch`` patches (with einops); a fully connected network
    (input → hidden → output) maps each flattened patch to a correction that is
    added to the prediction. The last layer starts at zero, so a new Improver is
    the identity and training starts from the generator's output.

    Args:
        channels: channels of the prediction (2 for ab, 3 for RGB).
        cond_channels: channels of the condition (1 for gray).
        patch: patch side in pixels.
        hidden: width of the hidden layer.

    Raises:
        ValueError: if ``patch`` or ``hidden`` is below 1.
    """

    def __init__(
        self, channels: int = 2, cond_channels: int = 1, patch: int = 8, hidden: int = 256
    ) -> None:
        super().__init__()
        if patch < 1 or hidden < 1:
            raise ValueError(f"patch and hidden must be positive, got {patch} and {hidden}")
        self.patch = patch
        self.channels = channels
        self.mlp = nn.Sequential(
            nn.Linear((channels + cond_channels) * patch * patch, hidden),
            nn.GELU(),
            nn.Linear(hidden, channels * patch * patch),
        )
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        both, height, width = pad_to(torch.cat([x, cond], dim=1), self.patch)
        p = self.patch
        patches = rearrange(both, "b c (h p1) (w p2) -> b h w (c p1 p2)", p1=p, p2=p)
        correction = rearrange(
            self.mlp(patches), "b h w (c p1 p2) -> b c (h p1) (w p2)", p1=p, p2=p
        )
        return x + correction[..., :height, :width]


class Identity(nn.Module):
    """No refinement: returns the generator's prediction unchanged.

    Args:
        channels: channels of the prediction (accepted for the refiner interface; unused).
        cond_channels: channels of the condition (unused).
    """

    def __init__(self, channels: int = 2, cond_channels: int = 1) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return x


@hookimpl
def colorkit_components() -> list[Component]:
    return [
        Component("refiner", "mlp", MLPImprover),
        Component("refiner", "identity", Identity),
    ]
