"""colorkit: automatic image colorization on a plugin registry.

>>> import colorkit
>>> model = colorkit.build("pix2pix+mlp")
"""

from __future__ import annotations

from colorkit.checkpoint import load
from colorkit.compose import build
from colorkit.engine import Colorizer
from colorkit.hookspecs import hookimpl
from colorkit.recipe import Recipe
from colorkit.registry import (
    ColorkitError,
    Component,
    ContractError,
    DuplicateComponentError,
    InvalidOptionError,
    PluginLoadWarning,
    UnknownComponentError,
    create,
    list_components,
)
from colorkit.registry import default_registry as default_registry  # colorkit.default_registry()
from colorkit.version import __version__
from colorkit.video import colorize_video

__all__ = [
    "Colorizer",
    "ColorkitError",
    "Component",
    "ContractError",
    "DuplicateComponentError",
    "InvalidOptionError",
    "PluginLoadWarning",
    "Recipe",
    "UnknownComponentError",
    "__version__",
    "build",
    "colorize_video",
    "create",
    "hookimpl",
    "list_components",
    "load",
]
