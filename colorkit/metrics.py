"""How colorizations are scored: SSIM, PSNR, chroma PSNR and colorfulness, with piq.

Every metric takes ``B×3×H×W`` sRGB batches in ``[0, 1]`` and returns one value per
image. :data:`PROTOCOL` records the exact settings so that reported numbers can be
reproduced; :func:`evaluate` runs a model over a dataset and returns an
:class:`EvalReport` that carries them.

Why four metrics: colorkit's output keeps the input's own lightness, and lightness
carries most of an image's structure and energy, so RGB SSIM and PSNR come out high
even for a model that adds little or wrong colour. ``psnr_ab`` scores the CIELAB
chroma alone and ``colorfulness`` shows whether colour was added at all (a
desaturated guess scores well on PSNR but is dull); the "gray input" baseline, the
gray image itself scored against the truth, shows how much a model adds over doing
nothing.
"""

from __future__ import annotations

import copy
import importlib.metadata
import math
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from colorkit.color import rgb_to_gray, rgb_to_lab
from colorkit.files import jsonable
from colorkit.registry import ColorkitError

if TYPE_CHECKING:
    from colorkit.engine import Colorizer

__all__ = [
    "METRICS",
    "PROTOCOL",
    "EvalReport",
    "MetricsError",
    "colorfulness",
    "comparison_table",
    "evaluate",
    "grid",
    "periodic_pattern",
    "psnr",
    "psnr_ab",
    "score",
    "ssim",
    "warping_error",
]

#: The metrics :func:`score` returns, in report order.
METRICS = ("ssim", "psnr", "psnr_ab", "colorfulness", "grid")

# Downsampling stays off: the evaluation size is an explicit protocol setting, and piq's
# automatic factor (round(min(H, W) / 256)) jumps with image size (383 px is scored as
# is, 384 px halved), which would make scores of differently sized images incomparable.
_SSIM_KWARGS: dict[str, Any] = {
    "data_range": 1.0,
    "kernel_size": 11,
    "kernel_sigma": 1.5,
    "k1": 0.01,
    "k2": 0.03,
    "downsample": False,
    "reduction": "none",
}
_PSNR_KWARGS: dict[str, Any] = {
    "data_range": 1.0,
    "reduction": "none",
    "convert_to_greyscale": False,
}
_AB_OFFSET = 110.0
_AB_RANGE = 220.0

#: The exact scoring settings, recorded in every :class:`EvalReport`.
PROTOCOL: dict[str, Any] = {
    "piq_version": importlib.metadata.version("piq"),
    "torch_version": torch.__version__.split("+")[0],
    "input": "sRGB B×3×H×W, float32, clamped to [0, 1] before every metric",
    "ssim": {
        "function": "piq.ssim",
        **_SSIM_KWARGS,
        "on": "RGB; SSIM of each channel, averaged over the three",
        "window": "Gaussian, valid positions only (no padding)",
    },
    "psnr": {
        "function": "piq.psnr",
        **_PSNR_KWARGS,
        "on": "RGB; mean squared error over all three channels",
        "mse_epsilon": 1e-8,
        "identical_images_db": 80.0,
    },
    "psnr_ab": {
        "function": "piq.psnr",
        **_PSNR_KWARGS,
        "on": "CIELAB a and b (D65, colorkit.color.rgb_to_lab), lightness ignored",
        "normalisation": f"(ab + {_AB_OFFSET:g}) / {_AB_RANGE:g}, clamped to [0, 1]",
    },
    "colorfulness": {
        "definition": "Hasler & Süsstrunk 2003 (M3)",
        "scale": "sRGB 0..255",
        "opponents": "rg = R - G, yb = 0.5 (R + G) - B",
        "formula": "sqrt(std_rg² + std_yb²) + 0.3 sqrt(mean_rg² + mean_yb²)",
        "statistics": "over all pixels of one image; population std (ddof 0)",
    },
    "grid": {
        "definition": "RMS CIELAB ab amplitude of the chroma pattern that repeats with the "
        "period (colorkit.metrics.periodic_pattern), after removing each pixel's "
        "period×period local mean",
        "period": "grid_period, in pixels of the image scored",
    },
    "gray_input": "colorkit.color.rgb_to_gray of the truth, replicated to 3 channels",
}

#: The patch side of the default MLP Improver: the period :func:`grid` looks for.
DEFAULT_GRID_PERIOD = 8


class MetricsError(ColorkitError, ValueError):
    """Input that cannot be scored: wrong shape, type or size, or NaN values."""


# -- per-image metrics -----------------------------------------------------------------------
def _check_batch(x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise MetricsError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != 3 or not x.is_floating_point():
        raise MetricsError(
            f"{name} must be a float tensor shaped B×3×H×W in [0, 1], "
            f"got {x.dtype} {tuple(x.shape)}"
        )
    if torch.isnan(x).any():
        raise MetricsError(f"{name} contains NaN values; expected sRGB in [0, 1]")
    # piq checks the range with `assert`, which python -O removes; clamping makes the
    # result the same either way
    return x.float().clamp(0.0, 1.0)


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pred = _check_batch(pred, "pred")
    target = _check_batch(target, "target").to(pred.device)
    if pred.shape != target.shape:
        raise MetricsError(
            f"pred and target must have the same shape, got {tuple(pred.shape)} "
            f"and {tuple(target.shape)}"
        )
    return pred, target


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Structural similarity of each image pair, on RGB (settings in :data:`PROTOCOL`).

    Args:
        pred: ``B×3×H×W`` sRGB; values outside ``[0, 1]`` are clamped.
        target: ``B×3×H×W`` sRGB, the same shape.

    Returns:
        ``B`` SSIM values, 1 for identical images.

    Raises:
        MetricsError: for a wrong shape or type, NaN values, or an image smaller than
            the 11-pixel window.
    """
    pred, target = _check_pair(pred, target)
    window = _SSIM_KWARGS["kernel_size"]
    if min(pred.shape[-2:]) < window:
        raise MetricsError(
            f"SSIM needs images of at least {window}×{window} pixels, got {tuple(pred.shape[-2:])}"
        )
    # piq is imported here: with torchvision it costs every colorkit command a second at start
    import piq

    return piq.ssim(pred, target, **_SSIM_KWARGS)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio of each image pair, in dB, on RGB.

    Args:
        pred: ``B×3×H×W`` sRGB; values outside ``[0, 1]`` are clamped.
        target: ``B×3×H×W`` sRGB, the same shape.

    Returns:
        ``B`` values in dB; identical images give a finite 80 dB.

    Raises:
        MetricsError: for a wrong shape or type, or NaN values.
    """
    pred, target = _check_pair(pred, target)
    import piq

    return piq.psnr(pred, target, **_PSNR_KWARGS)


def _ab_unit(rgb: torch.Tensor) -> torch.Tensor:
    ab = rgb_to_lab(rgb)[:, 1:]
    return ((ab + _AB_OFFSET) / _AB_RANGE).clamp(0.0, 1.0)


def psnr_ab(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR of the CIELAB chroma alone: lightness differences do not count.

    Both images are converted to CIELAB, ``a`` and ``b`` are mapped to ``[0, 1]`` by
    ``(ab + 110) / 220`` (clamped) and compared by PSNR with data range 1.

    Args:
        pred: ``B×3×H×W`` sRGB; values outside ``[0, 1]`` are clamped.
        target: ``B×3×H×W`` sRGB, the same shape.

    Returns:
        ``B`` values in dB.

    Raises:
        MetricsError: for a wrong shape or type, or NaN values.
    """
    pred, target = _check_pair(pred, target)
    import piq

    return piq.psnr(_ab_unit(pred), _ab_unit(target), **_PSNR_KWARGS)


def warping_error(
    current: torch.Tensor, previous: torch.Tensor, flow: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Flicker between consecutive video frames: how far colour moved off the motion.

    ``previous`` is warped along ``flow`` onto ``current``
    (:func:`colorkit.components.stabilizers.warp`), and the Euclidean distance between the
    two is averaged over the pixels ``mask`` keeps (those visible in both frames). On CIELAB
    chroma (``ab``), this is the temporal warping error of video colorization papers, in
    ``ab`` units: 0 for colours that move exactly with the picture.

    Args:
        current: ``B×C×H×W`` frame ``t``.
        previous: ``B×C×H×W`` frame ``t-1``.
        flow: ``B×2×H×W`` where each pixel of frame ``t`` was in frame ``t-1``, in pixels.
        mask: ``B×1×H×W``, 1 where the pixel is visible in both frames, else 0.

    Returns:
        ``B`` values; NaN for a pair whose mask is empty.

    Raises:
        MetricsError: if the shapes do not match.
    """
    from colorkit.components.stabilizers import warp

    if current.shape != previous.shape or current.dim() != 4:
        raise MetricsError(
            f"current and previous must be B×C×H×W of one shape, got {tuple(current.shape)} "
            f"and {tuple(previous.shape)}"
        )
    if mask.shape != (current.shape[0], 1, *current.shape[-2:]):
        raise MetricsError(f"mask must be B×1×H×W, got {tuple(mask.shape)}")
    distance = (current - warp(previous, flow)).norm(dim=1, keepdim=True)
    return (distance * mask).sum(dim=(1, 2, 3)) / mask.sum(dim=(1, 2, 3))


def colorfulness(rgb: torch.Tensor) -> torch.Tensor:
    """Hasler and Süsstrunk's colorfulness of each image.

    On sRGB scaled to ``0..255``: ``rg = R - G``, ``yb = (R + G) / 2 - B``, and
    ``sqrt(std_rg² + std_yb²) + 0.3 · sqrt(mean_rg² + mean_yb²)`` with population
    statistics over the image's pixels. 0 for any gray image; about 33 is "moderately"
    and 59 "highly colourful" on the authors' scale.

    Args:
        rgb: ``B×3×H×W`` sRGB; values outside ``[0, 1]`` are clamped.

    Returns:
        ``B`` colorfulness values.

    Raises:
        MetricsError: for a wrong shape or type, or NaN values.

    References:
        D. Hasler and S. Süsstrunk, "Measuring colorfulness in natural images",
        Proc. SPIE 5007, Human Vision and Electronic Imaging VIII, 2003.
    """
    rgb = _check_batch(rgb, "rgb") * 255.0
    red, green, blue = rgb.flatten(2).unbind(1)
    rg = red - green
    yb = 0.5 * (red + green) - blue
    spread = torch.sqrt(rg.var(dim=1, correction=0) + yb.var(dim=1, correction=0))
    offset = torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2)
    return spread + 0.3 * offset


def periodic_pattern(values: torch.Tensor, period: int) -> torch.Tensor:
    """The pattern that repeats every ``period`` pixels, averaged over the whole image.

    Each pixel first loses the mean of the ``period×period`` window it starts (which
    removes smooth content and keeps a period-``period`` pattern whole); the residuals
    at the same position within the period, counted from the image's top-left corner,
    are then averaged over all tiles, and the pattern's own mean is removed. Averaging
    over tiles is a projection onto the spectrum's bins at multiples of ``1/period``:
    content that does not repeat averages towards zero (by about one over the square
    root of the number of tiles), a pattern stamped on every tile stays.

    Args:
        values: ``B×C×H×W``, with ``H`` and ``W`` at least ``2·period - 1``.
        period: the period in pixels, at least 2.

    Returns:
        ``B×C×period×period``, zero-mean per channel.

    Raises:
        MetricsError: for a period below 2 or an image too small for one whole tile.
    """
    if period < 2:
        raise MetricsError(f"the grid period must be at least 2 pixels, got {period}")
    if values.dim() != 4 or min(values.shape[-2:]) < 2 * period - 1:
        raise MetricsError(
            f"a period of {period} px needs B×C×H×W images at least {2 * period - 1} px on "
            f"each side, got {tuple(values.shape)}"
        )
    residual = values[..., : 1 - period, : 1 - period] - F.avg_pool2d(values, period, stride=1)
    rows, cols = (side // period * period for side in residual.shape[-2:])
    tiles = residual[..., :rows, :cols].unflatten(-1, (-1, period)).unflatten(-3, (-1, period))
    pattern = tiles.mean(dim=(-4, -2))
    return pattern - pattern.mean(dim=(-2, -1), keepdim=True)


def grid(rgb: torch.Tensor, period: int = DEFAULT_GRID_PERIOD) -> torch.Tensor:
    """How strongly an image's chroma repeats on a grid: the Improver's dot artifact.

    The CIELAB ``ab`` of each image goes through :func:`periodic_pattern`; the score is
    the pattern's root-mean-square chroma amplitude, ``sqrt(mean(Δa² + Δb²))``, in
    ``ab`` units. A patch-wise refiner that stamps the same correction on every
    ``period×period`` patch scores about that correction's amplitude; natural colour
    photos score a small floor from content that happens to align (report the ground
    truth's score beside it), and a gray image scores 0.

    Args:
        rgb: ``B×3×H×W`` sRGB; values outside ``[0, 1]`` are clamped. The grid is taken
            to start at the top-left pixel, as the Improver's patches do.
        period: the grid's period in pixels of ``rgb``: the Improver's patch side at
            the working size, times the upscale factor for full-resolution outputs.

    Returns:
        ``B`` values in CIELAB ``ab`` units.

    Raises:
        MetricsError: for a wrong shape or type, NaN values, or an image too small for
            the period (see :func:`periodic_pattern`).
    """
    ab = rgb_to_lab(_check_batch(rgb, "rgb"))[:, 1:]
    pattern = periodic_pattern(ab, period)
    return pattern.square().sum(dim=1).mean(dim=(-2, -1)).sqrt()


def score(
    pred: torch.Tensor, target: torch.Tensor, grid_period: int = DEFAULT_GRID_PERIOD
) -> dict[str, torch.Tensor]:
    """All of colorkit's metrics for a batch of colorizations.

    Args:
        pred: ``B×3×H×W`` sRGB colorizations.
        target: ``B×3×H×W`` sRGB ground truth.
        grid_period: the period :func:`grid` looks for, in pixels.

    Returns:
        ``{"ssim", "psnr", "psnr_ab", "colorfulness", "grid"}``, each ``B`` values;
        colorfulness and grid are those of ``pred``.

    Raises:
        MetricsError: for a wrong shape or type, NaN values, or images too small for
            SSIM or for the grid period.
    """
    pred, target = _check_pair(pred, target)
    return {
        "ssim": ssim(pred, target),
        "psnr": psnr(pred, target),
        "psnr_ab": psnr_ab(pred, target),
        "colorfulness": colorfulness(pred),
        "grid": grid(pred, grid_period),
    }


# -- reports ---------------------------------------------------------------------------------
_ROW_KEYS = (
    *METRICS,
    *(f"gray_{name}" for name in METRICS),
    "truth_colorfulness",
    "truth_grid",
)


@dataclass
class EvalReport:
    """Per-image scores of a model and of the gray-input baseline, with the protocol.

    Attributes:
        rows: one dict per image: ``image`` (its name), the model's ``ssim``, ``psnr``,
            ``psnr_ab`` and ``colorfulness``, the same for the gray input with a
            ``gray_`` prefix, and ``truth_colorfulness`` of the ground truth.
        protocol: :data:`PROTOCOL` plus the settings of this evaluation (image count
            and sizes, model, and whatever the caller passed, e.g. size and crop).
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    protocol: dict[str, Any] = field(default_factory=dict)

    def means(self) -> dict[str, float]:
        """The mean of every score over the images.

        Returns:
            A dict with the numeric row keys (``ssim`` … ``truth_colorfulness``);
            empty when there are no rows.
        """
        if not self.rows:
            return {}
        keys = [key for key in _ROW_KEYS if all(key in row for row in self.rows)]
        return {key: math.fsum(row[key] for row in self.rows) / len(self.rows) for key in keys}

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-serialisable data.

        Returns:
            ``{"protocol": ..., "mean": ..., "images": rows}``.
        """
        return {
            "protocol": jsonable(self.protocol),
            "mean": self.means(),
            "images": jsonable(self.rows),
        }

    def table(self) -> str:
        """A plain-text table for the terminal, at most 100 columns wide.

        Returns:
            A summary block (model, gray input and ground truth, with the model's gain
            over the gray input) followed by one line per image.
        """
        return "\n".join([*self._summary_lines(), "", *self._image_lines()])

    def _summary_lines(self) -> list[str]:
        mean = self.means()
        truth = [
            "-",
            "-",
            "-",
            _fmt(mean.get("truth_colorfulness"), 2),
            _fmt(mean.get("truth_grid"), 2),
        ]
        gain = [
            _fmt(_difference(mean, name), places, signed=True)
            for name, places in zip(METRICS, _MEAN_DIGITS, strict=True)
        ]
        ssim_note = "downsampled" if self.protocol.get("ssim_downsample_applied") else "full size"
        return [
            f"{_images(len(self.rows))}; piq {self.protocol.get('piq_version', '?')}; "
            f"SSIM at {ssim_note}; means over images",
            f"{'':<16}{_MEAN_HEADER}",
            f"{'model':<16}{_mean_cells(mean, '')}",
            f"{'gray input':<16}{_mean_cells(mean, 'gray_')}",
            f"{'ground truth':<16}{_cells(truth)}",
            f"{'model - gray':<16}{_cells(gain)}",
            *self._gain_lines(mean),
        ]

    def _gain_lines(self, mean: Mapping[str, float]) -> list[str]:
        # a mean gain can hide a model that is wrong on most images and very right on a few
        scored = [row for row in self.rows if "psnr_ab" in row and "gray_psnr_ab" in row]
        if not scored:
            return []
        better = sum(row["psnr_ab"] > row["gray_psnr_ab"] for row in scored)
        line = f"chroma PSNR above the gray input's on {better} of {len(scored)} images"
        truth = mean.get("truth_colorfulness")
        if truth and "colorfulness" in mean:
            line += f"; colorfulness {mean['colorfulness'] / truth:.0%} of the truth's"
        return [line]

    def _image_lines(self) -> list[str]:
        width = 16
        groups = (
            f"{'':<{width}}  {' model ':-^39}  {' gray input ':-^22}  {' truth ':-^16}"
        ).rstrip()
        header = (
            f"{'image':<{width}}  {'ssim':>7}{'psnr':>7}{'psnr_ab':>9}{'colorful':>9}"
            f"{'grid':>7}  {'ssim':>7}{'psnr':>7}{'psnr_ab':>8}  {'colorful':>9}{'grid':>7}"
        )
        lines = [groups, header]
        for row in self.rows:
            name = _truncate(str(row.get("image", "")), width)
            lines.append(
                f"{name:<{width}}  {_fmt(row.get('ssim'), 4):>7}{_fmt(row.get('psnr'), 2):>7}"
                f"{_fmt(row.get('psnr_ab'), 2):>9}{_fmt(row.get('colorfulness'), 2):>9}"
                f"{_fmt(row.get('grid'), 2):>7}"
                f"  {_fmt(row.get('gray_ssim'), 4):>7}{_fmt(row.get('gray_psnr'), 2):>7}"
                f"{_fmt(row.get('gray_psnr_ab'), 2):>8}"
                f"  {_fmt(row.get('truth_colorfulness'), 2):>9}{_fmt(row.get('truth_grid'), 2):>7}"
            )
        return lines


def comparison_table(reports: Mapping[str, EvalReport]) -> str:
    """Models scored on the same images, side by side, for the terminal.

    Args:
        reports: a label (e.g. the checkpoint's path) → its report; the reports must
            cover the same images.

    Returns:
        One line of means per model, after the gray input's (taken from the first
        report), each with its chroma-PSNR gain over the gray input.

    Raises:
        ValueError: if there is no report or the reports name different images.
    """
    if not reports:
        raise ValueError("comparison_table needs at least one report")
    images = [[row.get("image") for row in report.rows] for report in reports.values()]
    if any(names != images[0] for names in images[1:]):
        raise ValueError("the reports to compare were scored on different images")
    width = min(max(len("gray input"), *(len(label) for label in reports)), 48)

    def line(label: str, mean: Mapping[str, float], prefix: str, gain: str) -> str:
        # paths differ at their end (run, step): shorten them from the left
        shown = label if len(label) <= width else "…" + label[-(width - 1) :]
        return f"{shown:<{width}}{_mean_cells(mean, prefix)}{gain:>12}".rstrip()

    first = next(iter(reports.values())).means()
    lines = [
        f"{_images(len(images[0]))}; means over images",
        f"{'':<{width}}{_MEAN_HEADER}{'Δ psnr_ab':>12}",
        line("gray input", first, "gray_", ""),
    ]
    for label, report in reports.items():
        mean = report.means()
        lines.append(line(label, mean, "", _fmt(_difference(mean, "psnr_ab"), 2, signed=True)))
    return "\n".join(lines)


# decimals of ssim, psnr, psnr_ab, colorfulness and grid in the tables of means
_MEAN_DIGITS = (4, 2, 2, 2, 2)
_MEAN_HEADER = f"{'ssim':>8}{'psnr dB':>10}{'psnr_ab dB':>12}{'colorfulness':>14}{'grid':>8}"


def _cells(values: Sequence[str]) -> str:
    return f"{values[0]:>8}{values[1]:>10}{values[2]:>12}{values[3]:>14}{values[4]:>8}"


def _mean_cells(mean: Mapping[str, float], prefix: str) -> str:
    return _cells(
        [
            _fmt(mean.get(f"{prefix}{name}"), places)
            for name, places in zip(METRICS, _MEAN_DIGITS, strict=True)
        ]
    )


def _images(count: int) -> str:
    return f"{count} image{'' if count == 1 else 's'}"


def _difference(mean: Mapping[str, float], name: str) -> float | None:
    if name in mean and f"gray_{name}" in mean:
        return mean[name] - mean[f"gray_{name}"]
    return None


def _fmt(value: float | None, digits: int, signed: bool = False) -> str:
    if value is None:
        return "-"
    if signed:
        text = f"{value:+.{digits}f}"
        # a difference that rounds to zero reads "+0.00", never "-0.00"
        return "+" + text[1:] if float(text) == 0 else text
    return f"{value:.{digits}f}"


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# -- evaluation ------------------------------------------------------------------------------
def _grid_period(period: int, size: Sequence[int], working_size: int | None) -> int:
    """The grid period in pixels of an output whose networks ran at ``working_size``."""
    if working_size is None:
        return period
    return max(2, round(period * max(size) / working_size))


def _default_names(dataset: Any, count: int) -> list[str]:
    paths = getattr(dataset, "paths", None)
    if paths is not None and len(paths) == count:
        return [
            PurePath(path).stem if isinstance(path, (str, PurePath)) else str(path)
            for path in paths
        ]
    return [str(index) for index in range(count)]


def _item(dataset: Any, index: int, name: str) -> torch.Tensor:
    item = dataset[index]
    if (
        not isinstance(item, torch.Tensor)
        or item.dim() != 3
        or item.shape[0] != 3
        or not item.is_floating_point()
    ):
        found = (
            f"{item.dtype} {tuple(item.shape)}"
            if isinstance(item, torch.Tensor)
            else type(item).__name__
        )
        raise MetricsError(
            f"dataset item {index} ({name}): expected a float tensor shaped 3×H×W in [0, 1], "
            f"got {found}"
        )
    window = _SSIM_KWARGS["kernel_size"]
    if min(item.shape[-2:]) < window:
        raise MetricsError(
            f"dataset item {index} ({name}): {tuple(item.shape[-2:])} is smaller than "
            f"SSIM's {window}×{window} window"
        )
    return item


def _batches(
    dataset: Any, names: Sequence[str], batch_size: int
) -> Iterator[tuple[torch.Tensor, list[str]]]:
    """Consecutive items stacked into batches; a change of image size starts a new batch."""
    pending: list[torch.Tensor] = []
    pending_names: list[str] = []
    for index, name in enumerate(names):
        item = _item(dataset, index, name)
        if pending and (len(pending) == batch_size or item.shape != pending[0].shape):
            yield torch.stack(pending), pending_names
            pending, pending_names = [], []
        pending.append(item)
        pending_names.append(name)
    if pending:
        yield torch.stack(pending), pending_names


def evaluate(
    model: Colorizer,
    dataset: Sequence[torch.Tensor] | torch.utils.data.Dataset,
    names: Sequence[str] | None = None,
    batch_size: int = 8,
    progress: bool = True,
    protocol_extra: Mapping[str, Any] | None = None,
    *,
    working_size: int | None = None,
    refine: bool = True,
    grid_period: int | None = None,
) -> EvalReport:
    """Colorize the gray version of every image and score it against the original.

    For each image, the gray input (:func:`colorkit.color.rgb_to_gray`) is colorized by
    ``model.colorize`` on ``model.device`` without gradients, and scored with
    :func:`score`; the gray input itself, replicated to three channels, is scored the
    same way as a baseline, and the ground truth's own colorfulness is recorded.

    Args:
        model: the colorizer.
        dataset: items are ``3×H×W`` float tensors in ``[0, 1]`` (for example a
            ``colorkit.data.PhotoDataset`` built with ``train=False``); it must have a
            length. Consecutive images of the same size are batched together.
        names: one name per image; by default the file stems of ``dataset.paths`` when
            the dataset has them, else the indices.
        batch_size: images per batch.
        progress: show a progress bar on stderr.
        protocol_extra: settings to record in the report's protocol beside
            :data:`PROTOCOL`, e.g. the image size and crop the dataset used.
        working_size: passed to ``model.colorize``: the networks run at this longer side.
        refine: passed to ``model.colorize``: apply the refiner.
        grid_period: the period :func:`grid` looks for at the working size; by
            default the refiner's ``patch`` (the Improver's), else
            :data:`DEFAULT_GRID_PERIOD`. With ``working_size``, it is scaled to each
            image's size (rounded).

    Returns:
        The :class:`EvalReport`.

    Raises:
        MetricsError: for an empty dataset or one without a length, a ``names`` of the
            wrong length, a ``batch_size`` below 1, or an item that is not a float
            ``3×H×W`` tensor at least 11 pixels and ``2·grid_period - 1`` pixels on each
            side (naming the item).
    """
    if grid_period is None:
        grid_period = getattr(getattr(model, "refiner", None), "patch", DEFAULT_GRID_PERIOD)
    if batch_size < 1:
        raise MetricsError(f"batch_size must be at least 1, got {batch_size}")
    try:
        count = len(dataset)  # type: ignore[arg-type]
    except TypeError:
        raise MetricsError(
            f"dataset must have a length (a sequence or a map-style Dataset), "
            f"got {type(dataset).__name__}"
        ) from None
    if count == 0:
        raise MetricsError("dataset is empty: there are no images to evaluate")
    if names is None:
        names = _default_names(dataset, count)
    else:
        names = [str(name) for name in names]
        if len(names) != count:
            raise MetricsError(f"names has {len(names)} entries but the dataset has {count} images")

    device = model.device
    rows: list[dict[str, Any]] = []
    sizes: list[list[int]] = []
    periods: list[int] = []
    bar = tqdm(total=count, desc="evaluate", unit="img", file=sys.stderr, disable=not progress)
    try:
        with torch.no_grad():
            for rgb, batch_names in _batches(dataset, names, batch_size):
                rgb = rgb.to(device=device, dtype=torch.float32).clamp(0.0, 1.0)
                gray = rgb_to_gray(rgb)
                pred = model.colorize(gray, working_size=working_size, refine=refine)
                period = _grid_period(grid_period, rgb.shape[-2:], working_size)
                try:
                    model_scores = score(pred, rgb, period)
                except MetricsError as error:
                    raise MetricsError(f"images {', '.join(batch_names)}: {error}") from None
                gray_scores = score(gray.expand(-1, 3, -1, -1), rgb, period)
                columns = {
                    **{name: value for name, value in model_scores.items()},
                    **{f"gray_{name}": value for name, value in gray_scores.items()},
                    "truth_colorfulness": colorfulness(rgb),
                    "truth_grid": grid(rgb, period),
                }
                # one transfer per batch rather than one per value
                stacked = torch.stack([columns[key].float() for key in _ROW_KEYS]).cpu()
                for position, name in enumerate(batch_names):
                    values = stacked[:, position].tolist()
                    rows.append({"image": name, **dict(zip(_ROW_KEYS, values, strict=True))})
                size = list(rgb.shape[-2:])
                if size not in sizes:
                    sizes.append(size)
                if period not in periods:
                    periods.append(period)
                bar.update(len(batch_names))
    finally:
        bar.close()

    protocol = copy.deepcopy(PROTOCOL)
    protocol.update(
        {
            "images": count,
            "image_sizes": sizes,
            "grid_period": periods[0] if len(periods) == 1 else periods,
            "ssim_downsample_applied": bool(_SSIM_KWARGS["downsample"])
            and any(round(min(size) / 256) > 1 for size in sizes),
            "model": {
                "recipe": model.recipe_name,
                "precision": model.precision,
                "device": str(device),
                "working_size": working_size,
                "refine": refine,
            },
        }
    )
    protocol.update(jsonable(dict(protocol_extra or {})))
    return EvalReport(rows=rows, protocol=protocol)
