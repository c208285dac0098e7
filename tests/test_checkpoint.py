"""Checkpoints: contents, atomic writes, discovery, pruning, errors and exact resumption."""

from __future__ import annotations

import json
import os
import struct
import warnings
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import colorkit
from colorkit.checkpoint import (
    FORMAT,
    CheckpointError,
    CheckpointWarning,
    checkpoint_path,
    latest_checkpoint,
    load,
    prune_checkpoints,
    read_metadata,
    restore,
    save_checkpoint,
)
from colorkit.components.generators import UNet
from colorkit.fast import resolve_precision
from colorkit.registry import ColorkitError, Component, default_registry

TINY = {"generator_depth": 3, "base_channels": 8, "refiner_hidden": 16, "refiner_patch": 4}


def tiny(seed: int = 0, **overrides: object) -> colorkit.Colorizer:
    torch.manual_seed(seed)
    return colorkit.build("pix2pix+mlp", **{**TINY, **overrides})


def batch(seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, 16, 16, generator=generator)


@pytest.fixture(scope="module")
def trained() -> colorkit.Colorizer:
    model = tiny()
    model.train_step(batch())
    return model


def rewrite_metadata(path: Path, **changes: str | None) -> None:
    """Rewrite a safetensors file with changed metadata (``None`` drops a field)."""
    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata() or {})
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    for key, value in changes.items():
        if value is None:
            metadata.pop(key, None)
        else:
            metadata[key] = value
    save_file(tensors, str(path), metadata=metadata)


def weights(model: colorkit.Colorizer) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in model.state_dict().items()}


def assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# -- contents -------------------------------------------------------------------------------
def test_checkpoint_path_names_the_step(tmp_path: Path) -> None:
    assert checkpoint_path(tmp_path, 42) == tmp_path / "step-00000042.safetensors"
    assert checkpoint_path(str(tmp_path), 123456789).name == "step-123456789.safetensors"
    with pytest.raises(ValueError, match="step"):
        checkpoint_path(tmp_path, -1)


def test_round_trip_weights_and_optimizer_state(
    trained: colorkit.Colorizer, tmp_path: Path
) -> None:
    path = save_checkpoint(trained, checkpoint_path(tmp_path, 1), step=1)
    other = tiny(seed=5)
    assert not torch.equal(other.generator.down[0][0].weight, trained.generator.down[0][0].weight)
    restore(other, path)
    assert_same_tensors(weights(other), weights(trained))
    for part, optimizer in trained.optimizers.items():
        saved, restored = optimizer.state_dict(), other.optimizers[part].state_dict()
        assert restored["param_groups"] == saved["param_groups"]
        assert restored["state"].keys() == saved["state"].keys()
        assert saved["state"], part  # one step was taken, so Adam has state
        for index, entries in saved["state"].items():
            for key, value in entries.items():
                assert torch.equal(restored["state"][index][key], value), (part, index, key)


def test_file_holds_model_and_optimizer_tensors(
    trained: colorkit.Colorizer, tmp_path: Path
) -> None:
    path = save_checkpoint(trained, tmp_path / "c.safetensors", step=1)
    with safe_open(str(path), framework="pt") as handle:
        keys = set(handle.keys())
    assert {f"model.{key}" for key in trained.state_dict()} <= keys
    state = trained.optimizers["generator"].state_dict()["state"]
    assert {f"optimizer.generator.{i}.{k}" for i in state for k in state[i]} <= keys


def test_metadata_contents(trained: colorkit.Colorizer, tmp_path: Path) -> None:
    path = save_checkpoint(
        trained, tmp_path / "c.safetensors", step=7, extra={"data": "photos", "size": (16, 16)}
    )
    meta = read_metadata(path)
    assert meta["format"] == FORMAT
    assert meta["colorkit_version"] == colorkit.__version__
    assert meta["recipe_name"] == "pix2pix+mlp"
    assert meta["overrides"] == TINY
    assert meta["recipe"] == json.loads(json.dumps(trained.recipe.to_dict()))
    assert meta["step"] == 7
    assert meta["precision"] == trained.precision
    assert meta["extra"] == {"data": "photos", "size": [16, 16]}
    assert set(meta["param_groups"]) == set(trained.optimizers)
    group = meta["param_groups"]["generator"][0]
    assert group["lr"] == trained.recipe.lr
    assert group["betas"] == list(trained.recipe.betas)


def test_overrides_with_tuples_are_stored_as_json(tmp_path: Path) -> None:
    model = tiny(betas=(0.9, 0.99))
    meta = read_metadata(save_checkpoint(model, tmp_path / "c.safetensors", step=0))
    assert meta["overrides"]["betas"] == [0.9, 0.99]
    loaded = load(tmp_path / "c.safetensors")
    assert loaded.recipe.betas == (0.9, 0.99)
    assert loaded.optimizers["generator"].param_groups[0]["betas"] == (0.9, 0.99)


def test_unserialisable_extra_is_refused_and_nothing_is_written(
    trained: colorkit.Colorizer, tmp_path: Path
) -> None:
    path = tmp_path / "c.safetensors"
    with pytest.raises(CheckpointError, match=r"c\.safetensors.*extra\['rng'\]"):
        save_checkpoint(trained, path, step=1, extra={"rng": object()})
    assert list(tmp_path.iterdir()) == []


# -- load -----------------------------------------------------------------------------------
def test_load_gives_identical_colorize_output(trained: colorkit.Colorizer, tmp_path: Path) -> None:
    path = save_checkpoint(trained, tmp_path / "c.safetensors", step=1)
    loaded = load(path)
    assert isinstance(loaded, colorkit.Colorizer)
    assert not loaded.training
    assert loaded.recipe == trained.recipe
    assert loaded.recipe_name == "pix2pix+mlp"
    gray = torch.rand(1, 1, 24, 20, generator=torch.Generator().manual_seed(3))
    trained.eval()
    try:
        expected = trained.colorize(gray)
    finally:
        trained.train()
    assert torch.equal(loaded.colorize(gray), expected)


def test_load_restores_precision(tmp_path: Path) -> None:
    model = tiny().set_precision("bf16")
    path = save_checkpoint(model, tmp_path / "c.safetensors", step=0)
    loaded = load(path, fast=False)  # the plain model keeps what was saved
    assert loaded.precision == "bf16"
    assert not loaded.fast


def test_load_is_fast_like_build(tmp_path: Path) -> None:
    model = tiny().set_precision("fp32")
    loaded = load(save_checkpoint(model, tmp_path / "c.safetensors", step=0))
    assert loaded.fast and loaded.precision == resolve_precision("auto", "cpu")
    assert loaded.generator.down[0][0].weight.is_contiguous(memory_format=torch.channels_last)


# -- atomic writes --------------------------------------------------------------------------
def test_killed_save_leaves_previous_checkpoint_intact(
    trained: colorkit.Colorizer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = save_checkpoint(trained, checkpoint_path(tmp_path, 1), step=1)
    before = first.read_bytes()

    def killed(src: object, dst: object) -> None:
        raise KeyboardInterrupt("killed while renaming")

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(trained, checkpoint_path(tmp_path, 2), step=2)
    with pytest.raises(KeyboardInterrupt):  # overwriting the same name keeps the old file too
        save_checkpoint(trained, first, step=3)
    monkeypatch.undo()

    assert first.read_bytes() == before
    assert not checkpoint_path(tmp_path, 2).exists()
    assert latest_checkpoint(tmp_path) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name]  # temp files removed


def test_failed_rename_is_reported_with_the_file_name(
    trained: colorkit.Colorizer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(CheckpointError, match=r"step-00000004\.safetensors.*No space"):
        save_checkpoint(trained, checkpoint_path(tmp_path, 4), step=4)


def test_leftover_temporary_file_is_never_taken_for_a_checkpoint(
    trained: colorkit.Colorizer, tmp_path: Path
) -> None:
    first = save_checkpoint(trained, checkpoint_path(tmp_path, 1), step=1)
    # what a save killed before its rename leaves behind
    stale = tmp_path / ".step-00000002.safetensors.tmp-4242-deadbeef"
    stale.write_bytes(first.read_bytes()[:100])
    assert latest_checkpoint(tmp_path) == first
    assert prune_checkpoints(tmp_path, keep=0) == [first]
    assert stale.exists()


# -- discovery and pruning ------------------------------------------------------------------
def test_latest_checkpoint_orders_by_step(trained: colorkit.Colorizer, tmp_path: Path) -> None:
    assert latest_checkpoint(tmp_path / "missing") is None
    assert latest_checkpoint(tmp_path) is None
    for step in (9, 100, 10):
        save_checkpoint(trained, checkpoint_path(tmp_path, step), step=step)
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    assert latest_checkpoint(tmp_path) == checkpoint_path(tmp_path, 100)


def test_latest_checkpoint_skips_a_truncated_newest_file(
    trained: colorkit.Colorizer, tmp_path: Path
) -> None:
    good = save_checkpoint(trained, checkpoint_path(tmp_path, 1), step=1)
    bad = save_checkpoint(trained, checkpoint_path(tmp_path, 2), step=2)
    bad.write_bytes(bad.read_bytes()[:-50])
    with pytest.warns(CheckpointWarning, match=r"step-00000002\.safetensors.*truncated"):
        assert latest_checkpoint(tmp_path) == good


def test_latest_checkpoint_returns_none_when_all_are_unreadable(tmp_path: Path) -> None:
    checkpoint_path(tmp_path, 1).write_bytes(b"")
    with pytest.warns(CheckpointWarning, match="empty"):
        assert latest_checkpoint(tmp_path) is None


def test_prune_keeps_the_newest(trained: colorkit.Colorizer, tmp_path: Path) -> None:
    paths = [save_checkpoint(trained, checkpoint_path(tmp_path, s), step=s) for s in (1, 2, 3, 4)]
    assert prune_checkpoints(tmp_path, keep=2) == paths[:2]
    assert sorted(tmp_path.iterdir()) == paths[2:]
    assert prune_checkpoints(tmp_path, keep=2) == []
    assert prune_checkpoints(tmp_path, keep=0) == paths[2:]
    assert list(tmp_path.iterdir()) == []
    assert prune_checkpoints(tmp_path / "missing", keep=1) == []
    with pytest.raises(ValueError, match="keep"):
        prune_checkpoints(tmp_path, keep=-1)


def test_prune_never_counts_an_unreadable_file(trained: colorkit.Colorizer, tmp_path: Path) -> None:
    paths = [save_checkpoint(trained, checkpoint_path(tmp_path, s), step=s) for s in (1, 2, 3)]
    paths[2].write_bytes(paths[2].read_bytes()[:-10])
    assert prune_checkpoints(tmp_path, keep=1) == [paths[0]]
    assert paths[1].exists() and paths[2].exists()
    # fewer readable checkpoints than `keep`: nothing goes
    assert prune_checkpoints(tmp_path, keep=5) == []


# -- errors ---------------------------------------------------------------------------------
def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.safetensors"
    for call in (read_metadata, load, lambda p: restore(tiny(), p)):
        with pytest.raises(CheckpointError, match=r"absent\.safetensors.*does not exist"):
            call(path)


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty\.safetensors.*empty \(0 bytes\)"):
        load(path)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"PK\x03\x04 this is a zip archive", "not a safetensors file"),
        (b"abc", "not a safetensors file"),
        (struct.pack("<Q", 12) + b"{not json!!}", "corrupt safetensors header"),
        (struct.pack("<Q", 2) + b"[]", "not a safetensors file"),
    ],
)
def test_not_a_safetensors_file(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "junk.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=rf"junk\.safetensors.*{expected}"):
        read_metadata(path)


@pytest.mark.parametrize("keep_bytes", [-20, 40])
def test_truncated_file(trained: colorkit.Colorizer, tmp_path: Path, keep_bytes: int) -> None:
    path = save_checkpoint(trained, tmp_path / "cut.safetensors", step=1)
    data = path.read_bytes()
    path.write_bytes(data[:keep_bytes])  # cut in the tensor data, then inside the header
    with pytest.raises(CheckpointError, match=r"cut\.safetensors.*truncated"):
        load(path)


def test_safetensors_file_without_colorkit_metadata(tmp_path: Path) -> None:
    path = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(3)}, str(path), metadata={"creator": "someone else"})
    with pytest.raises(CheckpointError, match=r"foreign\.safetensors.*not a colorkit checkpoint"):
        load(path)
    save_file({"weight": torch.zeros(3)}, str(path))
    with pytest.raises(CheckpointError, match="not a colorkit checkpoint"):
        read_metadata(path)


def test_unknown_format_version(trained: colorkit.Colorizer, tmp_path: Path) -> None:
    path = save_checkpoint(trained, tmp_path / "future.safetensors", step=1)
    rewrite_metadata(path, format="colorkit-checkpoint/99")
    with pytest.raises(CheckpointError, match=r"future\.safetensors.*colorkit-checkpoint/99"):
        load(path)
    with pytest.raises(CheckpointError, match=r"future\.safetensors.*colorkit-checkpoint/99"):
        restore(tiny(), path)


def test_corrupt_metadata_field(trained: colorkit.Colorizer, tmp_path: Path) -> None:
    path = save_checkpoint(trained, tmp_path / "c.safetensors", step=1)
    rewrite_metadata(path, recipe="{broken")
    with pytest.raises(CheckpointError, match=r"c\.safetensors.*'recipe'"):
        read_metadata(path)
    rewrite_metadata(path, recipe=None)
    with pytest.raises(CheckpointError, match=r"c\.safetensors.*lacks.*'recipe'"):
        read_metadata(path)


def test_recipe_field_unknown_to_this_version(trained: colorkit.Colorizer, tmp_path: Path) -> None:
    path = save_checkpoint(trained, tmp_path / "c.safetensors", step=1)
    recipe = {**trained.recipe.to_dict(), "hyperspace": True}
    rewrite_metadata(path, recipe=json.dumps(recipe))
    with pytest.raises(CheckpointError, match=r"c\.safetensors.*hyperspace"):
        load(path)


class _ExtraGenerator:
    @colorkit.hookimpl
    def colorkit_components(self) -> list[Component]:
        return [Component("generator", "test-extra-unet", UNet)]


def test_component_not_installed(tmp_path: Path) -> None:
    registry = default_registry()
    plugin = _ExtraGenerator()
    registry.register_plugin(plugin, name="test-extra")
    try:
        model = tiny(generator="test-extra-unet", generator_depth=3, generator_base_channels=8)
        path = save_checkpoint(model, tmp_path / "plugin.safetensors", step=1)
        assert load(path).recipe.generator == "test-extra-unet"  # loads while installed
    finally:
        registry.unregister_plugin(plugin)
    with pytest.raises(
        CheckpointError,
        match=r"plugin\.safetensors.*needs generator 'test-extra-unet'.*not installed",
    ):
        load(path)


def test_restore_refuses_other_tensor_shapes(trained: colorkit.Colorizer, tmp_path: Path) -> None:
    path = save_checkpoint(trained, tmp_path / "c.safetensors", step=1)
    other = tiny(base_channels=16)
    before = weights(other)
    with pytest.raises(CheckpointError) as info:
        restore(other, path)
    message = str(info.value)
    assert "c.safetensors" in message
    assert "'generator.down.0.0.weight'" in message
    assert "(8, 1, 4, 4)" in message and "(16, 1, 4, 4)" in message
    assert "'base_channels': 8" in message and "'base_channels': 16" in message
    assert_same_tensors(weights(other), before)  # nothing changed


def test_restore_refuses_another_recipe(trained: colorkit.Colorizer, tmp_path: Path) -> None:
    path = save_checkpoint(trained, tmp_path / "c.safetensors", step=1)
    # same tensor shapes, but another refiner loss setting is fine while another
    # generator option is not
    same_shapes = tiny(generator_dropout=0.0)
    with pytest.raises(CheckpointError, match=r"c\.safetensors.*differ in generator_options"):
        restore(same_shapes, path)
    other_losses = colorkit.build("pix2pix+mlp-l1", **TINY)
    assert restore(other_losses, path)["step"] == 1
    unet = colorkit.build("unet-l1", generator_depth=3, generator_base_channels=8)
    with pytest.raises(CheckpointError, match=r"'unet-l1'.*'pix2pix\+mlp'|'pix2pix\+mlp'.*'unet"):
        restore(unet, path)


def test_errors_are_colorkit_and_value_errors() -> None:
    assert issubclass(CheckpointError, ColorkitError)
    assert issubclass(CheckpointError, ValueError)


# -- resumption -----------------------------------------------------------------------------
def test_restore_returns_step_and_extra(trained: colorkit.Colorizer, tmp_path: Path) -> None:
    path = save_checkpoint(trained, tmp_path / "c.safetensors", step=12, extra={"seed": 3})
    meta = restore(tiny(seed=9), path)
    assert meta["step"] == 12
    assert meta["extra"] == {"seed": 3}


def test_resumed_training_continues_exactly(tmp_path: Path) -> None:
    data = batch(seed=11)
    model = tiny(seed=2)
    for step in range(2):
        torch.manual_seed(100 + step)
        model.train_step(batch(seed=step))
    path = save_checkpoint(model, checkpoint_path(tmp_path, 2), step=2)
    torch.manual_seed(7)  # dropout draws from the global generator
    model.train_step(data)
    expected = weights(model)

    resumed = tiny(seed=3)
    meta = restore(resumed, path)
    assert meta["step"] == 2
    torch.manual_seed(7)
    resumed.train_step(data)
    assert_same_tensors(weights(resumed), expected)
    for part, optimizer in model.optimizers.items():
        assert (
            optimizer.state_dict()["param_groups"]
            == (resumed.optimizers[part].state_dict()["param_groups"])
        )


def test_no_warning_for_valid_checkpoints(trained: colorkit.Colorizer, tmp_path: Path) -> None:
    save_checkpoint(trained, checkpoint_path(tmp_path, 1), step=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert latest_checkpoint(tmp_path) == checkpoint_path(tmp_path, 1)
