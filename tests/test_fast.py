"""Inference forms (colorkit.fast) compute what the networks compute; fast and plain agree."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import colorkit
from colorkit import fast
from colorkit.components.refiners import FastImprover
from colorkit.engine import InferenceOnlyError


def _warm_statistics(generator: torch.nn.Module, condition: torch.Tensor) -> None:
    # a few train-mode passes give BatchNorm running statistics that are not the identity
    generator.train()
    with torch.no_grad():
        for _ in range(2):
            generator(condition)
    generator.eval()


def _tiny(recipe: str = "pix2pix+mlp", **overrides: Any) -> colorkit.Colorizer:
    torch.manual_seed(0)
    options: dict[str, Any] = {"generator_depth": 4, "base_channels": 8}
    if "mlp" in recipe:
        options.update(refiner_hidden=16, refiner_patch=4)
    model = colorkit.build(recipe, fast=False, **{**options, **overrides})
    # non-trivial Improver and BatchNorm statistics, so equality is not a coincidence
    if "mlp" in recipe:
        torch.nn.init.normal_(model.refiner.mlp[-1].weight, 0.0, 0.05)
    _warm_statistics(model.generator, torch.rand(4, 1, 48, 48) * 2 - 1)
    return model


@pytest.mark.parametrize("norm", ["batch", "none", "instance"])
def test_inference_generator_matches_eval_mode(norm: str) -> None:
    """fp32 inference copies equal the generator in eval mode; bf16 ones are close."""
    model = _tiny(generator_norm=norm)
    condition = torch.rand(3, 1, 37, 52) * 2 - 1  # not a multiple of 2**depth: padded
    model.generator.eval()
    with torch.no_grad():
        expected = model.generator(condition)
    folded = fast.fold_batchnorm(model.generator)
    with torch.no_grad():
        assert torch.allclose(folded(condition), expected, atol=1e-6)
        exact = fast.inference_form(model.generator, torch.float32)(condition)
        rough = fast.inference_form(model.generator, torch.bfloat16)(condition)
    assert exact.dtype == torch.float32 and exact.shape == expected.shape
    assert torch.allclose(exact, expected, atol=1e-5)
    scale = expected.abs().max().item()
    assert (rough - expected).abs().max().item() < 0.05 * scale + 1e-3
    assert model.generator.training is False  # the original was only read


def test_inference_copy_colorizes_like_the_model() -> None:
    """The inference copy's colorize and predict_chroma equal the model's (fp32)."""
    model = _tiny()
    gray = torch.rand(2, 1, 45, 38)
    copy = model.inference_copy("fp32")
    assert isinstance(copy.refiner, FastImprover)
    assert torch.allclose(copy.colorize(gray), model.colorize(gray), atol=1e-5)
    for refine in (False, True):
        assert torch.allclose(
            copy.predict_chroma(gray, working_size=32, refine=refine),
            model.predict_chroma(gray, working_size=32, refine=refine),
            atol=1e-4,
        )
    with pytest.raises(InferenceOnlyError, match="inference copy"):
        copy.train_step(torch.rand(2, 3, 32, 32))


@pytest.mark.parametrize(("patch", "spin"), [(4, 1), (4, 2), (4, 4), (8, 4), (8, 8)])
def test_fast_improver_spins_like_the_improver(patch: int, spin: int) -> None:
    """All spin² grids in one strided pass equal the Improver's average of shifted grids."""
    model = _tiny(refiner_patch=patch, refiner_spin=spin).eval()
    ab, cond = torch.rand(2, 2, 37, 29) * 2 - 1, torch.rand(2, 1, 37, 29) * 2 - 1
    copy = model.inference_copy("fp32").refiner
    assert isinstance(copy, FastImprover) and copy.spin == spin
    with torch.no_grad():
        assert torch.allclose(copy(ab, cond), model.refiner(ab, cond), atol=1e-5)


def test_fast_improver_leaves_an_uneven_spin_to_a_plain_copy() -> None:
    model = _tiny(refiner_patch=6, refiner_spin=4).eval()
    ab, cond = torch.rand(1, 2, 20, 20), torch.rand(1, 1, 20, 20)
    copy = model.inference_copy("fp32").refiner
    assert not isinstance(copy, FastImprover)
    with torch.no_grad():
        assert torch.equal(copy(ab, cond), model.refiner(ab, cond))


# -- the fast defaults ----------------------------------------------------------------------
def test_a_built_model_is_fast_and_fast_false_is_plain() -> None:
    model = colorkit.build("pix2pix+mlp", generator_depth=3, base_channels=8)
    assert model.fast and model.precision == fast.resolve_precision("auto", "cpu")
    weight = model.generator.down[0][0].weight
    assert weight.is_contiguous(memory_format=torch.channels_last)
    plain = colorkit.build("pix2pix+mlp", fast=False, generator_depth=3, base_channels=8)
    assert not plain.fast and plain.precision == "fp32"
    assert plain.generator.down[0][0].weight.is_contiguous()


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_fast_and_plain_models_agree(precision: str) -> None:
    """The same weights colorize alike through the fast and the plain path.

    fp32: to 1e-4 in RGB; bf16 (weights and activations rounded to 8 bits of mantissa):
    to 0.03 in RGB on average and 0.15 at worst.
    """
    plain = _tiny()
    quick = colorkit.build(
        "pix2pix+mlp", generator_depth=4, base_channels=8, refiner_hidden=16, refiner_patch=4
    )
    quick.load_state_dict(plain.state_dict())
    quick.set_precision(precision).eval()
    plain.eval()
    gray = torch.rand(2, 1, 45, 38)
    expected = plain.colorize(gray)
    got = quick.colorize(gray)
    assert isinstance(quick._fast_copy().refiner, FastImprover)  # the inference copy ran
    difference = (got - expected).abs()
    if precision == "fp32":
        assert difference.max().item() < 1e-4
    else:
        assert difference.mean().item() < 0.03 and difference.max().item() < 0.15


def test_the_inference_copy_follows_the_weights() -> None:
    """A fast model in eval mode copies its networks again after they change."""
    model = colorkit.build("pix2pix", generator_depth=3, base_channels=8).set_precision("fp32")
    model.eval()
    gray = torch.rand(1, 1, 16, 16)
    first = model._fast_copy()
    model.colorize(gray)
    assert model._fast_copy() is first  # unchanged weights: the same copy
    with torch.no_grad():
        model.generator.up[-1][1].bias.add_(0.5)
    second = model._fast_copy()
    assert second is not first
    plain = model.inference_copy("fp32")
    assert torch.allclose(model.colorize(gray), plain.colorize(gray), atol=1e-6)
    model.train()
    assert model._fast_copy() is None  # training mode colorizes through the networks


def test_the_inference_copy_follows_the_refiner_settings() -> None:
    """Changing the Improver's spin (not a weight) rebuilds the copy too."""
    model = _tiny(refiner_spin=1)
    model.fast = True
    model.set_precision("fp32").eval()
    gray = torch.rand(1, 1, 24, 24)
    plain = model.colorize(gray)
    model.refiner.spin = 4
    spun = model.colorize(gray)
    assert model._fast_copy().refiner.spin == 4
    assert not torch.allclose(plain, spun)
    model.fast = False
    assert torch.allclose(spun, model.colorize(gray), atol=1e-5)


def test_a_component_supplies_its_own_inference_form() -> None:
    """inference_form asks the network first; None falls back to the generic form."""

    class Doubler(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x)

        def inference_form(self, dtype: torch.dtype) -> torch.nn.Module | None:
            return None if dtype == torch.bfloat16 else torch.nn.Identity()

    assert isinstance(fast.inference_form(Doubler(), torch.float32), torch.nn.Identity)
    generic = fast.inference_form(Doubler(), torch.bfloat16)
    assert any(isinstance(m, fast.PackedConv) for m in generic.modules())
    assert not any(p.requires_grad for p in generic.parameters()) and not generic.training


def test_resolve_precision() -> None:
    assert fast.resolve_precision("fp32", "cpu") == "fp32"
    assert fast.resolve_precision("auto", "cpu") == ("bf16" if fast.bf16_is_fast("cpu") else "fp32")
    assert fast.precision_dtype("bf16") == torch.bfloat16
    with pytest.raises(ValueError, match="precision must be one of"):
        fast.resolve_precision("fp16", "cpu")
