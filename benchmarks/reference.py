"""The reference way: pix2pix training and inference as pix2pix's own code runs them.

This is the baseline row of ``test_speed.py``. It uses colorkit's own networks, built
by :func:`colorkit.build` exactly as colorkit builds them (same layers, same
initialisation), and runs them the way the reference pix2pix implementation does:

* fp32, NCHW (the default memory format), eager mode, no autocast;
* ``torch.optim.Adam`` with its default implementation, ``optimizer.zero_grad()``;
* separate discriminator and generator steps, in pix2pix's order (``backward_D`` on
  fake then real, then ``backward_G`` with cGAN + 100·L1), the discriminator's
  gradients switched off for the generator step;
* a trainable refiner (the MLP Improver) gets its own step the same way;
* every loss read back with ``.item()`` every step, as pix2pix's loss logging does;
* inference: ``model.eval()`` and ``torch.no_grad()``.

Only the way of running differs from colorkit's engine, never the work: the same
losses, the same weights, the same colour encoding.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import colorkit
from colorkit.color import AB_SCALE, L_SCALE, rgb_to_lab

__all__ = ["ReferencePix2Pix", "reference_inference"]


def _set_requires_grad(net: nn.Module, flag: bool) -> None:
    for param in net.parameters():
        param.requires_grad = flag


class ReferencePix2Pix:
    """A plain pix2pix training loop over colorkit's modules.

    Args:
        recipe: ``"pix2pix"`` or ``"pix2pix+mlp"`` (any recipe with a discriminator and
            cGAN + L1 losses).
        device: where to run.
        **overrides: passed to :func:`colorkit.build` (e.g. smaller networks).
    """

    def __init__(self, recipe: str = "pix2pix", device: Any = "cpu", **overrides: Any) -> None:
        model = colorkit.build(recipe, fast=False, **overrides).to(device)
        if model.discriminator is None:
            raise ValueError(f"the reference loop needs a discriminator; {recipe!r} has none")
        self.device = torch.device(device)
        self.netG = model.generator
        self.netD = model.discriminator
        self.netR = model.refiner if any(True for _ in model.refiner.parameters()) else None
        self.lambda_l1 = float(model.recipe.generator_losses.get("l1", 100.0))
        lr, betas = model.recipe.lr, model.recipe.betas
        self.optimizer_G = torch.optim.Adam(self.netG.parameters(), lr=lr, betas=betas)
        self.optimizer_D = torch.optim.Adam(self.netD.parameters(), lr=lr, betas=betas)
        self.optimizer_R = (
            torch.optim.Adam(self.netR.parameters(), lr=lr, betas=betas)
            if self.netR is not None
            else None
        )
        self.criterionGAN = nn.BCEWithLogitsLoss()
        self.criterionL1 = nn.L1Loss()

    def _gan(self, prediction: torch.Tensor, real: bool) -> torch.Tensor:
        target = torch.ones_like(prediction) if real else torch.zeros_like(prediction)
        return self.criterionGAN(prediction, target)

    def set_input(self, rgb: torch.Tensor) -> None:
        """Split an RGB batch into L (``real_A``) and ab (``real_B``), scaled to [-1, 1]."""
        lab = rgb_to_lab(rgb.to(self.device))
        self.real_A = lab[:, :1] / L_SCALE - 1.0
        self.real_B = lab[:, 1:] / AB_SCALE

    def optimize_parameters(self, rgb: torch.Tensor) -> dict[str, float]:
        """One training iteration; returns every loss as a Python float."""
        for net in (self.netG, self.netD, self.netR):
            if net is not None:
                net.train()
        self.set_input(rgb)
        self.fake_B = self.netG(self.real_A)

        # backward_D
        _set_requires_grad(self.netD, True)
        self.optimizer_D.zero_grad()
        pred_fake = self.netD(torch.cat((self.real_A, self.fake_B.detach()), 1))
        loss_D_fake = self._gan(pred_fake, False)
        pred_real = self.netD(torch.cat((self.real_A, self.real_B), 1))
        loss_D_real = self._gan(pred_real, True)
        loss_D = (loss_D_fake + loss_D_real) * 0.5
        loss_D.backward()
        self.optimizer_D.step()

        # backward_G
        _set_requires_grad(self.netD, False)
        self.optimizer_G.zero_grad()
        pred_fake = self.netD(torch.cat((self.real_A, self.fake_B), 1))
        loss_G_GAN = self._gan(pred_fake, True)
        loss_G_L1 = self.criterionL1(self.fake_B, self.real_B) * self.lambda_l1
        loss_G = loss_G_GAN + loss_G_L1
        loss_G.backward()
        self.optimizer_G.step()

        losses = {
            "D_fake": loss_D_fake.item(),
            "D_real": loss_D_real.item(),
            "G_GAN": loss_G_GAN.item(),
            "G_L1": loss_G_L1.item(),
        }
        if self.netR is not None and self.optimizer_R is not None:
            # the Improver: the same cGAN + L1 objective on the refined prediction
            self.optimizer_R.zero_grad()
            refined = self.netR(self.fake_B.detach(), self.real_A)
            pred_refined = self.netD(torch.cat((self.real_A, refined), 1))
            loss_R_GAN = self._gan(pred_refined, True)
            loss_R_L1 = self.criterionL1(refined, self.real_B) * self.lambda_l1
            loss_R = loss_R_GAN + loss_R_L1
            loss_R.backward()
            self.optimizer_R.step()
            losses.update(R_GAN=loss_R_GAN.item(), R_L1=loss_R_L1.item())
        _set_requires_grad(self.netD, True)
        return losses


def reference_inference(
    generator: nn.Module, condition: torch.Tensor, refiner: nn.Module | None = None
) -> torch.Tensor:
    """Run a generator (and refiner) the reference way: eval mode, ``no_grad``, fp32.

    Args:
        generator: the generator.
        condition: ``B×1×H×W`` scaled lightness.
        refiner: an optional refiner applied to the generator's output.

    Returns:
        The prediction.
    """
    generator.eval()
    with torch.no_grad():
        prediction = generator(condition)
        if refiner is not None:
            refiner.eval()
            prediction = refiner(prediction, condition)
    return prediction
