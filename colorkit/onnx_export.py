"""Export a model to ONNX: one self-contained graph from a gray image to its colours.

The graph takes a gray batch ``B×1×H×W`` in ``[0, 1]`` (any batch, height and width)
and returns ``B×3×H×W`` sRGB in ``[0, 1]`` with the input's own CIELAB lightness, the
way ``colorkit colorize`` computes it: the gray image is resized (area averaging) so its
longer side is the working size, the networks predict the chroma there (the condition,
the padding to the generator's multiple, the generator and the refiner are in the
graph), the chroma is upsampled bilinearly to the input's size and combined with the
input's lightness, and colours outside sRGB are desaturated until they fit. A caller
needs no colour-space code and no PyTorch: ``examples/onnx_colorize.py`` colorizes a
photo with numpy, Pillow and onnxruntime only.

:func:`export_onnx` checks what it writes: the ONNX checker, then onnxruntime against
the PyTorch model in fp32 on the embedded photos, failing above a tolerance.
``onnx``, ``onnxscript`` and ``onnxruntime`` come with the ``onnx`` extra
(``pip install "colorkit[onnx]"``).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from colorkit.checkpoint import load
from colorkit.color import gray_to_lightness, lab_to_rgb_in_gamut
from colorkit.data import embedded_photos, find_images
from colorkit.engine import Colorizer
from colorkit.files import atomic_path, jsonable
from colorkit.imaging import read_gray
from colorkit.registry import ColorkitError
from colorkit.version import __version__

__all__ = [
    "DEFAULT_TOLERANCE",
    "OPSET",
    "QUANTIZATIONS",
    "ColorizeGraph",
    "ExportError",
    "OnnxReport",
    "check_onnx",
    "check_photos",
    "export_onnx",
    "onnx_metadata",
    "quantize_int8",
]

#: The ONNX opset the graph is written in.
OPSET = 18

#: The largest absolute difference in RGB (``[0, 1]``) allowed between onnxruntime and
#: PyTorch in fp32 on the check photos: one 8-bit level.
DEFAULT_TOLERANCE = 1.0 / 255.0

#: What ``quantize`` accepts: ``None`` (fp32) or ``"int8"``.
QUANTIZATIONS = ("int8",)

_REQUIREMENTS = 'pip install "colorkit[onnx]" (onnx, onnxscript and onnxruntime)'


class ExportError(ColorkitError, RuntimeError):
    """A model that cannot be exported, or whose export does not compute what it does."""


# -- the graph -----------------------------------------------------------------------------
def _working_side(side: Any, working_size: int, longest: Any) -> Any:
    """``max(1, round(side * working_size / longest))``, rounding half to even, in integers.

    Exporters translate Python's ``round`` of a symbolic size into no ONNX operator, and
    floor division into ``Div``, which truncates: every quantity here is non-negative, so
    the two agree. The half-to-even tie is resolved without a branch on the size.
    """
    numerator, denominator = side * working_size, longest
    twice = 2 * numerator + denominator
    rest = twice % (4 * denominator)
    # 1 exactly when the quotient is a tie rounded up to an odd number, else 0
    tie_odd = (rest + 2 * denominator) // (4 * denominator) - (rest + 2 * denominator - 1) // (
        4 * denominator
    )
    return torch.sym_max(1, twice // (2 * denominator) - tie_odd)


def _area_axis(x: torch.Tensor, size: Any, dim: int) -> torch.Tensor:
    """``F.interpolate(mode="area")`` along one axis, for any input and output size.

    Output ``i`` is the mean of inputs ``floor(i·n/size)`` to ``ceil((i+1)·n/size)``
    (adaptive average pooling), taken as a difference of cumulative sums in float64.
    """
    length = x.shape[dim]
    index = torch.arange(size, device=x.device)
    start = (index * length) // size
    end = ((index + 1) * length + size - 1) // size
    zero = torch.zeros_like(x.narrow(dim, 0, 1), dtype=torch.float64)
    sums = torch.cat([zero, x.double().cumsum(dim)], dim)
    total = sums.index_select(dim, end) - sums.index_select(dim, start)
    view = [1] * x.dim()
    view[dim] = -1
    return (total / (end - start).double().view(view)).float()


def _export_form(network: nn.Module) -> nn.Module:
    """A network's own ``export_form()`` where it offers one, else the network."""
    make = getattr(network, "export_form", None)
    form = make() if callable(make) else None
    return network if form is None else form


class ColorizeGraph(nn.Module):
    """What the ONNX file computes: a gray batch in, its colours out.

    In PyTorch it returns what ``model.colorize(gray, working_size)`` returns for an fp32
    model; it is written with operators and shape arithmetic that export exactly for any
    batch, height and width. The generator runs on the condition padded (edge
    replication) to a multiple of its ``multiple`` attribute, where it has one; each
    network is exported through its ``export_form()`` where it has one (the MLP
    Improver's :class:`~colorkit.components.refiners.PortableImprover`).

    Args:
        model: the model to export (its networks are shared, not copied).
        working_size: the longer side the networks run at; ``None`` runs them at the
            input's size.

    Raises:
        ValueError: for a ``working_size`` below 1.
    """

    def __init__(self, model: Colorizer, working_size: int | None = 256) -> None:
        super().__init__()
        if working_size is not None and (
            isinstance(working_size, bool) or not isinstance(working_size, int) or working_size < 1
        ):
            raise ValueError(
                f"working_size must be a positive number of pixels, got {working_size!r}"
            )
        self.space = model.space
        self.working_size = working_size
        self.multiple = int(getattr(model.generator, "multiple", 1))
        self.generator = _export_form(model.generator)
        self.refiner = _export_form(model.refiner)

    def networks_input(self, gray: torch.Tensor) -> torch.Tensor:
        """The gray batch at the working size (area averaging), as the networks see it.

        Args:
            gray: ``B×1×H×W`` in ``[0, 1]``.

        Returns:
            ``B×1×h×w`` with ``max(h, w)`` the working size (``gray`` itself without one).
        """
        if self.working_size is None:
            return gray
        height, width = gray.shape[-2:]
        longest = torch.sym_max(height, width)
        small = _area_axis(gray, _working_side(height, self.working_size, longest), 2)
        return _area_axis(small, _working_side(width, self.working_size, longest), 3)

    def forward(self, gray: torch.Tensor) -> torch.Tensor:
        """Colorize a gray batch.

        Args:
            gray: ``B×1×H×W`` in ``[0, 1]``.

        Returns:
            ``B×3×H×W`` sRGB in ``[0, 1]`` with ``gray``'s lightness.
        """
        condition = self.space.condition(self.networks_input(gray))
        height, width = condition.shape[-2:]
        # remainders of non-negative sizes: exact in ONNX, where floor division is not
        padded = F.pad(
            condition,
            (0, (-width) % self.multiple, 0, (-height) % self.multiple),
            mode="replicate",
        )
        prediction = self.generator(padded)[..., :height, :width]
        prediction = self.refiner(prediction, condition)
        ab = self.space.chroma(condition, prediction)
        ab = F.interpolate(ab, size=gray.shape[-2:], mode="bilinear", align_corners=False)
        return lab_to_rgb_in_gamut(torch.cat([gray_to_lightness(gray), ab], dim=1))


# -- exporting -----------------------------------------------------------------------------
def _require(module: str) -> Any:
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise ExportError(f"ONNX export needs {module}: {_REQUIREMENTS}") from None


_OPERATOR = (
    re.compile(r"No ONNX function found for <?OpOverload\(op='([\w.:]+)'"),
    re.compile(r"No ONNX function found for <?([\w.:]+)"),
    re.compile(r"Unsupported: .*?operator ([\w.:]+)"),
    re.compile(r"operator '?([\w]+::[\w.]+)'?"),
    re.compile(r"target=([\w.:]+)\]?"),
)


def _operator(error: BaseException) -> str | None:
    """The operator an exporter's error names, searching its causes too."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        for pattern in _OPERATOR:
            match = pattern.search(str(error))
            if match:
                return match.group(1)
        error = error.__cause__ or error.__context__
    return None


def _reason(error: BaseException) -> str:
    """What went wrong, in words: the untranslated operator, else the root cause's first line."""
    operator = _operator(error)
    if operator is not None:
        return f"operator {operator} has no ONNX translation"
    seen = set()
    while id(error) not in seen and (error.__cause__ or error.__context__) is not None:
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    lines = str(error).strip().splitlines()
    return f"the exporter failed ({type(error).__name__}: {lines[0] if lines else ''})"


def _to_onnx(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    names: Sequence[str],
    outputs: Sequence[str] = ("out",),
) -> Any:
    """``torch.onnx.export`` (the torch.export-based exporter) with dynamic sizes."""
    dynamic = {
        0: torch.export.Dim.DYNAMIC,
        2: torch.export.Dim.DYNAMIC,
        3: torch.export.Dim.DYNAMIC,
    }
    # the exporter reports its progress on stdout and warns about its own internals;
    # its errors carry what matters
    with warnings.catch_warnings(), torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return torch.onnx.export(
            module.eval(),
            args,
            input_names=list(names),
            output_names=list(outputs),
            opset_version=OPSET,
            dynamo=True,
            dynamic_shapes=tuple(dynamic for _ in args),
            verbose=False,
        )


class _Generator(nn.Module):
    """The generator on its own, to find which network an export failure is in."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, condition: torch.Tensor) -> torch.Tensor:
        return self.network(condition)


class _Refiner(_Generator):
    """The refiner on its own, to find which network an export failure is in."""

    def forward(self, prediction: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self.network(prediction, condition)


def _blame(graph: ColorizeGraph, model: Colorizer, error: BaseException) -> ExportError:
    """An error naming the component whose export fails, and the operator where known."""
    parts = (
        ("generator", model.recipe.generator, graph.generator, _Generator),
        ("refiner", model.recipe.refiner, graph.refiner, _Refiner),
    )
    size = max(graph.multiple, 8) * 2
    condition = torch.zeros(2, 1, size, size)
    prediction = torch.zeros(2, model.space.channels, size, size)
    for kind, name, network, wrapper in parts:
        args = (prediction, condition) if wrapper is _Refiner else (condition,)
        try:
            _to_onnx(wrapper(network), args, ["x", "cond"][: len(args)])
        except Exception as part_error:
            return ExportError(
                f"cannot export the {kind} {name!r} ({type(network).__name__}) to ONNX: "
                f"{_reason(part_error)}; give the component an export_form() built from "
                "operators ONNX has (see the Exporting page)"
            )
    return ExportError(f"cannot export the model to ONNX: {_reason(error)}")


def onnx_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata colorkit wrote into an ONNX file.

    Args:
        path: the ``.onnx`` file.

    Returns:
        Key → value: ``colorkit_version``, ``recipe_name``, ``recipe``, ``overrides``,
        ``weights``, ``working_size``, ``color_space``, ``quantization``, ``opset`` and
        the check's ``max_difference``, ``mean_difference`` and ``tolerance``; values
        are decoded from JSON.

    Raises:
        ExportError: if onnx is not installed or the file cannot be read.
    """
    onnx = _require("onnx")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ExportError(f"cannot read ONNX file {str(path)!r}: {exc}") from None
    values = {}
    for prop in model.metadata_props:
        try:
            values[prop.key] = json.loads(prop.value)
        except ValueError:
            values[prop.key] = prop.value
    return values


def _write_metadata(path: Path, metadata: dict[str, Any]) -> None:
    onnx = _require("onnx")
    model = onnx.load(str(path))
    model.producer_name = "colorkit"
    model.producer_version = __version__
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=json.dumps(jsonable(value, key)))
    onnx.save(model, str(path))


def check_photos() -> list[Path]:
    """The photos an export is checked on: the embedded ones.

    Returns:
        Their paths, sorted.
    """
    return find_images(embedded_photos())


def check_onnx(
    path: str | Path,
    model: Colorizer,
    working_size: int | None,
    photos: Sequence[str | Path] | None = None,
) -> tuple[float, float]:
    """Run an ONNX file with onnxruntime against the PyTorch model on real photos.

    Each photo is read as colorkit's gray at full resolution and colorized by both:
    onnxruntime, and ``model.colorize(gray, working_size)`` in fp32 without the
    inference copy's arithmetic (a plain fp32 model is what the file holds).

    Args:
        path: the ``.onnx`` file.
        model: the model it was exported from.
        working_size: the working size it was exported with.
        photos: image files; the embedded photos if ``None``.

    Returns:
        ``(max, mean)`` absolute difference in RGB (``[0, 1]``) over all photos.

    Raises:
        ExportError: if onnxruntime is missing or cannot run the file.
    """
    ort = _require("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ExportError(f"onnxruntime cannot load {str(path)!r}: {exc}") from None
    worst, total, count = 0.0, 0.0, 0
    with _modes_kept(model):
        reference = _plain_fp32(model)
        for photo in photos if photos is not None else check_photos():
            gray = read_gray(photo)[0]
            try:
                (colour,) = session.run(None, {"gray": gray.numpy()})
            except Exception as exc:
                raise ExportError(
                    f"onnxruntime cannot run {str(path)!r} on {photo}: {exc}"
                ) from None
            expected = reference.colorize(gray, working_size)
            difference = (torch.from_numpy(colour) - expected).abs()
            worst = max(worst, difference.max().item())
            total += difference.double().sum().item()
            count += difference.numel()
    return worst, total / max(count, 1)


@contextlib.contextmanager
def _modes_kept(model: nn.Module) -> Iterator[None]:
    """Restore every submodule's training mode on exit.

    The graph and the PyTorch reference share the model's networks and run them in eval
    mode; a model in training is left as it was found.
    """
    modes = [(module, module.training) for module in model.modules()]
    try:
        yield
    finally:
        for module, mode in modes:
            module.training = mode


def _plain_fp32(model: Colorizer) -> Colorizer:
    """The model's networks, in fp32, colorizing as they are (no inference copy)."""
    plain = Colorizer(
        model.recipe,
        name=model.recipe_name,
        overrides=model.overrides,
        fast=False,
        parts={"generator": model.generator, "refiner": model.refiner},
    )
    return plain.set_precision("fp32").eval()


def quantize_int8(
    source: str | Path, target: str | Path, photos: Sequence[str | Path] | None = None
) -> Path:
    """Quantize an exported fp32 graph to int8 with onnxruntime's quantization tools.

    The convolutions' weights are quantized per channel to int8 and their inputs to
    uint8 with ranges calibrated on photos (static quantization in QDQ format, which
    onnxruntime runs as integer convolutions). Transposed convolutions (the U-Net's
    decoder) stay in float: quantized too, they made the graph slower than fp32 where it
    was measured (see the Exporting page). The colour conversions around the networks
    stay in float too.

    Args:
        source: the fp32 ``.onnx`` file :func:`export_onnx` wrote.
        target: where to write the int8 file (atomically).
        photos: calibration images; the embedded photos if ``None``.

    Returns:
        ``target`` as a :class:`~pathlib.Path`.

    Raises:
        ExportError: if onnxruntime is missing or quantization fails.
    """
    _require("onnxruntime")
    from onnxruntime import quantization

    files = [Path(p) for p in (photos if photos is not None else check_photos())]

    class Photos(quantization.CalibrationDataReader):
        def __init__(self) -> None:
            self.pending = iter(files)

        def get_next(self) -> dict[str, np.ndarray] | None:
            photo = next(self.pending, None)
            return None if photo is None else {"gray": read_gray(photo)[0].numpy()}

    target = Path(target)
    with tempfile.TemporaryDirectory() as folder, atomic_path(target) as temporary:
        prepared = Path(folder) / "prepared.onnx"
        try:
            quantization.quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            quantization.quantize_static(
                str(prepared),
                str(temporary),
                Photos(),
                quant_format=quantization.QuantFormat.QDQ,
                per_channel=True,
                weight_type=quantization.QuantType.QInt8,
                activation_type=quantization.QuantType.QUInt8,
                op_types_to_quantize=["Conv"],
                calibrate_method=quantization.CalibrationMethod.MinMax,
            )
        except Exception as exc:
            raise ExportError(f"cannot quantize {str(source)!r} to int8: {exc}") from exc
    return target


@dataclass
class OnnxReport:
    """What :func:`export_onnx` wrote and how it checked.

    Attributes:
        path: the ``.onnx`` file written.
        bytes: its size.
        max_difference: largest absolute RGB difference from PyTorch fp32 (``[0, 1]``).
        mean_difference: mean absolute RGB difference from PyTorch fp32.
        tolerance: the largest ``max_difference`` the fp32 graph was allowed.
        photos: how many photos were compared.
        quantization: ``None`` (fp32) or ``"int8"``.
        fp32_max_difference: the fp32 graph's ``max_difference`` (the check that can
            fail), which for an fp32 export is ``max_difference`` itself.
        seconds: time spent exporting, checking and quantizing.
        metadata: what the file's metadata says.
    """

    path: Path
    bytes: int
    max_difference: float
    mean_difference: float
    tolerance: float
    photos: int
    quantization: str | None = None
    fp32_max_difference: float = 0.0
    seconds: float = 0.0
    metadata: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """One paragraph for the command line.

        Returns:
            The file, its size and the check's differences in 8-bit levels.
        """
        kind = "int8" if self.quantization else "fp32"
        lines = [
            f"wrote {self.path} ({self.bytes / 2**20:.2f} MiB, {kind}, opset {OPSET}, "
            f"working size {self.metadata.get('working_size')})",
            f"checked with onnxruntime against PyTorch fp32 on {self.photos} photos: "
            f"max |ΔRGB| {self.max_difference:.2e} ({self.max_difference * 255:.3f} levels), "
            f"mean {self.mean_difference:.2e} ({self.mean_difference * 255:.4f} levels)",
        ]
        if self.quantization:
            lines.append(
                f"the fp32 graph before quantization: max |ΔRGB| {self.fp32_max_difference:.2e}"
                f" (tolerance {self.tolerance:.2e}); int8 is not held to it"
            )
        else:
            lines.append(f"tolerance {self.tolerance:.2e} (max |ΔRGB|): passed")
        return "\n".join(lines)


def _source(source: str | Path | Colorizer) -> tuple[Colorizer, str]:
    if isinstance(source, Colorizer):
        if source.device.type != "cpu":
            raise ValueError(
                f"the model is on {source.device}; export it from the CPU (model.cpu()), where "
                "onnxruntime checks it"
            )
        return source, "a model in memory"
    model = load(source, fast=False)
    return model, Path(source).name if Path(source).suffix else str(source)


def export_onnx(
    source: str | Path | Colorizer,
    path: str | Path,
    working_size: int | None = 256,
    quantize: str | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    photos: Sequence[str | Path] | None = None,
) -> OnnxReport:
    """Export a model to a checked, self-contained ONNX file.

    The graph is :class:`ColorizeGraph`'s: gray ``B×1×H×W`` (input ``gray``) to sRGB
    ``B×3×H×W`` (output ``rgb``), batch, height and width dynamic. The file is checked
    by the ONNX checker and run with onnxruntime against the PyTorch model in fp32 on
    ``photos`` at their full resolution (:func:`check_onnx`); above ``tolerance`` the
    export fails and nothing is written. With ``quantize="int8"`` the checked fp32 graph
    is quantized (:func:`quantize_int8`) and the int8 file is written, its differences
    from PyTorch reported but not held to ``tolerance``. The file's metadata names the
    colorkit version, the recipe, the weights, the working size and the check's result.
    Written atomically. A model passed in is left in the mode (training or eval) it
    was in.

    Args:
        source: a checkpoint or weights file, a registered weights name, or a model.
        path: the ``.onnx`` file to write; parent folders are created.
        working_size: the longer side the networks run at (``colorkit colorize``'s
            default); ``None`` runs them at the input's size.
        quantize: ``None`` or ``"int8"``.
        tolerance: the largest max absolute RGB difference (``[0, 1]``) allowed.
        photos: the check's images; the embedded photos if ``None``.

    Returns:
        The :class:`OnnxReport`.

    Raises:
        ExportError: if onnx, onnxscript or onnxruntime is missing; if a component
            cannot be exported (naming it and the operator); if the file fails the
            ONNX checker or differs from PyTorch by more than ``tolerance``.
        ValueError: for a bad ``working_size``, ``quantize`` or ``tolerance``, or a
            model that is not on the CPU.
        CheckpointError: for a source that cannot be loaded.
    """
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be None or one of {QUANTIZATIONS}, got {quantize!r}")
    if not tolerance > 0:
        raise ValueError(f"tolerance must be positive, got {tolerance!r}")
    for module in ("onnx", "onnxscript", "onnxruntime"):
        _require(module)
    model, weights = _source(source)
    with _modes_kept(model):
        return _export(model, weights, Path(path), working_size, quantize, tolerance, photos)


def _export(
    model: Colorizer,
    weights: str,
    path: Path,
    working_size: int | None,
    quantize: str | None,
    tolerance: float,
    photos: Sequence[str | Path] | None,
) -> OnnxReport:
    """:func:`export_onnx` once the model is loaded."""
    import onnx

    started = time.perf_counter()
    graph = ColorizeGraph(model, working_size).eval()
    example = torch.rand(2, 1, 37, 45, generator=torch.Generator().manual_seed(0))
    try:
        program = _to_onnx(graph, (example,), ["gray"], ["rgb"])
    except Exception as exc:
        raise _blame(graph, model, exc) from exc
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata: dict[str, Any] = {
        "colorkit_version": __version__,
        "recipe_name": model.recipe_name,
        "recipe": model.recipe.to_dict(),
        "overrides": model.overrides,
        "weights": weights,
        "working_size": working_size,
        "color_space": model.recipe.color_space,
        "input": "gray: B×1×H×W float32 in [0, 1] (sRGB-encoded luminance)",
        "output": "rgb: B×3×H×W float32 sRGB in [0, 1], the input's lightness kept",
        "opset": OPSET,
    }
    with tempfile.TemporaryDirectory(prefix="colorkit-onnx-") as folder:
        fp32 = Path(folder) / "fp32.onnx"
        program.save(str(fp32))
        try:
            onnx.checker.check_model(str(fp32), full_check=True)
        except Exception as exc:
            raise ExportError(f"the exported graph fails the ONNX checker: {exc}") from exc
        worst, mean = check_onnx(fp32, model, working_size, photos)
        count = len(photos) if photos is not None else len(check_photos())
        if worst > tolerance:
            raise ExportError(
                f"onnxruntime and PyTorch differ by up to {worst:.3e} in RGB (mean {mean:.3e}) "
                f"on {count} photos, above the tolerance {tolerance:.3e}; nothing was written"
            )
        fp32_worst = worst
        written = fp32
        if quantize == "int8":
            written = quantize_int8(fp32, Path(folder) / "int8.onnx", photos)
            worst, mean = check_onnx(written, model, working_size, photos)
        metadata.update(
            quantization=quantize,
            max_difference=worst,
            mean_difference=mean,
            fp32_max_difference=fp32_worst,
            tolerance=tolerance,
            check_photos=count,
        )
        _write_metadata(written, metadata)
        with atomic_path(path) as temporary:
            shutil.copyfile(written, temporary)
    return OnnxReport(
        path=path,
        bytes=path.stat().st_size,
        max_difference=worst,
        mean_difference=mean,
        tolerance=tolerance,
        photos=count,
        quantization=quantize,
        fp32_max_difference=fp32_worst,
        seconds=time.perf_counter() - started,
        metadata=onnx_metadata(path),
    )
