"""The contracts of colorkit.contracts: built-in components keep them, broken ones fail at build."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import torch
from torch import nn

import colorkit
from colorkit import contracts
from colorkit.registry import ContractError, Registry, default_registry


@pytest.mark.parametrize(
    ("kind", "protocol"),
    [
        ("generator", contracts.Generator),
        ("refiner", contracts.Refiner),
        ("discriminator", contracts.Discriminator),
        ("loss", contracts.Loss),
        ("stabilizer", contracts.Stabilizer),
    ],
)
def test_every_registered_component_keeps_its_contract(kind: str, protocol: type) -> None:
    registry = default_registry()
    arguments = {
        "generator": {"in_channels": 1, "out_channels": 2},
        "refiner": {"channels": 2, "cond_channels": 1},
        "discriminator": {"in_channels": 3},
        "loss": {},
        "stabilizer": {},
    }[kind]
    assert set(arguments) == set(contracts.ENGINE_ARGUMENTS[kind])
    for name in registry.list(kind):
        component = registry.create(kind, name, **arguments)
        assert contracts.contract_problem(kind, name, component) is None, name
        assert isinstance(component, protocol), name


def test_the_fast_networks_offer_an_inference_form() -> None:
    model = colorkit.build("pix2pix+mlp", generator_depth=3, base_channels=8)
    assert isinstance(model.generator, contracts.InferenceForm)
    assert isinstance(model.refiner, contracts.InferenceForm)


class _OneInputRefiner(nn.Module):
    def __init__(self, channels: int = 2, cond_channels: int = 1) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class _UnmarkedLoss(nn.Module):
    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (prediction - target).abs().mean()


def _not_a_module(channels: int = 2, cond_channels: int = 1) -> Any:
    return lambda x, cond: x


@pytest.mark.parametrize(
    ("kind", "factory", "overrides", "message"),
    [
        ("refiner", _OneInputRefiner, {"refiner": "broken"}, r"refiner\(prediction, condition\)"),
        ("refiner", _not_a_module, {"refiner": "broken"}, "must return an nn.Module"),
        (
            "loss",
            _UnmarkedLoss,
            {"discriminator": None, "generator_losses": {"broken": 1.0}},
            "boolean attribute 'adversarial'",
        ),
    ],
)
def test_a_broken_component_fails_when_the_model_is_built(
    kind: str, factory: Any, overrides: dict[str, Any], message: str
) -> None:
    registry = Registry(group=None)

    class Plugin:
        @colorkit.hookimpl
        def colorkit_components(self) -> list[colorkit.Component]:
            return [colorkit.Component(kind, "broken", factory)]

    for module in ("generators", "discriminators", "refiners", "losses"):
        registry.register_plugin(importlib.import_module(f"colorkit.components.{module}"))
    registry.register_plugin(Plugin(), name="broken")
    recipe = colorkit.Recipe(generator_options={"depth": 3, "base_channels": 8}).with_overrides(
        registry, **overrides
    )
    with pytest.raises(ContractError, match=message) as caught:
        colorkit.Colorizer(recipe, registry)
    assert "'broken'" in str(caught.value)
