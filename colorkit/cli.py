"""The ``colorkit`` command line: train, evaluate, colorize, export, list, demo, serve."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from colorkit.checkpoint import DTYPES, export_weights, load
from colorkit.colorizing import colorize_paths
from colorkit.data import SPLITS, evaluation_photos, photo_folder
from colorkit.demo import DEMO, demo, pretrained_demo
from colorkit.engine import Colorizer
from colorkit.fast import PRECISIONS
from colorkit.files import write_json
from colorkit.metrics import comparison_table
from colorkit.metrics import evaluate as evaluate_model
from colorkit.onnx_export import DEFAULT_TOLERANCE, QUANTIZATIONS, export_onnx
from colorkit.registry import KINDS, ColorkitError, default_registry
from colorkit.trainer import DEVICES, TrainConfig, resolve_device, train
from colorkit.version import __version__
from colorkit.video import VideoSettings
from colorkit.web import Limits
from colorkit.web import serve as serve_page
from colorkit.weights import DEFAULT_WEIGHTS

__all__ = ["build_parser", "main", "parse_overrides"]

#: What ``colorkit export --format`` writes.
EXPORT_FORMATS = ("safetensors", "onnx")

#: ``colorkit train``'s defaults: the fields of :class:`~colorkit.trainer.TrainConfig`.
_DEFAULTS = TrainConfig()
#: ``colorkit colorize``'s video defaults: the fields of :class:`~colorkit.video.VideoSettings`.
_VIDEO = VideoSettings()


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` pairs; values are Python literals where they parse, else strings.

    Args:
        pairs: the ``--set`` arguments, e.g. ``["refiner_patch=8", "generator=timm-unet"]``.

    Returns:
        The overrides for :func:`colorkit.build`; dashes in keys become underscores.

    Raises:
        ValueError: for a pair without ``=``.
    """
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {pair!r}")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        overrides[key.strip().replace("-", "_")] = value
    return overrides


def _add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default=_DEFAULTS.device, choices=DEVICES)
    parser.add_argument(
        "--precision",
        default=_DEFAULTS.precision,
        choices=PRECISIONS,
        help="bf16 autocast where the hardware runs it fast (auto), always, or never",
    )


def _train_options(parser: argparse.ArgumentParser, defaults: TrainConfig) -> None:
    parser.add_argument("--recipe", default=defaults.recipe, help="see `colorkit list recipe`")
    parser.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override a recipe field or component option, e.g. --set refiner_patch=8 (repeat)",
    )
    parser.add_argument("--data", help="folder of color photos (default: the embedded photos)")
    parser.add_argument("--out", default=defaults.out, help="run directory")
    parser.add_argument("--size", type=int, default=defaults.size, help="training crop size")
    parser.add_argument(
        "--max-resize",
        type=float,
        default=defaults.max_resize,
        metavar="FACTOR",
        help="scale augmentation: resize each photo's shorter side to a random multiple of "
        f"--size in [{defaults.max_resize}, FACTOR] before the crop (default: no augmentation)",
    )
    parser.add_argument(
        "--steps", type=int, default=defaults.steps, help="total training iterations"
    )
    parser.add_argument(
        "--batch", type=int, default=defaults.batch, help="images per iteration per process"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--workers", type=int, default=defaults.workers, help="data-loading processes"
    )
    parser.add_argument("--log-every", type=int, default=defaults.log_every)
    parser.add_argument("--sample-every", type=int, default=defaults.sample_every)
    parser.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every)
    parser.add_argument("--keep", type=int, default=defaults.keep, help="checkpoints to keep")
    parser.add_argument(
        "--test-fraction",
        type=float,
        default=defaults.test_fraction,
        help="share of --data held out for samples",
    )
    parser.add_argument(
        "--eval-data",
        metavar="DIR",
        help="separate folder of test photos for the samples; then all of --data is trained on",
    )
    parser.add_argument(
        "--init",
        metavar="WEIGHTS",
        help="start a new run from these weights (a checkpoint, a weights file or registered "
        "weights such as starter): every part whose shapes match is copied, e.g. to fine-tune "
        "on your photos or to add a GAN phase to an L1-trained generator",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_device(parser)


def _default(function: Any, name: str) -> Any:
    """A parameter's default, so that an option and its function cannot disagree."""
    return inspect.signature(function).parameters[name].default


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``colorkit`` command.

    Returns:
        The parser, with one subcommand per command.
    """
    parser = argparse.ArgumentParser(
        prog="colorkit", description="Automatic image colorization: train, evaluate, colorize."
    )
    parser.add_argument("--version", action="version", version=f"colorkit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train",
        help="train a recipe on a folder of photos",
        description="Train a recipe; writes checkpoints, metrics.jsonl and sample grids to --out.",
    )
    _train_options(train, _DEFAULTS)
    train.add_argument(
        "--resume", action="store_true", help="continue from the newest checkpoint in --out"
    )

    evaluate = commands.add_parser(
        "evaluate",
        help="score checkpoints with SSIM, PSNR, chroma PSNR and colorfulness",
        description="Score checkpoints on a folder of photos, beside the gray-input baseline; "
        "several checkpoints are compared side by side on the same photos.",
    )
    evaluate.add_argument("checkpoint", nargs="+", help="one or more .safetensors checkpoints")
    evaluate.add_argument("--data", help="folder of color photos (default: the embedded photos)")
    evaluate.add_argument("--size", type=int, default=_DEFAULTS.size, help="evaluation crop size")
    evaluate.add_argument(
        "--split",
        choices=SPLITS,
        default=_default(evaluation_photos, "split"),
        help="all photos in --data, or the seeded test/train split used by training",
    )
    evaluate.add_argument("--seed", type=int, default=_DEFAULTS.seed, help="seed of the split")
    evaluate.add_argument("--test-fraction", type=float, default=_DEFAULTS.test_fraction)
    evaluate.add_argument("--batch", type=int, default=_default(evaluate_model, "batch_size"))
    evaluate.add_argument("--json", type=Path, help="write the scores as JSON here")
    evaluate.add_argument("--no-progress", action="store_true")
    _add_device(evaluate)

    colorize = commands.add_parser(
        "colorize",
        help="colorize image and video files at their full resolution",
        description="Colorize files or folders; outputs keep each input's size, lightness and "
        "alpha. Inputs are never overwritten. A video file (recognised by its content: MP4, "
        "MOV, MKV, WebM, AVI, ...) becomes a video with the same frames, timing, audio and "
        "subtitles, H.264 in MP4 by default (MKV where MP4 cannot hold its other streams), "
        "its colours stabilised in time.",
    )
    colorize.add_argument(
        "inputs",
        nargs="+",
        help="image or video files, or folders of images; a .safetensors file first is the "
        "model to use (as --weights)",
    )
    colorize.add_argument(
        "--weights",
        help="a checkpoint, a weights file or registered weights (`colorkit list weights`); "
        f"default: the {DEFAULT_WEIGHTS!r} weights",
    )
    colorize.add_argument("-o", "--out", required=True, help="output folder")
    colorize.add_argument(
        "--working-size",
        type=int,
        default=_default(colorize_paths, "working_size"),
        help="longer side the networks run at; chroma is upsampled to full resolution",
    )
    video = colorize.add_argument_group("video")
    video.add_argument(
        "--stabilizer",
        default=_VIDEO.stabilizer,
        help="how colours are kept stable from frame to frame (`colorkit list stabilizer`); "
        "'none' colorizes each frame on its own",
    )
    video.add_argument(
        "--stabilizer-set",
        dest="stabilizer_options",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="an option of the stabilizer, e.g. --stabilizer-set strength=0.7 (repeat)",
    )
    video.add_argument(
        "--video-codec",
        default=_VIDEO.codec,
        help="video encoder: libx264 (H.264, plays nearly everywhere), libx265, libvpx-vp9, ...",
    )
    video.add_argument(
        "--crf",
        type=int,
        default=_VIDEO.crf,
        help="constant rate factor: lower is better quality and larger files",
    )
    video.add_argument(
        "--preset",
        default=_VIDEO.preset,
        help="x264/x265 speed preset, ultrafast ... veryslow",
    )
    video.add_argument(
        "--video-batch",
        type=int,
        default=_VIDEO.batch_size,
        help="frames colorized together",
    )
    colorize.add_argument("--no-progress", action="store_true")
    _add_device(colorize)

    export = commands.add_parser(
        "export",
        help="write a weights-only file, or an ONNX graph that colorizes without PyTorch",
        description="--format safetensors (the default) keeps what colorizing needs from a "
        "checkpoint: the generator's and the refiner's weights with the recipe; the file loads "
        "with `colorkit colorize --weights` and colorkit.load. --format onnx writes one graph "
        "from a gray image (B×1×H×W in [0, 1], any size) to its colours, checked with "
        "onnxruntime against PyTorch on the embedded photos (needs the onnx extra).",
    )
    export.add_argument(
        "checkpoint",
        nargs="+",
        help="a checkpoint, weights file or registered weights name; several checkpoints of one "
        "run are averaged into one weights file",
    )
    export.add_argument("-o", "--out", required=True, type=Path, help="the file to write")
    export.add_argument(
        "--format",
        default="safetensors",
        choices=EXPORT_FORMATS,
        help="safetensors weights (default) or an ONNX graph",
    )
    export.add_argument(
        "--dtype",
        choices=tuple(DTYPES),
        help="safetensors: stored precision of the weights (bf16 and fp16 halve the file); "
        f"default {_default(export_weights, 'dtype')}",
    )
    export.add_argument(
        "--quantize",
        choices=QUANTIZATIONS,
        help="onnx: quantize the checked graph's convolutions to int8 (onnxruntime)",
    )
    export.add_argument(
        "--working-size",
        type=int,
        default=_default(export_onnx, "working_size"),
        help="onnx: longer side the networks run at inside the graph",
    )
    export.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help="onnx: largest max |ΔRGB| in [0, 1] from PyTorch fp32 on the check photos "
        "(default one 8-bit level)",
    )

    listing = commands.add_parser(
        "list",
        help="list components and recipes with their options",
        description="List registered components (built-in and plugins) and their options.",
    )
    listing.add_argument(
        "kind",
        nargs="?",
        choices=KINDS,
        help="only this kind",
    )
    listing.add_argument("pattern", nargs="?", help="wildcard on names, e.g. 'unet*'")

    serve = commands.add_parser(
        "serve",
        help="a local web page: drop photos in, compare before and after, download",
        description="Serve a web page that colorizes the photos dropped on it, as `colorkit "
        "colorize` does, shows them before and after, and offers the full-resolution results "
        "one by one or as a zip. Needs the web extra: pip install 'colorkit[web]'.",
    )
    serve.add_argument(
        "--weights",
        nargs="+",
        action="extend",
        metavar="NAME|CHECKPOINT",
        help="checkpoints, weights files or registered weights to offer (the first is "
        f"selected); the registered weights are offered too; default: {DEFAULT_WEIGHTS!r}",
    )
    serve.add_argument(
        "--host",
        default=_default(serve_page, "host"),
        help="address to listen on; other than 127.0.0.1, the page is reachable from the network",
    )
    serve.add_argument("--port", type=int, default=_default(serve_page, "port"))
    serve.add_argument(
        "--working-size",
        type=int,
        default=_default(serve_page, "working_size"),
        help="the page's default working size (it can be changed there)",
    )
    serve.add_argument(
        "--max-upload-mb",
        type=float,
        default=Limits.upload_bytes / 2**20,
        help="largest upload, in MiB",
    )
    serve.add_argument(
        "--max-megapixels",
        type=float,
        default=Limits.pixels / 1e6,
        help="largest image, in megapixels; larger ones are refused before decoding",
    )
    _add_device(serve)

    demo_command = commands.add_parser(
        "demo",
        help="colorize the embedded photos with the starter weights (--train: train briefly)",
        description="Seconds: colorizes colour photos turned gray (the embedded photos unless "
        "--data is given) with pretrained weights, prints their scores beside the gray input and "
        "writes <weights>.png (gray | colorized | truth) into --out. With --train, a few "
        "minutes on a CPU: trains on the photos, prints the scores of the held-out photo and "
        "writes demo.png (gray | truth | generator | refined); the training options apply then.",
    )
    demo_command.add_argument(
        "--train", action="store_true", help="train a model briefly instead of using weights"
    )
    demo_command.add_argument(
        "--weights",
        action="append",
        help="registered weights, a weights file or a checkpoint; repeat to compare several "
        f"side by side; default: {DEFAULT_WEIGHTS!r}",
    )
    demo_command.add_argument(
        "--working-size",
        type=int,
        default=_default(pretrained_demo, "working_size"),
        help="longer side the networks run at",
    )
    _train_options(demo_command, DEMO)
    return parser


def _train_config(args: argparse.Namespace, defaults: TrainConfig) -> TrainConfig:
    """The settings the options give, on top of ``defaults`` (the options' own source)."""
    given = vars(args)
    values = {f.name: given[f.name] for f in dataclasses.fields(TrainConfig) if f.name in given}
    values.update(overrides=parse_overrides(args.overrides), progress=not args.no_progress)
    return dataclasses.replace(defaults, **values)


def _cmd_train(args: argparse.Namespace) -> int:
    result = train(_train_config(args, _DEFAULTS))
    if result.checkpoint is not None:
        print(f"step {result.step}: {result.images_per_second:.1f} images/s")
        print(f"checkpoint: {result.checkpoint}")
        print(f"samples:    {result.run_dir / 'samples'}")
        print(f"metrics:    {result.run_dir / 'metrics.jsonl'}")
        print(f"curves:     {result.run_dir / 'metrics.png'}")
    return 0


def _load_model(checkpoint: str, args: argparse.Namespace) -> Colorizer:
    model = load(checkpoint, device=resolve_device(args.device))
    return model.set_precision(args.precision)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    root = photo_folder(args.data)
    dataset = evaluation_photos(root, args.size, args.split, args.test_fraction, args.seed)
    reports = {}
    for checkpoint in args.checkpoint:
        model = _load_model(checkpoint, args)
        protocol = {
            "checkpoint": str(checkpoint),
            "data": str(root),
            "split": args.split,
            "seed": args.seed,
            "images": len(dataset),
            "size": args.size,
            "crop": "resize shorter side to size, center crop size×size",
            "precision": model.precision,
        }
        report = evaluate_model(
            model,
            dataset,
            batch_size=args.batch,
            progress=not args.no_progress,
            protocol_extra=protocol,
        )
        ssim = report.protocol["ssim"]
        print(
            f"checkpoint {checkpoint}\nprotocol: {len(dataset)} images of {root} "
            f"(split {args.split}), {args.size}×{args.size} (shorter side resized, centre crop), "
            f"{model.precision}; piq SSIM kernel {ssim['kernel_size']} σ {ssim['kernel_sigma']}, "
            f"downsample {ssim['downsample']}; data_range 1 after clamping"
        )
        print(report.table())
        reports[str(checkpoint)] = report
    if len(reports) > 1:
        print(f"\ncomparison on the same {len(dataset)} images:")
        print(comparison_table(reports))
    if args.json:
        data = [report.to_json() for report in reports.values()]
        write_json(args.json, data[0] if len(data) == 1 else data)
        print(f"scores written to {args.json}")
    return 0


def _cmd_colorize(args: argparse.Namespace) -> int:
    inputs = list(args.inputs)
    weights = args.weights
    if weights is None and len(inputs) > 1 and inputs[0].endswith(".safetensors"):
        weights = inputs.pop(0)
    if weights is None:
        weights = DEFAULT_WEIGHTS
        print(f"using the {DEFAULT_WEIGHTS!r} weights (choose others with --weights)")
    # a loaded model colorizes through its inference copy (BatchNorm folded, prepacked
    # convolutions): same colours, several times the speed
    video = VideoSettings(
        stabilizer=args.stabilizer,
        stabilizer_options=parse_overrides(args.stabilizer_options),
        codec=args.video_codec,
        crf=args.crf,
        preset=args.preset,
        batch_size=args.video_batch,
    )
    model = _load_model(weights, args)
    report = colorize_paths(
        model, inputs, args.out, args.working_size, progress=not args.no_progress, video=video
    )
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    for path, message in report.failed:
        print(f"error: {path}: {message}", file=sys.stderr)
    print(f"{len(report.written)} colorized into {args.out}, {len(report.failed)} failed")
    return 1 if report.failed else 0


def _cmd_export(args: argparse.Namespace) -> int:
    if args.format == "onnx":
        if args.dtype is not None:
            raise ValueError("--dtype applies to --format safetensors; an ONNX graph is fp32")
        if args.working_size < 1:
            raise ValueError(f"--working-size must be a positive size, got {args.working_size}")
        if len(args.checkpoint) > 1:
            raise ValueError("--format onnx exports one checkpoint; average them first")
        report = export_onnx(
            args.checkpoint[0],
            args.out,
            working_size=args.working_size,
            quantize=args.quantize,
            tolerance=args.tolerance,
        )
        print(report.summary())
        return 0
    if args.quantize is not None:
        raise ValueError("--quantize applies to --format onnx")
    dtype = args.dtype or _default(export_weights, "dtype")
    path = export_weights(args.checkpoint, args.out, dtype)
    size = path.stat().st_size / 2**20
    what = (
        f"the average of {len(args.checkpoint)} checkpoints' " if len(args.checkpoint) > 1 else ""
    )
    print(f"wrote {path} ({size:.1f} MiB, {dtype}): {what}generator and refiner weights")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    limits = Limits(
        upload_bytes=max(1, round(args.max_upload_mb * 2**20)),
        pixels=max(1, round(args.max_megapixels * 1e6)),
    )
    serve_page(
        args.weights or (),
        args.host,
        args.port,
        device=resolve_device(args.device),
        precision=args.precision,
        working_size=args.working_size,
        limits=limits,
    )
    return 0


def _format_default(value: Any) -> str:
    return "required" if value is inspect.Parameter.empty else repr(value)


def _cmd_list(args: argparse.Namespace) -> int:
    registry = default_registry()
    for component in registry.components():
        if args.kind and component.kind != args.kind:
            continue
        if args.pattern and component.name not in registry.list(component.kind, args.pattern):
            continue
        print(f"{component.kind:13} {component.name:16} {component.summary}")
        options = component.options()
        if options:
            text = ", ".join(f"{k}={_format_default(v)}" for k, v in options.items())
            print(f"{'':30} options: {text}")
        print(f"{'':30} from {component.source}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    if not args.train:
        shown = pretrained_demo(
            args.weights or DEFAULT_WEIGHTS,
            args.data,
            args.out,
            args.working_size,
            device=resolve_device(args.device),
            progress=not args.no_progress,
        )
        print(shown.table())
        print(f"scores: {shown.scores}")
        columns = " | ".join(["gray", *shown.reports, "truth"])
        print(f"{shown.photos} photos, {columns}: {shown.picture}")
        return 0
    result = demo(_train_config(args, DEMO))
    print(result.report.table())
    print(f"held-out scores: {result.scores}")
    print(f"colorized grid (first {result.held_out} row(s) held out): {result.grid}")
    return 0


COMMANDS = {
    "train": _cmd_train,
    "evaluate": _cmd_evaluate,
    "colorize": _cmd_colorize,
    "export": _cmd_export,
    "list": _cmd_list,
    "demo": _cmd_demo,
    "serve": _cmd_serve,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: arguments without the program name; ``sys.argv[1:]`` if ``None``.

    Returns:
        The exit status: 0 on success, 1 when some input failed, 2 for bad usage.
    """
    args = build_parser().parse_args(argv)
    warnings.simplefilter("default")
    try:
        return COMMANDS[args.command](args)
    except (ColorkitError, ValueError, OSError) as exc:
        print(f"colorkit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"colorkit {args.command}: interrupted", file=sys.stderr)
        return 130
