"""The demo behind ``colorkit demo``: a short training run on the embedded photos, then
its held-out scores and a grid of what it colorizes.

>>> from colorkit.demo import DEMO, demo
>>> result = demo(DEMO)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from colorkit.data import PhotoDataset
from colorkit.files import write_json
from colorkit.metrics import EvalReport, evaluate
from colorkit.plots import sample_grid
from colorkit.registry import default_registry
from colorkit.trainer import TrainConfig, TrainResult, train

__all__ = ["DEMO", "DemoResult", "demo", "fitting_overrides"]

#: The demo's settings: a few minutes on a CPU; a second demo reuses (or extends) the run.
DEMO = TrainConfig(out="runs/demo", size=128, steps=200, resume=True)


@dataclass
class DemoResult:
    """What :func:`demo` made.

    Attributes:
        training: the training run.
        report: the scores of the held-out photos.
        scores: the JSON file of those scores (``demo-metrics.json``).
        grid: the picture of every photo colorized (``demo.png``), held-out rows first.
        held_out: how many rows of the grid are held-out photos.
    """

    training: TrainResult
    report: EvalReport
    scores: Path
    grid: Path
    held_out: int


def fitting_overrides(recipe: str, overrides: dict[str, Any], size: int) -> dict[str, int]:
    """The override that fits the generator's depth to the crop size, where it can be.

    A generator that offers ``fitting_depth(size)`` (colorkit's U-Net:
    :meth:`colorkit.components.generators.UNet.fitting_depth`) gets that depth unless the
    overrides already set one.

    Args:
        recipe: the recipe name.
        overrides: the overrides for :func:`colorkit.build` given so far.
        size: the crop side in pixels.

    Returns:
        ``{"generator_depth": depth}``, or nothing where the generator cannot be fitted
        or its depth is already set.
    """
    registry = default_registry()
    generator = overrides.get("generator", registry.create("recipe", recipe).generator)
    fitting_depth = getattr(registry.get("generator", generator).factory, "fitting_depth", None)
    if fitting_depth is None or {"depth", "generator_depth"} & overrides.keys():
        return {}
    return {"generator_depth": fitting_depth(size)}


def demo(config: TrainConfig = DEMO) -> DemoResult:
    """Train briefly, score the held-out photos and draw every photo colorized.

    The run resumes an earlier one in ``config.out``, and a U-Net is fitted to the crop
    size (:func:`fitting_overrides`). Writes ``demo-metrics.json`` and ``demo.png``
    (gray | truth | generator | refined) beside the run's own files.

    Args:
        config: the training settings (:data:`DEMO` by default).

    Returns:
        The run, the scores and where they were written.

    Raises:
        colorkit.data.DataError: if the photos cannot be used.
    """
    config = dataclasses.replace(
        config,
        resume=True,
        overrides={
            **fitting_overrides(config.recipe, config.overrides, config.size),
            **config.overrides,
        },
    )
    result = train(config)
    train_set, test_set, _ = config.photos()
    data = config.data or "embedded photos"
    tested = config.eval_data or f"held-out share {config.test_fraction:g} of {data}"
    report = evaluate(
        result.model,
        test_set,
        progress=config.progress,
        protocol_extra={"data": data, "test_data": tested, "size": config.size},
    )
    scores = write_json(result.run_dir / "demo-metrics.json", report.to_json())
    photos = PhotoDataset([*test_set.paths, *train_set.paths], size=config.size, train=False)
    images = torch.stack([photos[i] for i in range(len(photos))])
    grid = sample_grid(result.model, images, result.run_dir / "demo.png")
    return DemoResult(result, report, scores, grid, len(test_set))
