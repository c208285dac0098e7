"""Composition: a recipe name or :class:`~colorkit.recipe.Recipe` in, a model out.

The layer between the registry (what exists) and the engine (what runs): it looks the
recipe up, applies the overrides and builds the :class:`~colorkit.engine.Colorizer`.
"""

from __future__ import annotations

from typing import Any

from colorkit.engine import Colorizer
from colorkit.recipe import Recipe
from colorkit.registry import default_registry

__all__ = ["build"]


def build(recipe: str | Recipe, *, fast: bool = True, **overrides: Any) -> Colorizer:
    """Build a colorization model from a registered recipe.

    Args:
        recipe: a recipe name (see ``list_components("recipe")``) or a :class:`Recipe`.
        fast: the fast defaults of :class:`~colorkit.engine.Colorizer` (precision
            ``"auto"``, channels-last weights, the inference copy in eval mode);
            ``False`` for the plain model (fp32, networks as they are).
        **overrides: changes to the recipe: its fields (``refiner="mlp"``,
            ``lr=1e-4``), a part's option (``refiner_patch=8``) or any component's
            option by its bare name (``encoder="resnet34"``); see
            :meth:`Recipe.with_overrides`.

    Returns:
        A :class:`Colorizer` holding generator, refiner, discriminator, losses and optimisers.

    Raises:
        UnknownComponentError: for an unknown recipe or component, naming the nearest ones.
        InvalidOptionError: for an override nothing accepts, naming the nearest valid ones.

    Example:
        >>> import colorkit
        >>> model = colorkit.build("pix2pix+mlp", refiner_patch=4, generator_depth=6)
        >>> model.recipe.refiner_options["patch"]
        4
    """
    registry = default_registry()
    if isinstance(recipe, Recipe):
        name = None
        base = recipe
    else:
        name = recipe
        base = registry.create("recipe", recipe)
    return Colorizer(base.with_overrides(registry, **overrides), registry, name, overrides, fast)
