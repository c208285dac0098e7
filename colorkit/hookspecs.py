"""The hooks a colorkit plugin implements.

A plugin is a plain module (or object) that implements one or more of these hooks
with :data:`colorkit.hookimpl` and is announced through an entry point in the
``colorkit`` group of its distribution's metadata::

    [project.entry-points.colorkit]
    my_plugin = "my_package.plugin"

colorkit's own components are registered exactly this way. What the components it
returns must accept and return is specified in :mod:`colorkit.contracts`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from colorkit.registry import Component

PROJECT = "colorkit"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def colorkit_components() -> list[Component]:
    """Return the components this plugin provides.

    Returns:
        A list of :class:`colorkit.Component`, each naming its kind
        (``generator``, ``discriminator``, ``refiner``, ``loss``, ``stabilizer``,
        ``recipe`` or ``weights``),
        its name and the factory (or, for recipes, the :class:`colorkit.Recipe`)
        that makes it.
    """
