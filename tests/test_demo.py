"""The demos: the pretrained one's picture and scores, and a U-Net fitted to the crop size
(the training demo's run itself is tested through the CLI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support import build_tiny, save_rgb

from colorkit.checkpoint import save_checkpoint
from colorkit.components.generators import UNet
from colorkit.demo import DEMO, PICTURE_HEIGHT, fitting_overrides, pretrained_demo


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    return save_checkpoint(build_tiny(), folder / "tiny.safetensors", 1)


def test_pretrained_demo_draws_gray_colorized_and_truth_per_photo(
    weights: Path, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    sizes = [(48, 32), (32, 64)]  # (width, height): a landscape and a portrait photo
    for index, (width, height) in enumerate(sizes):
        save_rgb(photos / f"p{index}.png", height=height, width=width, seed=index)
    shown = pretrained_demo(
        weights, photos, tmp_path / "out", working_size=32, size=16, progress=False
    )
    assert shown.photos == 2
    assert shown.picture == tmp_path / "out" / "tiny.png"
    assert shown.reports["tiny"].protocol["images"] == 2
    with Image.open(shown.picture) as picture:
        pixels = np.asarray(picture.convert("RGB"), dtype=np.int16)
    widest = max(round(w * PICTURE_HEIGHT / h) for w, h in sizes)
    header = pixels.shape[0] - 2 * PICTURE_HEIGHT
    assert pixels.shape[1] == 3 * widest and 0 < header < 40
    first = pixels[header : header + PICTURE_HEIGHT]  # the landscape photo's row
    width = round(48 * PICTURE_HEIGHT / 32)
    gray, colorized, truth = (first[:, c * widest : c * widest + width] for c in range(3))
    assert np.abs(gray[..., 0] - gray[..., 2]).max() <= 1  # the input column is gray
    assert np.abs(truth[..., 0] - truth[..., 2]).mean() > 10  # the truth column is not
    assert np.abs(colorized - gray).mean() > 0  # the model's column is its own


def test_demo_fits_the_unet_to_its_crop_size() -> None:
    assert fitting_overrides("pix2pix+mlp", {}, 128) == {"generator_depth": 7}
    assert fitting_overrides("pix2pix+mlp", {}, 256) == {"generator_depth": 8}
    assert fitting_overrides("pix2pix", {"generator": "timm-unet"}, 128) == {}
    assert fitting_overrides("pix2pix", {"generator_depth": 5}, 128) == {}
    assert fitting_overrides("pix2pix", {"refiner": "mlp"}, 64) == {"generator_depth": 6}


def test_the_unet_owns_its_fitting_depth() -> None:
    assert [UNet.fitting_depth(size) for size in (2, 64, 128, 255, 256, 300)] == [2, 6, 7, 7, 8, 8]


def test_demo_defaults_are_a_short_resumable_run() -> None:
    assert (DEMO.steps, DEMO.size, DEMO.out, DEMO.resume) == (200, 128, "runs/demo", True)


def test_pretrained_demo_compares_several_weights_column_by_column(
    weights: Path, tmp_path: Path
) -> None:
    other = save_checkpoint(build_tiny(seed=1), tmp_path / "other.safetensors", 1)
    shown = pretrained_demo(
        [weights, other], out=tmp_path / "out", working_size=32, size=32, progress=False
    )
    assert list(shown.reports) == ["tiny", "other"]
    assert shown.picture.name == "comparison.png"
    assert "other" in shown.table() and "tiny" in shown.table()
    with Image.open(shown.picture) as picture:
        pixels = np.asarray(picture.convert("RGB"), dtype=np.int16)
    columns = np.split(pixels[-PICTURE_HEIGHT:], 4, axis=1)  # the last photo's row
    assert not np.array_equal(columns[1], columns[2])  # two models, two colorizations
    with pytest.raises(ValueError, match="distinct names"):
        pretrained_demo([weights, weights], out=tmp_path / "again")
