"""The inference copies of colorkit.speed compute what the networks compute."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import colorkit
from colorkit import speed


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
    model = colorkit.build(recipe, **{**options, **overrides})
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
    folded = speed.fold_batchnorm(model.generator)
    with torch.no_grad():
        assert torch.allclose(folded(condition), expected, atol=1e-6)
        exact = speed.inference_generator(model.generator, "fp32")(condition)
        rough = speed.inference_generator(model.generator, "bf16")(condition)
    assert exact.dtype == torch.float32 and exact.shape == expected.shape
    assert torch.allclose(exact, expected, atol=1e-5)
    scale = expected.abs().max().item()
    assert (rough - expected).abs().max().item() < 0.05 * scale + 1e-3
    assert model.generator.training is False  # the original was only read


def test_inference_model_colorizes_like_the_model() -> None:
    """The inference copy's colorize and predict_chroma equal the model's (fp32)."""
    model = _tiny()
    gray = torch.rand(2, 1, 45, 38)
    fast = speed.inference_model(model, "fp32")
    assert isinstance(fast.refiner, speed.FastImprover)
    assert torch.allclose(fast.colorize(gray), model.colorize(gray), atol=1e-5)
    for refine in (False, True):
        assert torch.allclose(
            fast.predict_chroma(gray, working_size=32, refine=refine),
            model.predict_chroma(gray, working_size=32, refine=refine),
            atol=1e-4,
        )
    with pytest.raises(speed.InferenceOnlyError, match="inference copy"):
        fast.train_step(torch.rand(2, 3, 32, 32))


@pytest.mark.parametrize(("patch", "spin"), [(4, 1), (4, 2), (4, 4), (8, 4), (8, 8)])
def test_fast_improver_spins_like_the_improver(patch: int, spin: int) -> None:
    """All spin² grids in one strided pass equal the Improver's average of shifted grids."""
    model = _tiny(refiner_patch=patch, refiner_spin=spin).eval()
    ab, cond = torch.rand(2, 2, 37, 29) * 2 - 1, torch.rand(2, 1, 37, 29) * 2 - 1
    fast = speed.inference_model(model, "fp32").refiner
    assert isinstance(fast, speed.FastImprover) and fast.spin == spin
    with torch.no_grad():
        assert torch.allclose(fast(ab, cond), model.refiner(ab, cond), atol=1e-5)


def test_fast_improver_leaves_an_uneven_spin_to_a_plain_copy() -> None:
    model = _tiny(refiner_patch=6, refiner_spin=4).eval()
    ab, cond = torch.rand(1, 2, 20, 20), torch.rand(1, 1, 20, 20)
    copy = speed.inference_model(model, "fp32").refiner
    assert not isinstance(copy, speed.FastImprover)
    with torch.no_grad():
        assert torch.equal(copy(ab, cond), model.refiner(ab, cond))
