"""Discriminators: judge (condition, colour) pairs as real or generated."""

from __future__ import annotations

import torch
from torch import nn

from colorkit.components.layers import norm_layer, pad_to, pix2pix_init
from colorkit.hookspecs import hookimpl
from colorkit.registry import Component


def _downsampling_stack(
    in_channels: int, base_channels: int, n_layers: int, norm: str
) -> tuple[list[nn.Module], int]:
    bias = norm == "none"
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, base_channels, 4, 2, 1),
        nn.LeakyReLU(0.2, inplace=True),
    ]
    channels = base_channels
    for n in range(1, n_layers):
        out = base_channels * min(2**n, 8)
        layers += [
            nn.Conv2d(channels, out, 4, 2, 1, bias=bias),
            norm_layer(norm, out),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        channels = out
    return layers, channels


class PatchGAN(nn.Module):
    """The pix2pix PatchGAN: one real/fake logit per overlapping image patch.

    With ``n_layers=3`` each output logit sees a 70×70 receptive field. The
    condition is concatenated to the colour channels by the engine, so
    ``in_channels`` counts both. Inputs too small for the stack are padded.

    Args:
        in_channels: condition plus colour channels (3 for L + ab).
        base_channels: channels of the first layer.
        n_layers: stride-2 layers; sets the patch size (3 → 70×70).
        norm: ``"batch"`` (pix2pix), ``"instance"`` or ``"none"``.
    """

    def __init__(
        self, in_channels: int = 3, base_channels: int = 64, n_layers: int = 3, norm: str = "batch"
    ) -> None:
        super().__init__()
        layers, channels = _downsampling_stack(in_channels, base_channels, n_layers, norm)
        out = base_channels * min(2**n_layers, 8)
        layers += [
            nn.Conv2d(channels, out, 4, 1, 1, bias=norm == "none"),
            norm_layer(norm, out),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(out, 1, 4, 1, 1),
        ]
        self.net = nn.Sequential(*layers)
        self.min_size = 3 * 2**n_layers  # two 4×4 stride-1 convs each remove a pixel
        pix2pix_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, _, _ = pad_to(x, 1, self.min_size)
        return self.net(x)


class GlobalDiscriminator(nn.Module):
    """One real/fake logit per image: a strided conv stack, global average pool, linear.

    Args:
        in_channels: condition plus colour channels.
        base_channels: channels of the first layer.
        n_layers: stride-2 layers before pooling.
        norm: ``"batch"``, ``"instance"`` or ``"none"``.
    """

    def __init__(
        self, in_channels: int = 3, base_channels: int = 64, n_layers: int = 5, norm: str = "batch"
    ) -> None:
        super().__init__()
        layers, channels = _downsampling_stack(in_channels, base_channels, n_layers, norm)
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, 1)
        self.min_size = 2 ** (n_layers + 1)  # the last normalised map keeps 2×2 statistics
        pix2pix_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, _, _ = pad_to(x, 1, self.min_size)
        return self.head(self.features(x).mean(dim=(2, 3)))


@hookimpl
def colorkit_components() -> list[Component]:
    return [
        Component("discriminator", "patchgan", PatchGAN),
        Component("discriminator", "global", GlobalDiscriminator),
    ]
