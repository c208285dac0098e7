"""Losses. Reconstruction losses are called ``loss(prediction, target)``; adversarial
ones (``adversarial = True``) ``loss(logits, real, for_discriminator)``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from colorkit.hookspecs import hookimpl
from colorkit.registry import Component

GAN_MODES = ("vanilla", "lsgan", "hinge")


class CGANLoss(nn.Module):
    """The conditional GAN loss on discriminator logits.

    Args:
        gan_mode: ``"vanilla"`` (binary cross-entropy with logits, as in pix2pix and
            the paper), ``"lsgan"`` (least squares) or ``"hinge"``.

    Raises:
        ValueError: for another mode.
    """

    adversarial = True

    def __init__(self, gan_mode: str = "vanilla") -> None:
        super().__init__()
        if gan_mode not in GAN_MODES:
            raise ValueError(f"gan_mode must be one of {GAN_MODES}, got {gan_mode!r}")
        self.gan_mode = gan_mode

    def forward(
        self, logits: torch.Tensor, real: bool, for_discriminator: bool = True
    ) -> torch.Tensor:
        """Loss for logits that should read ``real`` (or fake).

        Args:
            logits: raw discriminator outputs, any shape.
            real: whether the target is "real".
            for_discriminator: the hinge loss differs for the discriminator and generator.
        """
        logits = logits.float()
        if self.gan_mode == "hinge":
            if not for_discriminator:
                return -logits.mean()
            return F.relu(1.0 - logits).mean() if real else F.relu(1.0 + logits).mean()
        target = torch.ones_like(logits) if real else torch.zeros_like(logits)
        if self.gan_mode == "lsgan":
            return F.mse_loss(logits, target)
        return F.binary_cross_entropy_with_logits(logits, target)


class L1Loss(nn.Module):
    """Mean absolute error between prediction and target."""

    adversarial = False

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(prediction.float(), target.float())


class L2Loss(nn.Module):
    """Mean squared error between prediction and target."""

    adversarial = False

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(prediction.float(), target.float())


@hookimpl
def colorkit_components() -> list[Component]:
    return [
        Component("loss", "cgan", CGANLoss),
        Component("loss", "l1", L1Loss),
        Component("loss", "l2", L2Loss),
    ]
