"""The ``colorkit`` command line: train, evaluate, colorize, list, demo."""

from __future__ import annotations

import argparse
import ast
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from colorkit.registry import KINDS, ColorkitError
from colorkit.version import __version__
from colorkit.weights import DEFAULT_WEIGHTS

__all__ = ["build_parser", "main", "parse_overrides"]


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
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "bf16", "fp32"),
        help="bf16 autocast where the hardware runs it fast (auto), always, or never",
    )


def _train_options(parser: argparse.ArgumentParser, steps: int, size: int) -> None:
    parser.add_argument("--recipe", default="pix2pix+mlp", help="see `colorkit list recipe`")
    parser.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override a recipe field or component option, e.g. --set refiner_patch=8 (repeat)",
    )
    parser.add_argument("--data", help="folder of color photos (default: the embedded photos)")
    parser.add_argument("--size", type=int, default=size, help="training crop size")
    parser.add_argument("--steps", type=int, default=steps, help="total training iterations")
    parser.add_argument("--batch", type=int, default=4, help="images per iteration per process")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="data-loading processes")
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--sample-every", type=int, default=250)
    parser.add_argument("--checkpoint-every", type=int, default=500)
    parser.add_argument("--keep", type=int, default=3, help="checkpoints to keep")
    parser.add_argument(
        "--test-fraction", type=float, default=0.2, help="share of --data held out for samples"
    )
    parser.add_argument(
        "--eval-data",
        metavar="DIR",
        help="separate folder of test photos for the samples; then all of --data is trained on",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_device(parser)


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
    _train_options(train, steps=1000, size=256)
    train.add_argument("--out", default="runs/colorkit", help="run directory")
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
    evaluate.add_argument("--size", type=int, default=256, help="evaluation crop size")
    evaluate.add_argument(
        "--split",
        choices=("all", "test", "train"),
        default="all",
        help="all photos in --data, or the seeded test/train split used by training",
    )
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the split")
    evaluate.add_argument("--test-fraction", type=float, default=0.2)
    evaluate.add_argument("--batch", type=int, default=8)
    evaluate.add_argument("--json", type=Path, help="write the scores as JSON here")
    evaluate.add_argument("--no-progress", action="store_true")
    _add_device(evaluate)

    colorize = commands.add_parser(
        "colorize",
        help="colorize image files at their full resolution",
        description="Colorize files or folders; outputs keep each input's size, lightness and "
        "alpha. Inputs are never overwritten.",
    )
    colorize.add_argument(
        "inputs",
        nargs="+",
        help="image files or folders; a .safetensors file first is the model to use (as --weights)",
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
        default=256,
        help="longer side the networks run at; chroma is upsampled to full resolution",
    )
    colorize.add_argument("--no-progress", action="store_true")
    _add_device(colorize)

    export = commands.add_parser(
        "export",
        help="write a weights-only file for colorizing (no optimiser, no discriminator)",
        description="Keep what colorizing needs from a checkpoint: the generator's and the "
        "refiner's weights with the recipe. The file loads with `colorkit colorize --weights` "
        "and colorkit.load.",
    )
    export.add_argument("checkpoint", help="a checkpoint, weights file or registered weights name")
    export.add_argument("-o", "--out", required=True, type=Path, help="the file to write")
    export.add_argument(
        "--dtype",
        default="fp32",
        choices=("fp32", "bf16", "fp16"),
        help="stored precision of the weights (bf16 and fp16 halve the file)",
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

    demo = commands.add_parser(
        "demo",
        help="train briefly on the embedded photos, then evaluate and colorize them",
        description="A few minutes on a CPU: trains on the embedded photos, prints the scores "
        "of the held-out photo and writes demo.png (gray | truth | generator | refined).",
    )
    _train_options(demo, steps=200, size=128)
    demo.add_argument("--out", default="runs/demo", help="run directory")
    return parser


def _train_config(args: argparse.Namespace) -> Any:
    from colorkit.trainer import TrainConfig

    return TrainConfig(
        recipe=args.recipe,
        overrides=parse_overrides(args.overrides),
        data=args.data,
        out=args.out,
        size=args.size,
        steps=args.steps,
        batch=args.batch,
        seed=args.seed,
        device=args.device,
        precision=args.precision,
        resume=getattr(args, "resume", False),
        workers=args.workers,
        log_every=args.log_every,
        sample_every=args.sample_every,
        checkpoint_every=args.checkpoint_every,
        keep=args.keep,
        test_fraction=args.test_fraction,
        eval_data=args.eval_data,
        progress=not args.no_progress,
    )


def _cmd_train(args: argparse.Namespace) -> int:
    from colorkit.trainer import train

    result = train(_train_config(args))
    if result.checkpoint is not None:
        print(f"step {result.step}: {result.images_per_second:.1f} images/s")
        print(f"checkpoint: {result.checkpoint}")
        print(f"samples:    {result.run_dir / 'samples'}")
        print(f"metrics:    {result.run_dir / 'metrics.jsonl'}")
        print(f"curves:     {result.run_dir / 'metrics.png'}")
    return 0


def _load_model(checkpoint: str, args: argparse.Namespace) -> Any:
    from colorkit.checkpoint import load
    from colorkit.trainer import resolve_device

    model = load(checkpoint, device=resolve_device(args.device))
    return model.set_precision(args.precision)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from colorkit.data import (
        PhotoDataset,
        embedded_photos,
        find_images,
        scan_images,
        split_paths,
    )
    from colorkit.files import write_json
    from colorkit.metrics import comparison_table, evaluate

    root = Path(args.data) if args.data else embedded_photos()
    paths = scan_images(find_images(root)).usable
    if args.split != "all":
        train_paths, test_paths = split_paths(paths, args.test_fraction, args.seed)
        paths = test_paths if args.split == "test" else train_paths
    dataset = PhotoDataset(paths, size=args.size, train=False)
    reports = {}
    for checkpoint in args.checkpoint:
        model = _load_model(checkpoint, args)
        protocol = {
            "checkpoint": str(checkpoint),
            "data": str(root),
            "split": args.split,
            "seed": args.seed,
            "images": len(paths),
            "size": args.size,
            "crop": "resize shorter side to size, center crop size×size",
            "precision": model.precision,
        }
        report = evaluate(
            model,
            dataset,
            batch_size=args.batch,
            progress=not args.no_progress,
            protocol_extra=protocol,
        )
        ssim = report.protocol["ssim"]
        print(
            f"checkpoint {checkpoint}\nprotocol: {len(paths)} images of {root} "
            f"(split {args.split}), {args.size}×{args.size} (shorter side resized, centre crop), "
            f"{model.precision}; piq SSIM kernel {ssim['kernel_size']} σ {ssim['kernel_sigma']}, "
            f"downsample {ssim['downsample']}; data_range 1 after clamping"
        )
        print(report.table())
        reports[str(checkpoint)] = report
    if len(reports) > 1:
        print(f"\ncomparison on the same {len(paths)} images:")
        print(comparison_table(reports))
    if args.json:
        data = [report.to_json() for report in reports.values()]
        write_json(args.json, data[0] if len(data) == 1 else data)
        print(f"scores written to {args.json}")
    return 0


def _cmd_colorize(args: argparse.Namespace) -> int:
    from colorkit.colorizing import colorize_paths

    inputs = list(args.inputs)
    weights = args.weights
    if weights is None and len(inputs) > 1 and inputs[0].endswith(".safetensors"):
        weights = inputs.pop(0)
    if weights is None:
        weights = DEFAULT_WEIGHTS
        print(f"using the {DEFAULT_WEIGHTS!r} weights (choose others with --weights)")
    # a loaded model colorizes through its inference copy (BatchNorm folded, prepacked
    # convolutions): same colours, several times the speed
    model = _load_model(weights, args)
    report = colorize_paths(
        model, inputs, args.out, args.working_size, progress=not args.no_progress
    )
    for path, message in report.failed:
        print(f"error: {path}: {message}", file=sys.stderr)
    print(f"{len(report.written)} colorized into {args.out}, {len(report.failed)} failed")
    return 1 if report.failed else 0


def _cmd_export(args: argparse.Namespace) -> int:
    from colorkit.checkpoint import export_weights

    path = export_weights(args.checkpoint, args.out, args.dtype)
    size = path.stat().st_size / 2**20
    print(f"wrote {path} ({size:.1f} MiB, {args.dtype}): generator and refiner weights")
    return 0


def _format_default(value: Any) -> str:
    import inspect

    return "required" if value is inspect.Parameter.empty else repr(value)


def _cmd_list(args: argparse.Namespace) -> int:
    from colorkit.registry import default_registry

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


def _fitting_unet_depth(recipe: str, overrides: dict[str, Any], size: int) -> dict[str, int]:
    """The U-Net depth whose bottleneck is 1×1 at ``size`` (pix2pix's unet_128 at 128).

    The default depth 8 fits 256-pixel crops; on smaller crops it pads every image and
    spends most of its work on the padding.
    """
    from colorkit.registry import default_registry

    generator = overrides.get("generator", default_registry().create("recipe", recipe).generator)
    if generator != "unet" or {"depth", "generator_depth"} & overrides.keys():
        return {}
    return {"generator_depth": max(2, size.bit_length() - 1)}


def _cmd_demo(args: argparse.Namespace) -> int:
    import torch

    from colorkit.data import PhotoDataset
    from colorkit.files import write_json
    from colorkit.metrics import evaluate
    from colorkit.plots import sample_grid
    from colorkit.trainer import train

    config = _train_config(args)
    config.resume = True  # a second `colorkit demo` reuses (or extends) the first run
    config.overrides.update(_fitting_unet_depth(config.recipe, config.overrides, config.size))
    result = train(config)
    model = result.model
    train_set, test_set, _ = config.photos()
    data = config.data or "embedded photos"
    tested = config.eval_data or f"held-out share {config.test_fraction:g} of {data}"
    report = evaluate(
        model,
        test_set,
        progress=not args.no_progress,
        protocol_extra={"data": data, "test_data": tested, "size": config.size},
    )
    print(report.table())
    scores = result.run_dir / "demo-metrics.json"
    write_json(scores, report.to_json())
    photos = PhotoDataset([*test_set.paths, *train_set.paths], size=config.size, train=False)
    images = torch.stack([photos[i] for i in range(len(photos))])
    grid = sample_grid(model, images, result.run_dir / "demo.png")
    print(f"held-out scores: {scores}")
    print(f"colorized grid (first {len(test_set)} row(s) held out): {grid}")
    return 0


COMMANDS = {
    "train": _cmd_train,
    "evaluate": _cmd_evaluate,
    "colorize": _cmd_colorize,
    "export": _cmd_export,
    "list": _cmd_list,
    "demo": _cmd_demo,
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
