"""The engine: the composed parts, train_step, colorize, precision."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from support import build_tiny, smooth_batch
from torch import nn

import colorkit
from colorkit import Colorizer
from colorkit.color import AB_SCALE, rgb_to_gray, rgb_to_lab
from colorkit.components.discriminators import GlobalDiscriminator, PatchGAN
from colorkit.components.generators import UNet
from colorkit.components.refiners import Identity, MLPImprover

Tiny = Callable[..., Colorizer]

RECIPES = colorkit.list_components("recipe")
DISCRIMINATOR_KEYS = {"d", "d_real", "d_fake"}
EXPECTED_KEYS = {
    "pix2pix": DISCRIMINATOR_KEYS | {"g", "g_cgan", "g_l1"},
    "pix2pix-global": DISCRIMINATOR_KEYS | {"g", "g_cgan", "g_l1"},
    "pix2pix+mlp": DISCRIMINATOR_KEYS | {"g", "g_cgan", "g_l1", "r", "r_cgan", "r_l1"},
    "pix2pix+mlp-l1": DISCRIMINATOR_KEYS | {"g", "g_cgan", "g_l1", "r", "r_l1"},
    "pix2pix+conv": DISCRIMINATOR_KEYS | {"g", "g_cgan", "g_l1", "r", "r_cgan", "r_l1"},
    "unet-l1": {"g", "g_l1"},
    "unet-l2": {"g", "g_l2"},
}


def chroma_error(model: Colorizer, rgb: torch.Tensor) -> float:
    """Mean absolute CIELAB ab error of the model's colorization of ``rgb``'s gray."""
    truth = rgb_to_lab(rgb)[:, 1:]
    return (model.predict_chroma(rgb_to_gray(rgb)) - truth).abs().mean().item()


# -- build ---------------------------------------------------------------------------------
def test_the_documented_recipes_are_registered() -> None:
    assert set(EXPECTED_KEYS) <= set(RECIPES)


@pytest.mark.parametrize("recipe", RECIPES)
def test_build_every_recipe_and_train_one_step(recipe: str, rgb_batch: torch.Tensor) -> None:
    model = build_tiny(recipe)
    base = colorkit.create("recipe", recipe)
    assert isinstance(model, Colorizer) and isinstance(model, nn.Module)
    assert model.recipe_name == recipe
    assert model.recipe.generator == base.generator
    assert model.recipe.refiner == base.refiner
    assert (model.discriminator is None) == (base.discriminator is None)
    assert list(model.losses) == base.loss_names()
    assert list(model.optimizers) == list(model.trained_parts())

    metrics = model.train_step(rgb_batch)
    expected = {"g", *(f"g_{name}" for name in base.generator_losses)}
    if base.discriminator is not None:
        expected |= DISCRIMINATOR_KEYS
    if "refiner" in model.trained_parts():
        expected |= {"r", *(f"r_{name}" for name in base.refiner_loss_weights())}
    assert set(metrics) == expected
    for name, value in metrics.items():
        assert isinstance(value, torch.Tensor) and value.dim() == 0, name
        assert not value.requires_grad and value.grad_fn is None, name
        assert torch.isfinite(value), name


@pytest.mark.parametrize("recipe", sorted(EXPECTED_KEYS))
def test_train_step_keys_and_totals(recipe: str, rgb_batch: torch.Tensor) -> None:
    model = build_tiny(recipe)
    metrics = model.train_step(rgb_batch)
    assert set(metrics) == EXPECTED_KEYS[recipe]
    assert all(v.dtype == torch.float32 for v in metrics.values())
    spec = model.recipe
    if "d" in metrics:
        weight = spec.discriminator_loss_weight
        assert metrics["d"].item() == pytest.approx(
            weight * (metrics["d_real"] + metrics["d_fake"]).item(), rel=1e-5
        )
    g_total = sum(w * metrics[f"g_{name}"] for name, w in spec.generator_losses.items())
    assert metrics["g"].item() == pytest.approx(float(g_total), rel=1e-5)
    if "r" in metrics:
        r_total = sum(w * metrics[f"r_{name}"] for name, w in spec.refiner_loss_weights().items())
        assert metrics["r"].item() == pytest.approx(float(r_total), rel=1e-5)


def test_built_parts_are_the_recipes_components() -> None:
    model = build_tiny("pix2pix+mlp")
    assert isinstance(model.generator, UNet)
    assert isinstance(model.discriminator, PatchGAN)
    assert isinstance(model.refiner, MLPImprover)
    assert set(model.losses) == {"cgan", "l1"}
    assert isinstance(build_tiny("pix2pix-global").discriminator, GlobalDiscriminator)
    assert isinstance(build_tiny("pix2pix").refiner, Identity)
    assert "refiner" not in build_tiny("pix2pix").optimizers  # nothing to train
    counts = model.parameter_count()
    assert set(counts) == {"generator", "refiner", "discriminator"}
    assert counts["generator"] == sum(p.numel() for p in model.generator.parameters())


# -- training ------------------------------------------------------------------------------
def _record_steps(model: Colorizer) -> list[str]:
    calls: list[str] = []
    for name, optimizer in model.optimizers.items():
        optimizer.register_step_pre_hook(lambda *_, name=name: calls.append(name))
    return calls


@pytest.mark.parametrize(
    ("recipe", "order"),
    [
        ("pix2pix+mlp", ["discriminator", "generator", "refiner"]),
        ("pix2pix", ["discriminator", "generator"]),
        ("unet-l1", ["generator"]),
    ],
)
def test_train_step_order(recipe: str, order: list[str], rgb_batch: torch.Tensor) -> None:
    model = build_tiny(recipe)
    calls = _record_steps(model)
    model.train_step(rgb_batch)
    model.train_step(rgb_batch)
    assert calls == order * 2


def test_discriminator_gets_no_gradient_from_generator_or_refiner(rgb_batch: torch.Tensor) -> None:
    model = build_tiny("pix2pix+mlp")
    disc = model.discriminator
    seen: dict[str, object] = {}

    def after_discriminator_step(*_: object) -> None:
        seen["d_grads"] = [p.grad.clone() for p in disc.parameters()]
        seen["d_weights"] = [p.detach().clone() for p in disc.parameters()]
        seen["g_grads_none"] = all(p.grad is None for p in model.generator.parameters())

    def before_generator_step(*_: object) -> None:
        seen["d_frozen"] = not any(p.requires_grad for p in disc.parameters())
        seen["d_grads_at_g"] = [p.grad.clone() for p in disc.parameters()]

    model.optimizers["discriminator"].register_step_post_hook(after_discriminator_step)
    model.optimizers["generator"].register_step_pre_hook(before_generator_step)
    model.train_step(rgb_batch)

    assert seen["g_grads_none"], "the discriminator's loss reached the generator"
    assert seen["d_frozen"]
    for at_d, at_g, now in zip(
        seen["d_grads"], seen["d_grads_at_g"], [p.grad for p in disc.parameters()], strict=True
    ):
        assert torch.equal(at_d, at_g) and torch.equal(at_d, now)
    for before, param in zip(seen["d_weights"], disc.parameters(), strict=True):
        assert torch.equal(before, param)
    assert all(p.requires_grad for p in disc.parameters())  # unfrozen afterwards
    assert all(p.grad is not None for p in model.generator.parameters())
    assert all(p.grad is not None for p in model.refiner.parameters())


@pytest.mark.parametrize(("fakes", "calls"), [("generator", 4), ("generator+refiner", 5)])
def test_discriminator_fakes_decides_what_it_learns_is_fake(
    fakes: str, calls: int, rgb_batch: torch.Tensor
) -> None:
    model = build_tiny("pix2pix+mlp", discriminator_fakes=fakes)
    torch.nn.init.normal_(model.refiner.mlp[-1].weight, 0.0, 0.05)  # refined != generated
    inputs: list[torch.Tensor] = []
    model.discriminator.register_forward_hook(lambda _m, args, _o: inputs.append(args[0]))
    model.train_step(rgb_batch)
    # D step: real and each fake; then one adversarial pass each for generator and refiner
    assert len(inputs) == calls
    if fakes == "generator+refiner":
        generated, refined = inputs[1][:, 1:], inputs[2][:, 1:]
        assert not generated.requires_grad and not refined.requires_grad
        assert not torch.allclose(generated, refined)
    with pytest.raises(ValueError, match="discriminator_fakes must be one of"):
        build_tiny("pix2pix+mlp", discriminator_fakes="refiner")


def test_refiner_trains_on_the_fixed_generator_output(rgb_batch: torch.Tensor) -> None:
    model = build_tiny("pix2pix+mlp-l1")
    generator_grads: list[torch.Tensor] = []

    def before_refiner_step(*_: object) -> None:
        generator_grads.extend(p.grad.clone() for p in model.generator.parameters())

    model.optimizers["refiner"].register_step_pre_hook(before_refiner_step)
    model.optimizers["generator"].register_step_post_hook(
        lambda *_: generator_grads.extend(p.grad.clone() for p in model.generator.parameters())
    )
    model.train_step(rgb_batch)
    half = len(generator_grads) // 2
    for after_g, at_r in zip(generator_grads[:half], generator_grads[half:], strict=True):
        assert torch.equal(after_g, at_r)


@pytest.mark.parametrize("recipe", RECIPES)
def test_training_lowers_the_chroma_error(recipe: str) -> None:
    rgb = smooth_batch()
    model = build_tiny(recipe, seed=0, lr=4e-3)
    before = chroma_error(model, rgb)
    for _ in range(25):
        model.train_step(rgb)
    after = chroma_error(model, rgb)
    # 25 steps on one batch reach 0.5-0.75 of the starting error across seeds
    assert after < 0.85 * before, f"{recipe}: chroma error {before:.2f} -> {after:.2f}"


def test_train_step_rejects_bad_batches() -> None:
    model = build_tiny("unet-l1")
    for bad in (torch.rand(2, 1, 8, 8), torch.rand(3, 8, 8), torch.ones(1, 3, 8, 8).long()):
        with pytest.raises(ValueError, match=r"B×3×H×W"):
            model.train_step(bad)


def test_colorize_takes_float64(rgb_batch: torch.Tensor) -> None:
    model = build_tiny("pix2pix+mlp")
    gray = rgb_to_gray(rgb_batch)
    try:
        color = model.colorize(gray.double())
    except ValueError as exc:  # refusing it clearly is fine too
        assert "float64" in str(exc)
    else:
        assert color.dtype == torch.float32
        assert torch.allclose(color, model.colorize(gray), atol=1e-3)


def test_train_step_takes_float64(rgb_batch: torch.Tensor) -> None:
    model = build_tiny("unet-l1")
    try:
        metrics = model.train_step(rgb_batch.double())
    except ValueError as exc:
        assert "float64" in str(exc)
    else:
        assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in metrics.values())


def test_train_step_on_odd_sizes(rgb_batch: torch.Tensor) -> None:
    model = build_tiny("pix2pix+mlp")
    metrics = model.train_step(rgb_batch[:, :, :21, :30].contiguous())
    assert all(torch.isfinite(v) for v in metrics.values())


# -- colorize ------------------------------------------------------------------------------
@pytest.mark.parametrize(("height", "width"), [(32, 32), (37, 53), (5, 7), (1, 1), (64, 20)])
def test_colorize_any_size(height: int, width: int) -> None:
    model = build_tiny("pix2pix+mlp")
    gray = torch.rand(2, 1, height, width, generator=torch.Generator().manual_seed(0))
    color = model.colorize(gray)
    assert color.shape == (2, 3, height, width) and color.dtype == torch.float32
    assert color.min() >= 0 and color.max() <= 1
    assert not color.requires_grad


def test_colorize_keeps_lightness_and_is_gradient_free(rgb_batch: torch.Tensor) -> None:
    model = build_tiny("pix2pix+mlp", lr=4e-3)
    for _ in range(5):
        model.train_step(rgb_batch)
    model.zero_grad(set_to_none=True)
    gray = rgb_to_gray(rgb_batch)
    color = model.colorize(gray)
    assert (rgb_to_gray(color) - gray).abs().max() < 1e-2
    assert rgb_to_lab(color)[:, 1:].abs().mean() > 1.0  # it is coloured, not gray
    assert all(p.grad is None for p in model.parameters())
    assert model.training  # the mode is restored
    model.eval()
    model.colorize(gray)
    assert not model.training


def test_colorize_working_size(rgb_batch: torch.Tensor) -> None:
    model = build_tiny("pix2pix+mlp")
    rgb = torch.nn.functional.interpolate(rgb_batch, size=(40, 60), mode="bilinear")
    gray = rgb_to_gray(rgb)
    chroma = model.predict_chroma(gray, working_size=16)
    assert chroma.shape == (2, 2, 11, 16)
    color = model.colorize(gray, working_size=16)
    assert color.shape == (2, 3, 40, 60)
    assert (rgb_to_gray(color) - gray).abs().max() < 1e-2
    assert model.predict_chroma(gray).shape == (2, 2, 40, 60)


def test_colorize_without_refiner_is_the_generator_alone(rgb_batch: torch.Tensor) -> None:
    model = build_tiny("pix2pix+mlp", fast=False)  # fp32, as the expected value is computed
    torch.nn.init.normal_(model.refiner.mlp[-1].weight, std=0.1)  # a non-identity refiner
    gray = rgb_to_gray(rgb_batch)
    plain = model.predict_chroma(gray, refine=False)
    with torch.no_grad():
        model.eval()
        expected = model.generator(model.condition(gray)) * AB_SCALE
    assert torch.allclose(plain, expected, atol=1e-4)
    assert not torch.allclose(model.predict_chroma(gray), plain, atol=1e-3)


@pytest.mark.parametrize(
    "bad",
    [torch.rand(1, 3, 8, 8), torch.rand(8, 8), torch.rand(1, 8, 8), torch.ones(1, 1, 8, 8).long()],
    ids=["rgb", "2d", "3d", "integer"],
)
def test_colorize_rejects_bad_shapes(bad: torch.Tensor) -> None:
    model = build_tiny("unet-l1")
    with pytest.raises(ValueError, match=r"B×1×H×W"):
        model.colorize(bad)


def test_rgb_color_space(rgb_batch: torch.Tensor) -> None:
    model = build_tiny("pix2pix+mlp", color_space="rgb")
    assert model.color_channels == 3
    condition, target = model.encode(rgb_batch)
    assert condition.shape == (2, 1, 32, 32) and target.shape == (2, 3, 32, 32)
    assert torch.allclose(target, rgb_batch * 2 - 1)
    assert model.generator(condition).shape == (2, 3, 32, 32)
    assert model.discriminator.net[0].in_channels == 4
    metrics = model.train_step(rgb_batch)
    assert set(metrics) == EXPECTED_KEYS["pix2pix+mlp"]
    assert all(torch.isfinite(v) for v in metrics.values())
    color = model.colorize(rgb_to_gray(rgb_batch))
    assert color.shape == rgb_batch.shape and color.min() >= 0 and color.max() <= 1
    assert model.predict_chroma(rgb_to_gray(rgb_batch)).shape == (2, 2, 32, 32)


def test_lab_encoding_scales() -> None:
    model = build_tiny("unet-l1")
    rgb = smooth_batch(8, 8)
    condition, target = model.encode(rgb)
    lab = rgb_to_lab(rgb)
    assert torch.allclose(condition, lab[:, :1] / 50 - 1, atol=1e-5)
    assert torch.allclose(target, lab[:, 1:] / AB_SCALE, atol=1e-6)
    assert torch.allclose(model.condition(rgb_to_gray(rgb)), condition, atol=1e-3)
    assert torch.allclose(model.decode(condition, target), rgb, atol=1e-3)


# -- optimisers and precision ------------------------------------------------------------
def test_optimizers_are_pix2pix_adam() -> None:
    model = build_tiny("pix2pix+mlp")
    assert set(model.optimizers) == {"discriminator", "generator", "refiner"}
    for name, optimizer in model.optimizers.items():
        assert isinstance(optimizer, torch.optim.Adam)
        group = optimizer.param_groups[0]
        assert group["lr"] == 2e-4 and tuple(group["betas"]) == (0.5, 0.999)
        module_params = {id(p) for p in getattr(model, name).parameters()}
        assert {id(p) for g in optimizer.param_groups for p in g["params"]} == module_params


def test_optimizer_settings_follow_overrides() -> None:
    model = build_tiny("pix2pix+mlp", lr=1e-3, betas=(0.9, 0.99))
    for optimizer in model.optimizers.values():
        assert optimizer.param_groups[0]["lr"] == 1e-3
        assert tuple(optimizer.param_groups[0]["betas"]) == (0.9, 0.99)


def test_optimizer_state_round_trip(rgb_batch: torch.Tensor) -> None:
    model = build_tiny("pix2pix+mlp")
    model.train_step(rgb_batch)
    state = model.optimizer_state()
    other = build_tiny("pix2pix+mlp", seed=1)
    other.load_optimizer_state(state)
    assert other.optimizer_state()["generator"]["state"][0]["step"] == 1
    with pytest.raises(KeyError):
        other.load_optimizer_state({"generator": state["generator"]})


def test_bf16_training(rgb_batch: torch.Tensor) -> None:
    model = build_tiny("pix2pix+mlp").set_precision("bf16")
    assert model.precision == "bf16"
    for _ in range(3):
        metrics = model.train_step(rgb_batch)
        assert all(torch.isfinite(v) for v in metrics.values())
        assert all(v.dtype == torch.float32 for v in metrics.values())
    assert all(p.dtype == torch.float32 for p in model.parameters())
    color = model.colorize(rgb_to_gray(rgb_batch))
    assert color.dtype == torch.float32 and torch.isfinite(color).all()


def test_set_precision_values() -> None:
    model = build_tiny("unet-l1")
    assert model.set_precision("fp32") is model and model.precision == "fp32"
    assert model.set_precision("auto").precision in {"bf16", "fp32"}
    with pytest.raises(ValueError, match=r"precision.*'fp16'"):
        model.set_precision("fp16")


def test_colorize_keeps_lightness_even_for_vivid_predictions() -> None:
    model = build_tiny("pix2pix+mlp")
    last = model.generator.up[-1][1]  # the outermost transposed conv, before tanh
    torch.nn.init.constant_(last.bias, 3.0)  # tanh(3) · 110: chroma far outside sRGB
    gray = torch.rand(1, 1, 24, 24)
    assert (rgb_to_gray(model.colorize(gray)) - gray).abs().max().item() < 1e-5
