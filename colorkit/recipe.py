"""Recipes: named compositions of components, and how overrides apply to them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from colorkit.color import COLOR_SPACES
from colorkit.registry import InvalidOptionError, Registry, suggest

__all__ = ["COLOR_SPACES", "DISCRIMINATOR_FAKES", "Recipe"]

#: What the discriminator is shown as fake: the generator's output alone, or the
#: refiner's output too (half the fake loss each).
DISCRIMINATOR_FAKES = ("generator", "generator+refiner")
_PARTS = ("generator", "discriminator", "refiner")


@dataclass(frozen=True)
class Recipe:
    """What :func:`colorkit.build` composes: components by name, their options,
    the loss weights and the optimiser settings.

    Args:
        generator: generator name.
        discriminator: discriminator name, or ``None`` for none (then no ``cgan`` loss).
        refiner: refiner name (``"identity"`` for none).
        generator_losses: loss name → weight for the generator, e.g. ``{"cgan": 1, "l1": 100}``.
        refiner_losses: loss name → weight for the refiner; ``None`` (the default) uses
            ``generator_losses``, as the paper trains its Improver with L1 + cGAN too.
        generator_options: keyword options of the generator.
        discriminator_options: keyword options of the discriminator.
        refiner_options: keyword options of the refiner.
        loss_options: loss name → its keyword options.
        color_space: ``"lab"`` (predict ab from L, the default) or ``"rgb"``
            (predict RGB from gray).
        lr: Adam learning rate of every optimiser.
        betas: Adam betas.
        discriminator_loss_weight: factor on the discriminator's loss (pix2pix halves it).
        discriminator_fakes: ``"generator"`` trains the discriminator on the generator's
            output as fake; ``"generator+refiner"`` on the refiner's output too, so that
            a refiner cannot please it with a pattern it never learns to reject.
        description: one line for listings.
    """

    generator: str = "unet"
    discriminator: str | None = "patchgan"
    refiner: str = "identity"
    generator_losses: Mapping[str, float] = field(
        default_factory=lambda: {"cgan": 1.0, "l1": 100.0}
    )
    refiner_losses: Mapping[str, float] | None = None
    generator_options: Mapping[str, Any] = field(default_factory=dict)
    discriminator_options: Mapping[str, Any] = field(default_factory=dict)
    refiner_options: Mapping[str, Any] = field(default_factory=dict)
    loss_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    color_space: str = "lab"
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    discriminator_loss_weight: float = 0.5
    discriminator_fakes: str = "generator"
    description: str = ""

    def refiner_loss_weights(self) -> Mapping[str, float]:
        """The refiner's loss weights, falling back to the generator's.

        Returns:
            Loss name → weight.
        """
        return self.generator_losses if self.refiner_losses is None else self.refiner_losses

    def loss_names(self) -> list[str]:
        """The losses this recipe uses, generator's first, without repeats.

        Returns:
            Loss names.
        """
        return list(dict.fromkeys([*self.generator_losses, *self.refiner_loss_weights()]))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form, for checkpoint metadata.

        Returns:
            The fields as plain dicts, lists and scalars.
        """
        data = dataclasses.asdict(self)
        data["betas"] = list(self.betas)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recipe:
        """Inverse of :meth:`to_dict`.

        Args:
            data: a mapping as written by :meth:`to_dict`.

        Returns:
            The recipe.

        Raises:
            InvalidOptionError: for a field this version of colorkit does not know.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key not in known:
                raise InvalidOptionError(f"unknown recipe field {key!r}; {suggest(key, known)}")
        values = dict(data)
        if "betas" in values:
            values["betas"] = tuple(values["betas"])
        return cls(**values)

    def validate(self, registry: Registry) -> None:
        """Check every name and option against the registry.

        Args:
            registry: where the components are looked up.

        Raises:
            UnknownComponentError: for a component that is not registered.
            InvalidOptionError: for an option a component does not take.
            ValueError: for an inconsistent recipe (e.g. a cGAN loss without discriminator).
        """
        if self.color_space not in COLOR_SPACES:
            raise ValueError(
                f"color_space must be one of {tuple(COLOR_SPACES)}, got {self.color_space!r}"
            )
        if self.discriminator_fakes not in DISCRIMINATOR_FAKES:
            raise ValueError(
                f"discriminator_fakes must be one of {DISCRIMINATOR_FAKES}, "
                f"got {self.discriminator_fakes!r}"
            )
        registry.check_options("generator", self.generator, dict(self.generator_options))
        registry.check_options("refiner", self.refiner, dict(self.refiner_options))
        if self.discriminator is not None:
            registry.check_options(
                "discriminator", self.discriminator, dict(self.discriminator_options)
            )
        for name in self.loss_names():
            registry.check_options("loss", name, dict(self.loss_options.get(name, {})))
            adversarial = getattr(registry.get("loss", name).factory, "adversarial", False)
            if self.discriminator is None and adversarial:
                raise ValueError(
                    f"loss {name!r} is adversarial but the recipe has no discriminator; "
                    "set discriminator=... or drop the loss"
                )
        for name in self.loss_options:
            if name not in self.loss_names():
                raise InvalidOptionError(f"loss_options names {name!r}, which no loss uses")

    def with_overrides(self, registry: Registry, **overrides: Any) -> Recipe:
        """A copy with overrides applied and validated.

        Overrides are read in this order:

        * a recipe field (``refiner="mlp"``, ``lr=1e-4``, ``color_space="rgb"``,
          ``generator_losses={"l1": 1.0}``); replacing a component drops the
          recipe's options for the old one;
        * ``<part>_<option>`` for a part's option (``refiner_patch=8``,
          ``discriminator_n_layers=4``);
        * a bare option name (``encoder="resnet34"``, ``gan_mode="lsgan"``), given to
          every component of the recipe that takes it (``norm="instance"``
          reaches both the generator and the discriminator).

        Args:
            registry: where the components and their options are looked up.
            **overrides: the changes.

        Returns:
            The new, validated recipe.

        Raises:
            InvalidOptionError: for an override no field or component takes,
                naming the nearest valid ones.
            UnknownComponentError: for an unknown component name.
        """
        fields = {f.name for f in dataclasses.fields(self)}
        changes = {k: v for k, v in overrides.items() if k in fields}
        for part in _PARTS:
            if part in changes and changes[part] != getattr(self, part):
                changes.setdefault(f"{part}_options", {})
        recipe = dataclasses.replace(self, **changes)
        options = {part: dict(getattr(recipe, f"{part}_options")) for part in _PARTS}
        loss_options = {k: dict(v) for k, v in recipe.loss_options.items()}

        for key, value in overrides.items():
            if key in fields:
                continue
            targets = recipe._parts_taking(registry, key)
            if not targets:
                raise InvalidOptionError(
                    f"no recipe field or component option {key!r}; "
                    f"{suggest(key, recipe._valid_override_names(registry))}"
                )
            for kind, name, option in targets:
                if kind == "loss":
                    loss_options.setdefault(name, {})[option] = value
                else:
                    options[kind][option] = value
        recipe = dataclasses.replace(
            recipe,
            generator_options=options["generator"],
            discriminator_options=options["discriminator"],
            refiner_options=options["refiner"],
            loss_options=loss_options,
        )
        recipe.validate(registry)
        return recipe

    def _components(self) -> list[tuple[str, str]]:
        parts = [("generator", self.generator), ("refiner", self.refiner)]
        if self.discriminator is not None:
            parts.append(("discriminator", self.discriminator))
        return parts + [("loss", name) for name in self.loss_names()]

    def _parts_taking(self, registry: Registry, key: str) -> list[tuple[str, str, str]]:
        for kind, name in self._components():
            if kind != "loss" and key.startswith(kind + "_"):
                option = key[len(kind) + 1 :]
                if option in registry.get(kind, name).options():
                    return [(kind, name, option)]
        return [
            (kind, name, key)
            for kind, name in self._components()
            if key in registry.get(kind, name).options()
        ]

    def _valid_override_names(self, registry: Registry) -> list[str]:
        names = [f.name for f in dataclasses.fields(self)]
        for kind, name in self._components():
            for option in registry.get(kind, name).options():
                names.append(option)
                if kind != "loss":
                    names.append(f"{kind}_{option}")
        return names
