"""What int8 quantization of the ONNX export costs: quality on a test folder, and speed.

    python benchmarks/onnx_int8.py CHECKPOINT --data TEST_DIR [--working-size 256]
        [--limit N] [--threads 2] [--json FILE]

Exports CHECKPOINT to fp32 ONNX (checked against PyTorch) and quantizes it to int8
(``colorkit export --format onnx [--quantize int8]``), then colorizes every photo of
TEST_DIR at full resolution with PyTorch (fp32), onnxruntime fp32 and onnxruntime int8,
and prints, beside the truth: chroma PSNR (``psnr_ab``) and RGB SSIM, their means, the
int8 − fp32 gaps (the issue's target: chroma PSNR at most 0.3 dB below fp32), the max
and mean RGB differences between the three, the seconds per photo of each onnxruntime
graph (median over the photos, on ``--threads`` threads) and the file sizes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from colorkit.checkpoint import load
from colorkit.data import find_images
from colorkit.imaging import load_rgb, read_gray
from colorkit.metrics import psnr_ab, ssim
from colorkit.onnx_export import export_onnx, quantize_int8

PSNR_AB_GAP = 0.3  # dB: the target for int8 against fp32


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--data", required=True, help="folder of colour test photos")
    parser.add_argument("--working-size", type=int, default=256)
    parser.add_argument("--limit", type=int, help="only the first N photos (sorted)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    import onnxruntime as ort

    torch.set_num_threads(args.threads)
    photos = find_images(args.data)[: args.limit]
    model = load(args.checkpoint, fast=False).set_precision("fp32")
    with tempfile.TemporaryDirectory() as folder:
        fp32_path = Path(folder) / "fp32.onnx"
        report = export_onnx(model, fp32_path, working_size=args.working_size)
        print(report.summary())
        int8_path = quantize_int8(fp32_path, Path(folder) / "int8.onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        sessions = {
            name: ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            for name, path in (("fp32", fp32_path), ("int8", int8_path))
        }
        sizes = {"fp32": fp32_path.stat().st_size, "int8": int8_path.stat().st_size}
    scores: dict[str, dict[str, list[float]]] = {
        name: {"psnr_ab": [], "ssim": []} for name in ("pytorch", "fp32", "int8")
    }
    seconds: dict[str, list[float]] = {"fp32": [], "int8": []}
    differences: dict[str, list[float]] = {"fp32-pytorch": [], "int8-fp32": []}
    worst = dict.fromkeys(differences, 0.0)
    for index, photo in enumerate(photos):
        truth = torch.from_numpy(np.asarray(load_rgb(photo), dtype=np.float32) / 255.0)
        truth = truth.permute(2, 0, 1)[None]
        gray = read_gray(photo)[0]
        outputs = {"pytorch": model.colorize(gray, args.working_size)}
        # interleaved, the order alternating, so that other work on the machine slows both
        for name in ("fp32", "int8") if index % 2 else ("int8", "fp32"):
            start = time.perf_counter()
            (rgb,) = sessions[name].run(None, {"gray": gray.numpy()})
            seconds[name].append(time.perf_counter() - start)
            outputs[name] = torch.from_numpy(rgb)
        for name, rgb in outputs.items():
            scores[name]["psnr_ab"].append(psnr_ab(rgb, truth).item())
            scores[name]["ssim"].append(ssim(rgb, truth).item())
        for key, (a, b) in (("fp32-pytorch", ("fp32", "pytorch")), ("int8-fp32", ("int8", "fp32"))):
            difference = (outputs[a] - outputs[b]).abs()
            differences[key].append(difference.mean().item())
            worst[key] = max(worst[key], difference.max().item())
    means = {
        name: {metric: statistics.fmean(values) for metric, values in metrics.items()}
        for name, metrics in scores.items()
    }
    median = {name: statistics.median(values) for name, values in seconds.items()}
    gap = means["fp32"]["psnr_ab"] - means["int8"]["psnr_ab"]
    print(f"\n{len(photos)} photos of {args.data}, working size {args.working_size}")
    print(f"{'':10}{'psnr_ab dB':>12}{'ssim':>9}{'s/photo':>10}{'MiB':>8}")
    for name in ("pytorch", "fp32", "int8"):
        timing = f"{median[name]:10.4f}" if name in median else f"{'':10}"
        size = f"{sizes[name] / 2**20:8.2f}" if name in sizes else ""
        print(f"{name:10}{means[name]['psnr_ab']:12.3f}{means[name]['ssim']:9.4f}{timing}{size}")
    print(
        f"int8 − fp32: psnr_ab {-gap:+.3f} dB (target ≥ −{PSNR_AB_GAP} dB: "
        f"{'met' if gap <= PSNR_AB_GAP else 'NOT MET'}), "
        f"ssim {means['int8']['ssim'] - means['fp32']['ssim']:+.4f}"
    )
    print(
        f"speed: int8 is {median['fp32'] / median['int8']:.2f}x fp32 onnxruntime "
        f"(median seconds per photo, {args.threads} threads)"
    )
    for key, values in differences.items():
        print(f"|ΔRGB| {key}: max {worst[key]:.2e}, mean {statistics.fmean(values):.2e}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "checkpoint": str(args.checkpoint),
                    "data": str(args.data),
                    "photos": len(photos),
                    "working_size": args.working_size,
                    "means": means,
                    "psnr_ab_gap_db": gap,
                    "median_seconds": median,
                    "bytes": sizes,
                    "max_difference": worst,
                    "command": " ".join(sys.argv),
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
