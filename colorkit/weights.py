"""Pretrained weights, registered by name like components: ``colorkit.load("starter")``.

A weights entry is a :class:`Weights` record registered under the ``weights`` kind by a
plugin's ``colorkit_components`` hook, so a third-party distribution ships its own
weights the way it ships components: a ``.safetensors`` file inside its package (written
by :func:`colorkit.checkpoint.export_weights`) and an entry point in the ``colorkit``
group. colorkit registers its own ``starter`` weights this way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from colorkit.hookspecs import hookimpl
from colorkit.registry import ColorkitError, Component, Registry, default_registry, suggest

__all__ = ["DEFAULT_WEIGHTS", "Weights", "WeightsError", "resolve_weights"]

#: The weights ``colorkit colorize`` uses when given none.
DEFAULT_WEIGHTS = "starter"


class WeightsError(ColorkitError, LookupError):
    """A weights name that is not registered, or registered weights whose file is missing."""


@dataclass(frozen=True)
class Weights:
    """A registered weights file.

    Args:
        path: the ``.safetensors`` file (a checkpoint or a weights-only export).
        description: one line for listings: what it was trained on and for.
        licence: the terms of the weights, e.g. those the training data impose.
        card: where the model card is (a docs page or URL).
    """

    path: Path
    description: str = ""
    licence: str = ""
    card: str = ""


def resolve_weights(name: str, registry: Registry | None = None) -> Path:
    """The file of registered weights.

    Args:
        name: a name listed by ``colorkit list weights``.
        registry: where to look; the default registry if ``None``.

    Returns:
        The path of the weights file.

    Raises:
        WeightsError: if no weights of that name are registered (naming the nearest
            ones) or the registered file does not exist.
    """
    registry = registry or default_registry()
    names = registry.list("weights")
    if name not in names:
        raise WeightsError(
            f"no checkpoint file {name!r} and no registered weights of that name; "
            f"{suggest(name, names)} (registered weights: {', '.join(names) or 'none'})"
        )
    component = registry.get("weights", name)
    path = Path(component.factory.path)
    if not path.is_file():
        raise WeightsError(
            f"weights {name!r} (from {component.source}) point to {str(path)!r}, which does "
            "not exist; use a checkpoint with --weights, or install a package that ships that file"
        )
    return path


@hookimpl
def colorkit_components() -> list[Component]:
    return [
        Component(
            "weights",
            DEFAULT_WEIGHTS,
            Weights(
                path=Path(__file__).parent / "pretrained" / "starter.safetensors",
                description="U-Net (depth 6, width 32) trained with L1 (unet-l1) by colorkit on "
                "licence-clear photos (open_photos, wikipedia_photos); see docs/model-card.md",
                licence="trained on CC-BY, CC-BY-SA, CC0, GPL, LGPL, Apache-2.0 and BSD photos; "
                "see the model card",
                card="docs/model-card.md",
            ),
        )
    ]
