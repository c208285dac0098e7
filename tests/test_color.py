"""Colour conversions: sRGB ↔ CIELAB round trips, reference values, gray, gradients, shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from support import gray_of

from colorkit.color import (
    _linear_taps,
    gray_to_lightness,
    lab_to_rgb,
    linear_to_srgb,
    recombine,
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


# -- recombine -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "target"),
    [
        ((37, 29), (300, 230)),
        ((23, 64), (100, 33)),
        ((171, 256), (4000, 300)),
        ((171, 256), (300, 6000)),
        ((3, 5), (7, 11)),
    ],
)
def test_chroma_taps_match_f_interpolate(source: tuple[int, int], target: tuple[int, int]) -> None:
    generator = torch.Generator().manual_seed(1)
    ab = torch.randn(1, 2, *source, generator=generator) * 40.0
    reference = F.interpolate(ab, size=target, mode="bilinear", align_corners=False)[0]
    left, right, left_weight, right_weight = _linear_taps(source[1], target[1])
    up, down, up_weight, down_weight = _linear_taps(source[0], target[0])
    rows = ab[0].index_select(2, left) * left_weight + ab[0].index_select(2, right) * right_weight
    ours = rows.index_select(1, up) * up_weight[:, None]
    ours += rows.index_select(1, down) * down_weight[:, None]
    assert (ours - reference).abs().max() < 1e-4


def smooth_gray(height: int, width: int, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    wave = 0.5 + 0.5 * torch.sin(9.0 * x + 4.0 * y) * torch.cos(5.0 * y)
    return (low + (high - low) * wave)[None, None].float()


def test_recombine_in_bands_equals_one_band() -> None:
    gray = smooth_gray(301, 229)
    ab = torch.randn(1, 2, 40, 31, generator=torch.Generator().manual_seed(2)) * 30.0
    whole = recombine(gray, ab, rows_per_chunk=10_000)
    for rows in (1, 7, 64):
        np.testing.assert_array_equal(recombine(gray, ab, rows_per_chunk=rows), whole)
    assert whole.shape == (301, 229, 3) and whole.dtype == np.uint8


def test_recombine_is_cielab_with_the_gray_lightness() -> None:
    # mid grays and modest chroma stay inside sRGB, where no gamut fitting happens
    gray = smooth_gray(64, 80, 0.3, 0.8)
    ab = torch.randn(1, 2, 9, 11, generator=torch.Generator().manual_seed(3)) * 12.0
    upsampled = F.interpolate(ab, size=(64, 80), mode="bilinear", align_corners=False)
    reference = lab_to_rgb(torch.cat([gray_to_lightness(gray), upsampled], dim=1), clamp=False)
    assert reference.min() >= 0.0 and reference.max() <= 1.0
    expected = reference[0].permute(1, 2, 0).numpy() * 255.0
    ours = recombine(gray, ab, rows_per_chunk=5).astype(np.float64)
    assert np.abs(ours - expected).max() <= 0.6  # rounding to 8 bits, and nothing more


def test_recombine_keeps_luminance_of_colours_outside_srgb() -> None:
    gray = smooth_gray(48, 48)  # from black to white
    ab = torch.full((1, 2, 3, 3), 90.0)  # far outside sRGB at most lightnesses
    rgb = recombine(gray, ab)
    error = np.abs(gray_of(rgb) - gray[0, 0].double().numpy())
    assert error.max() < 1.0 / 255
    assert (rgb[..., 0].astype(int) - rgb[..., 2]).max() > 50  # still strongly coloured


def test_recombine_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="gray"):
        recombine(torch.rand(1, 3, 4, 4), torch.zeros(1, 2, 2, 2))
    with pytest.raises(ValueError, match="ab"):
        recombine(torch.rand(1, 1, 4, 4), torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="rows_per_chunk"):
        recombine(torch.rand(1, 1, 4, 4), torch.zeros(1, 2, 2, 2), rows_per_chunk=0)
