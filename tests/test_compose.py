"""build(): a recipe name or object and overrides in, a model out."""

from __future__ import annotations

import pytest

import colorkit
from colorkit import Recipe, UnknownComponentError


def test_build_from_a_recipe_object() -> None:
    recipe = Recipe(
        refiner="mlp",
        generator_options={"depth": 3, "base_channels": 8},
        discriminator_options={"base_channels": 8},
        refiner_options={"patch": 4, "hidden": 16},
    )
    model = colorkit.build(recipe, lr=1e-3)
    assert model.recipe_name is None
    assert model.recipe.lr == 1e-3 and model.overrides == {"lr": 1e-3}
    assert model.recipe == Recipe.from_dict(model.recipe.to_dict())


def test_unknown_recipe_or_component_suggests_nearest() -> None:
    with pytest.raises(UnknownComponentError, match=r"'pix2pix\+mpl'.*'pix2pix\+mlp'"):
        colorkit.build("pix2pix+mpl")
    with pytest.raises(UnknownComponentError, match=r"'unet2'.*'unet'"):
        colorkit.build("pix2pix", generator="unet2")


def test_build_is_fast_unless_asked_not_to_be() -> None:
    assert colorkit.build("unet-l1", generator_depth=3).fast
    assert not colorkit.build("unet-l1", fast=False, generator_depth=3).fast
