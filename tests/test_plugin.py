"""The example plugin distribution colorkit-convrefiner, installed beside colorkit."""

from __future__ import annotations

import importlib.metadata

import pytest
import torch
from colorkit_convrefiner import CONV_RECIPE, ConvRefiner
from support import build_tiny
from torch import nn

import colorkit
from colorkit import InvalidOptionError
from colorkit.color import rgb_to_gray
from colorkit.registry import Registry, default_registry


def test_distribution_is_installed_with_its_entry_point() -> None:
    dist = importlib.metadata.distribution("colorkit-convrefiner")
    points = [ep for ep in dist.entry_points if ep.group == "colorkit"]
    assert [(ep.name, ep.value) for ep in points] == [
        ("convrefiner", "colorkit_convrefiner.plugin")
    ]
    assert any(req.startswith("colorkit") for req in dist.requires or [])


def test_plugin_components_are_registered_with_their_source() -> None:
    registry = Registry()
    conv = registry.get("refiner", "conv")
    recipe = registry.get("recipe", "pix2pix+conv")
    assert conv.factory is ConvRefiner and recipe.factory is CONV_RECIPE
    assert conv.source == recipe.source == "colorkit-convrefiner:convrefiner"
    assert conv.options() == {"hidden": 32, "layers": 3}
    assert conv.summary.startswith("A small residual CNN refiner")
    assert recipe.summary == CONV_RECIPE.description
    assert "conv" in colorkit.list_components("refiner")
    assert "pix2pix+conv" in colorkit.list_components("recipe", "pix2pix*")


def test_recipe_is_pix2pix_with_the_conv_refiner() -> None:
    recipe = colorkit.create("recipe", "pix2pix+conv")
    assert recipe.refiner == "conv"
    assert (recipe.generator, recipe.discriminator) == ("unet", "patchgan")
    assert dict(recipe.generator_losses) == {"cgan": 1.0, "l1": 100.0}


@pytest.mark.parametrize(("height", "width"), [(32, 32), (37, 53), (5, 7), (1, 1)])
def test_conv_refiner_keeps_size_and_starts_as_identity(height: int, width: int) -> None:
    torch.manual_seed(0)
    refiner = colorkit.create("refiner", "conv", hidden=8)
    x, cond = torch.rand(2, 2, height, width), torch.rand(2, 1, height, width)
    assert torch.equal(refiner(x, cond), x)


def test_conv_refiner_options_shape_the_network() -> None:
    refiner = colorkit.create("refiner", "conv", channels=3, hidden=6, layers=4)
    convs = [m for m in refiner.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(4, 6), (6, 6), (6, 6), (6, 3)]
    assert all(c.kernel_size == (3, 3) for c in convs)
    single = colorkit.create("refiner", "conv", layers=1)
    assert len([m for m in single.modules() if isinstance(m, nn.Conv2d)]) == 1
    for bad in ({"hidden": 0}, {"layers": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            colorkit.create("refiner", "conv", **bad)
    with pytest.raises(InvalidOptionError, match=r"'hiden'.*'hidden'"):
        colorkit.create("refiner", "conv", hiden=8)


def test_conv_refiner_learns_and_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    refiner = ConvRefiner(hidden=8)
    x, cond = torch.rand(2, 2, 13, 11), torch.rand(2, 1, 13, 11)
    target = torch.zeros_like(x)
    optimizer = torch.optim.Adam(refiner.parameters(), lr=1e-2)
    losses = []
    for _ in range(3):
        optimizer.zero_grad()
        loss = (refiner(x, cond) - target).abs().mean()
        loss.backward()
        for name, param in refiner.named_parameters():
            assert param.grad is not None and torch.isfinite(param.grad).all(), name
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert all(p.grad.abs().sum() > 0 for p in refiner.parameters())  # after the first step


def test_conv_refiner_receptive_field() -> None:
    torch.manual_seed(0)
    refiner = ConvRefiner(hidden=8, layers=3)
    nn.init.normal_(refiner.net[-1].weight, std=0.1)  # a non-zero correction
    x, cond = torch.rand(1, 2, 20, 20), torch.rand(1, 1, 20, 20)
    changed = x.clone()
    changed[:, :, 10, 10] += 1.0
    with torch.no_grad():
        difference = (refiner(changed, cond) - refiner(x, cond)).abs().sum(dim=(0, 1))
    rows = difference.sum(dim=1).nonzero().flatten()
    cols = difference.sum(dim=0).nonzero().flatten()
    # three 3×3 convolutions reach three pixels in every direction
    assert (rows.min().item(), rows.max().item()) == (7, 13)
    assert (cols.min().item(), cols.max().item()) == (7, 13)


def test_build_and_train_the_plugin_recipe(rgb_batch: torch.Tensor) -> None:
    model = build_tiny("pix2pix+conv", refiner_hidden=8)
    assert isinstance(model.refiner, ConvRefiner)
    assert model.recipe.refiner_options == {"hidden": 8}
    before = [p.detach().clone() for p in model.refiner.parameters()]
    metrics = model.train_step(rgb_batch)
    assert {"r", "r_cgan", "r_l1"} <= set(metrics)
    assert any(
        not torch.equal(a, b) for a, b in zip(before, model.refiner.parameters(), strict=True)
    )
    color = model.colorize(rgb_to_gray(rgb_batch[:, :, :15, :27]))
    assert color.shape == (2, 3, 15, 27)


def test_conv_refiner_in_other_recipes(rgb_batch: torch.Tensor) -> None:
    model = build_tiny("unet-l1", refiner="conv", refiner_layers=2)
    assert isinstance(model.refiner, ConvRefiner)
    assert model.recipe.refiner_options == {"hidden": 16, "layers": 2}
    assert set(model.train_step(rgb_batch)) == {"g", "g_l1", "r", "r_l1"}
    with pytest.raises(InvalidOptionError, match=r"'refiner_layer'.*'refiner_layers'"):
        colorkit.build("pix2pix+conv", refiner_layer=2)


def test_plugin_in_the_default_registry() -> None:
    assert default_registry().get("refiner", "conv").factory is ConvRefiner
