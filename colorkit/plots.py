"""Pictures of a training run, drawn with Pillow alone.

:func:`loss_curves` turns a run's ``metrics.jsonl`` into ``metrics.png``: a row per
trained part (discriminator, generator, refiner) and in it a plot per loss term against
the step, so a collapsing discriminator or a stalled L1 shows at a glance.
:func:`sample_grid` draws what the model makes of a few photos: gray input, truth, the
generator's colours and the refined ones, side by side.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image, ImageDraw, ImageFont

from colorkit.color import rgb_to_gray
from colorkit.files import atomic_path
from colorkit.imaging import save_image, tensor_to_pil

if TYPE_CHECKING:
    from colorkit.engine import Colorizer

__all__ = ["PARTS", "load_font", "loss_curves", "photo_rows", "read_metrics", "sample_grid"]

#: Panel title → prefix of the loss terms drawn in it (``train_step``'s key names).
PARTS = {"discriminator": "d_", "generator": "g_", "refiner": "r_"}

_COLORS = ("#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2")


def load_font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's bundled font at ``size`` pixels (its fixed bitmap font without FreeType).

    Args:
        size: the font size in pixels.

    Returns:
        A font for ``ImageDraw.text``.
    """
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):
        return ImageFont.load_default()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` log, skipping lines that do not parse.

    A run killed while appending leaves a partial last line; it is skipped rather
    than failing the picture.

    Args:
        path: the log file.

    Returns:
        One dict per parsed line, in file order.

    Raises:
        OSError: if the file cannot be read.
    """
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), (int, float)):
            records.append(record)
    return records


def _series(
    records: Sequence[Mapping[str, Any]], prefix: str
) -> dict[str, list[tuple[float, float]]]:
    found: dict[str, list[tuple[float, float]]] = {}
    for record in records:
        for key, value in record.items():
            if key.startswith(prefix) and isinstance(value, (int, float)) and math.isfinite(value):
                found.setdefault(key, []).append((float(record["step"]), float(value)))
    return found


def loss_curves(
    records: Sequence[Mapping[str, Any]], path: str | Path, title: str = "", width: int = 900
) -> Path | None:
    """Draw each loss term against the step as a PNG: a row per part, a plot per term.

    Every plot has its own vertical range, so a small term (an L1 of 0.1 beside a
    cGAN loss of 0.7) is as readable as a large one.

    Args:
        records: metric records with a ``step`` and loss terms named as
            :meth:`colorkit.engine.Colorizer.train_step` names them (``d_real``,
            ``g_l1``, ``r_cgan``, ...); other keys are ignored.
        path: the PNG to write (atomically; its folder must exist).
        title: the picture's heading.
        width: the image width in pixels.

    Returns:
        The path written, or ``None`` (nothing written) when no record has a loss term.
    """
    rows = {name: _series(records, prefix) for name, prefix in PARTS.items()}
    rows = {name: series for name, series in rows.items() if series}
    if not rows:
        return None
    font, small, bold = load_font(14), load_font(12), load_font(16)
    margin, label_room, gap = 16, 56, 24
    head = 40 if title else 12
    plot_height, row_height = 120, 24 + 120 + 30
    image = Image.new("RGB", (width, head + row_height * len(rows)), "white")
    draw = ImageDraw.Draw(image)
    if title:
        draw.text((margin, 12), title, fill="black", font=bold)
    steps = [step for series in rows.values() for s in series.values() for step, _ in s]
    x0, x1 = min(steps), max(steps)
    x_span = (x1 - x0) or 1.0
    top = head
    for name, series in rows.items():
        cell = (width - 2 * margin - len(series) * (label_room + gap) + gap) / len(series)
        for index, (key, points) in enumerate(series.items()):
            color = _COLORS[index % len(_COLORS)]
            left = margin + label_room + index * (cell + label_room + gap)
            right, plot_top = left + cell, top + 24
            plot_bottom = plot_top + plot_height
            draw.text((left - label_room, top + 4), f"{name}: {key}", fill=color, font=font)
            values = [value for _, value in points]
            low, high = min(values), max(values)
            pad = (high - low) * 0.05 or abs(high) * 0.05 or 1.0
            low, high = low - pad, high + pad
            draw.rectangle([left, plot_top, right, plot_bottom], outline="#bbbbbb")
            for value, y in ((high, plot_top), (low, plot_bottom - 12)):
                draw.text((left - label_room, y), f"{value:.3g}", fill="#555555", font=small)
            first, last = f"step {x0:g}", f"step {x1:g}"
            draw.text((left, plot_bottom + 4), first, fill="#555555", font=small)
            last_x = right - draw.textlength(last, font=small)
            draw.text((last_x, plot_bottom + 4), last, fill="#555555", font=small)
            y_scale = plot_height / (high - low)
            xy = [
                (left + (step - x0) / x_span * cell, plot_top + (high - value) * y_scale)
                for step, value in points
            ]
            if len(xy) > 1:
                draw.line(xy, fill=color, width=2)
            else:
                (cx, cy), r = xy[0], 2
                draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color)
        top += row_height
    with atomic_path(path) as temporary:
        image.save(temporary, format="PNG")
    return Path(path)


def photo_rows(
    rows: Sequence[Sequence[Image.Image]], titles: Sequence[str], path: str | Path
) -> Path:
    """Write a PNG of photos side by side: one row per photo, one titled column per version.

    Each row's images share a height and width (different rows may differ); each
    column is as wide as its widest image.

    Args:
        rows: per row, one image per column.
        titles: one title per column, written above it.
        path: the PNG to write (atomically).

    Returns:
        The path written.

    Raises:
        ValueError: if there are no rows or a row does not have one image per title.
    """
    if not rows:
        raise ValueError("photo_rows needs at least one row")
    for index, row in enumerate(rows):
        if len(row) != len(titles):
            raise ValueError(f"row {index} has {len(row)} images for {len(titles)} titles")
    width = max(image.width for row in rows for image in row)
    header = 14
    height = header + sum(row[0].height for row in rows)
    canvas = Image.new("RGB", (width * len(titles), height), "white")
    draw = ImageDraw.Draw(canvas)
    for column, title in enumerate(titles):
        draw.text((column * width + 4, 2), title, fill="black")
    top = header
    for row in rows:
        for column, image in enumerate(row):
            canvas.paste(image.convert("RGB"), (column * width, top))
        top += row[0].height
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(canvas, path, {"format": "PNG"})
    return path


def sample_grid(model: Colorizer, images: torch.Tensor, path: str | Path) -> Path:
    """Write a PNG grid, one row per image: gray input | ground truth | generator | refined.

    The layout of the paper's figures 7-12, with the generator's raw output beside
    the refiner's so the refiner's effect is visible.

    Args:
        model: the model to sample.
        images: ``B×3×H×W`` RGB in ``[0, 1]``.
        path: the PNG to write (atomically).

    Returns:
        The path written.
    """
    images = images.to(model.device)
    gray = rgb_to_gray(images)
    columns = {
        "input": gray.expand(-1, 3, -1, -1),
        "truth": images,
        "generator": model.colorize(gray, refine=False),
        "refined": model.colorize(gray),
    }
    rows = [[tensor_to_pil(batch[row]) for batch in columns.values()] for row in range(len(images))]
    return photo_rows(rows, list(columns), path)
