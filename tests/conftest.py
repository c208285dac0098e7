"""Shared fixtures: tiny models, a smooth colour test batch, a folder of photos."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from support import build_tiny, make_mixed_folder, smooth_batch

import colorkit

# The tests run tiny tensors, where intra-op threads cost more than they give and,
# when other processes share the cores, spin-waiting threads slow steps down tenfold.
torch.set_num_threads(1)


@pytest.fixture
def tiny() -> Callable[..., colorkit.Colorizer]:
    """:func:`build_tiny`: ``tiny("pix2pix", seed=0, **overrides)``."""
    return build_tiny


@pytest.fixture
def rgb_batch() -> torch.Tensor:
    """:func:`smooth_batch` at 32×32."""
    return smooth_batch()


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """A folder of six small colour PNG "photos" (ramps plus seeded noise)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 48, dtype=np.float32)
    for i in range(6):
        channels = [
            np.add.outer(ramp, ramp) / 2,
            np.tile(ramp, (48, 1)),
            rng.uniform(0, 255, (48, 48)),
        ]
        image = np.stack(channels, axis=-1).astype(np.uint8)
        Image.fromarray(image).save(folder / f"photo{i}.png")
    return folder


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    """A folder of good, bad and grayscale files of many formats and modes."""
    return make_mixed_folder(tmp_path)
