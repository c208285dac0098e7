"""The demos behind ``colorkit demo``.

:func:`pretrained_demo` (``colorkit demo``) colorizes real photos with pretrained weights
(the ``starter`` weights unless told otherwise) in seconds: a picture of each photo gray,
colorized and true, and the scores beside the gray input. :func:`demo`
(``colorkit demo --train``) is a short training run on the embedded photos, then its
held-out scores and a grid of what it colorizes.

>>> from colorkit.demo import DEMO, demo, pretrained_demo
>>> shown = pretrained_demo()  # doctest: +SKIP
>>> trained = demo(DEMO)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from colorkit.checkpoint import load
from colorkit.color import rgb_to_gray
from colorkit.data import PhotoDataset, evaluation_photos, find_images, photo_folder, scan_images
from colorkit.files import write_json
from colorkit.imaging import load_rgb, pil_to_tensor, tensor_to_pil
from colorkit.metrics import EvalReport, comparison_table, evaluate
from colorkit.plots import photo_rows, sample_grid
from colorkit.registry import default_registry
from colorkit.trainer import TrainConfig, TrainResult, train
from colorkit.weights import DEFAULT_WEIGHTS

__all__ = [
    "DEMO",
    "PICTURE_HEIGHT",
    "DemoResult",
    "PretrainedDemoResult",
    "demo",
    "fitting_overrides",
    "pretrained_demo",
]

#: Height, in pixels, of each photo in the picture :func:`pretrained_demo` draws.
PICTURE_HEIGHT = 256

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


@dataclass
class PretrainedDemoResult:
    """What :func:`pretrained_demo` made.

    Attributes:
        reports: each weights' name (as given) → its scores on the photos (centre crops
            at ``size``), beside the gray input.
        scores: the JSON file of those scores.
        picture: the PNG of every photo: gray | one column per weights | truth.
        photos: how many photos it shows.
    """

    reports: dict[str, EvalReport]
    scores: Path
    picture: Path
    photos: int

    def table(self) -> str:
        """The scores for the terminal: one model's full table, or several side by side.

        Returns:
            The table as text.
        """
        if len(self.reports) == 1:
            return next(iter(self.reports.values())).table()
        return comparison_table(self.reports)


def _label(weights: str | Path) -> str:
    return Path(str(weights)).stem


def pretrained_demo(
    weights: str | Path | Sequence[str | Path] = DEFAULT_WEIGHTS,
    data: str | Path | None = None,
    out: str | Path = "runs/demo",
    working_size: int = 256,
    size: int = 256,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> PretrainedDemoResult:
    """Colorize colour photos turned gray with pretrained weights; draw and score the result.

    Each photo is shown whole at :data:`PICTURE_HEIGHT` pixels high: gray, then each
    weights' colorization at ``working_size`` (as ``colorkit colorize`` makes it), then the
    truth. The scores are those of ``colorkit evaluate`` (centre crops of ``size``
    pixels) beside the gray input. Writes ``<name>.png`` and ``<name>-metrics.json`` into
    ``out``, where ``<name>`` is the weights' name or file stem, or ``comparison`` for
    several weights.

    Args:
        weights: registered weights (``colorkit list weights``), a weights file or a
            checkpoint; or several, to compare them.
        data: a folder of colour photos; ``None`` for the embedded photos (never trained on
            by the ``starter`` weights).
        out: the folder to write into.
        working_size: the longer side the networks run at.
        size: the side of the scored centre crops.
        device: where to run.
        progress: show a progress bar while scoring.

    Returns:
        The scores and where the picture and scores were written.

    Raises:
        colorkit.weights.WeightsError: for weights that are neither a file nor registered.
        colorkit.data.DataError: if ``data`` holds no usable colour photo.
        ValueError: if no weights are given, or two share a name.
    """
    chosen = [weights] if isinstance(weights, (str, Path)) else list(weights)
    labels = [_label(w) for w in chosen]
    if not chosen or len(set(labels)) < len(labels):
        raise ValueError(f"weights: expected one or more with distinct names, got {labels}")
    models = [load(w, device=device) for w in chosen]
    folder = photo_folder(data)
    dataset = evaluation_photos(folder, size)
    rows = []
    for path in scan_images(find_images(folder)).usable:
        photo = load_rgb(path)
        photo = photo.resize(
            (max(1, round(photo.width * PICTURE_HEIGHT / photo.height)), PICTURE_HEIGHT),
            Image.Resampling.LANCZOS,
        )
        gray = rgb_to_gray(pil_to_tensor(photo)[None])
        colorized = [
            tensor_to_pil(m.colorize(gray.to(m.device), working_size=working_size)[0])
            for m in models
        ]
        rows.append([tensor_to_pil(gray[0].expand(3, -1, -1)), *colorized, photo])
    name = labels[0] if len(labels) == 1 else "comparison"
    out = Path(out)
    picture = photo_rows(rows, ["gray input", *labels, "truth"], out / f"{name}.png")
    reports = {
        label: evaluate(
            model,
            dataset,
            progress=progress,
            protocol_extra={"weights": str(given), "data": str(folder), "size": size},
        )
        for label, given, model in zip(labels, chosen, models, strict=True)
    }
    scores = write_json(
        out / f"{name}-metrics.json", {label: r.to_json() for label, r in reports.items()}
    )
    return PretrainedDemoResult(reports, scores, picture, len(rows))
