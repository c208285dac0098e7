"""The demo: a U-Net fitted to the crop size (the demo run itself is tested through the CLI)."""

from __future__ import annotations

from colorkit.components.generators import UNet
from colorkit.demo import DEMO, fitting_overrides


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
