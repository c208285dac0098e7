"""The training loop: files it writes, refusal to overwrite, resume after a kill."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from support import TINY, dead_pid

import colorkit
from colorkit.checkpoint import latest_checkpoint, read_metadata
from colorkit.engine import Colorizer
from colorkit.trainer import StreamSampler, TrainConfig, train


def _config(photo_folder: Path, out: Path, **changes: object) -> TrainConfig:
    settings = {
        "recipe": "pix2pix+mlp",
        "overrides": dict(TINY),
        "data": str(photo_folder),
        "out": str(out),
        "size": 32,
        "steps": 4,
        "batch": 2,
        "workers": 0,
        "log_every": 1,
        "sample_every": 2,
        "checkpoint_every": 2,
        "keep": 1,
        "progress": False,
        "device": "cpu",
    }
    settings.update(changes)
    return TrainConfig(**settings)


def test_train_writes_logs_samples_and_pruned_checkpoints(
    photo_folder: Path, tmp_path: Path
) -> None:
    result = train(_config(photo_folder, tmp_path / "run"))
    run = tmp_path / "run"
    assert result.step == 4
    assert [p.name for p in run.glob("step-*.safetensors")] == ["step-00000004.safetensors"]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert all(r["images_per_s"] > 0 and r["g"] > 0 and "r_l1" in r and "d" in r for r in records)
    with Image.open(run / "metrics.png") as curves:  # one row per part, one plot per term
        assert curves.format == "PNG" and curves.height > 3 * 120
    grids = sorted((run / "samples").glob("*.png"))
    assert [g.name for g in grids] == ["step-00000002.png", "step-00000004.png"]
    with Image.open(grids[-1]) as grid:
        assert grid.width == 4 * 32  # input | truth | generator | refined
        assert grid.height > 32
    meta = read_metadata(run / "step-00000004.safetensors")
    assert meta["step"] == 4 and meta["recipe_name"] == "pix2pix+mlp"
    assert json.loads((run / "config.json").read_text())["steps"] == 4


def test_train_samples_a_separate_test_folder(photo_folder: Path, tmp_path: Path) -> None:
    test_folder = tmp_path / "test"
    test_folder.mkdir()
    Image.new("RGB", (40, 40), (200, 40, 30)).save(test_folder / "red.png")
    train(_config(photo_folder, tmp_path / "run", steps=2, eval_data=str(test_folder)))
    assert json.loads((tmp_path / "run" / "config.json").read_text())["eval_data"] == str(
        test_folder
    )
    with Image.open(tmp_path / "run" / "samples" / "step-00000002.png") as grid:
        truth = np.asarray(grid.convert("RGB"))[14:46, 32:64]  # first row, truth column
    assert (truth == (200, 40, 30)).all()


def test_train_refuses_to_overwrite_a_run_without_resume(
    photo_folder: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    train(_config(photo_folder, run, steps=2))
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    with pytest.raises(colorkit.ColorkitError, match="--resume"):
        train(_config(photo_folder, run, steps=2))
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before


def test_resume_after_a_kill_matches_an_uninterrupted_run(
    photo_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    straight = train(_config(photo_folder, tmp_path / "straight", keep=5)).model

    real_step = Colorizer.train_step
    calls = {"n": 0}

    def dies_at_third_step(self: Colorizer, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the process is killed between checkpoints
        return real_step(self, rgb)

    killed = tmp_path / "killed"
    with monkeypatch.context() as patch:
        patch.setattr(Colorizer, "train_step", dies_at_third_step)
        with pytest.raises(KeyboardInterrupt):
            train(_config(photo_folder, killed, keep=5))
    assert latest_checkpoint(killed).name == "step-00000002.safetensors"

    resumed = train(_config(photo_folder, killed, keep=5, resume=True))
    assert resumed.step == 4
    for name, tensor in straight.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    for part, optimizer in straight.optimizers.items():
        state = optimizer.state_dict()["state"]
        again = resumed.model.optimizers[part].state_dict()["state"]
        for index in state:
            assert torch.equal(state[index]["exp_avg"], again[index]["exp_avg"])


def test_resume_removes_what_a_killed_write_left(photo_folder: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(_config(photo_folder, run, steps=2))
    leftovers = [
        run / f".step-00000004.safetensors.tmp-{dead_pid()}-0123abcd",
        run / "samples" / f".step-00000004.png.tmp-{dead_pid()}-0123abcd",
    ]
    for path in leftovers:
        path.write_bytes(b"half a file")
    with pytest.warns(UserWarning, match="left by an interrupted write"):
        train(_config(photo_folder, run, steps=4, resume=True))
    assert not any(path.exists() for path in leftovers)
    assert latest_checkpoint(run) == run / "step-00000004.safetensors"


def test_stream_sampler_is_a_function_of_step_and_rank() -> None:
    whole = list(StreamSampler(size=5, batch=3, seed=7, start=0, stop=6))
    tail = list(StreamSampler(size=5, batch=3, seed=7, start=4, stop=6))
    assert tail == whole[4:]
    ranks = [list(StreamSampler(5, 3, 7, 0, 6, rank=r, world=2)) for r in range(2)]
    global_batches = list(StreamSampler(5, 6, 7, 0, 6))
    for step in range(6):  # the ranks split one global batch between them
        assert ranks[0][step] + ranks[1][step] == global_batches[step]
    flat = [i for batch in whole[:5] for i in batch]  # 15 draws = 3 epochs of 5
    for epoch in range(3):
        assert sorted(flat[epoch * 5 : epoch * 5 + 5]) == list(range(5))
    assert whole != list(StreamSampler(size=5, batch=3, seed=8, start=0, stop=6))


def test_config_validation_names_the_option(photo_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--steps"):
        train(_config(photo_folder, tmp_path / "r", steps=0))
    with pytest.raises(ValueError, match="--device"):
        train(_config(photo_folder, tmp_path / "r", device="tpu"))
    assert not (tmp_path / "r").exists()


def test_a_unet_deeper_than_the_crop_is_warned_about(photo_folder: Path, tmp_path: Path) -> None:
    overrides = {**TINY, "generator_depth": 6}  # pads 32-pixel crops to 64
    with pytest.warns(UserWarning, match="generator_depth=5"):
        train(_config(photo_folder, tmp_path / "run", steps=1, overrides=overrides))
