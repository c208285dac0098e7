"""Tests of colorkit.metrics: per-image scores, the protocol, and evaluate()."""

from __future__ import annotations

import json
import math
from pathlib import Path

import piq
import pytest
import torch

import colorkit
from colorkit.color import lab_to_rgb, rgb_to_gray
from colorkit.metrics import (
    METRICS,
    PROTOCOL,
    EvalReport,
    MetricsError,
    colorfulness,
    comparison_table,
    evaluate,
    grid,
    periodic_pattern,
    psnr,
    psnr_ab,
    score,
    ssim,
)

ROW_KEYS = {
    "image",
    "ssim",
    "psnr",
    "psnr_ab",
    "colorfulness",
    "grid",
    "gray_ssim",
    "gray_psnr",
    "gray_psnr_ab",
    "gray_colorfulness",
    "gray_grid",
    "truth_colorfulness",
    "truth_grid",
}


def _smooth_color(batch: int = 2, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Colourful, smoothly varying images (random noise would make every metric trivial)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, 3, 4, 4, generator=generator)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear")


def _lab_image(lightness: float, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    lab = torch.stack([torch.full_like(a, lightness), a, b], dim=1)
    return lab_to_rgb(lab, clamp=False)


@pytest.fixture(scope="module")
def tiny_model() -> colorkit.Colorizer:
    torch.manual_seed(0)
    return colorkit.build(
        "pix2pix+mlp", generator_depth=3, base_channels=8, refiner_hidden=16, refiner_patch=4
    )


# -- per-image metrics -----------------------------------------------------------------------
def test_identical_images_score_perfectly() -> None:
    image = _smooth_color()
    assert torch.allclose(ssim(image, image), torch.ones(2), atol=1e-5)
    assert (psnr(image, image) >= 40).all()
    assert torch.isfinite(psnr(image, image)).all()
    assert (psnr_ab(image, image) >= 40).all()


def test_worse_images_score_lower() -> None:
    image = _smooth_color()
    noisy = image + 0.2 * torch.randn(image.shape, generator=torch.Generator().manual_seed(1))
    assert (ssim(noisy, image) < 0.9).all()
    assert (psnr(noisy, image) < psnr(image, image)).all()


def test_psnr_ab_penalises_recoloring() -> None:
    truth = _smooth_color()
    # same lightness, hue rotated by 180 degrees: a colour change the RGB metrics underrate
    lab = colorkit.color.rgb_to_lab(truth)
    recolored = lab_to_rgb(torch.cat([lab[:, :1], -lab[:, 1:]], dim=1))
    assert (psnr_ab(recolored, truth) < psnr_ab(truth, truth) - 20).all()
    assert (psnr_ab(recolored, truth) < 35).all()


def test_psnr_ab_ignores_lightness() -> None:
    generator = torch.Generator().manual_seed(2)
    a = 10 * torch.rand(2, 16, 16, generator=generator) - 5
    b = 10 * torch.rand(2, 16, 16, generator=generator) - 5
    darker, lighter = _lab_image(45.0, a, b), _lab_image(65.0, a, b)
    assert darker.min() >= 0 and lighter.max() <= 1  # in gamut, so no clamping moved ab
    assert (psnr(darker, lighter) < 25).all()
    assert (psnr_ab(darker, lighter) > 60).all()


def test_colorfulness_is_zero_for_gray_and_grows_with_saturation() -> None:
    gray = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(3)).expand(
        -1, 3, -1, -1
    )
    assert torch.allclose(colorfulness(gray), torch.zeros(3), atol=1e-4)

    image = _smooth_color(batch=1)
    mean = image.mean(dim=1, keepdim=True)
    washed = mean + 0.3 * (image - mean)
    saturated = (mean + 1.5 * (image - mean)).clamp(0, 1)
    values = [colorfulness(x).item() for x in (washed, image, saturated)]
    assert 0 < values[0] < values[1] < values[2]


def test_periodic_pattern_recovers_a_stamped_pattern_and_ignores_smooth_content() -> None:
    stamp = torch.randn(1, 2, 8, 8)
    stamp -= stamp.mean(dim=(-2, -1), keepdim=True)
    rows = torch.linspace(-30, 30, 96).view(1, 1, 96, 1)
    ramp = (rows + rows.transpose(-1, -2)).expand(1, 2, 96, 96)
    assert periodic_pattern(ramp, 8).abs().max() < 1e-4
    found = periodic_pattern(ramp + stamp.repeat(1, 1, 12, 12), 8)
    assert torch.allclose(found, stamp, atol=1e-4)
    # the same pattern looked for at another period is mostly averaged away
    assert periodic_pattern(ramp + stamp.repeat(1, 1, 12, 12), 7).abs().max() < 0.5


def test_grid_scores_a_stamped_chroma_grid_and_not_smooth_colour() -> None:
    smooth = _smooth_color(2, size=64)
    assert (grid(smooth) < 0.6).all()
    assert grid(rgb_to_gray(smooth).expand(-1, 3, -1, -1)).abs().max() < 1e-3
    dots = torch.zeros(1, 3, 8, 8)
    dots[:, 0, 3, 3] = 0.2  # a red dot in every 8×8 patch
    dotted = (smooth + dots.repeat(1, 1, 8, 8)).clamp(0, 1)
    assert (grid(dotted) > grid(smooth) + 1.0).all()
    assert (grid(dotted, period=7) < grid(dotted) / 3).all()


def test_grid_rejects_a_bad_period_or_a_small_image() -> None:
    with pytest.raises(MetricsError, match="at least 2"):
        grid(torch.rand(1, 3, 32, 32), period=1)
    with pytest.raises(MetricsError, match="at least 15 px"):
        grid(torch.rand(1, 3, 14, 32), period=8)


class _PeriodicError(torch.nn.Module):
    """A refiner that adds the same chroma dot to every 8×8 patch: a known grid error."""

    patch = 8

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        dots = torch.zeros_like(x[:1, :, :8, :8])
        dots[:, :, 3, 3] = 0.2  # 22 ab units on a and b
        height, width = x.shape[-2:]
        return x + dots.repeat(1, 1, -(-height // 8), -(-width // 8))[..., :height, :width]


def test_evaluate_catches_a_refiner_with_a_periodic_error_not_the_identity(
    tiny_model: colorkit.Colorizer,
) -> None:
    images = list(_smooth_color(3, size=48, seed=4))
    kwargs = {"progress": False, "grid_period": 8}
    generator_only = evaluate(tiny_model, images, refine=False, **kwargs).means()
    original = tiny_model.refiner
    try:
        tiny_model.refiner = colorkit.create("refiner", "identity")
        identity = evaluate(tiny_model, images, **kwargs).means()
        tiny_model.refiner = _PeriodicError()
        periodic = evaluate(tiny_model, images, **kwargs).means()
    finally:
        tiny_model.refiner = original
    assert identity["grid"] == pytest.approx(generator_only["grid"], abs=1e-6)
    # one pixel in 64 moved by (22, 22) in ab: a zero-mean pattern of RMS 22·√2·√(63)/64
    assert periodic["grid"] - generator_only["grid"] > 2.0
    assert periodic["gray_grid"] == pytest.approx(0.0, abs=1e-3)


def test_colorfulness_matches_hand_computation() -> None:
    image = torch.zeros(1, 3, 4, 4)
    image[0, 0, :, :2] = 1.0  # left half pure red
    image[0, 2, :, 2:] = 1.0  # right half pure blue
    # red: rg = 255, yb = 127.5; blue: rg = 0, yb = -255; each on half of the pixels
    rg = (255.0, 0.0)
    yb = (127.5, -255.0)
    mean_rg, mean_yb = sum(rg) / 2, sum(yb) / 2
    std_rg = math.sqrt(sum((v - mean_rg) ** 2 for v in rg) / 2)
    std_yb = math.sqrt(sum((v - mean_yb) ** 2 for v in yb) / 2)
    expected = math.hypot(std_rg, std_yb) + 0.3 * math.hypot(mean_rg, mean_yb)
    assert colorfulness(image).item() == pytest.approx(expected, rel=1e-5)


def test_scores_are_per_image() -> None:
    pred, truth = _smooth_color(3, seed=4), _smooth_color(3, seed=5)
    batch = score(pred, truth)
    assert set(batch) == set(METRICS)
    for name, values in batch.items():
        assert values.shape == (3,), name
        single = score(pred[1:2], truth[1:2])[name]
        assert values[1].item() == pytest.approx(single.item(), rel=1e-5, abs=1e-6), name
    assert len(set(batch["psnr"].tolist())) == 3


def test_out_of_range_values_are_clamped_not_asserted() -> None:
    truth = _smooth_color(seed=6)
    wild = truth * 1.6 - 0.3
    clamped = wild.clamp(0, 1)
    for metric in (ssim, psnr, psnr_ab):
        assert torch.allclose(metric(wild, truth), metric(clamped, truth)), metric.__name__
    assert torch.allclose(colorfulness(wild), colorfulness(clamped))


def test_ssim_follows_the_recorded_protocol_on_large_images() -> None:
    truth = _smooth_color(1, size=520, seed=7)
    pred = truth + 0.05 * torch.randn(truth.shape, generator=torch.Generator().manual_seed(8))
    pred = pred.clamp(0, 1)
    settings = {k: v for k, v in PROTOCOL["ssim"].items() if k not in ("function", "on", "window")}
    assert torch.allclose(ssim(pred, truth), piq.ssim(pred, truth, **settings))
    # the decision: scored at the evaluated size, although at 520 px piq's default would
    # have averaged 2×2 first
    assert settings["downsample"] is False
    other = piq.ssim(pred, truth, **{**settings, "downsample": not settings["downsample"]})
    assert not torch.allclose(ssim(pred, truth), other)


def test_protocol_is_json_and_names_piq() -> None:
    text = json.dumps(PROTOCOL)
    assert json.loads(text)["piq_version"] == piq.__version__
    assert PROTOCOL["ssim"]["kernel_size"] == 11 and PROTOCOL["ssim"]["reduction"] == "none"


@pytest.mark.parametrize(
    ("pred", "target", "match"),
    [
        (torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16), "B×3×H×W"),
        (torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 17), "same shape"),
        (torch.full((1, 3, 16, 16), math.nan), torch.rand(1, 3, 16, 16), "NaN"),
        (torch.zeros(1, 3, 16, 16, dtype=torch.uint8), torch.rand(1, 3, 16, 16), "float"),
        (torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), "11×11"),
    ],
)
def test_bad_input_is_a_clear_error(pred: torch.Tensor, target: torch.Tensor, match: str) -> None:
    with pytest.raises(MetricsError, match=match) as info:
        score(pred, target)
    assert isinstance(info.value, colorkit.ColorkitError)


# -- evaluate --------------------------------------------------------------------------------
def test_evaluate_reports_every_image(tiny_model: colorkit.Colorizer) -> None:
    images = [_smooth_color(1, seed=seed)[0] for seed in range(3)] + [torch.rand(3, 32, 32)]
    report = evaluate(
        tiny_model,
        images,
        batch_size=2,
        progress=False,
        protocol_extra={"size": 32, "crop": "center", "root": Path("/photos")},
    )
    assert isinstance(report, EvalReport)
    assert [row["image"] for row in report.rows] == ["0", "1", "2", "3"]
    for row in report.rows:
        assert set(row) == ROW_KEYS
        assert row["gray_colorfulness"] == pytest.approx(0.0, abs=1e-3)
        assert row["truth_colorfulness"] > 1.0

    means = report.means()
    assert set(means) == ROW_KEYS - {"image"}
    assert means["psnr"] == pytest.approx(sum(r["psnr"] for r in report.rows) / 4)

    data = json.loads(json.dumps(report.to_json()))
    assert set(data) == {"protocol", "mean", "images"}
    assert data["protocol"]["size"] == 32 and data["protocol"]["root"] == "/photos"
    assert data["protocol"]["images"] == 4
    assert data["protocol"]["ssim_downsample_applied"] is False
    assert data["protocol"]["piq_version"] == piq.__version__
    assert len(data["images"]) == 4

    table = report.table()
    for word in ("image", "ssim", "psnr", "psnr_ab", "colorfulness", "gray input", "ground truth"):
        assert word in table
    assert all(len(line) <= 100 for line in table.splitlines())
    assert len(table.splitlines()) >= 4 + 6


def test_evaluate_gray_baseline_matches_scoring_the_gray_image(
    tiny_model: colorkit.Colorizer,
) -> None:
    truth = _smooth_color(2, seed=9)
    report = evaluate(tiny_model, list(truth), progress=False)
    gray = rgb_to_gray(truth).expand(-1, 3, -1, -1)
    expected = score(gray, truth)
    for index, row in enumerate(report.rows):
        for name in METRICS:
            assert row[f"gray_{name}"] == pytest.approx(expected[name][index].item(), abs=1e-4)
        assert row["truth_colorfulness"] == pytest.approx(colorfulness(truth)[index].item())
        period = report.protocol["grid_period"]
        assert row["truth_grid"] == pytest.approx(grid(truth, period)[index].item(), abs=1e-5)


def test_evaluate_names_from_dataset_paths_and_mixed_sizes(
    tiny_model: colorkit.Colorizer,
) -> None:
    class Photos(torch.utils.data.Dataset):
        def __init__(self) -> None:
            self.paths = [Path("a/beach.jpg"), Path("b/forest.png"), Path("c/city.jpeg")]

        def __len__(self) -> int:
            return 3

        def __getitem__(self, index: int) -> torch.Tensor:
            return _smooth_color(1, size=24 + 8 * index, seed=index)[0]

    report = evaluate(tiny_model, Photos(), batch_size=8, progress=False)
    assert [row["image"] for row in report.rows] == ["beach", "forest", "city"]
    assert report.protocol["image_sizes"] == [[24, 24], [32, 32], [40, 40]]


def test_evaluate_rejects_bad_datasets(tiny_model: colorkit.Colorizer) -> None:
    good = torch.rand(3, 32, 32)
    with pytest.raises(MetricsError, match=r"item 1 \(second\)"):
        evaluate(tiny_model, [good, torch.rand(32, 32)], names=["first", "second"], progress=False)
    with pytest.raises(MetricsError, match="names has 1"):
        evaluate(tiny_model, [good, good], names=["only"], progress=False)
    with pytest.raises(MetricsError, match="empty"):
        evaluate(tiny_model, [], progress=False)
    with pytest.raises(MetricsError, match="batch_size"):
        evaluate(tiny_model, [good], batch_size=0, progress=False)


def test_evaluate_of_a_model_that_adds_nothing_equals_the_baseline() -> None:
    class GrayModel:
        device = torch.device("cpu")
        recipe_name = "gray"
        precision = "fp32"

        def colorize(self, gray: torch.Tensor, **_: object) -> torch.Tensor:
            return gray.expand(-1, 3, -1, -1)

    report = evaluate(GrayModel(), list(_smooth_color(2, seed=10)), progress=False)  # type: ignore[arg-type]
    means = report.means()
    for name in METRICS:
        assert means[name] == pytest.approx(means[f"gray_{name}"], abs=1e-6)
    assert "+0.0000" in report.table()


def _report(images: list[str], gain: float) -> EvalReport:
    rows = [
        {
            "image": name,
            **{metric: 20.0 + gain for metric in METRICS},
            **{f"gray_{metric}": 20.0 for metric in METRICS},
            "truth_colorfulness": 40.0,
        }
        for name in images
    ]
    return EvalReport(rows=rows)


def test_table_counts_the_images_whose_chroma_beats_the_gray_input() -> None:
    rows = [*_report(["a", "b", "c"], 0.5).rows, *_report(["d"], -2.0).rows]
    table = EvalReport(rows=rows).table()
    # 3 of 4 images gain; colorfulness 20.5·3/4 + 18/4 = 19.875 of the truth's 40
    assert "chroma PSNR above the gray input's on 3 of 4 images" in table
    assert "colorfulness 50% of the truth's" in table
    assert "on 0 of 1 images" in EvalReport(rows=_report(["x"], 0.0).rows).table()


def test_comparison_table_lines_up_models_after_the_gray_input() -> None:
    table = comparison_table(
        {"runs/a/step-10.safetensors": _report(["x", "y"], 1.5), "b": _report(["x", "y"], -0.25)}
    )
    lines = table.splitlines()
    assert lines[0] == "2 images; means over images"
    assert lines[2].split() == ["gray", "input", "20.0000", "20.00", "20.00", "20.00", "20.00"]
    assert lines[3].split() == [
        "runs/a/step-10.safetensors",
        "21.5000",
        "21.50",
        "21.50",
        "21.50",
        "21.50",
        "+1.50",
    ]
    assert lines[4].split() == ["b", "19.7500", "19.75", "19.75", "19.75", "19.75", "-0.25"]
    long = "x" * 60 + "/step-20.safetensors"
    assert (
        comparison_table({long: _report(["x"], 0.0)}).splitlines()[3].startswith("…" + long[-47:])
    )


def test_comparison_table_refuses_reports_on_different_images() -> None:
    with pytest.raises(ValueError, match="different images"):
        comparison_table({"a": _report(["x"], 0.0), "b": _report(["y"], 0.0)})
    with pytest.raises(ValueError, match="at least one"):
        comparison_table({})
