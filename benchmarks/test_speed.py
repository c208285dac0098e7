"""Speed: colorkit's training and inference against the reference way, side by side.

    pytest benchmarks/test_speed.py --benchmark [--budget smoke|full] [--device cpu|cuda]
        [--size N] [--bench-batch N] [--steps N] [--data DIR] [--results DIR] -s

Every comparison runs its variants in one process, interleaved round by round (the
order reversed every other round), so a machine shared with other work slows all of
them alike; a ratio is the median over rounds of the per-round ratios. The reference
way is ``reference.py``: colorkit's own networks run as pix2pix's code runs them
(fp32, NCHW, eager, ``zero_grad()``, ``.item()`` per loss per step). colorkit's rows
are what a user gets by default: :class:`~colorkit.engine.Colorizer` with
``set_precision("auto")`` and channels-last (as ``colorkit train`` runs it) for
training, :meth:`colorkit.Colorizer.inference_copy` for inference.

What is measured:

(a) pix2pix training step, reference vs colorkit;
(b) pix2pix+mlp training step, the same;
(c) generator inference at batch 1, 8 and 16;
(d) what the MLP Improver adds to training and to inference time;
(e) ``colorkit colorize`` of a large JPEG (24 MP in the full budget) in a subprocess:
    seconds and peak resident memory; (e') the same for a 12 MP JPEG with the shipped
    ``starter`` weights, where they are installed;
(f) bf16 against fp32 training: the test scores after the same steps and seed;
(g) the ONNX export (``colorkit export --format onnx``, fp32 and ``--quantize int8``) run
    by onnxruntime against the inference copy, colorizing gray batches of 1 and 8 at
    ``--size`` (the working size too), and the files' sizes (needs the ``onnx`` extra);
(h) ``colorkit serve``: seconds from the command to its first answered page, process start
    and imports included (needs the ``web`` extra).

With a GPU, the step figures also say what fraction of the GPU's dense bf16 peak they
reach (FLOPs counted with ``torch.utils.flop_counter``; peaks from
:data:`flops.BF16_PEAK_TFLOPS`). On CPU, measurements use 2 threads.

The targets are asserted only in the full budget at the target configuration (CPU,
256×256, training batch 4); the smoke budget (small networks, few rounds) checks that
every figure is positive and finite.
"""

from __future__ import annotations

import json
import math
import os
import socket
import statistics
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from flops import bf16_peak_flops, count_flops
from PIL import Image
from reference import ReferencePix2Pix, reference_inference
from report import device_description, markdown_table, text_table, write_json, write_text

import colorkit
from colorkit.color import rgb_to_gray
from colorkit.data import load_photos
from colorkit.fast import (
    bf16_is_fast,
    fold_batchnorm,
    inference_form,
    precision_dtype,
    resolve_precision,
)

CPU_THREADS = 2
TEST_FRACTION = 0.2

#: The issue's targets, checked in the full budget at the target configuration.
TRAIN_SPEEDUP = 3.0
INFERENCE_SPEEDUP = 4.0
IMPROVER_OVERHEAD = 0.10
COLORIZE_SECONDS = 8.0
COLORIZE_PEAK_MB = 2500.0
SSIM_TOLERANCE = 0.005
PSNR_TOLERANCE = 0.2
SERVE_SECONDS = 3.0
#: The shipped weights' targets: a 12-megapixel JPEG, process start excluded.
STARTER_COLORIZE_SIZE = (4000, 3000)
STARTER_SECONDS = 3.0
STARTER_PEAK_MB = 1500.0


@dataclass(frozen=True)
class Plan:
    """What one budget measures."""

    budget: str
    device: torch.device
    size: int
    train_batch: int
    overrides: dict[str, Any]
    train_rounds: int
    infer_rounds: int
    warmup: int
    infer_batches: tuple[int, ...]
    improver_batch: int
    colorize_size: tuple[int, int]
    colorize_repeats: int
    quality_steps: int
    quality_size: int
    quality_overrides: dict[str, Any]
    data: str | None
    seed: int
    results: Path

    @property
    def at_target(self) -> bool:
        """Whether this run measures the issue's target configuration."""
        return (
            self.budget == "full"
            and self.device.type == "cpu"
            and self.size == 256
            and self.train_batch == 4
            and not self.overrides
        )


@dataclass
class Row:
    """One line of the speed table."""

    case: str
    reference: str = ""
    colorkit: str = ""
    ratio: str = ""
    target: str = ""
    verdict: str = ""
    values: dict[str, Any] = field(default_factory=dict)


ROWS: list[Row] = []


@pytest.fixture(scope="module")
def plan(bench: Any, pytestconfig: pytest.Config) -> Plan:
    option = pytestconfig.getoption
    smoke = bench.budget == "smoke"
    steps = option("--steps")
    return Plan(
        budget=bench.budget,
        device=bench.device,
        size=bench.size,
        train_batch=option("--bench-batch") or 4,
        # the U-Net pads to a multiple of 2**depth, so small crops need a shallower one
        overrides={"generator_depth": 6, "base_channels": 16} if smoke else {},
        train_rounds=3 if smoke else 9,
        infer_rounds=3 if smoke else 7,
        warmup=1,
        infer_batches=(1, 8, 16),
        improver_batch=8,
        colorize_size=(2000, 1500) if smoke else (6000, 4000),
        colorize_repeats=1 if smoke else 2,
        quality_steps=steps or (4 if smoke else 30),
        quality_size=bench.size,
        quality_overrides=(
            {"generator_depth": 6, "base_channels": 16, "refiner_hidden": 64} if smoke else {}
        ),
        data=bench.data,
        seed=bench.seed,
        results=bench.results,
    )


@pytest.fixture(scope="module", autouse=True)
def _threads(bench: Any) -> Iterator[None]:
    if bench.device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(CPU_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# -- measuring -----------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class SideBySide:
    """Variants timed in interleaved rounds, each call on its own."""

    def __init__(self, device: torch.device, variants: dict[str, Callable[[], Any]]) -> None:
        self.device = device
        self.variants = variants
        self.times: dict[str, list[float]] = {name: [] for name in variants}
        self._rounds = 0

    def _call(self, name: str) -> float:
        _sync(self.device)
        start = time.perf_counter()
        self.variants[name]()
        _sync(self.device)
        return time.perf_counter() - start

    def one_round(self) -> None:
        names = list(self.variants)
        if self._rounds % 2:
            names.reverse()
        for name in names:
            self.times[name].append(self._call(name))
        self._rounds += 1

    def run(self, benchmark: Any, rounds: int, warmup: int) -> SideBySide:
        for name in self.variants:
            for _ in range(warmup):
                self._call(name)
        benchmark.pedantic(self.one_round, rounds=rounds, iterations=1, warmup_rounds=0)
        return self

    def median(self, name: str) -> float:
        return statistics.median(self.times[name])

    def ratio(self, slow: str, fast: str) -> float:
        """Median over rounds of ``time(slow) / time(fast)`` in the same round."""
        return statistics.median(
            a / b for a, b in zip(self.times[slow], self.times[fast], strict=True)
        )


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}f}"


def _sane(*values: float) -> None:
    for value in values:
        assert math.isfinite(value) and value > 0, f"expected a positive figure, got {value}"


def _show(capsys: pytest.CaptureFixture[str], title: str, rows: list[Row]) -> None:
    ROWS.extend(rows)
    with capsys.disabled():
        print(f"\n{title}")
        print(text_table(_HEADERS, [_cells(row) for row in rows]))


_HEADERS = ("case", "reference", "colorkit", "ratio", "target", "")


def _cells(row: Row) -> list[str]:
    return [row.case, row.reference, row.colorkit, row.ratio, row.target, row.verdict]


def _verdict(ok: bool, plan: Plan) -> str:
    if not plan.at_target:
        return "(not target config)"
    return "met" if ok else "NOT MET"


def _peak_note(flops: float, seconds: float, device: torch.device) -> tuple[str, dict[str, Any]]:
    achieved = flops / seconds
    peak = bf16_peak_flops(device)
    values: dict[str, Any] = {"gflop": flops / 1e9, "achieved_tflops": achieved / 1e12}
    if device.type != "cuda":
        return f"{achieved / 1e12:.3f} TFLOP/s (no GPU peak on CPU)", values
    name = torch.cuda.get_device_name(device)
    if peak is None:
        values["peak"] = None
        return f"{achieved / 1e12:.1f} TFLOP/s; bf16 peak of {name} unknown", values
    values["peak_tflops"] = peak / 1e12
    values["fraction_of_peak"] = achieved / peak
    return f"{achieved / 1e12:.1f} TFLOP/s = {achieved / peak:.1%} of {name} bf16 peak", values


def _photos(plan: Plan, count: int, size: int) -> torch.Tensor:
    train_set, _, _ = load_photos(plan.data, size=size, test_fraction=TEST_FRACTION, seed=0)
    torch.manual_seed(plan.seed)
    images = [train_set[i % len(train_set)] for i in range(count)]
    return torch.stack(images)


def _colorkit_model(recipe: str, plan: Plan) -> colorkit.Colorizer:
    """A model as ``colorkit train`` runs it: auto precision, channels-last."""
    torch.manual_seed(plan.seed)
    model = colorkit.build(recipe, **plan.overrides).to(plan.device)
    model.set_precision("auto")
    return model.to(memory_format=torch.channels_last)


def _warm_statistics(generator: torch.nn.Module, condition: torch.Tensor) -> None:
    # a few train-mode passes give BatchNorm running statistics that are not the identity
    generator.train()
    with torch.no_grad():
        for _ in range(2):
            generator(condition)
    generator.eval()


# -- (a), (b), (d) training ----------------------------------------------------------------
def test_training_step(benchmark: Any, plan: Plan, capsys: pytest.CaptureFixture[str]) -> None:
    """pix2pix and pix2pix+mlp training iterations, reference vs colorkit."""
    rgb = _photos(plan, plan.train_batch, plan.size).to(plan.device)
    rgb_cl = rgb.contiguous(memory_format=torch.channels_last)
    ref = ReferencePix2Pix("pix2pix", plan.device, **plan.overrides)
    ref_mlp = ReferencePix2Pix("pix2pix+mlp", plan.device, **plan.overrides)
    fast = _colorkit_model("pix2pix", plan)
    fast_mlp = _colorkit_model("pix2pix+mlp", plan)
    flops = count_flops(fast.train_step, rgb_cl)
    runs = SideBySide(
        plan.device,
        {
            "reference pix2pix": lambda: ref.optimize_parameters(rgb),
            "colorkit pix2pix": lambda: fast.train_step(rgb_cl),
            "reference pix2pix+mlp": lambda: ref_mlp.optimize_parameters(rgb),
            "colorkit pix2pix+mlp": lambda: fast_mlp.train_step(rgb_cl),
        },
    ).run(benchmark, plan.train_rounds, plan.warmup)

    batch = plan.train_batch
    ips = {name: batch / runs.median(name) for name in runs.variants}
    speedup = runs.ratio("reference pix2pix", "colorkit pix2pix")
    speedup_mlp = runs.ratio("reference pix2pix+mlp", "colorkit pix2pix+mlp")
    overhead = runs.ratio("colorkit pix2pix+mlp", "colorkit pix2pix") - 1.0
    ref_overhead = runs.ratio("reference pix2pix+mlp", "reference pix2pix") - 1.0
    note, peak_values = _peak_note(flops, runs.median("colorkit pix2pix"), plan.device)
    shape = f"{plan.size}px b{batch}"
    label = f"{fast.precision}+channels_last"
    rows = [
        Row(
            f"(a) pix2pix train step, {shape}, img/s",
            _fmt(ips["reference pix2pix"]),
            _fmt(ips["colorkit pix2pix"]),
            f"{speedup:.2f}x",
            f">= {TRAIN_SPEEDUP:g}x",
            _verdict(speedup >= TRAIN_SPEEDUP, plan),
            {"times": runs.times, "precision": fast.precision},
        ),
        Row(
            f"(b) pix2pix+mlp train step, {shape}, img/s",
            _fmt(ips["reference pix2pix+mlp"]),
            _fmt(ips["colorkit pix2pix+mlp"]),
            f"{speedup_mlp:.2f}x",
        ),
        Row(
            "(d) Improver's share of training time",
            f"{ref_overhead:+.1%}",
            f"{overhead:+.1%}",
            "",
            f"<= {IMPROVER_OVERHEAD:.0%}",
            _verdict(overhead <= IMPROVER_OVERHEAD, plan),
        ),
        Row(
            f"    colorkit {label} step: {flops / 1e9:.3g} GFLOP",
            "",
            _fmt(runs.median("colorkit pix2pix"), 3) + " s",
            "",
            "",
            note,
            peak_values,
        ),
    ]
    _show(capsys, f"training ({device_description(plan.device)})", rows)
    _sane(*ips.values(), speedup, speedup_mlp, overhead + 1.0)
    if plan.at_target:
        missed = []
        if speedup < TRAIN_SPEEDUP:
            missed.append(f"pix2pix training speedup {speedup:.2f}x < {TRAIN_SPEEDUP}x")
        if overhead > IMPROVER_OVERHEAD:
            missed.append(f"Improver training overhead {overhead:.1%} > {IMPROVER_OVERHEAD:.0%}")
        assert not missed, "; ".join(missed)


# -- (c) generator inference ---------------------------------------------------------------
@pytest.fixture(scope="module")
def inference_nets(plan: Plan) -> dict[str, Any]:
    torch.manual_seed(plan.seed)
    # the plain model: the reference rows run its networks as they are
    model = colorkit.build("pix2pix+mlp", fast=False, **plan.overrides).to(plan.device)
    rgb = _photos(plan, 4, plan.size).to(plan.device)
    condition, _ = model.encode(rgb)
    _warm_statistics(model.generator, condition)
    dtype = precision_dtype(resolve_precision("auto", plan.device))
    fast = inference_form(model.generator, dtype)
    return {"model": model, "fast": fast}


@pytest.mark.parametrize("batch", [1, 8, 16])
def test_generator_inference(
    benchmark: Any,
    plan: Plan,
    inference_nets: dict[str, Any],
    batch: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Generator forward at 256×256: reference (fp32 eager) vs the inference copy."""
    model, fast = inference_nets["model"], inference_nets["fast"]
    generator = model.generator
    rgb = _photos(plan, batch, plan.size).to(plan.device)
    condition, _ = model.encode(rgb)
    condition_cl = condition.contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast(plan.device.type, torch.bfloat16, enabled=bf16_is_fast(plan.device))
    generator_cl = fold_batchnorm(generator).to(memory_format=torch.channels_last)

    def engine_way() -> torch.Tensor:
        with torch.no_grad(), autocast:
            return generator_cl(condition_cl)

    def fast_way() -> torch.Tensor:
        with torch.inference_mode():
            return fast(condition)

    expected = reference_inference(generator, condition)
    difference = (fast_way().float() - expected).abs().max().item()
    # counted on the generator itself: the copy's oneDNN kernels are invisible to the
    # counter, and both do the same arithmetic
    flops = count_flops(reference_inference, generator, condition) if batch == 8 else 0
    runs = SideBySide(
        plan.device,
        {
            "reference": lambda: reference_inference(generator, condition),
            "autocast": engine_way,
            "colorkit": fast_way,
        },
    ).run(benchmark, plan.infer_rounds, plan.warmup)
    speedup = runs.ratio("reference", "colorkit")
    ips = {name: batch / runs.median(name) for name in runs.variants}
    target = batch == 8
    rows = [
        Row(
            f"(c) generator inference, {plan.size}px b{batch}, img/s",
            _fmt(ips["reference"]),
            _fmt(ips["colorkit"]),
            f"{speedup:.2f}x",
            f">= {INFERENCE_SPEEDUP:g}x" if target else "",
            _verdict(speedup >= INFERENCE_SPEEDUP, plan) if target else "",
            {"times": runs.times, "max_abs_difference": difference},
        ),
        Row(
            "    of which: BN folded + autocast + channels_last alone",
            "",
            _fmt(ips["autocast"]),
            f"{runs.ratio('reference', 'autocast'):.2f}x",
        ),
    ]
    if flops:
        note, values = _peak_note(flops, runs.median("colorkit"), plan.device)
        rows.append(
            Row(f"    inference b{batch}: {flops / 1e9:.3g} GFLOP", "", "", "", "", note, values)
        )
    _show(capsys, f"generator inference, batch {batch}", rows)
    _sane(*ips.values(), speedup)
    # the copy computes what the generator computes, to bf16 rounding (outputs are in ±1)
    assert difference < 0.05, f"inference copy differs from the generator by {difference}"
    if plan.at_target and target:
        assert speedup >= INFERENCE_SPEEDUP, (
            f"inference speedup {speedup:.2f}x < {INFERENCE_SPEEDUP}x at batch {batch}"
        )


def test_improver_inference_overhead(
    benchmark: Any,
    plan: Plan,
    inference_nets: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What the MLP Improver adds to inference (the fast copy, with and without it)."""
    fast_model = inference_nets["model"].inference_copy("auto")
    gray = rgb_to_gray(_photos(plan, plan.improver_batch, plan.size)).to(plan.device)
    runs = SideBySide(
        plan.device,
        {
            "generator": lambda: fast_model.predict_chroma(gray, refine=False),
            "generator+improver": lambda: fast_model.predict_chroma(gray, refine=True),
        },
    ).run(benchmark, plan.infer_rounds, plan.warmup)
    overhead = runs.ratio("generator+improver", "generator") - 1.0
    rows = [
        Row(
            f"(d) Improver's share of inference time, b{plan.improver_batch}",
            "",
            f"{overhead:+.1%}",
            "",
            f"<= {IMPROVER_OVERHEAD:.0%}",
            _verdict(overhead <= IMPROVER_OVERHEAD, plan),
            {"times": runs.times},
        )
    ]
    _show(capsys, "Improver at inference", rows)
    _sane(runs.median("generator"), runs.median("generator+improver"))
    if plan.at_target:
        assert overhead <= IMPROVER_OVERHEAD, f"Improver inference overhead {overhead:.1%}"


# -- (e) colorize a large JPEG -------------------------------------------------------------
_MEASURE = textwrap.dedent(
    """
    import json, os, resource, subprocess, sys, time
    start = time.perf_counter()
    child = subprocess.Popen(sys.argv[1:])
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    print(json.dumps({"seconds": time.perf_counter() - start, "rc": child.returncode,
                      "peak_mb": usage.ru_maxrss / 1024}))
    """
)

_COLORIZE_FILE = textwrap.dedent(
    """
    import json, sys, time
    import torch
    torch.set_num_threads({threads})
    from colorkit import load
    from colorkit.colorizing import colorize_file
    model = load(sys.argv[1], device="cpu").set_precision("auto")
    start = time.perf_counter()
    colorize_file(model, sys.argv[2], sys.argv[3])
    print(json.dumps({{"decode_to_written": time.perf_counter() - start}}))
    """
)


def _measured(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run a command under a small parent that reports its wall time and peak RSS."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise AssertionError(f"{command[:4]} failed:\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(lines[-1])
    for line in lines[:-1]:
        result.update(json.loads(line))
    assert result["rc"] == 0, f"{command[:4]} exited with {result['rc']}:\n{done.stderr}"
    return result


def _large_jpeg(path: Path, size: tuple[int, int], seed: int) -> Path:
    # smooth colour fields plus grain: compresses like a photograph, not like noise
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    image = small.resize(size, Image.Resampling.BICUBIC)
    grain = rng.normal(0, 6, (size[1], size[0], 1)).astype(np.int16)
    pixels = np.clip(np.asarray(image, dtype=np.int16) + grain, 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, quality=92)
    return path


def _colorize_runs(
    benchmark: Any, weights: str, jpeg: Path, out: Path, repeats: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Colorize ``jpeg`` with ``weights`` in fresh processes: in-process timings, then the CLI."""
    threads = str(CPU_THREADS)
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    script = _COLORIZE_FILE.format(threads=CPU_THREADS)
    in_process: list[dict[str, Any]] = []

    def colorize_file_run() -> None:
        folder = out / f"run-{len(in_process)}"
        command = [sys.executable, "-c", script, weights, str(jpeg), str(folder)]
        in_process.append(_measured(command, env))

    benchmark.pedantic(colorize_file_run, rounds=repeats, iterations=1)
    command = [sys.executable, "-m", "colorkit", "colorize", str(jpeg), "-o", str(out / "cli")]
    cli = _measured([*command, "--weights", weights, "--device", "cpu", "--no-progress"], env)
    written = list((out / "cli").iterdir())
    assert len(written) == 1 and written[0].stat().st_size > 0, written
    with Image.open(jpeg) as source, Image.open(written[0]) as result:
        assert result.size == source.size and result.mode == "RGB"
    return in_process, cli


def _colorize_rows(
    label: str,
    in_process: list[dict[str, Any]],
    cli: dict[str, Any],
    seconds_target: float,
    peak_target: float,
    verdict: Callable[[bool], str],
) -> list[Row]:
    seconds = min(run["decode_to_written"] for run in in_process)
    peak = max(run["peak_mb"] for run in in_process)
    _sane(seconds, peak, cli["seconds"], cli["peak_mb"])
    return [
        Row(
            f"{label}, decode -> written, s",
            "",
            _fmt(seconds),
            "",
            f"< {seconds_target:g} s",
            verdict(seconds < seconds_target),
            {"runs": in_process},
        ),
        Row(
            "    peak resident memory of that process, MB",
            "",
            _fmt(peak),
            "",
            f"< {peak_target:g} MB",
            verdict(peak < peak_target),
        ),
        Row(
            "    `colorkit colorize` CLI, process start to exit, s / peak MB",
            "",
            f"{_fmt(cli['seconds'])} / {_fmt(cli['peak_mb'])}",
            "",
            "",
            "",
            {"cli": cli},
        ),
    ]


def test_colorize_large_jpeg(
    benchmark: Any, plan: Plan, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``colorkit colorize`` of a large JPEG on CPU, in subprocesses: seconds, peak MB."""
    from colorkit.checkpoint import save_checkpoint

    width, height = plan.colorize_size
    jpeg = _large_jpeg(tmp_path / "large.jpg", plan.colorize_size, plan.seed)
    model = colorkit.build("pix2pix+mlp", **plan.overrides)
    checkpoint = save_checkpoint(model, tmp_path / "step-00000001.safetensors", 1)
    del model
    runs = _colorize_runs(benchmark, str(checkpoint), jpeg, tmp_path, plan.colorize_repeats)
    label = f"(e) colorize {width * height / 1e6:.0f} MP JPEG"
    rows = _colorize_rows(
        label, *runs, COLORIZE_SECONDS, COLORIZE_PEAK_MB, lambda ok: _verdict(ok, plan)
    )
    _show(capsys, f"colorize {width}x{height} on {CPU_THREADS} CPU threads", rows)
    if plan.budget == "full":
        assert all(row.verdict != "NOT MET" for row in rows), rows


def test_colorize_with_the_starter_weights(
    benchmark: Any, plan: Plan, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """(e') the shipped ``starter`` weights on a 12-megapixel JPEG: seconds, peak MB."""
    from colorkit.weights import DEFAULT_WEIGHTS, WeightsError, resolve_weights

    try:
        resolve_weights(DEFAULT_WEIGHTS)
    except WeightsError as exc:
        pytest.skip(str(exc))
    jpeg = _large_jpeg(tmp_path / "large.jpg", STARTER_COLORIZE_SIZE, plan.seed)
    runs = _colorize_runs(benchmark, DEFAULT_WEIGHTS, jpeg, tmp_path, plan.colorize_repeats + 1)
    rows = _colorize_rows(
        f"(e') {DEFAULT_WEIGHTS} weights, 12 MP JPEG",
        *runs,
        STARTER_SECONDS,
        STARTER_PEAK_MB,
        lambda ok: "met" if ok else "NOT MET",
    )
    width, height = STARTER_COLORIZE_SIZE
    title = f"colorize {width}x{height} with {DEFAULT_WEIGHTS!r} on {CPU_THREADS} CPU threads"
    _show(capsys, title, rows)


# -- (f) bf16 against fp32 -----------------------------------------------------------------
def test_defaults_pick_the_fast_precision(plan: Plan) -> None:
    """``auto`` is the default everywhere and means bf16 where bf16 is fast."""
    from colorkit.cli import build_parser
    from colorkit.trainer import TrainConfig

    model = colorkit.build("pix2pix", generator_depth=3, base_channels=8).to(plan.device)
    expected = "bf16" if bf16_is_fast(plan.device) else "fp32"
    assert model.set_precision("auto").precision == expected
    assert TrainConfig().precision == "auto"
    parser = build_parser()
    assert parser.parse_args(["train"]).precision == "auto"
    assert parser.parse_args(["colorize", "c.safetensors", "x.jpg", "-o", "o"]).precision == "auto"


def test_bf16_quality_matches_fp32(
    benchmark: Any, plan: Plan, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pix2pix+mlp trained twice, fp32 and bf16, same seed and steps; test scores compared."""
    from colorkit.metrics import evaluate
    from colorkit.trainer import TrainConfig, train

    _, test_set, _ = load_photos(
        plan.data, size=plan.quality_size, test_fraction=TEST_FRACTION, seed=plan.seed
    )
    runs: dict[str, Any] = {}

    def train_both() -> None:
        for precision in ("fp32", "bf16"):
            config = TrainConfig(
                recipe="pix2pix+mlp",
                overrides=dict(plan.quality_overrides),
                data=plan.data,
                out=str(tmp_path / precision),
                size=plan.quality_size,
                steps=plan.quality_steps,
                batch=plan.train_batch,
                seed=plan.seed,
                device=plan.device.type,
                precision=precision,
                workers=0,
                log_every=plan.quality_steps,
                sample_every=plan.quality_steps,
                checkpoint_every=plan.quality_steps,
                keep=1,
                test_fraction=TEST_FRACTION,
                progress=False,
            )
            result = train(config)
            report = evaluate(result.model, test_set, progress=False)
            runs[precision] = {
                "scores": report.means(),
                "images_per_second": result.images_per_second,
            }

    benchmark.pedantic(train_both, rounds=1, iterations=1)
    fp32, bf16 = runs["fp32"]["scores"], runs["bf16"]["scores"]
    ssim_gap = abs(bf16["ssim"] - fp32["ssim"])
    psnr_gap = abs(bf16["psnr"] - fp32["psnr"])
    shape = f"{plan.quality_steps} steps, {plan.quality_size}px b{plan.train_batch}"
    rows = [
        Row(
            f"(f) test SSIM fp32 | bf16 ({shape})",
            f"{fp32['ssim']:.4f}",
            f"{bf16['ssim']:.4f}",
            f"gap {ssim_gap:.4f}",
            f"<= {SSIM_TOLERANCE}",
            _verdict(ssim_gap <= SSIM_TOLERANCE, plan),
            runs,
        ),
        Row(
            "    test PSNR fp32 | bf16, dB",
            f"{fp32['psnr']:.3f}",
            f"{bf16['psnr']:.3f}",
            f"gap {psnr_gap:.3f}",
            f"<= {PSNR_TOLERANCE}",
            _verdict(psnr_gap <= PSNR_TOLERANCE, plan),
        ),
        Row(
            "    trainer img/s fp32 | bf16 (both channels_last)",
            _fmt(runs["fp32"]["images_per_second"]),
            _fmt(runs["bf16"]["images_per_second"]),
            f"{runs['bf16']['images_per_second'] / runs['fp32']['images_per_second']:.2f}x",
        ),
    ]
    _show(capsys, f"bf16 vs fp32 quality ({len(test_set)} held-out photos)", rows)
    _sane(fp32["ssim"], bf16["ssim"], fp32["psnr"], bf16["psnr"])
    if plan.budget == "full":
        assert ssim_gap <= SSIM_TOLERANCE, f"SSIM gap {ssim_gap:.4f}"
        assert psnr_gap <= PSNR_TOLERANCE, f"PSNR gap {psnr_gap:.3f} dB"


# -- (g) the ONNX export --------------------------------------------------------------------
@pytest.fixture(scope="module")
def onnx_files(plan: Plan, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The pix2pix+mlp model of (c) exported to fp32 and int8 ONNX at ``plan.size``."""
    for module in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(module, reason="the ONNX rows need the onnx extra")
    from colorkit.onnx_export import export_onnx

    torch.manual_seed(plan.seed)
    model = colorkit.build("pix2pix+mlp", fast=False, **plan.overrides)
    rgb = _photos(plan, 4, plan.size)
    condition, _ = model.encode(rgb)
    _warm_statistics(model.generator, condition)
    with torch.no_grad():  # an Improver whose correction is not zero, as after training
        model.refiner.mlp[-1].weight.normal_(0.0, 0.01)
    model.eval()
    folder = tmp_path_factory.mktemp("onnx")
    reports = {
        name: export_onnx(model, folder / f"{name}.onnx", plan.size, quantize=quantize)
        for name, quantize in (("fp32", None), ("int8", "int8"))
    }
    return {"model": model, "reports": reports}


@pytest.mark.parametrize("batch", [1, 8])
def test_onnx_inference(
    benchmark: Any,
    plan: Plan,
    onnx_files: dict[str, Any],
    batch: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """onnxruntime fp32 and int8 against the inference copy: gray in, colour out."""
    import onnxruntime as ort

    model, reports = onnx_files["model"], onnx_files["reports"]
    fast = model.to(plan.device).inference_copy("auto")
    options = ort.SessionOptions()
    options.intra_op_num_threads = CPU_THREADS
    options.inter_op_num_threads = 1
    sessions = {
        name: ort.InferenceSession(str(report.path), options, providers=["CPUExecutionProvider"])
        for name, report in reports.items()
    }
    gray = rgb_to_gray(_photos(plan, batch, plan.size))
    feed = {"gray": gray.numpy()}
    runs = SideBySide(
        torch.device("cpu"),
        {
            "copy": lambda: fast.colorize(gray.to(plan.device), plan.size),
            "fp32": lambda: sessions["fp32"].run(None, feed),
            "int8": lambda: sessions["int8"].run(None, feed),
        },
    ).run(benchmark, plan.infer_rounds, plan.warmup)
    ips = {name: batch / runs.median(name) for name in runs.variants}
    mib = {name: report.bytes / 2**20 for name, report in reports.items()}
    rows = [
        Row(
            f"(g) onnxruntime fp32 vs inference copy, {plan.size}px b{batch}, img/s",
            _fmt(ips["copy"]),
            _fmt(ips["fp32"]),
            f"{runs.ratio('copy', 'fp32'):.2f}x",
            "",
            "",
            {"times": runs.times, "max_abs_difference": reports["fp32"].max_difference},
        ),
        Row(
            f"    onnxruntime int8 vs fp32, b{batch}, img/s",
            _fmt(ips["fp32"]),
            _fmt(ips["int8"]),
            f"{runs.ratio('fp32', 'int8'):.2f}x",
            "> 1x",
            "faster" if runs.ratio("fp32", "int8") > 1 else "slower",
            {"int8_max_abs_difference": reports["int8"].max_difference},
        ),
    ]
    if batch == 1:
        rows.append(
            Row(
                "    file sizes, MiB (fp32 | int8)",
                _fmt(mib["fp32"]),
                _fmt(mib["int8"]),
                f"{mib['fp32'] / mib['int8']:.2f}x",
                "",
                "",
                {"bytes": {name: report.bytes for name, report in reports.items()}},
            )
        )
    _show(capsys, f"ONNX export, batch {batch}", rows)
    _sane(*ips.values())
    assert reports["fp32"].max_difference <= reports["fp32"].tolerance


# -- (h) `colorkit serve` start-up ------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _seconds_to_first_page(env: dict[str, str]) -> float:
    """Launch ``colorkit serve`` and time it until its page answers (process start included)."""
    port = _free_port()
    start = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "colorkit", "serve", "--port", str(port), "--device", "cpu"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while time.perf_counter() - start < 60:
            if server.poll() is not None:
                raise AssertionError(f"colorkit serve exited early:\n{server.stderr.read()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as page:
                    if page.status == 200 and page.read():
                        return time.perf_counter() - start
            except OSError:
                time.sleep(0.02)
        raise AssertionError("colorkit serve did not answer within 60 s")
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_serve_start_up(benchmark: Any, plan: Plan, capsys: pytest.CaptureFixture[str]) -> None:
    """From ``colorkit serve`` to its first answered page: seconds (needs the ``web`` extra)."""
    pytest.importorskip("uvicorn", reason="colorkit serve needs the web extra")
    threads = str(CPU_THREADS)
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    times: list[float] = []
    benchmark.pedantic(
        lambda: times.append(_seconds_to_first_page(env)),
        rounds=plan.colorize_repeats + 2,
        iterations=1,
    )
    best, worst = min(times), max(times)
    rows = [
        Row(
            "(h) `colorkit serve` to first page, s (best | worst)",
            "",
            f"{_fmt(best)} | {_fmt(worst)}",
            "",
            f"< {SERVE_SECONDS:g} s",
            "met" if worst < SERVE_SECONDS else "NOT MET",
            {"times": times},
        )
    ]
    _show(capsys, f"colorkit serve start-up on {CPU_THREADS} CPU threads", rows)
    _sane(*times)


# -- the table -----------------------------------------------------------------------------
def test_zz_speed_table(plan: Plan, capsys: pytest.CaptureFixture[str]) -> None:
    """Print every row measured in this session and write ``speed.json`` / ``speed.md``."""
    if not ROWS:
        pytest.skip("no speed figures were measured in this session")
    header = (
        f"colorkit speed, budget {plan.budget}, {device_description(plan.device)}, "
        f"torch {torch.__version__}"
    )
    cells = [_cells(row) for row in ROWS]
    write_json(
        plan.results / "speed.json",
        {
            "header": header,
            "command": " ".join(sys.argv),
            "rows": [
                {
                    "case": r.case,
                    "reference": r.reference,
                    "colorkit": r.colorkit,
                    "ratio": r.ratio,
                    "target": r.target,
                    "verdict": r.verdict,
                    **r.values,
                }
                for r in ROWS
            ],
        },
    )
    write_text(plan.results / "speed.md", f"{header}\n\n{markdown_table(_HEADERS, cells)}\n")
    with capsys.disabled():
        print(f"\n{header}\n{text_table(_HEADERS, cells)}")
    assert all(row.case for row in ROWS)
