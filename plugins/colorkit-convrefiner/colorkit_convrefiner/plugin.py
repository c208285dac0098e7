"""The plugin module: a refiner and a recipe that uses it.

colorkit imports this module through the ``convrefiner`` entry point of the
``colorkit`` group and calls its :func:`colorkit_components` hook.
"""

from __future__ import annotations

import torch
from torch import nn

import colorkit
from colorkit import Component, Recipe


class ConvRefiner(nn.Module):
    """A small residual CNN refiner: 3×3 convolutions on (prediction, condition).

    The prediction and the condition are concatenated and passed through ``layers``
    3×3 convolutions (``hidden`` channels, ReLU between them); the result is added
    to the prediction. The last convolution starts at zero, so a new refiner is the
    identity and training starts from the generator's output. Padding keeps the
    size, so any height and width work.

    Args:
        channels: channels of the prediction (2 for ab, 3 for RGB); set by the engine.
        cond_channels: channels of the condition (1 for gray); set by the engine.
        hidden: channels of the hidden convolutions.
        layers: number of 3×3 convolutions, the last one included.

    Raises:
        ValueError: if ``hidden`` or ``layers`` is below 1.
    """

    def __init__(
        self, channels: int = 2, cond_channels: int = 1, hidden: int = 32, layers: int = 3
    ) -> None:
        super().__init__()
        if hidden < 1:
            raise ValueError(f"hidden must be at least 1, got {hidden}")
        if layers < 1:
            raise ValueError(f"layers must be at least 1, got {layers}")
        blocks: list[nn.Module] = []
        in_ch = channels + cond_channels
        for _ in range(layers - 1):
            blocks += [nn.Conv2d(in_ch, hidden, 3, padding=1), nn.ReLU(inplace=True)]
            in_ch = hidden
        last = nn.Conv2d(in_ch, channels, 3, padding=1)
        # a zero correction at the start: the refiner cannot make the generator worse
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*blocks, last)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Refine a prediction.

        Args:
            x: ``B×channels×H×W`` prediction of the generator.
            cond: ``B×cond_channels×H×W`` condition (the gray input).

        Returns:
            The refined prediction, shaped like ``x``.
        """
        return x + self.net(torch.cat([x, cond], dim=1))


CONV_RECIPE = Recipe(
    refiner="conv",
    description="pix2pix followed by a residual 3×3-conv refiner, both trained with cGAN + 100·L1",
)


@colorkit.hookimpl
def colorkit_components() -> list[Component]:
    """The components this plugin adds to colorkit's registry.

    Returns:
        The ``conv`` refiner and the ``pix2pix+conv`` recipe.
    """
    return [
        Component("refiner", "conv", ConvRefiner),
        Component("recipe", "pix2pix+conv", CONV_RECIPE),
    ]
