"""Pretrained weights: weights-only export, the ``weights`` registry kind, loading by name."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import colorkit
from colorkit.checkpoint import (
    WEIGHTS_FORMAT,
    CheckpointError,
    export_weights,
    initialize_from,
    load,
    read_metadata,
    restore,
    save_checkpoint,
)
from colorkit.registry import Component, InvalidOptionError, default_registry
from colorkit.weights import DEFAULT_WEIGHTS, Weights, WeightsError, resolve_weights

TINY = {"generator_depth": 3, "base_channels": 8, "refiner_hidden": 16, "refiner_patch": 4}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = colorkit.build("pix2pix+mlp", **TINY)
    model.train_step(torch.rand(2, 3, 16, 16))
    torch.nn.init.normal_(model.refiner.mlp[-1].weight, 0.0, 0.05)  # a refiner that acts
    return save_checkpoint(model, tmp_path_factory.mktemp("run") / "step-00000001.safetensors", 1)


@pytest.mark.parametrize(("dtype", "tolerance"), [("fp32", 0.0), ("bf16", 0.02), ("fp16", 2e-3)])
def test_export_colorizes_like_the_checkpoint(
    checkpoint: Path, tmp_path: Path, dtype: str, tolerance: float
) -> None:
    exported = export_weights(checkpoint, tmp_path / f"w-{dtype}.safetensors", dtype)
    gray = torch.rand(2, 1, 30, 22, generator=torch.Generator().manual_seed(3))
    full, light = load(checkpoint), load(exported)
    assert light.recipe == full.recipe and light.recipe_name == full.recipe_name
    difference = (light.colorize(gray) - full.colorize(gray)).abs().max().item()
    assert difference <= tolerance
    if dtype != "fp32":
        assert (
            exported.stat().st_size
            < 0.6 * export_weights(checkpoint, tmp_path / "f").stat().st_size
        )


def test_export_keeps_generator_and_refiner_only(checkpoint: Path, tmp_path: Path) -> None:
    exported = export_weights(checkpoint, tmp_path / "w.safetensors", "bf16")
    with safe_open(str(exported), framework="pt") as handle:
        names = list(handle.keys())
        dtypes = {handle.get_tensor(name).dtype for name in names}
    assert names and all(n.startswith(("model.generator.", "model.refiner.")) for n in names)
    assert any(n.startswith("model.refiner.") for n in names)
    assert torch.bfloat16 in dtypes and torch.float32 not in dtypes
    meta = read_metadata(exported)
    assert meta["format"] == WEIGHTS_FORMAT and meta["step"] == 1 and meta["dtype"] == "bf16"
    assert exported.stat().st_size < checkpoint.stat().st_size / 3


def test_weights_cannot_resume_training(checkpoint: Path, tmp_path: Path) -> None:
    exported = export_weights(checkpoint, tmp_path / "w.safetensors")
    model = colorkit.build("pix2pix+mlp", **TINY)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"weights only.*cannot resume"):
        restore(model, exported)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_export_averages_checkpoints_of_one_model(checkpoint: Path, tmp_path: Path) -> None:
    first = load(checkpoint, fast=False)
    other = load(checkpoint, fast=False)
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(1.0)
    second = save_checkpoint(other, tmp_path / "step-00000002.safetensors", 2)
    averaged = load(export_weights([checkpoint, second], tmp_path / "mean.safetensors"))
    meta = read_metadata(tmp_path / "mean.safetensors")
    assert meta["step"] == 2 and "step-00000002" in meta["extra"]["exported_from"]
    for key, value in averaged.generator.state_dict().items():
        if key.endswith("weight") and value.dim() > 1:  # parameters moved by 1, halfway is +0.5
            expected = first.generator.state_dict()[key] + 0.5
            assert torch.allclose(value.float(), expected.float(), atol=1e-5), key

    wider = colorkit.build("pix2pix+mlp", **{**TINY, "base_channels": 16})
    different = save_checkpoint(wider, tmp_path / "wider.safetensors", 3)
    with pytest.raises(CheckpointError, match=r"cannot average .*wider\.safetensors"):
        export_weights([checkpoint, different], tmp_path / "bad.safetensors")
    assert not (tmp_path / "bad.safetensors").exists()


def test_export_refuses_an_unknown_dtype(checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dtype must be one of"):
        export_weights(checkpoint, tmp_path / "w.safetensors", "int8")
    assert not (tmp_path / "w.safetensors").exists()


def test_starter_weights_are_registered() -> None:
    assert DEFAULT_WEIGHTS in colorkit.list_components("weights")
    record = colorkit.create("weights", DEFAULT_WEIGHTS)
    assert isinstance(record, Weights) and record.path.name.endswith(".safetensors")
    with pytest.raises(InvalidOptionError, match="weights take no options"):
        colorkit.create("weights", DEFAULT_WEIGHTS, dtype="bf16")


class _Plugin:
    def __init__(self, **paths: Path) -> None:
        self.paths = paths

    @colorkit.hookimpl
    def colorkit_components(self) -> list[Component]:
        return [Component("weights", name, Weights(path)) for name, path in self.paths.items()]


def test_third_party_weights_load_by_name(checkpoint: Path, tmp_path: Path) -> None:
    exported = export_weights(checkpoint, tmp_path / "shipped.safetensors", "fp16")
    plugin = _Plugin(tiny_test_weights=exported, gone_test_weights=tmp_path / "missing.safetensors")
    registry = default_registry()
    registry.register_plugin(plugin, name="test-weights")
    try:
        assert resolve_weights("tiny_test_weights") == exported
        model = load("tiny_test_weights")
        assert model.recipe_name == "pix2pix+mlp"
        with pytest.raises(WeightsError, match=r"missing\.safetensors.*does not exist"):
            load("gone_test_weights")
        with pytest.raises(WeightsError, match="did you mean 'tiny_test_weights'"):
            load("tiny_test_weight")
    finally:
        registry.unregister_plugin(plugin)


# -- starting a new run from weights --------------------------------------------------------
def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Equal weights and buffers."""
    return all(
        torch.equal(x.float(), y.float())
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_initialize_copies_the_parts_the_file_holds(checkpoint: Path, tmp_path: Path) -> None:
    saved = load(checkpoint, fast=False)
    torch.manual_seed(5)
    fresh = colorkit.build("pix2pix+mlp", **TINY)
    untouched = colorkit.build("pix2pix+mlp", **TINY)
    untouched.load_state_dict(fresh.state_dict())
    assert initialize_from(fresh, checkpoint) == ["generator", "refiner", "discriminator"]
    assert _same(fresh.generator, saved.generator) and _same(fresh.refiner, saved.refiner)

    # a weights-only export has no discriminator: it keeps its fresh initialisation
    exported = export_weights(checkpoint, tmp_path / "w.safetensors", "bf16")
    assert initialize_from(untouched, exported) == ["generator", "refiner"]
    mine, theirs = untouched.generator.state_dict(), saved.generator.state_dict()
    for key, value in mine.items():  # the checkpoint's weights, rounded to bf16
        assert torch.allclose(value.float(), theirs[key].float(), rtol=1e-2, atol=1e-3), key


def test_initialize_across_recipes_copies_the_generator_alone(checkpoint: Path) -> None:
    torch.manual_seed(6)
    gan = colorkit.build("pix2pix", generator_depth=3, base_channels=8)
    before = {k: v.clone() for k, v in gan.discriminator.state_dict().items()}
    assert initialize_from(gan, checkpoint) == ["generator", "discriminator"]
    assert _same(gan.generator, load(checkpoint, fast=False).generator)
    assert any(not torch.equal(before[k], v) for k, v in gan.discriminator.state_dict().items())


def test_initialize_refuses_other_shapes_naming_the_part(checkpoint: Path) -> None:
    wider = colorkit.build("unet-l1", generator_depth=3, base_channels=16)
    with pytest.raises(CheckpointError, match=r"cannot initialise the generator .*shape"):
        initialize_from(wider, checkpoint)
    with pytest.raises(WeightsError, match="no checkpoint file 'startr'"):
        initialize_from(wider, "startr")


# -- the shipped starter weights ------------------------------------------------------------
def test_the_shipped_starter_weights_are_small_and_colour_the_embedded_photos() -> None:
    from colorkit.data import evaluation_photos
    from colorkit.metrics import evaluate

    path = resolve_weights(DEFAULT_WEIGHTS)
    assert path.stat().st_size <= 40 * 2**20
    assert read_metadata(path)["format"] == WEIGHTS_FORMAT
    model = load(DEFAULT_WEIGHTS)
    report = evaluate(model, evaluation_photos(None, 128), progress=False)
    mean = report.means()
    # never trained on these photos: more right than wrong, and visibly coloured
    assert mean["psnr_ab"] > mean["gray_psnr_ab"]
    assert mean["colorfulness"] > 0.25 * mean["truth_colorfulness"]
