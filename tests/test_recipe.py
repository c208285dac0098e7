"""Recipes: overrides reach the right fields and options; inconsistent recipes are refused."""

from __future__ import annotations

import pytest
import torch
from support import build_tiny, tiny_overrides
from torch import nn

import colorkit
from colorkit import InvalidOptionError, Recipe
from colorkit.color import rgb_to_gray
from colorkit.components.generators import TimmUNet


def test_override_refiner_patch() -> None:
    model = build_tiny("pix2pix+mlp", refiner_patch=8)
    assert model.refiner.patch == 8
    assert model.recipe.refiner_options["patch"] == 8
    assert model.overrides["refiner_patch"] == 8


def test_override_base_channels_reaches_generator_and_discriminator() -> None:
    torch.manual_seed(0)
    model = colorkit.build("pix2pix", generator_depth=3, base_channels=4)
    assert model.recipe.generator_options == {"depth": 3, "base_channels": 4}
    assert model.recipe.discriminator_options == {"base_channels": 4}
    assert model.generator.down[0][0].out_channels == 4
    assert model.discriminator.net[0].out_channels == 4


def test_override_part_option_beats_bare_name() -> None:
    model = build_tiny("pix2pix", discriminator_n_layers=2, discriminator_base_channels=4)
    assert model.recipe.discriminator_options == {"base_channels": 4, "n_layers": 2}
    assert model.recipe.generator_options["base_channels"] == 8
    convs = [m for m in model.discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 4  # n_layers stride-2 convs + two stride-1 convs


def test_override_generator_to_timm_unet(rgb_batch: torch.Tensor) -> None:
    model = build_tiny("pix2pix", generator="timm-unet", encoder="resnet18")
    assert isinstance(model.generator, TimmUNet)
    assert model.recipe.generator == "timm-unet"
    assert model.recipe.generator_options == {"encoder": "resnet18"}  # the U-Net's are dropped
    metrics = model.train_step(rgb_batch)
    assert torch.isfinite(metrics["g"])
    assert model.colorize(rgb_to_gray(rgb_batch)).shape == rgb_batch.shape


def test_override_without_discriminator(rgb_batch: torch.Tensor) -> None:
    model = build_tiny("pix2pix+mlp", discriminator=None, generator_losses={"l1": 1.0})
    assert model.discriminator is None
    assert set(model.optimizers) == {"generator", "refiner"}
    assert set(model.train_step(rgb_batch)) == {"g", "g_l1", "r", "r_l1"}


def test_override_norm_reaches_generator_and_discriminator() -> None:
    model = build_tiny("pix2pix", norm="instance")
    assert model.recipe.generator_options["norm"] == "instance"
    assert model.recipe.discriminator_options["norm"] == "instance"
    for part in (model.generator, model.discriminator):
        kinds = {type(m) for m in part.modules()}
        assert nn.InstanceNorm2d in kinds and nn.BatchNorm2d not in kinds


def test_override_gan_mode_reaches_the_loss(rgb_batch: torch.Tensor) -> None:
    model = build_tiny("pix2pix", gan_mode="lsgan")
    assert model.losses["cgan"].gan_mode == "lsgan"
    assert model.recipe.loss_options == {"cgan": {"gan_mode": "lsgan"}}
    metrics = model.train_step(rgb_batch)
    assert metrics["d_real"] >= 0 and metrics["g_cgan"] >= 0  # squared errors


def test_override_replacing_refiner_drops_its_options() -> None:
    model = colorkit.build(
        "pix2pix+mlp", generator_depth=3, base_channels=8, refiner="conv", refiner_hidden=4
    )
    assert model.recipe.refiner == "conv"
    assert model.recipe.refiner_options == {"hidden": 4}


def test_invalid_override_suggests_nearest() -> None:
    with pytest.raises(InvalidOptionError) as info:
        colorkit.build("pix2pix+mlp", **tiny_overrides("pix2pix+mlp"), refiner_pach=4)
    message = str(info.value)
    assert "'refiner_pach'" in message and "'refiner_patch'" in message
    with pytest.raises(InvalidOptionError, match=r"'generator_dept'.*'generator_depth'"):
        colorkit.build("unet-l1", generator_dept=3)
    with pytest.raises(InvalidOptionError, match=r"'refiner_patch'"):
        colorkit.build("pix2pix", generator_depth=3, refiner_patch=4)  # identity has no patch


def test_inconsistent_recipes_are_refused() -> None:
    with pytest.raises(ValueError, match=r"'cgan'.*discriminator"):
        colorkit.build("pix2pix", discriminator=None)
    with pytest.raises(ValueError, match=r"adversarial"):
        colorkit.build("pix2pix", generator_depth=3, generator_losses={"l1": 1.0})
    with pytest.raises(ValueError, match=r"color_space"):
        colorkit.build("unet-l1", color_space="hsv")


def test_recipe_round_trips_through_a_dict() -> None:
    recipe = Recipe(refiner="mlp", refiner_options={"patch": 4}, betas=(0.9, 0.99))
    data = recipe.to_dict()
    assert data["betas"] == [0.9, 0.99]
    assert Recipe.from_dict(data) == recipe
    with pytest.raises(InvalidOptionError, match="'refinr'"):
        Recipe.from_dict({**data, "refinr": "mlp"})
