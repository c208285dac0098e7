"""Colour conversions: sRGB ↔ CIELAB round trips, reference values, gray, gradients, shapes."""

from __future__ import annotations

import pytest
import torch

from colorkit.color import (
    gray_to_lightness,
    lab_to_rgb,
    linear_to_srgb,
    rgb_to_gray,
    rgb_to_lab,
    srgb_to_linear,
)


def _colors(n: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, n, 1, generator=generator)


def _pixel(*rgb: float) -> torch.Tensor:
    return torch.tensor(rgb, dtype=torch.float64).view(1, 3, 1, 1)


def test_rgb_lab_round_trip_on_random_colors() -> None:
    rgb = _colors(10_000)
    lab = rgb_to_lab(rgb)
    assert lab.dtype == torch.float32 and lab.shape == rgb.shape
    back = lab_to_rgb(lab)
    assert (back - rgb).abs().max().item() < 1e-3


def test_round_trip_includes_gamut_corners() -> None:
    corners = torch.tensor(
        [[r, g, b] for r in (0.0, 1.0) for g in (0.0, 1.0) for b in (0.0, 1.0)]
    ).T.reshape(1, 3, 8, 1)
    assert (lab_to_rgb(rgb_to_lab(corners)) - corners).abs().max().item() < 1e-3


@pytest.mark.parametrize(
    ("rgb", "expected"),
    [
        ((1.0, 1.0, 1.0), (100.0, 0.0, 0.0)),
        ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
        ((1.0, 0.0, 0.0), (53.24, 80.09, 67.20)),
        ((0.0, 1.0, 0.0), (87.73, -86.18, 83.18)),
        ((0.0, 0.0, 1.0), (32.30, 79.19, -107.86)),
    ],
    ids=["white", "black", "red", "green", "blue"],
)
def test_known_lab_values(rgb: tuple[float, ...], expected: tuple[float, ...]) -> None:
    lab = rgb_to_lab(_pixel(*rgb)).flatten()
    assert torch.allclose(lab, torch.tensor(expected, dtype=torch.float64), atol=0.02)


def test_lab_to_rgb_of_reference_values() -> None:
    lab = torch.tensor([53.2408, 80.0925, 67.2032], dtype=torch.float64).view(1, 3, 1, 1)
    assert torch.allclose(lab_to_rgb(lab).flatten(), _pixel(1, 0, 0).flatten(), atol=1e-4)


def test_lab_to_rgb_clamps_only_when_asked() -> None:
    out_of_gamut = torch.tensor([50.0, 120.0, -120.0]).view(1, 3, 1, 1)
    clamped = lab_to_rgb(out_of_gamut)
    raw = lab_to_rgb(out_of_gamut, clamp=False)
    assert clamped.min() >= 0 and clamped.max() <= 1
    assert raw.min() < 0 or raw.max() > 1


def test_srgb_transfer_curve_round_trip_and_reference() -> None:
    values = torch.linspace(0, 1, 1001, dtype=torch.float64)
    assert torch.allclose(linear_to_srgb(srgb_to_linear(values)), values, atol=1e-9)
    # sRGB 0.5 is linear 0.2140 (IEC 61966-2-1)
    assert srgb_to_linear(torch.tensor(0.5)).item() == pytest.approx(0.21404, abs=1e-4)


def test_gray_of_neutral_colors_is_themselves() -> None:
    values = torch.linspace(0, 1, 101).view(1, 1, 101, 1)
    gray = rgb_to_gray(values.expand(1, 3, 101, 1))
    assert gray.shape == (1, 1, 101, 1)
    assert (gray - values).abs().max().item() < 1e-5
    lab = rgb_to_lab(values.expand(1, 3, 101, 1))
    assert lab[:, 1:].abs().max().item() < 1e-3  # neutral colours have no chroma


def test_gray_and_lightness_agree_with_lab() -> None:
    rgb = _colors(2000, seed=1)
    lightness = rgb_to_lab(rgb)[:, :1]
    assert (gray_to_lightness(rgb_to_gray(rgb)) - lightness).abs().max().item() < 1e-2
    assert rgb_to_gray(rgb).min() >= 0 and rgb_to_gray(rgb).max() <= 1
    # a gray image rendered as RGB has the lightness gray_to_lightness gives it
    gray = _colors(500, seed=2)[:, :1]
    lab_l = rgb_to_lab(gray.expand(-1, 3, -1, -1))[:, :1]
    assert (gray_to_lightness(gray) - lab_l).abs().max().item() < 1e-2


def test_lightness_is_monotonic_in_gray() -> None:
    lightness = gray_to_lightness(torch.linspace(0, 1, 256).view(1, 1, 1, 256)).flatten()
    assert lightness[0].item() == pytest.approx(0.0, abs=1e-4)
    assert lightness[-1].item() == pytest.approx(100.0, abs=1e-3)
    assert bool((lightness.diff() > 0).all())


def _edge_values() -> torch.Tensor:
    # exact 0 and 1, the branch points of both curves, and ordinary values
    points = torch.tensor([0.0, 1e-6, 0.003, 0.04045, 0.0405, 0.3, 0.7, 0.999, 1.0])
    grid = torch.cartesian_prod(points, points, points).T
    return grid.reshape(1, 3, -1, 1).clone()


def test_gradients_finite_through_rgb_to_lab_and_gray() -> None:
    rgb = _edge_values().requires_grad_(True)
    weights = torch.randn(1, 3, rgb.shape[2], 1, generator=torch.Generator().manual_seed(0))
    (rgb_to_lab(rgb) * weights).sum().backward()
    assert rgb.grad is not None and torch.isfinite(rgb.grad).all()
    assert rgb.grad.abs().sum() > 0

    rgb.grad = None
    gray = rgb_to_gray(rgb)
    (gray_to_lightness(gray) * weights[:, :1]).sum().backward()
    assert torch.isfinite(rgb.grad).all() and rgb.grad.abs().sum() > 0


def test_gradients_finite_through_lab_to_rgb() -> None:
    lab = rgb_to_lab(_edge_values()).detach().requires_grad_(True)
    weights = torch.randn(lab.shape, generator=torch.Generator().manual_seed(1))
    (lab_to_rgb(lab, clamp=False) * weights).sum().backward()
    assert lab.grad is not None and torch.isfinite(lab.grad).all()
    assert lab.grad.abs().sum() > 0

    black_and_white = torch.tensor([[0.0, 0.0, 0.0], [100.0, 0.0, 0.0]]).T.reshape(1, 3, 2, 1)
    black_and_white.requires_grad_(True)
    lab_to_rgb(black_and_white).sum().backward()
    assert torch.isfinite(black_and_white.grad).all()


@pytest.mark.parametrize(
    ("function", "shape", "name"),
    [
        (rgb_to_lab, (1, 1, 4, 4), "rgb"),
        (rgb_to_lab, (3, 4, 4), "rgb"),
        (lab_to_rgb, (2, 2, 4, 4), "lab"),
        (rgb_to_gray, (1, 4, 4, 4), "rgb"),
        (gray_to_lightness, (1, 3, 4, 4), "gray"),
        (gray_to_lightness, (4, 4), "gray"),
    ],
)
def test_shape_errors_name_the_argument(function, shape: tuple[int, ...], name: str) -> None:
    with pytest.raises(ValueError, match=name) as info:
        function(torch.rand(shape))
    assert str(tuple(shape)) in str(info.value)


def test_conversions_keep_batch_and_size() -> None:
    rgb = torch.rand(3, 3, 5, 7)
    assert rgb_to_lab(rgb).shape == (3, 3, 5, 7)
    assert lab_to_rgb(rgb_to_lab(rgb)).shape == (3, 3, 5, 7)
    assert rgb_to_gray(rgb).shape == (3, 1, 5, 7)
    assert gray_to_lightness(rgb_to_gray(rgb)).shape == (3, 1, 5, 7)


def test_lab_to_rgb_in_gamut_keeps_lightness_and_leaves_gamut_colours_alone() -> None:
    from colorkit.color import lab_to_rgb_in_gamut

    torch.manual_seed(0)
    gray = torch.rand(2, 1, 16, 16)
    vivid = (torch.rand(2, 2, 16, 16) * 2 - 1) * 110  # mostly outside sRGB
    lab = torch.cat([gray_to_lightness(gray), vivid], dim=1)
    fitted = lab_to_rgb_in_gamut(lab)
    assert fitted.min() >= 0.0 and fitted.max() <= 1.0
    assert (rgb_to_gray(fitted) - gray).abs().max().item() < 1e-5
    assert (rgb_to_gray(lab_to_rgb(lab)) - gray).abs().max().item() > 0.05  # clipping moves L
    inside = torch.rand(2, 3, 16, 16)
    assert (lab_to_rgb_in_gamut(rgb_to_lab(inside)) - inside).abs().max().item() < 1e-4
