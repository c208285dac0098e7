"""ONNX export: the graph in PyTorch, the checked file, int8, errors, the PyTorch-free example."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from support import build_tiny, color_array, smooth_batch

from colorkit import onnx_export
from colorkit.checkpoint import load, save_checkpoint
from colorkit.cli import main
from colorkit.color import recombine
from colorkit.components.refiners import MLPImprover, PortableImprover
from colorkit.engine import Colorizer
from colorkit.imaging import read_gray
from colorkit.onnx_export import ColorizeGraph, ExportError, check_onnx, export_onnx

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "onnx_colorize.py"
WORKING = 48  # small, so that the check photos and the example run fast


def _missing(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return True
    return False


MISSING = [m for m in ("onnx", "onnxscript", "onnxruntime") if _missing(m)]
needs_onnx = pytest.mark.skipif(
    bool(MISSING),
    reason=f"{', '.join(MISSING)} not installed: pip install -e '.[onnx]' to run the ONNX tests",
)


def _model(seed: int = 0) -> Colorizer:
    """A tiny trained model whose Improver's correction is not zero."""
    model = build_tiny("pix2pix+mlp", seed=seed, refiner_patch=4)
    for _ in range(2):
        model.train_step(smooth_batch())
    with torch.no_grad():
        model.refiner.mlp[-1].weight.normal_(0.0, 0.05)
        model.refiner.mlp[-1].bias.normal_(0.0, 0.05)
    return model.eval()


# -- the graph in PyTorch ------------------------------------------------------------------
@pytest.mark.parametrize(("patch", "spin"), [(4, 4), (4, 2), (8, 4), (4, 1)])
def test_portable_improver_computes_the_improver(patch: int, spin: int) -> None:
    torch.manual_seed(0)
    improver = MLPImprover(patch=patch, hidden=8, spin=spin).eval()
    with torch.no_grad():
        improver.mlp[-1].weight.normal_(0.0, 0.1)
        improver.mlp[-1].bias.normal_(0.0, 0.1)
        x, cond = torch.rand(2, 2, 19, 26), torch.rand(2, 1, 19, 26)
        expected = improver(x, cond)
        assert (PortableImprover(improver)(x, cond) - expected).abs().max() < 1e-5
        assert isinstance(improver.export_form(), PortableImprover)
    assert MLPImprover(patch=8, spin=3).export_form() is None  # uneven grids: exported as is


@pytest.mark.parametrize("size", [(37, 45), (20, 33), (32, 17), (9, 64), (48, 48), (5, 3)])
def test_graph_in_pytorch_is_colorize_at_the_working_size(size: tuple[int, int]) -> None:
    model = _model()
    plain = onnx_export._plain_fp32(model)
    gray = smooth_batch(*size)[:, :1]
    for working in (16, None):
        graph = ColorizeGraph(model, working).eval()
        with torch.no_grad():
            assert (graph(gray) - plain.colorize(gray, working)).abs().max() < 1e-5


def test_working_side_rounds_like_colorize() -> None:
    # colorize computes round(side * (working / longest)) in floats, half to even
    for working in (16, 32, 256):
        for longest in range(1, 300):
            for side in range(1, longest + 1):
                expected = max(1, round(side * (working / longest)))
                assert onnx_export._working_side(side, working, longest) == expected


def test_area_resize_is_interpolate_area() -> None:
    x = torch.rand(2, 1, 23, 41)
    for size in [(7, 12), (23, 41), (30, 50), (1, 1)]:
        ours = onnx_export._area_axis(onnx_export._area_axis(x, size[0], 2), size[1], 3)
        assert (ours - F.interpolate(x, size=size, mode="area")).abs().max() < 1e-6


def test_bad_working_size_and_options_are_refused(tmp_path: Path) -> None:
    model = _model()
    with pytest.raises(ValueError, match="working_size"):
        ColorizeGraph(model, 0)
    with pytest.raises(ValueError, match="quantize"):
        export_onnx(model, tmp_path / "m.onnx", quantize="int4")
    with pytest.raises(ValueError, match="tolerance"):
        export_onnx(model, tmp_path / "m.onnx", tolerance=0)


def test_a_model_off_the_cpu_is_refused(tmp_path: Path) -> None:
    model = build_tiny("pix2pix+mlp").to("meta")
    with pytest.raises(ValueError, match=r"model\.cpu\(\)"):
        onnx_export._source(model)


def test_missing_runtime_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails, as when absent
    with pytest.raises(ExportError, match=r"colorkit\[onnx\]"):
        export_onnx(_model(), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_cli_refuses_options_of_the_other_format(tmp_path: Path) -> None:
    source = tmp_path / "any.safetensors"
    out = str(tmp_path / "m.onnx")
    assert main(["export", str(source), "--format", "onnx", "--dtype", "bf16", "-o", out]) == 2
    assert main(["export", str(source), "--quantize", "int8", "-o", out]) == 2
    assert not Path(out).exists()


# -- the exported file ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One checkpoint exported through ``colorkit export --format onnx`` (the suite's only
    full export: the exporter takes seconds)."""
    if MISSING:
        pytest.skip(f"{', '.join(MISSING)} not installed: pip install -e '.[onnx]'")
    folder = tmp_path_factory.mktemp("onnx")
    checkpoint = save_checkpoint(_model(), folder / "tiny.safetensors", step=2)
    onnx_file = folder / "tiny.onnx"
    argv = ["export", str(checkpoint), "--format", "onnx", "-o", str(onnx_file)]
    code = main([*argv, "--working-size", str(WORKING)])
    assert code == 0
    return {"checkpoint": checkpoint, "onnx": onnx_file}


def _session(path: Path) -> Any:
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@needs_onnx
def test_export_is_checked_and_says_what_it_holds(exported: dict[str, Any]) -> None:
    import onnx

    onnx.checker.check_model(str(exported["onnx"]), full_check=True)
    meta = onnx_export.onnx_metadata(exported["onnx"])
    assert meta["colorkit_version"] == onnx_export.__version__
    assert meta["recipe_name"] == "pix2pix+mlp" and meta["recipe"]["refiner"] == "mlp"
    assert meta["weights"] == "tiny.safetensors" and meta["working_size"] == WORKING
    assert meta["quantization"] is None and meta["check_photos"] == 5
    assert meta["max_difference"] <= onnx_export.DEFAULT_TOLERANCE
    assert 0 <= meta["mean_difference"] <= meta["max_difference"]
    graph = onnx.load(str(exported["onnx"])).graph
    assert [i.name for i in graph.input] == ["gray"] and [o.name for o in graph.output] == ["rgb"]
    dims = graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param != "" for d in dims] == [True, False, True, True]  # B, 1, H, W


@needs_onnx
def test_graph_takes_any_batch_height_and_width(exported: dict[str, Any]) -> None:
    session = _session(exported["onnx"])
    plain = load(exported["checkpoint"], fast=False)
    for shape in [(3, 29, 50), (1, 70, 21), (2, 8, 8)]:
        gray = smooth_batch(*shape[1:])[:1, :1].repeat(shape[0], 1, 1, 1)
        gray = gray * torch.linspace(0.5, 1.0, shape[0]).view(-1, 1, 1, 1)
        (rgb,) = session.run(None, {"gray": gray.numpy()})
        expected = plain.colorize(gray, WORKING)
        assert rgb.shape == tuple(expected.shape)
        assert np.abs(rgb - expected.numpy()).max() <= 1 / 255


@pytest.fixture
def reexport(exported: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The exporter returns the module's exported graph instead of exporting again."""

    class Program:
        def save(self, path: str) -> None:
            shutil.copyfile(exported["onnx"], path)

    monkeypatch.setattr(onnx_export, "_to_onnx", lambda *args, **kwargs: Program())


@needs_onnx
@pytest.mark.usefixtures("reexport")
def test_tolerance_is_enforced_and_nothing_is_written(
    exported: dict[str, Any], tmp_path: Path
) -> None:
    target = tmp_path / "strict.onnx"
    model = load(exported["checkpoint"], fast=False).train()
    with pytest.raises(ExportError, match=r"above the tolerance 1\.000e-12; nothing was written"):
        export_onnx(model, target, working_size=WORKING, tolerance=1e-12)
    assert list(tmp_path.iterdir()) == []
    assert all(module.training for module in model.modules())  # as it was given


@needs_onnx
@pytest.mark.usefixtures("reexport")
def test_export_with_int8_writes_the_quantized_graph(
    exported: dict[str, Any], tmp_path: Path
) -> None:
    model = load(exported["checkpoint"], fast=False)
    report = export_onnx(model, tmp_path / "int8.onnx", working_size=WORKING, quantize="int8")
    assert report.quantization == "int8" and report.metadata["quantization"] == "int8"
    assert report.fp32_max_difference <= report.tolerance and 0 < report.max_difference < 0.1
    assert "int8 is not held to it" in report.summary()
    assert [p.name for p in tmp_path.iterdir()] == ["int8.onnx"]


@needs_onnx
def test_int8_runs_close_to_fp32(exported: dict[str, Any], tmp_path: Path) -> None:
    import onnx

    int8 = onnx_export.quantize_int8(exported["onnx"], tmp_path / "int8.onnx")
    onnx.checker.check_model(str(int8))
    ops = {node.op_type for node in onnx.load(str(int8)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    worst, mean = check_onnx(int8, load(exported["checkpoint"], fast=False), WORKING)
    assert 0 < mean < 0.01 and worst < 0.1


# -- the PyTorch-free example --------------------------------------------------------------
# Runs the example with torch and colorkit made unimportable: a meta-path finder that
# refuses them is installed before anything else is imported.
_WITHOUT_TORCH = textwrap.dedent(
    """
    import runpy, sys

    class Refuse:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "colorkit", "torchvision"):
                raise ImportError(f"{name} is blocked: the example must not need it")
            return None

    sys.meta_path.insert(0, Refuse())
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
    assert not any(m.split(".")[0] in ("torch", "colorkit") for m in sys.modules)
    """
)


def _run_example(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT_TORCH, str(EXAMPLE), *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )


@needs_onnx
def test_example_colorizes_a_jpeg_at_full_resolution_without_torch(
    exported: dict[str, Any], tmp_path: Path
) -> None:
    photo = tmp_path / "photo.jpg"
    Image.fromarray(color_array(120, 90, seed=3)).save(photo, quality=90)
    out = tmp_path / "photo-colour.png"
    done = _run_example(str(exported["onnx"]), str(photo), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert f"networks at {WORKING} px" in done.stdout
    result = np.asarray(Image.open(out))
    assert result.shape == (120, 90, 3)
    # what `colorkit colorize` writes for the same file, from the PyTorch model
    gray = read_gray(photo)[0]
    plain = load(exported["checkpoint"], fast=False)
    expected = recombine(gray, plain.predict_chroma(gray, WORKING))
    assert np.abs(result.astype(int) - expected.astype(int)).max() <= 2
    # a gray JPEG: its stored values are the gray, and the output keeps them as lightness
    gray_photo = tmp_path / "gray.jpg"
    Image.fromarray(color_array(60, 80, seed=4)).convert("L").save(gray_photo, quality=90)
    done = _run_example(str(exported["onnx"]), str(gray_photo), "-o", str(tmp_path / "g.png"))
    assert done.returncode == 0, done.stderr
    gray = read_gray(gray_photo)[0]
    expected = recombine(gray, plain.predict_chroma(gray, WORKING))
    result = np.asarray(Image.open(tmp_path / "g.png"))
    assert result.shape == (60, 80, 3)
    assert np.abs(result.astype(int) - expected.astype(int)).max() <= 2


@needs_onnx
def test_example_reports_bad_files(exported: dict[str, Any], tmp_path: Path) -> None:
    done = _run_example(str(exported["onnx"]), str(tmp_path / "missing.jpg"), "-o", "x.png")
    assert done.returncode == 2 and "missing.jpg" in done.stderr
    photo = tmp_path / "p.png"
    Image.fromarray(color_array(10, 10)).save(photo)
    done = _run_example(str(exported["onnx"]), str(photo), "-o", str(tmp_path / "out.xyz"))
    assert done.returncode == 2 and "out.xyz" in done.stderr


# -- a component the exporter cannot translate ---------------------------------------------
@torch.library.custom_op("colorkit_test::mystery", mutates_args=())
def _mystery(x: torch.Tensor) -> torch.Tensor:
    return x.clone()


@_mystery.register_fake
def _(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


class MysteryRefiner(torch.nn.Module):
    """A plugin-like refiner built on an operator ONNX has no translation for."""

    def __init__(self, channels: int = 2, cond_channels: int = 1) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return _mystery(x)


@needs_onnx
def test_unsupported_operator_names_the_component_and_the_operator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, cond = torch.rand(2, 2, 16, 16), torch.rand(2, 1, 16, 16)
    # the real exporter's error for the refiner on its own
    with pytest.raises(Exception) as raised:
        onnx_export._to_onnx(onnx_export._Refiner(MysteryRefiner()), (x, cond), ["x", "c"])
    assert onnx_export._operator(raised.value) == "colorkit_test.mystery"

    # the whole model: the same error wherever the refiner is in the module exported
    def export(module: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
        if any(isinstance(m, MysteryRefiner) for m in module.modules()):
            raise raised.value
        return None

    monkeypatch.setattr(onnx_export, "_to_onnx", export)
    tiny = _model()
    model = Colorizer(
        tiny.recipe, parts={"generator": tiny.generator, "refiner": MysteryRefiner()}
    ).eval()
    target = tmp_path / "m.onnx"
    with pytest.raises(ExportError, match=r"refiner .*MysteryRefiner.*colorkit_test\.mystery"):
        export_onnx(model, target)
    assert not target.exists()


def test_report_summary_states_the_check() -> None:
    report = onnx_export.OnnxReport(
        path=Path("m.onnx"),
        bytes=2**20,
        max_difference=1e-6,
        mean_difference=1e-8,
        tolerance=1 / 255,
        photos=5,
        metadata={"working_size": 256},
    )
    text = report.summary()
    assert "1.00 MiB" in text and "max |ΔRGB| 1.00e-06" in text and "passed" in text
    assert json.loads(json.dumps(report.metadata)) == {"working_size": 256}


def test_failure_without_an_operator_names_the_root_cause() -> None:
    try:
        try:
            raise ValueError("data-dependent branch on a size\nmore detail")
        except ValueError as inner:
            raise RuntimeError("Failed to export the model with torch.export") from inner
    except RuntimeError as outer:
        reason = onnx_export._reason(outer)
    assert reason == "the exporter failed (ValueError: data-dependent branch on a size)"
