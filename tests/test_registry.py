"""The registry: entry-point discovery, listing, creation, errors and broken plugins."""

from __future__ import annotations

import importlib.metadata
import warnings
from typing import Any

import pytest
import torch
from torch import nn

import colorkit
from colorkit import (
    ColorkitError,
    Component,
    DuplicateComponentError,
    InvalidOptionError,
    PluginLoadWarning,
    Recipe,
    UnknownComponentError,
)
from colorkit.components.generators import UNet
from colorkit.registry import KINDS, Registry, default_registry
from colorkit.weights import Weights

BUILT_IN_MODULES = {
    "generators": "colorkit.components.generators",
    "discriminators": "colorkit.components.discriminators",
    "refiners": "colorkit.components.refiners",
    "losses": "colorkit.components.losses",
    "recipes": "colorkit.components.recipes",
}


def make_plugin(*components: Component) -> object:
    """A plugin object whose hook returns ``components``."""

    class Plugin:
        @colorkit.hookimpl
        def colorkit_components(self) -> list[Component]:
            return list(components)

    return Plugin()


class _Tiny(nn.Module):
    """A tiny test generator."""

    def __init__(self, in_channels: int = 1, out_channels: int = 2, width: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)
        self.width = width


# -- discovery ---------------------------------------------------------------------------
def test_entry_points_list_colorkit_modules_and_the_plugin() -> None:
    points = {ep.name: ep for ep in importlib.metadata.entry_points(group="colorkit")}
    for name, module in BUILT_IN_MODULES.items():
        assert points[name].value == module
        assert points[name].dist.name == "colorkit"
    assert points["convrefiner"].value == "colorkit_convrefiner.plugin"
    assert points["convrefiner"].dist.name == "colorkit-convrefiner"


def test_built_ins_come_from_entry_points_with_their_source() -> None:
    registry = Registry()
    sources = {(c.kind, c.name): c.source for c in registry.components()}
    assert sources[("generator", "unet")] == "colorkit:generators"
    assert sources[("generator", "timm-unet")] == "colorkit:generators"
    assert sources[("discriminator", "patchgan")] == "colorkit:discriminators"
    assert sources[("refiner", "mlp")] == "colorkit:refiners"
    assert sources[("loss", "cgan")] == "colorkit:losses"
    assert sources[("recipe", "pix2pix+mlp")] == "colorkit:recipes"
    assert sources[("refiner", "conv")] == "colorkit-convrefiner:convrefiner"
    assert sources[("recipe", "pix2pix+conv")] == "colorkit-convrefiner:convrefiner"
    # every component names the distribution and entry point that brought it
    for component in registry.components():
        dist, _, entry = component.source.partition(":")
        assert dist in {"colorkit", "colorkit-convrefiner"}, component
        assert entry, component


def test_no_group_discovers_nothing() -> None:
    registry = Registry(group=None)
    for kind in KINDS:
        assert registry.list(kind) == []
    with pytest.raises(UnknownComponentError, match=r"none are registered"):
        registry.get("generator", "unet")


def test_components_have_summaries_and_sorted_listing() -> None:
    components = default_registry().components()
    keys = [(KINDS.index(c.kind), c.name) for c in components]
    assert keys == sorted(keys)
    for component in components:
        assert component.summary, f"{component.kind} {component.name!r} has no summary"
    unet = default_registry().get("generator", "unet")
    assert unet.summary == "The pix2pix U-Net: 4×4 stride-2 convolutions with skip concatenations."


# -- listing -----------------------------------------------------------------------------
def test_list_components_all_and_wildcards() -> None:
    assert colorkit.list_components("generator") == ["timm-unet", "unet"]
    assert colorkit.list_components("generator", "unet*") == ["unet"]
    assert colorkit.list_components("generator", "*unet*") == ["timm-unet", "unet"]
    assert colorkit.list_components("discriminator", "*gan*") == ["patchgan"]
    assert colorkit.list_components("loss", "*gan*") == ["cgan"]
    assert colorkit.list_components("loss", "l?") == ["l1", "l2"]
    assert colorkit.list_components("refiner", "nothing*") == []
    recipes = colorkit.list_components("recipe", "pix2pix+*")
    assert recipes == ["pix2pix+conv", "pix2pix+mlp", "pix2pix+mlp-l1", "pix2pix+mlp-paper"]
    assert colorkit.list_components("weights") == ["starter"]
    assert set(colorkit.list_components("recipe")) >= {
        "pix2pix",
        "pix2pix+mlp",
        "pix2pix+mlp-l1",
        "pix2pix-global",
        "unet-l1",
        "unet-l2",
        "pix2pix+conv",
    }


def test_list_unknown_kind_suggests() -> None:
    with pytest.raises(UnknownComponentError, match=r"'generator'"):
        colorkit.list_components("generators")


# -- creation ----------------------------------------------------------------------------
SMALL_OPTIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("generator", "unet"): {"depth": 3, "base_channels": 8},
    ("generator", "timm-unet"): {"encoder": "resnet18"},
    ("discriminator", "patchgan"): {"base_channels": 8},
    ("discriminator", "global"): {"base_channels": 8},
    ("refiner", "mlp"): {"hidden": 16, "patch": 4},
}


@pytest.mark.parametrize(
    ("kind", "name"), [(c.kind, c.name) for c in default_registry().components()]
)
def test_create_every_component(kind: str, name: str) -> None:
    torch.manual_seed(0)
    made = colorkit.create(kind, name, **SMALL_OPTIONS.get((kind, name), {}))
    if kind == "recipe":
        assert isinstance(made, Recipe)
        assert made.description
        return
    if kind == "weights":
        assert isinstance(made, Weights) and made.path.suffix == ".safetensors"
        assert made.description
        return
    if kind == "stabilizer":
        gray, ab = torch.rand(3, 1, 16, 16), torch.randn(3, 2, 16, 16)
        assert made(gray, ab).shape == ab.shape
        return
    assert isinstance(made, nn.Module)
    if kind == "loss":
        assert isinstance(made.adversarial, bool)
        return
    cond = torch.rand(2, 1, 16, 16)
    if kind == "generator":
        assert made(cond).shape == (2, 2, 16, 16)
    elif kind == "refiner":
        ab = torch.rand(2, 2, 16, 16)
        assert made(ab, cond).shape == ab.shape
    else:
        assert made(torch.rand(2, 3, 32, 32)).shape[:2] == (2, 1)


def test_create_passes_options() -> None:
    mlp = colorkit.create("refiner", "mlp", patch=4, hidden=16)
    assert mlp.patch == 4
    assert mlp.mlp[0].out_features == 16
    unet = colorkit.create("generator", "unet", depth=3, base_channels=8)
    assert unet.depth == 3
    # engine arguments are accepted but are not user options
    assert "in_channels" not in default_registry().get("generator", "unet").options()
    rgb_unet = colorkit.create("generator", "unet", depth=2, base_channels=4, out_channels=3)
    assert rgb_unet(torch.rand(1, 1, 8, 8)).shape == (1, 3, 8, 8)


def test_options_lists_user_options_with_defaults() -> None:
    assert default_registry().get("refiner", "mlp").options() == {
        "patch": 8,
        "hidden": 256,
        "shift": "fixed",
        "spin": 4,
    }
    assert default_registry().get("loss", "cgan").options() == {"gan_mode": "vanilla"}
    assert default_registry().get("recipe", "pix2pix").options() == {}


@pytest.mark.parametrize(
    ("kind", "name", "nearest"),
    [
        ("generator", "unet2", "'unet'"),
        ("generator", "timm_unet", "'timm-unet'"),
        ("refiner", "mpl", "'mlp'"),
        ("discriminator", "patchgn", "'patchgan'"),
        ("recipe", "pix2pix+mpl", "'pix2pix+mlp'"),
        ("loss", "L1", "'l1'"),
    ],
)
def test_unknown_name_lists_nearest(kind: str, name: str, nearest: str) -> None:
    with pytest.raises(UnknownComponentError) as info:
        colorkit.create(kind, name)
    message = str(info.value)
    assert repr(name) in message and nearest in message
    assert isinstance(info.value, ColorkitError) and isinstance(info.value, LookupError)


def test_unknown_name_without_close_match_lists_all() -> None:
    with pytest.raises(UnknownComponentError, match=r"valid names: 'cgan', 'l1', 'l2'"):
        colorkit.create("loss", "perceptual-zzz")


def test_unknown_kind_lists_nearest() -> None:
    with pytest.raises(UnknownComponentError, match=r"'genrator'.*'generator'"):
        colorkit.create("genrator", "unet")


@pytest.mark.parametrize(
    ("kind", "name", "options", "bad", "nearest"),
    [
        ("refiner", "mlp", {"pach": 4}, "pach", "'patch'"),
        ("generator", "unet", {"dept": 3}, "dept", "'depth'"),
        ("discriminator", "patchgan", {"n_layer": 2}, "n_layer", "'n_layers'"),
        ("loss", "cgan", {"gan_mod": "lsgan"}, "gan_mod", "'gan_mode'"),
    ],
)
def test_wrong_keyword_names_option_and_nearest(
    kind: str, name: str, options: dict[str, Any], bad: str, nearest: str
) -> None:
    with pytest.raises(InvalidOptionError) as info:
        colorkit.create(kind, name, **options)
    message = str(info.value)
    assert repr(bad) in message and nearest in message and repr(name) in message
    assert isinstance(info.value, ColorkitError) and isinstance(info.value, TypeError)


def test_recipes_take_no_options_in_create() -> None:
    with pytest.raises(InvalidOptionError, match=r"build"):
        colorkit.create("recipe", "pix2pix", refiner="mlp")


def test_factory_with_kwargs_accepts_any_option() -> None:
    def factory(**kwargs: Any) -> dict[str, Any]:
        """Return the options."""
        return kwargs

    registry = Registry(group=None)
    registry.register_plugin(make_plugin(Component("generator", "free", factory)), name="free")
    assert registry.get("generator", "free").accepts_any_option()
    assert registry.create("generator", "free", anything=1) == {"anything": 1}


# -- plugins registered by hand ----------------------------------------------------------
def test_register_and_unregister_plugin() -> None:
    registry = Registry(group=None)
    plugin = make_plugin(Component("generator", "tiny", _Tiny))
    registry.register_plugin(plugin, name="my-notebook")
    component = registry.get("generator", "tiny")
    assert component.source == "my-notebook"
    assert component.summary == "A tiny test generator."
    assert component.options() == {"width": 4}
    assert registry.create("generator", "tiny", width=7).width == 7
    with pytest.raises(InvalidOptionError, match=r"'widht'.*'width'"):
        registry.create("generator", "tiny", widht=7)
    registry.unregister_plugin(plugin)
    assert registry.list("generator") == []


def test_duplicate_between_two_plugins_names_both() -> None:
    registry = Registry(group=None)
    first = make_plugin(Component("generator", "twin", _Tiny))
    second = make_plugin(Component("generator", "twin", UNet), Component("loss", "other", _Tiny))
    registry.register_plugin(first, name="first-plugin")
    with pytest.raises(DuplicateComponentError) as info:
        registry.register_plugin(second, name="second-plugin")
    message = str(info.value)
    assert "'twin'" in message and "first-plugin" in message and "second-plugin" in message
    assert isinstance(info.value, ColorkitError)
    # the refused plugin left nothing behind; the first one still works
    assert registry.get("generator", "twin").source == "first-plugin"
    assert registry.list("loss") == []
    assert isinstance(registry.create("generator", "twin"), _Tiny)
    with pytest.raises(DuplicateComponentError):
        registry.register_plugin(second, name="second-plugin")


def test_duplicate_of_a_built_in_names_both_sources() -> None:
    registry = Registry()
    impostor = make_plugin(Component("generator", "unet", _Tiny))
    with pytest.raises(DuplicateComponentError) as info:
        registry.register_plugin(impostor, name="impostor-plugin")
    message = str(info.value)
    assert "'unet'" in message
    assert "colorkit:generators" in message and "impostor-plugin" in message
    assert isinstance(registry.create("generator", "unet", depth=2), UNet)


def test_hook_returning_non_components_is_refused() -> None:
    class Wrong:
        @colorkit.hookimpl
        def colorkit_components(self) -> list[Any]:
            return [("generator", "unet", UNet)]

    registry = Registry(group=None)
    with pytest.raises(ColorkitError, match=r"wrong-plugin.*colorkit.Component"):
        registry.register_plugin(Wrong(), name="wrong-plugin")


def test_component_with_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'gen'.*generator"):
        Component("gen", "x", _Tiny)


# -- broken plugins ----------------------------------------------------------------------
def test_plugin_failing_to_import_warns_and_others_work(monkeypatch: pytest.MonkeyPatch) -> None:
    real_entry_points = importlib.metadata.entry_points
    broken = importlib.metadata.EntryPoint(
        name="broken-plugin", value="colorkit_no_such_module.plugin", group="colorkit"
    )

    def entry_points(**selection: Any) -> list[importlib.metadata.EntryPoint]:
        found = list(real_entry_points(**selection))
        return [*found, broken] if selection.get("group") == "colorkit" else found

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    registry = Registry()
    with pytest.warns(PluginLoadWarning) as record:
        generators = registry.list("generator")
    messages = [str(w.message) for w in record if issubclass(w.category, PluginLoadWarning)]
    assert len(messages) == 1
    assert "broken-plugin" in messages[0] and "colorkit_no_such_module" in messages[0]
    assert generators == ["timm-unet", "unet"]
    assert "conv" in registry.list("refiner")
    assert isinstance(registry.create("generator", "unet", depth=2), UNet)


def test_plugin_whose_hook_raises_warns_and_others_work() -> None:
    class Exploding:
        @colorkit.hookimpl
        def colorkit_components(self) -> list[Component]:
            raise RuntimeError("no components today")

    registry = Registry()
    registry.list("generator")  # discover first, so only the exploding plugin can warn
    with pytest.warns(PluginLoadWarning, match=r"exploding-plugin.*no components today"):
        registry.register_plugin(Exploding(), name="exploding-plugin")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginLoadWarning)
        assert registry.list("generator") == ["timm-unet", "unet"]
        good = make_plugin(Component("generator", "tiny", _Tiny))
        registry.register_plugin(good, name="good-plugin")
        assert registry.list("generator") == ["timm-unet", "tiny", "unet"]
        assert isinstance(registry.create("generator", "tiny"), _Tiny)


def test_default_registry_is_shared() -> None:
    assert default_registry() is default_registry()
    assert colorkit.create("loss", "l1").adversarial is False
