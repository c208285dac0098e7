"""Video: flicker, chroma PSNR and speed of ``colorize_video``, with and without stabilizer.

    pytest benchmarks/test_video_quality.py --benchmark --videos DIR [--photos DIR ...]
        [--video-weights PATH] [--video-frames N] [--results DIR] -s

Every colour clip is turned to gray (lossless FFV1, so the gray is exact), colorized by
:func:`colorkit.video.colorize_video` once per stabilizer (``none``, the per-frame
baseline, and ``flow``), and the decoded results are compared with the true colours:

(a) flicker: the warping error of the chroma (:func:`colorkit.metrics.warping_error`,
    CIELAB ``ab`` units): the chroma of frame t against frame t-1's warped along the
    motion of the ground truth, over the pixels visible in both; and the same figure for
    the ground truth itself, the floor a colorization can reach;
(b) chroma PSNR (:func:`colorkit.metrics.psnr_ab`) against the true colours;
(c) frames per second end to end: decoding, colorizing, stabilizing and encoding.

The clips are every video in ``--videos`` (real footage: the motion of the truth is
estimated by :func:`~colorkit.components.stabilizers.estimate_flow` on its lightness at
the metric size, with more levels and iterations than the stabilizer uses, and pixels
whose warped lightness disagrees by more than 3 levels are left out as occluded), and
one synthetic clip per ``--photos`` folder (the embedded photos by default): pans, zooms
and cuts of a virtual camera over still photos, where the motion is known exactly and
nothing is occluded but what leaves the frame. The metrics run at
:data:`METRIC_SIDE` pixels on the longer side.

``test_video_memory_is_flat`` colorizes the first clip cut to two lengths in
subprocesses and compares their peak resident memory.

Results go to ``<results>/video.json`` and ``video.md``. The model is
``--video-weights``; without it, the registered starter weights, or else a small
untrained model (then the figures only show that the harness runs).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from report import device_description, format_value, markdown_table, text_table, write_json
from report import write_text as write_report

import colorkit
from colorkit.color import rgb_to_gray, rgb_to_lab, srgb8_to_gray
from colorkit.components.stabilizers import estimate_flow, warp
from colorkit.data import embedded_photos
from colorkit.imaging import load_rgb, walk_images
from colorkit.metrics import psnr_ab, warping_error
from colorkit.video import VideoSettings, colorize_video, is_video
from colorkit.weights import DEFAULT_WEIGHTS, WeightsError

STABILIZERS = ("none", "flow")
#: Longer side, in pixels, the metrics are computed at.
METRIC_SIDE = 384
#: Lightness difference (sRGB-encoded gray, 0-1) above which a pixel counts as occluded.
OCCLUDED = 3.0 / 255.0
# the synthetic camera: frame size, frames per motion, frame rate
SYNTHETIC_SIZE = (288, 384)
SYNTHETIC_FRAMES = 24
SYNTHETIC_RATE = 24


# -- clips ----------------------------------------------------------------------------------
@dataclass
class Clip:
    """A colour clip, its gray version on disk and, for synthetic clips, the true motion."""

    name: str
    colour: Path  # the colour video (the truth)
    gray: Path  # what is colorized
    size: tuple[int, int]  # height, width
    frames: int
    flows: list[torch.Tensor | None] | None = None  # per frame: motion to the frame before


def decoded_frames(path: Path, limit: int | None = None) -> Iterator[np.ndarray]:
    """The RGB frames of a video, decoded one at a time."""
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(container.streams.video[0])):
            if limit is not None and index >= limit:
                return
            yield frame.to_ndarray(format="rgb24")


def write_video(
    path: Path, frames: Iterator[np.ndarray], rate: Fraction | int, gray: bool
) -> tuple[int, tuple[int, int]]:
    """Write frames losslessly (FFV1 in Matroska): gray as 8-bit gray, colour as RGB."""
    count, size = 0, (0, 0)
    with av.open(str(path), "w", format="matroska") as container:
        stream = None
        for rgb in frames:
            if stream is None:
                size = rgb.shape[:2]
                stream = container.add_stream("ffv1", rate=rate)
                stream.height, stream.width = size
                stream.pix_fmt = "gray" if gray else "bgr0"
            if gray:
                levels = srgb8_to_gray(rgb).mul_(255.0).round_().to(torch.uint8).numpy()
                frame = av.VideoFrame.from_ndarray(levels, format="gray")
            else:
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = None
            container.mux(stream.encode(frame))
            count += 1
        if stream is not None:
            container.mux(stream.encode(None))
    return count, size


def real_clip(path: Path, folder: Path, limit: int | None) -> Clip:
    with av.open(str(path)) as container:
        rate = container.streams.video[0].average_rate or 25
    gray = folder / f"{path.stem}-gray.mkv"
    count, size = write_video(gray, decoded_frames(path, limit), rate, gray=True)
    return Clip(path.stem, path, gray, size, count)


@dataclass(frozen=True)
class _Camera:
    """Where the virtual camera looks: photo point = centre + scale × (pixel - frame centre)."""

    cx: float
    cy: float
    scale: float


def _paths(photo_size: tuple[int, int]) -> list[list[_Camera]]:
    """Four motions, one per photo: a pan, a zoom in, a diagonal pan with zoom out, a pan back."""
    height, width = photo_size
    cx, cy, n = width / 2, height / 2, SYNTHETIC_FRAMES
    return [
        [_Camera(cx - 40 + 3.3 * t, cy, 1.2) for t in range(n)],
        [_Camera(cx, cy, 1.4 - 0.4 * t / n) for t in range(n)],
        [_Camera(cx - 30 + 2.5 * t, cy - 20 + 1.7 * t, 1.0 + 0.3 * t / n) for t in range(n)],
        [_Camera(cx + 35 - 2.9 * t, cy + 10 - 0.8 * t, 1.25) for t in range(n)],
    ]


def _sample_grid(camera: _Camera, photo_size: tuple[int, int]) -> torch.Tensor:
    """Photo positions of the frame's pixels, as grid_sample wants them (1×H×W×2)."""
    height, width = SYNTHETIC_SIZE
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float64),
        torch.arange(width, dtype=torch.float64),
        indexing="ij",
    )
    px = camera.cx + camera.scale * (xs - (width - 1) / 2)
    py = camera.cy + camera.scale * (ys - (height - 1) / 2)
    photo_h, photo_w = photo_size
    grid = torch.stack([(px + 0.5) * 2 / photo_w - 1, (py + 0.5) * 2 / photo_h - 1], dim=-1)
    return grid[None].float()


def _true_flow(now: _Camera, before: _Camera) -> torch.Tensor:
    """Where each pixel of the frame seen from ``now`` was in the frame seen from ``before``."""
    height, width = SYNTHETIC_SIZE
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float64),
        torch.arange(width, dtype=torch.float64),
        indexing="ij",
    )
    x0, y0 = (width - 1) / 2, (height - 1) / 2
    px = now.cx + now.scale * (xs - x0)
    py = now.cy + now.scale * (ys - y0)
    bx = x0 + (px - before.cx) / before.scale
    by = y0 + (py - before.cy) / before.scale
    return torch.stack([bx - xs, by - ys])[None].float()


def synthetic_clip(photos: Path, folder: Path) -> Clip:
    files = sorted(walk_images(photos))[:4]
    if len(files) < 2:
        pytest.skip(f"{photos}: fewer than 2 photos for a synthetic clip")
    frames: list[np.ndarray] = []
    flows: list[torch.Tensor | None] = []
    for index, file in enumerate(files):
        image = torch.from_numpy(np.asarray(load_rgb(file)).copy()).permute(2, 0, 1)[None]
        image = image.float() / 255.0
        # enough photo for the widest view (scale 1.4 plus the travel) at about 1:1
        need = SYNTHETIC_SIZE[0] * 1.4 + 80
        factor = need / min(image.shape[-2:])
        size = [round(side * factor) for side in image.shape[-2:]]
        image = F.interpolate(image, size=size, mode="area" if factor < 1 else "bicubic")
        image = image.clamp(0.0, 1.0)
        path = _paths(tuple(size))[index % 4]
        for step, camera in enumerate(path):
            grid = _sample_grid(camera, tuple(size))
            rendered = F.grid_sample(image, grid, mode="bicubic", align_corners=False)
            rgb = rendered[0].clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0)
            frames.append(rgb.contiguous().numpy())
            flows.append(None if step == 0 else _true_flow(camera, path[step - 1]))
    label = f"{photos.parent.name}-{photos.name}"
    colour = folder / f"synthetic-{label}-colour.mkv"
    gray = folder / f"synthetic-{label}-gray.mkv"
    write_video(colour, iter(frames), SYNTHETIC_RATE, gray=False)
    write_video(gray, iter(frames), SYNTHETIC_RATE, gray=True)
    return Clip(f"synthetic ({label})", colour, gray, SYNTHETIC_SIZE, len(frames), flows)


# -- measuring ------------------------------------------------------------------------------
def _metric_size(size: tuple[int, int]) -> tuple[int, int]:
    scale = min(1.0, METRIC_SIDE / max(size))
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _small(rgb: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    tensor = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
    return F.interpolate(tensor, size=size, mode="area") if tensor.shape[-2:] != size else tensor


@dataclass
class Scores:
    flicker: float
    truth_flicker: float
    psnr_ab: float
    frames: int


def measure(clip: Clip, outputs: list[Path]) -> list[Scores]:
    """Flicker of each output and of the truth, and the outputs' chroma PSNR, frame by frame.

    The outputs are read side by side with the truth, so the truth's motion is estimated
    once for all of them, and only two frames of each are held at a time.
    """
    size = _metric_size(clip.size)
    scale = torch.tensor([size[1] / clip.size[1], size[0] / clip.size[0]]).view(1, 2, 1, 1)
    count = len(outputs)
    flicker: list[list[float]] = [[] for _ in outputs]
    psnrs: list[list[float]] = [[] for _ in outputs]
    truth_flicker: list[float] = []
    previous: tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]] | None = None
    frames = 0
    streams = [decoded_frames(clip.colour, clip.frames), *map(decoded_frames, outputs)]
    for index, (truth_rgb, *out_rgbs) in enumerate(zip(*streams, strict=True)):
        frames += 1
        truth = _small(truth_rgb, size)
        outs = [_small(rgb, size) for rgb in out_rgbs]
        for which, out in enumerate(outs):
            psnrs[which].append(psnr_ab(out, truth).item())
        truth_ab = rgb_to_lab(truth)[:, 1:]
        out_abs = [rgb_to_lab(out)[:, 1:] for out in outs]
        lightness = rgb_to_gray(truth)
        if previous is not None:
            before_lightness, before_truth_ab, before_out_abs = previous
            if clip.flows is not None:
                flow = clip.flows[index]
                if flow is not None and flow.shape[-2:] != size:
                    flow = F.interpolate(flow, size=size, mode="bilinear") * scale
            else:
                flow = estimate_flow(lightness, before_lightness, levels=5, iterations=5)
            if flow is not None:  # None: a cut, no motion to follow
                agree = (warp(before_lightness, flow) - lightness).abs() < OCCLUDED
                mask = (_inside(flow) & agree).float()
                if mask.sum() > 0.05 * mask.numel():
                    truth_flicker.append(
                        warping_error(truth_ab, before_truth_ab, flow, mask).item()
                    )
                    for which in range(count):
                        error = warping_error(out_abs[which], before_out_abs[which], flow, mask)
                        flicker[which].append(error.item())
        previous = (lightness, truth_ab, out_abs)
    return [
        Scores(
            float(np.mean(flicker[which])),
            float(np.mean(truth_flicker)),
            float(np.mean(psnrs[which])),
            frames,
        )
        for which in range(count)
    ]


def _inside(flow: torch.Tensor) -> torch.Tensor:
    """Pixels whose source position lies inside the previous frame."""
    height, width = flow.shape[-2:]
    xs = torch.arange(width).view(1, 1, width) + flow[:, 0]
    ys = torch.arange(height).view(1, height, 1) + flow[:, 1]
    return ((xs >= 0) & (xs <= width - 1) & (ys >= 0) & (ys <= height - 1))[:, None]


# -- the benchmark --------------------------------------------------------------------------
def _model(pytestconfig: pytest.Config) -> tuple[colorkit.Colorizer, str]:
    weights = pytestconfig.getoption("--video-weights")
    if weights:
        return colorkit.load(weights), str(weights)
    try:
        return colorkit.load(DEFAULT_WEIGHTS), DEFAULT_WEIGHTS
    except WeightsError:
        torch.manual_seed(0)
        tiny = colorkit.build("pix2pix+mlp", generator_depth=5, base_channels=8)
        return tiny.eval(), "untrained pix2pix+mlp (depth 5, 8 channels): harness check only"


@pytest.fixture(scope="module")
def clips(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> list[Clip]:
    folder = tmp_path_factory.mktemp("video")
    limit = pytestconfig.getoption("--video-frames")
    found: list[Clip] = []
    videos = pytestconfig.getoption("--videos")
    if videos:
        for path in sorted(Path(videos).iterdir()):
            if is_video(path):
                found.append(real_clip(path, folder, limit))
    for photos in pytestconfig.getoption("--photos") or [str(embedded_photos())]:
        found.append(synthetic_clip(Path(photos), folder))
    return found


def test_video_flicker_psnr_and_speed(
    bench: Any, pytestconfig: pytest.Config, clips: list[Clip], tmp_path: Path
) -> None:
    model, model_name = _model(pytestconfig)
    rows: list[dict[str, Any]] = []
    for clip in clips:
        reports = []
        for stabilizer in STABILIZERS:
            output = tmp_path / f"{clip.gray.stem}-{stabilizer}.mp4"
            settings = VideoSettings(stabilizer=stabilizer)
            reports.append(
                colorize_video(model, clip.gray, output, settings=settings, progress=False)
            )
        for report, scores in zip(reports, measure(clip, [r.target for r in reports]), strict=True):
            assert scores.frames == report.frames
            rows.append(
                {
                    "clip": clip.name,
                    "size": f"{clip.size[1]}×{clip.size[0]}",
                    "frames": report.frames,
                    "stabilizer": report.stabilizer,
                    "flicker": scores.flicker,
                    "truth_flicker": scores.truth_flicker,
                    "psnr_ab": scores.psnr_ab,
                    "frames_per_second": report.frames_per_second,
                }
            )
            print(f"{clip.name} {report.stabilizer}: {rows[-1]}")
    for row in rows:
        base = next(r for r in rows if r["clip"] == row["clip"] and r["stabilizer"] == "none")
        row["flicker_ratio"] = row["flicker"] / base["flicker"]
        row["psnr_ab_change"] = row["psnr_ab"] - base["psnr_ab"]
        for key in ("flicker", "truth_flicker", "psnr_ab", "frames_per_second"):
            assert math.isfinite(row[key]) and row[key] >= 0, (row, key)
    headers = [
        "clip",
        "size",
        "frames",
        "stabilizer",
        "flicker (Δab)",
        "truth's flicker",
        "flicker vs none",
        "chroma PSNR (dB)",
        "Δ PSNR (dB)",
        "frames/s",
    ]
    table = [
        [
            row["clip"],
            row["size"],
            str(row["frames"]),
            row["stabilizer"],
            format_value(row["flicker"]),
            format_value(row["truth_flicker"]),
            f"{row['flicker_ratio']:.2f}×",
            format_value(row["psnr_ab"]),
            f"{row['psnr_ab_change']:+.2f}",
            format_value(row["frames_per_second"], 1),
        ]
        for row in rows
    ]
    setting = {
        "model": model_name,
        "device": device_description(torch.device("cpu")),
        "working_size": 256,
        "settings": VideoSettings().__dict__,
        "metric_side": METRIC_SIDE,
        "occluded_above": OCCLUDED,
    }
    write_json(bench.results / "video.json", {"setting": setting, "rows": rows})
    write_report(
        bench.results / "video.md",
        f"Model: {model_name}; {setting['device']}.\n\n{markdown_table(headers, table)}\n",
    )
    print("\n" + text_table(headers, table))


_MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, os, resource, sys
    import colorkit
    from colorkit.video import VideoSettings, colorize_video

    def resident():
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    weights, src, out = sys.argv[1:4]
    model = colorkit.load(weights) if weights else colorkit.build(
        "pix2pix+mlp", generator_depth=5, base_channels=8).eval()
    report = colorize_video(model, src, out, progress=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"frames": report.frames, "peak_mib": peak, "end_mib": resident()}))
    """
)


def test_video_memory_is_flat(
    bench: Any, pytestconfig: pytest.Config, clips: list[Clip], tmp_path: Path
) -> None:
    clip = max(clips, key=lambda c: c.size[0] * c.size[1])  # the largest frames
    weights = pytestconfig.getoption("--video-weights") or ""
    total = sum(1 for _ in decoded_frames(clip.gray))
    results = []
    for length in (max(2, total // 4), total):
        cut = tmp_path / f"cut-{length}.mkv"
        with av.open(str(clip.gray)) as container:
            rate = container.streams.video[0].average_rate
        write_video(cut, decoded_frames(clip.gray, length), rate, gray=True)
        done = subprocess.run(
            [sys.executable, "-c", _MEMORY_SCRIPT, weights, str(cut), str(tmp_path / "o.mp4")],
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    short, long = results
    print(
        f"\n{clip.name}: peak resident memory {short['peak_mib']:.0f} MiB at "
        f"{short['frames']} frames, {long['peak_mib']:.0f} MiB at {long['frames']} frames; "
        f"resident at the end {short['end_mib']:.0f} and {long['end_mib']:.0f} MiB"
    )
    write_json(bench.results / "video-memory.json", {"clip": clip.name, "runs": results})
    assert long["frames"] > short["frames"]
    # flat: four times the frames may not cost more than a tenth more memory, neither at
    # the peak nor in what is still held at the end (the peak may be set while loading)
    assert long["peak_mib"] < 1.1 * short["peak_mib"]
    assert long["end_mib"] < 1.1 * short["end_mib"]
