"""The training loop behind ``colorkit train``: data, steps, logs, samples, checkpoints.

Runs in one process or under ``torchrun`` (DistributedDataParallel, one process per
device). Only rank 0 writes files.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from colorkit.checkpoint import (
    checkpoint_path,
    initialize_from,
    latest_checkpoint,
    prune_checkpoints,
    restore,
    save_checkpoint,
)
from colorkit.compose import build
from colorkit.data import TRAIN_RESIZE_FACTOR, PhotoDataset, ScanResult, load_photos
from colorkit.engine import Colorizer
from colorkit.files import remove_stale_temporaries, write_json
from colorkit.plots import loss_curves, read_metrics, sample_grid
from colorkit.registry import ColorkitError

__all__ = ["TrainConfig", "TrainResult", "resolve_device", "train"]

DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainConfig:
    """Settings of one training run (the options of ``colorkit train``).

    Args:
        recipe: recipe name.
        overrides: overrides for :func:`colorkit.build`.
        data: folder of color photos; ``None`` for the embedded photos.
        out: run directory for checkpoints, logs and samples.
        size: training crop size in pixels.
        max_resize: scale augmentation: each training photo's shorter side is resized to
            a random multiple of ``size`` in ``[1.125, max_resize]`` before the crop.
        steps: total training iterations (a resumed run continues up to this).
        batch: images per iteration per process.
        seed: seed of initialisation, data split, data order and augmentation.
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        precision: ``"auto"``, ``"bf16"`` or ``"fp32"`` (see :meth:`Colorizer.set_precision`).
        resume: continue from the newest checkpoint in ``out``.
        init: weights to start a new run from (a checkpoint, a weights file or registered
            weights): the parts whose shapes match are copied
            (:func:`colorkit.checkpoint.initialize_from`); ignored when resuming.
        workers: data-loading worker processes.
        log_every: steps between metric log lines (the only host synchronisations).
        sample_every: steps between sample grids.
        checkpoint_every: steps between checkpoints.
        keep: checkpoints kept in ``out`` (older ones are deleted).
        test_fraction: share of the photos held out for samples and evaluation.
        eval_data: a separate folder of photos for samples and evaluation; all of
            ``data`` is then trained on and ``test_fraction`` is not used.
        progress: show a progress bar.
        channels_last: use the channels-last memory format.
    """

    recipe: str = "pix2pix+mlp"
    overrides: dict[str, Any] = field(default_factory=dict)
    data: str | None = None
    out: str = "runs/colorkit"
    size: int = 256
    max_resize: float = TRAIN_RESIZE_FACTOR
    steps: int = 1000
    batch: int = 4
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    resume: bool = False
    init: str | None = None
    workers: int = 2
    log_every: int = 10
    sample_every: int = 250
    checkpoint_every: int = 500
    keep: int = 3
    test_fraction: float = 0.2
    eval_data: str | None = None
    progress: bool = True
    channels_last: bool = True

    def photos(self) -> tuple[PhotoDataset, PhotoDataset, ScanResult]:
        """The run's training and test photos, as :func:`colorkit.data.load_photos` finds them.

        Returns:
            ``(train, test, scan)`` for ``data``, ``size``, ``test_fraction``, ``seed`` and
            ``eval_data``.

        Raises:
            colorkit.data.DataError: if a folder holds no usable photos.
        """
        return load_photos(
            self.data,
            size=self.size,
            test_fraction=self.test_fraction,
            seed=self.seed,
            eval_data=self.eval_data,
            max_resize=self.max_resize,
        )

    def validate(self) -> None:
        """Check the settings.

        Raises:
            ValueError: naming the first bad option and what was expected.
        """
        positive = ("size", "steps", "batch", "log_every", "sample_every", "checkpoint_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
        if self.keep < 1:
            raise ValueError("--keep must be at least 1")
        if self.workers < 0:
            raise ValueError("--workers must be 0 or more")
        if self.device not in DEVICES:
            raise ValueError(f"--device must be one of {DEVICES}, got {self.device!r}")


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: the trained model.
        run_dir: the run directory.
        step: the last completed step.
        checkpoint: the last checkpoint written (``None`` on ranks other than 0).
        images_per_second: mean throughput of the steps this call ran (all processes).
    """

    model: Colorizer
    run_dir: Path
    step: int
    checkpoint: Path | None
    images_per_second: float


def resolve_device(device: str, local_rank: int = 0) -> torch.device:
    """The torch device for a ``--device`` value.

    Args:
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        local_rank: the CUDA device index of this process under ``torchrun``.

    Returns:
        The device.

    Raises:
        ValueError: for an unknown value, or ``cuda`` on a machine without CUDA.
    """
    if device not in DEVICES:
        raise ValueError(f"--device must be one of {DEVICES}, got {device!r}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda was asked for but no CUDA device is available")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


class StreamSampler(Sampler[list[int]]):
    """Batches drawn from an endless stream of seeded permutations of the dataset.

    Batch ``k`` of rank ``r`` is a fixed function of ``(seed, k, r)``, so a resumed
    run continues with exactly the batches it would have seen, and the ranks of a
    distributed run see disjoint slices of the same stream.
    """

    def __init__(
        self,
        size: int,
        batch: int,
        seed: int,
        start: int,
        stop: int,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.size, self.batch, self.seed = size, batch, seed
        self.start, self.stop, self.rank, self.world = start, stop, rank, world

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def _permutation(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.size, generator=generator)

    def __iter__(self) -> Iterator[list[int]]:
        per_step = self.batch * self.world
        cache: dict[int, torch.Tensor] = {}
        for step in range(self.start, self.stop):
            first = step * per_step + self.rank * self.batch
            indices = []
            for position in range(first, first + self.batch):
                epoch, offset = divmod(position, self.size)
                if epoch not in cache:
                    cache.clear()
                    cache[epoch] = self._permutation(epoch)
                indices.append(int(cache[epoch][offset]))
            yield indices


class _Distributed:
    """Rank, world size and process group of a ``torchrun`` launch (or of one process)."""

    def __init__(self, device: str) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = resolve_device(device, self.local_rank)
        self.started_here = False
        if self.world > 1 and not dist.is_initialized():
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
            self.started_here = True

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        if self.started_here:
            dist.destroy_process_group()


def _warn_if_padded(model: Colorizer, size: int) -> None:
    depth = getattr(model.generator, "depth", None)
    fitting_depth = getattr(model.generator, "fitting_depth", None)
    if isinstance(depth, int) and callable(fitting_depth) and size < 2**depth:
        warnings.warn(
            f"the U-Net of depth {depth} pads {size}-pixel crops to a multiple of {2**depth}, "
            f"which costs time; --set generator_depth={fitting_depth(size)} fits them",
            stacklevel=3,
        )


def _memory_format(config: TrainConfig) -> torch.memory_format:
    return torch.channels_last if config.channels_last else torch.contiguous_format


def _rng_state() -> str:
    # saved so that a resumed run draws the same crops, flips and dropout masks
    return base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode("ascii")


def _set_rng_state(state: str | None) -> None:
    if state:
        raw = np.frombuffer(base64.b64decode(state), dtype=np.uint8).copy()
        torch.set_rng_state(torch.from_numpy(raw))


def train(config: TrainConfig) -> TrainResult:
    """Train a recipe on a folder of photos, with logs, samples and checkpoints.

    Writes to ``config.out``: ``metrics.jsonl`` (one line per ``log_every`` steps),
    ``samples/step-XXXXXXXX.png`` grids with ``metrics.png`` (the loss curves) beside
    them, ``step-XXXXXXXX.safetensors`` checkpoints and ``config.json``. Temporary files
    that a killed run left there are deleted first.

    Args:
        config: the run's settings.

    Returns:
        The trained model and where its files are.

    Raises:
        ValueError: for bad settings.
        ColorkitError: if ``out`` already holds checkpoints and ``resume`` is off, or a
            checkpoint to resume belongs to another recipe.
        colorkit.data.DataError: if the data folder holds no usable photos.
    """
    config.validate()
    run_dir = Path(config.out)
    existing = latest_checkpoint(run_dir) if run_dir.is_dir() else None
    if existing is not None and not config.resume:
        raise ColorkitError(
            f"{run_dir} already holds checkpoints (newest: {existing.name}); pass --resume to "
            "continue that run, or choose another --out"
        )
    env = _Distributed(config.device)
    try:
        torch.manual_seed(config.seed)
        train_set, test_set, _ = config.photos()
        model = build(config.recipe, **config.overrides).to(env.device)
        _warn_if_padded(model, config.size)
        model.set_precision(config.precision)
        model.to(memory_format=_memory_format(config))
        start, rng_state = 0, None
        if existing is not None:
            meta = restore(model, existing)
            start, rng_state = int(meta["step"]), meta.get("extra", {}).get("rng")
        elif config.init is not None:
            copied = initialize_from(model, config.init)
            if env.main:
                print(f"initialised the {' and '.join(copied)} from {config.init}", file=sys.stderr)
        if env.world > 1:
            model.distribute(device_ids=[env.device.index] if env.device.type == "cuda" else None)
        if env.main:
            run_dir.mkdir(parents=True, exist_ok=True)
            for folder in (run_dir, run_dir / "samples"):
                remove_stale_temporaries(folder)
            write_json(run_dir / "config.json", dataclasses.asdict(config))
        result = _loop(config, model, env, train_set, test_set, start, rng_state, run_dir)
        env.barrier()  # no rank tears the group down while another still uses it
        return result
    finally:
        env.close()


def _loop(
    config: TrainConfig,
    model: Colorizer,
    env: _Distributed,
    train_set: PhotoDataset,
    test_set: PhotoDataset,
    start: int,
    rng_state: str | None,
    run_dir: Path,
) -> TrainResult:
    sampler = StreamSampler(
        len(train_set), config.batch, config.seed, start, config.steps, env.rank, env.world
    )
    loader = DataLoader(
        train_set,
        batch_sampler=sampler,
        num_workers=config.workers,
        pin_memory=env.device.type == "cuda",
        persistent_workers=False,
        prefetch_factor=4 if config.workers else None,
    )
    samples = _sample_images(test_set, train_set, config.size)
    memory_format = _memory_format(config)
    log_path = run_dir / "metrics.jsonl"
    bar = tqdm(
        total=config.steps,
        initial=start,
        desc=f"train {config.recipe}",
        disable=not (config.progress and env.main),
        dynamic_ncols=True,
    )
    running: dict[str, torch.Tensor] = {}
    window_start, window_steps = time.perf_counter(), 0
    total_time, total_steps = 0.0, 0
    step = start
    checkpoint = None
    batches = iter(loader)  # draws the loader's base seed, so the RNG is restored after it
    _set_rng_state(rng_state)
    for batch in batches:
        batch = batch.to(env.device, non_blocking=True).contiguous(memory_format=memory_format)
        losses = model.train_step(batch)
        for key, value in losses.items():
            running[key] = running[key] + value if key in running else value
        step += 1
        window_steps += 1
        bar.update(1)
        last = step == config.steps
        if step % config.log_every == 0 or last:
            means = {key: float(value) / window_steps for key, value in running.items()}
            elapsed = time.perf_counter() - window_start
            speed = window_steps * config.batch * env.world / elapsed
            total_time += elapsed
            total_steps += window_steps
            bar.set_postfix(
                {k: f"{v:.3g}" for k, v in means.items() if "_" not in k}
                | {"img/s": f"{speed:.1f}"}
            )
            if env.main:
                record = {"step": step, "images_per_s": round(speed, 3), **means}
                with log_path.open("a") as log:
                    log.write(json.dumps(record) + "\n")
            running, window_steps = {}, 0
            window_start = time.perf_counter()
        if env.main and (step % config.sample_every == 0 or last):
            sample_grid(model, samples, run_dir / "samples" / f"step-{step:08d}.png")
            loss_curves(read_metrics(log_path), run_dir / "metrics.png", f"{config.recipe}: losses")
        if step % config.checkpoint_every == 0 or last:
            if env.main:
                checkpoint = save_checkpoint(
                    model,
                    checkpoint_path(run_dir, step),
                    step,
                    extra={
                        "data": config.data,
                        "size": config.size,
                        "seed": config.seed,
                        "test_fraction": config.test_fraction,
                        "rng": _rng_state(),
                    },
                )
                prune_checkpoints(run_dir, config.keep)
            env.barrier()
            window_start = time.perf_counter()
    bar.close()
    speed = total_steps * config.batch * env.world / total_time if total_time else math.nan
    return TrainResult(model, run_dir, step, checkpoint, speed)


def _sample_images(
    test_set: PhotoDataset, train_set: PhotoDataset, size: int, count: int = 4
) -> torch.Tensor:
    # held-out photos first; training photos fill the grid when the test split is small
    paths = [*test_set.paths, *train_set.paths][:count]
    photos = PhotoDataset(paths, size=size, train=False)
    return torch.stack([photos[i] for i in range(len(photos))])
