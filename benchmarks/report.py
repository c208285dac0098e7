"""Writing benchmark results: JSON, Markdown and plain-text tables, and a bar chart.

Everything here is independent of what was measured: the tables take headers and rows,
the chart takes labels and one list of values per metric. Files are written atomically
(a temporary file in the same folder, then a rename), so an interrupted run never leaves
a half-written result beside the previous complete one.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw

from colorkit import files
from colorkit.files import atomic_path
from colorkit.plots import load_font

__all__ = [
    "bar_chart",
    "device_description",
    "format_value",
    "markdown_table",
    "text_table",
    "write_json",
    "write_text",
]

#: Bar colours, one per label in turn; the gray baseline gets :data:`BASELINE_COLOR`.
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948")
BASELINE_COLOR = "#9d9d9d"


def _atomic_write(path: Path, write: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        write(temporary)
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write a text file atomically, creating its folder.

    Args:
        path: the file to write.
        text: its content (UTF-8).

    Returns:
        The path written.

    Raises:
        OSError: if the folder cannot be created or the file written.
    """
    return _atomic_write(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, data: Any) -> Path:
    """Write data as indented JSON, atomically.

    Non-finite floats are written as ``null`` (strict JSON has no NaN), and values JSON
    does not know (paths, devices) as their text.

    Args:
        path: the file to write.
        data: dicts, lists, strings, numbers, booleans and ``None``.

    Returns:
        The path written.

    Raises:
        OSError: if the folder cannot be created or the file written.
    """
    return files.write_json(path, data, nan_as_null=True)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_description(device: torch.device) -> str:
    """A readable name of the device a benchmark ran on.

    Args:
        device: the torch device.

    Returns:
        E.g. ``"cuda:0 (NVIDIA H100 80GB HBM3)"`` or ``"cpu (AMD EPYC, 2 threads)"``.
    """
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return f"{device} ({_cpu_name()}, {torch.get_num_threads()} threads)"


def format_value(value: Any, digits: int = 2) -> str:
    """One table cell: numbers rounded, missing or non-finite values as ``-``.

    Args:
        value: a number, text or ``None``.
        digits: decimals for floats.

    Returns:
        The cell's text.
    """
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else "-"
    return str(value)


def _check_rows(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    for number, row in enumerate(rows):
        if len(row) != len(headers):
            raise ValueError(
                f"table row {number} has {len(row)} cells but there are {len(headers)} headers"
            )


def markdown_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool] | None = None
) -> str:
    """A GitHub-flavoured Markdown table.

    Args:
        headers: the column titles.
        rows: the cells, already formatted (see :func:`format_value`).
        numeric: per column, whether it is right-aligned; by default the first column
            is left-aligned and the others right-aligned.

    Returns:
        The table, one line per row, without a trailing newline.

    Raises:
        ValueError: if a row or ``numeric`` has the wrong number of cells.
    """
    _check_rows(headers, rows)
    if numeric is None:
        numeric = [index > 0 for index in range(len(headers))]
    if len(numeric) != len(headers):
        raise ValueError(f"numeric has {len(numeric)} entries but there are {len(headers)} headers")

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    rule = ["---:" if right else "---" for right in numeric]
    return "\n".join([line(headers), "|" + "|".join(rule) + "|", *(line(row) for row in rows)])


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table for the terminal: first column left-aligned, the rest right.

    Args:
        headers: the column titles.
        rows: the cells, already formatted.

    Returns:
        The table with a rule under the header, without a trailing newline.

    Raises:
        ValueError: if a row has the wrong number of cells.
    """
    _check_rows(headers, rows)
    table = [list(map(str, headers)), *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(row[col]) for row in table) for col in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.ljust(width) if col == 0 else cell.rjust(width)
            for col, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(table[0]), rule, *(line(row) for row in table[1:])])


def bar_chart(
    path: str | Path,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    title: str = "",
    digits: Mapping[str, int] | None = None,
    baseline: str | None = None,
    references: Mapping[str, tuple[str, float]] | None = None,
    width: int = 960,
) -> Path:
    """Draw horizontal bar charts, one panel per metric, as a PNG (Pillow only).

    Each panel has one bar per label, starting at zero, with the value written at the
    bar's end (and, when ``baseline`` is given and not zero, its difference from the
    baseline's); a missing or non-finite value is written as ``-`` with no bar.

    Args:
        path: the PNG to write.
        labels: the bar labels (e.g. variant names), the same in every panel.
        series: panel title → one value per label; values must be 0 or more.
        title: the chart's heading.
        digits: panel title → decimals of its values (default 2).
        baseline: a label drawn in gray, e.g. the do-nothing baseline; the other bars
            also show their difference from it.
        references: panel title → ``(text, value)`` of a dashed vertical line, e.g. the
            ground truth's own score.
        width: the image width in pixels.

    Returns:
        The path written.

    Raises:
        ValueError: for no labels or panels, a panel with the wrong number of values,
            or a negative value.
    """
    if not labels or not series:
        raise ValueError("bar_chart needs at least one label and one panel")
    for name, values in series.items():
        if len(values) != len(labels):
            raise ValueError(f"panel {name!r} has {len(values)} values for {len(labels)} labels")
        if any(v is not None and math.isfinite(v) and v < 0 for v in values):
            raise ValueError(f"panel {name!r} has a negative value; bars start at zero")
    digits = dict(digits or {})
    references = dict(references or {})
    font, bold, small = load_font(15), load_font(18), load_font(13)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def text_width(text: str, used: Any) -> int:
        left, _, right, _ = probe.textbbox((0, 0), text, font=used)
        return int(right - left)

    margin, bar_height, gap, panel_head = 16, 22, 8, 34
    label_width = max(text_width(label, font) for label in labels) + 2 * margin
    value_room = 150 if baseline is not None else 80
    bar_room = width - label_width - value_room - margin
    if bar_room < 100:
        raise ValueError(f"width={width} leaves no room for bars beside the labels")
    title_height = 40 if title else 8
    panel_height = panel_head + len(labels) * (bar_height + gap) + 10
    height = title_height + len(series) * panel_height + margin
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    if title:
        draw.text((margin, 12), title, fill="black", font=bold)

    top = title_height
    for name, values in series.items():
        places = digits.get(name, 2)
        finite = [v for v in values if v is not None and math.isfinite(v)]
        reference = references.get(name)
        if reference is not None:
            finite.append(reference[1])
        peak = max(finite, default=0.0) or 1.0
        draw.text((margin, top + 8), name, fill="black", font=bold)
        draw.text(
            (margin + text_width(name, bold) + 12, top + 12), "(axis from 0)", "#777777", small
        )
        y = top + panel_head
        bottom = y + len(labels) * (bar_height + gap)
        draw.line([(label_width, y - 3), (label_width, bottom)], "#444444")
        if reference is not None:
            # drawn first, so that bars and their values stay readable on top of it
            x = label_width + round(bar_room * reference[1] / peak)
            for dash in range(y - 3, bottom, 8):
                draw.line([(x, dash), (x, min(dash + 4, bottom))], fill="#333333", width=2)
            caption = f"{reference[0]} {reference[1]:.{places}f}"
            draw.text((x + 6, top + 12), caption, "black", small)
        base_value = None
        if baseline in labels:
            base_value = values[list(labels).index(baseline)]
        for index, (label, value) in enumerate(zip(labels, values, strict=True)):
            color = BASELINE_COLOR if label == baseline else PALETTE[index % len(PALETTE)]
            label_y = y + (bar_height - 15) // 2 - 1
            draw.text((margin, label_y), label, fill="black", font=font)
            if value is None or not math.isfinite(value):
                draw.text((label_width + 6, label_y), "-", fill="black", font=font)
            else:
                length = round(bar_room * value / peak)
                if length > 0:
                    draw.rectangle(
                        [label_width + 1, y, label_width + length, y + bar_height], fill=color
                    )
                text = f"{value:.{places}f}"
                # a difference from a zero baseline would only repeat the value
                if label != baseline and base_value and math.isfinite(base_value):
                    text += f" ({value - base_value:+.{places}f})"
                where = (label_width + length + 6, label_y)
                box = draw.textbbox(where, text, font=font)
                draw.rectangle([box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2], fill="white")
                draw.text(where, text, fill="black", font=font)
            y += bar_height + gap
        top += panel_height
    target = Path(path)
    return _atomic_write(target, lambda tmp: image.save(tmp, format="PNG", optimize=True))
