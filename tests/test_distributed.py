"""DistributedDataParallel on CPU with the gloo backend, two processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from support import TINY

import colorkit

# no batch statistics, no dropout and fp32: a 2-process step must equal a 1-process step
DETERMINISTIC = {**TINY, "norm": "instance", "generator_dropout": 0.0, "fast": False}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _batch() -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.rand(4, 3, 24, 24, generator=generator)


def _one_step(model: colorkit.Colorizer, batch: torch.Tensor) -> dict[str, torch.Tensor]:
    model.train_step(batch)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        model = colorkit.build("pix2pix+mlp", **DETERMINISTIC).distribute()
        half = _batch().chunk(world)[rank]
        weights = _one_step(model, half)
        if rank == 0:
            torch.save(weights, out)
        dist.barrier()  # no rank tears gloo down while another still talks to it
    finally:
        dist.destroy_process_group()
    # Leave without running C++ static destructors: now and then one of gloo's threads is
    # still joinable at interpreter exit and std::terminate aborts a process whose work is
    # done and checked. The result file is already written and closed.
    os._exit(0)


def test_two_process_step_equals_one_process_step_on_the_global_batch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    single = _one_step(colorkit.build("pix2pix+mlp", **DETERMINISTIC), _batch())

    out = tmp_path / "rank0.pt"
    mp.spawn(_worker, args=(2, _free_port(), str(out)), nprocs=2, join=True)
    distributed = torch.load(out, weights_only=True)

    assert distributed.keys() == single.keys()
    initial = colorkit.build("pix2pix+mlp", **DETERMINISTIC).state_dict()
    moved = [k for k in single if not torch.equal(single[k], initial[k])]
    assert moved, "the step changed no weight; the comparison would prove nothing"
    for key in single:
        torch.testing.assert_close(distributed[key], single[key], rtol=1e-4, atol=1e-5, msg=key)


def _torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(_free_port()),
        "-m",
        "colorkit",
        "train",
        *args,
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_torchrun_default_recipe_trains_writes_from_rank0_and_resumes(
    tmp_path: Path, photo_folder: Path
) -> None:
    run = tmp_path / "run"
    common = [
        "--data",
        str(photo_folder),
        "--out",
        str(run),
        "--size",
        "32",
        "--batch",
        "2",
        "--workers",
        "0",
        "--checkpoint-every",
        "2",
        "--sample-every",
        "2",
        "--log-every",
        "1",
        "--no-progress",
        "--device",
        "cpu",
        "--set",
        "generator_depth=3",
        "--set",
        "base_channels=8",
        "--set",
        "refiner_hidden=16",
    ]
    first = _torchrun(*common, "--steps", "2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert sorted(p.name for p in run.glob("step-*.safetensors")) == ["step-00000002.safetensors"]
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2  # one writer: rank 0 logs steps 1 and 2 once each
    assert not list(run.glob("*.tmp*"))

    second = _torchrun(*common, "--steps", "4", "--resume", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    names = sorted(p.name for p in run.glob("step-*.safetensors"))
    assert names == ["step-00000002.safetensors", "step-00000004.safetensors"]
    steps = [
        int(line.split('"step": ')[1].split(",")[0])
        for line in (run / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == [1, 2, 3, 4]

    meta = colorkit.checkpoint.read_metadata(run / "step-00000004.safetensors")
    assert meta["step"] == 4
