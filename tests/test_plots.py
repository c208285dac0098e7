"""Tests of colorkit.plots: the loss curves and sample grids of a run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from support import build_tiny, smooth_batch

from colorkit.plots import loss_curves, read_metrics, sample_grid

BLUE, RED = (0x4E, 0x79, 0xA7), (0xE1, 0x57, 0x59)  # first and second term of a row


def _mean_heights(image: Image.Image, color: tuple[int, int, int], top: int, bottom: int):
    """Mean row of the ``color`` pixels in the left and right fifths of the band."""
    pixels = np.asarray(image.convert("RGB"))[top:bottom]
    rows, cols = np.nonzero((pixels == color).all(axis=-1))
    span = cols.max() - cols.min()
    left = rows[cols < cols.min() + span / 5].mean()
    right = rows[cols > cols.max() - span / 5].mean()
    return left, right


def test_each_term_is_drawn_in_its_own_plot(tmp_path: Path) -> None:
    records = [
        {"step": s, "images_per_s": 3.0, "g": 9.0, "g_cgan": 2.0 - s / 100, "g_l1": 0.1 + s / 1e4}
        for s in range(10, 110, 10)
    ]
    path = loss_curves(records, tmp_path / "metrics.png", title="unit test")
    assert path == tmp_path / "metrics.png"
    with Image.open(path) as image:
        assert image.width == 900
        band = (40 + 24, 40 + 24 + 121)  # below the title and the row's labels
        cgan_left, cgan_right = _mean_heights(image, BLUE, *band)
        l1_left, l1_right = _mean_heights(image, RED, *band)
    assert cgan_left < cgan_right - 50  # falling: drawn from high to low
    assert l1_left > l1_right + 50  # rising, though a hundred times smaller


def test_records_without_loss_terms_draw_nothing(tmp_path: Path) -> None:
    assert loss_curves([{"step": 1, "images_per_s": 2.0}], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_read_metrics_skips_a_partly_written_line(tmp_path: Path) -> None:
    log = tmp_path / "metrics.jsonl"
    log.write_text('{"step": 10, "g_l1": 0.2}\n{"step": 20, "g_l1": 0.1}\n{"step": 30, "g_')
    assert read_metrics(log) == [{"step": 10, "g_l1": 0.2}, {"step": 20, "g_l1": 0.1}]


def test_sample_grid_draws_input_truth_generator_refined(tmp_path: Path) -> None:
    model = build_tiny("pix2pix+mlp")
    images = smooth_batch(24, 20)
    path = sample_grid(model, images, tmp_path / "samples" / "grid.png")
    with Image.open(path) as grid:
        assert grid.size == (4 * 20, 14 + 2 * 24)  # four columns under a header, a row each
        truth = np.asarray(grid.convert("RGB"))[14 : 14 + 24, 20:40]
    expected = (images[0].permute(1, 2, 0).numpy() * 255).round()
    assert np.abs(truth.astype(float) - expected).max() <= 1
