"""Checkpoints: one safetensors file holding everything to resume training or to colorize.

A checkpoint holds the model's ``state_dict`` (tensor names prefixed ``model.``), the
Adam state of every optimiser (``optimizer.<part>.<param_index>.<key>``) and, in the
file's string metadata, the recipe, the overrides, the step, the optimisers'
``param_groups``, the precision and the caller's ``extra`` data (JSON-encoded).

Reading never executes code: only safetensors headers and raw tensor bytes are read.
Writes are atomic: a crash at any moment leaves the previous checkpoint whole.

Example::

    import colorkit
    from colorkit.checkpoint import checkpoint_path, latest_checkpoint, restore, save_checkpoint

    model = colorkit.build("pix2pix+mlp")
    save_checkpoint(model, checkpoint_path("runs/a", 1000), step=1000, extra={"size": 256})
    step = restore(model, latest_checkpoint("runs/a"))["step"]  # resume training
    model = colorkit.checkpoint.load(latest_checkpoint("runs/a"))  # or colorize
"""

from __future__ import annotations

import json
import re
import struct
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from colorkit.engine import Colorizer
from colorkit.fast import resolve_precision
from colorkit.files import atomic_path, jsonable
from colorkit.recipe import Recipe
from colorkit.registry import ColorkitError, InvalidOptionError, Registry, default_registry
from colorkit.version import __version__
from colorkit.weights import resolve_weights

__all__ = [
    "DTYPES",
    "FORMAT",
    "WEIGHTS_FORMAT",
    "CheckpointError",
    "CheckpointWarning",
    "checkpoint_path",
    "export_weights",
    "initialize_from",
    "latest_checkpoint",
    "load",
    "prune_checkpoints",
    "read_metadata",
    "restore",
    "save_checkpoint",
]

#: The format this version writes and reads, stored in every checkpoint's metadata.
FORMAT = "colorkit-checkpoint/1"
#: The format of a weights-only export: what colorizing needs, no optimiser or discriminator.
WEIGHTS_FORMAT = "colorkit-weights/1"
#: The dtypes a weights-only export can store its floating-point tensors in.
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
#: The parts a weights-only export keeps.
_COLORIZING_PARTS = ("generator.", "refiner.")

_FORMAT_PREFIXES = ("colorkit-checkpoint/", "colorkit-weights/")
_NAME = re.compile(r"^step-(\d+)\.safetensors$")
_MODEL = "model."
_OPTIMIZER = "optimizer."
# metadata fields stored as JSON text; the rest are plain strings
_JSON_FIELDS = ("recipe_name", "overrides", "recipe", "param_groups", "optimizer_scalars", "extra")
_REQUIRED = ("colorkit_version", "step", "recipe", "param_groups", "precision")
# recipe fields that decide the networks' structure; the others (losses, lr, ...) may
# change between a checkpoint and the run that resumes from it
_ARCHITECTURE_FIELDS = (
    "generator",
    "discriminator",
    "refiner",
    "generator_options",
    "discriminator_options",
    "refiner_options",
    "color_space",
)


class CheckpointError(ColorkitError, ValueError):
    """A checkpoint that cannot be read, written or used; the message names the file."""


class CheckpointWarning(UserWarning):
    """A checkpoint was skipped (e.g. truncated) by :func:`latest_checkpoint`."""


# -- paths ----------------------------------------------------------------------------------
def checkpoint_path(run_dir: str | Path, step: int) -> Path:
    """The file name of a run's checkpoint at a step.

    Args:
        run_dir: the run's directory.
        step: the training step, at least 0.

    Returns:
        ``run_dir / f"step-{step:08d}.safetensors"``.

    Raises:
        ValueError: if ``step`` is not a non-negative integer.
    """
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be a non-negative integer, got {step!r}")
    return Path(run_dir) / f"step-{step:08d}.safetensors"


def _checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """Files named like checkpoints in ``run_dir``, oldest first."""
    if not run_dir.is_dir():
        return []
    found = []
    for entry in run_dir.iterdir():
        match = _NAME.match(entry.name)
        if match and entry.is_file():
            found.append((int(match.group(1)), entry))
    return sorted(found, key=lambda item: (item[0], item[1].name))


def _optimizer_tensors(
    model: Colorizer,
) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """The optimisers' state flattened: tensors, JSON param_groups, non-tensor state."""
    tensors: dict[str, torch.Tensor] = {}
    groups: dict[str, Any] = {}
    scalars: dict[str, Any] = {}
    for part, optimizer in model.optimizers.items():
        state = optimizer.state_dict()
        groups[part] = jsonable(state["param_groups"], f"optimizer {part!r} param_groups")
        for index, entries in state["state"].items():
            for key, value in entries.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"{_OPTIMIZER}{part}.{index}.{key}"] = value
                else:
                    scalars.setdefault(part, {}).setdefault(str(index), {})[key] = jsonable(
                        value, f"optimizer {part!r} state", False
                    )
    return tensors, groups, scalars


def _storable(tensor: torch.Tensor) -> torch.Tensor:
    # safetensors refuses shared or non-contiguous storage; a detached CPU copy is neither
    return tensor.detach().to("cpu", copy=True).contiguous()


# -- writing --------------------------------------------------------------------------------
def _write(
    path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str], what: str
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # the temporary name starts with a dot, so latest_checkpoint never matches it
        with atomic_path(path) as temporary:
            save_file(tensors, str(temporary), metadata=metadata)
    except (OSError, SafetensorError) as exc:
        raise CheckpointError(f"cannot write {what} {str(path)!r}: {exc}") from exc
    return path


def _model_metadata(model: Colorizer, fmt: str, step: int | str) -> dict[str, str]:
    """What every file colorkit writes says about the model: format, recipe, precision."""
    return {
        "format": fmt,
        "colorkit_version": __version__,
        "step": str(step),
        "precision": str(model.precision),
        "recipe_name": json.dumps(model.recipe_name),
        "overrides": json.dumps(jsonable(model.overrides, "overrides")),
        "recipe": json.dumps(jsonable(model.recipe.to_dict(), "recipe")),
    }


def save_checkpoint(
    model: Colorizer,
    path: str | Path,
    step: int,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically.

    The file is written under a temporary name in the same directory, flushed to disk,
    then renamed onto ``path``; a crash at any moment leaves any previous file at
    ``path`` whole and never leaves a partial file under a checkpoint's name.

    Args:
        model: the model; its weights, optimiser state, recipe and precision are saved.
        path: the file to write, usually :func:`checkpoint_path`; parent folders are created.
        step: the training step the model has completed.
        extra: caller data kept in the metadata (e.g. data folder, image size, seed);
            must be JSON data (tuples and paths are converted).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        CheckpointError: if ``extra`` holds something JSON cannot represent (nothing is
            written then), or the file cannot be written.
        ValueError: if ``step`` is not a non-negative integer.
    """
    path = Path(path)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be a non-negative integer, got {step!r}")
    try:
        extra_data = jsonable(dict(extra or {}), "extra", strict=True)
    except TypeError as exc:
        raise CheckpointError(f"cannot write checkpoint {str(path)!r}: {exc}") from None

    optimizer_tensors, param_groups, scalars = _optimizer_tensors(model)
    tensors = {_MODEL + key: value for key, value in model.state_dict().items()}
    tensors.update(optimizer_tensors)
    tensors = {name: _storable(value) for name, value in tensors.items()}
    metadata = {
        **_model_metadata(model, FORMAT, step),
        "param_groups": json.dumps(param_groups),
        "optimizer_scalars": json.dumps(scalars),
        "extra": json.dumps(extra_data),
    }

    return _write(path, tensors, metadata, "checkpoint")


# -- reading --------------------------------------------------------------------------------
def _check_file(path: Path) -> None:
    """Raise a CheckpointError for a missing, empty, non-safetensors or truncated file.

    safetensors detects all of these too, but its messages do not say which it was.
    """
    name = repr(str(path))
    if not path.exists():
        raise CheckpointError(f"checkpoint {name} does not exist")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {name} is not a file; expected a .safetensors file")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"checkpoint {name} is empty (0 bytes); expected a safetensors file")
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise CheckpointError(
                f"checkpoint {name} is not a safetensors file: only {size} bytes, "
                "shorter than a safetensors header"
            )
        (header_size,) = struct.unpack("<Q", prefix)
        first = handle.read(1)
        if first != b"{":
            raise CheckpointError(
                f"checkpoint {name} is not a safetensors file (no JSON header after the "
                "8-byte length)"
            )
        if 8 + header_size > size:
            raise CheckpointError(
                f"checkpoint {name} is truncated: its header alone should take "
                f"{8 + header_size} bytes but the file has {size}"
            )
        try:
            header = json.loads(first + handle.read(header_size - 1))
        except (ValueError, UnicodeDecodeError) as exc:
            raise CheckpointError(
                f"checkpoint {name} has a corrupt safetensors header: {exc}"
            ) from None
    if not isinstance(header, dict):
        raise CheckpointError(f"checkpoint {name} has a corrupt safetensors header (not an object)")
    ends = [
        entry["data_offsets"][1]
        for key, entry in header.items()
        if key != "__metadata__"
        and isinstance(entry, dict)
        and isinstance(entry.get("data_offsets"), list)
        and len(entry["data_offsets"]) == 2
        and isinstance(entry["data_offsets"][1], int)
    ]
    expected = 8 + header_size + max(ends, default=0)
    if size < expected:
        raise CheckpointError(
            f"checkpoint {name} is truncated: expected {expected} bytes, the file has {size}"
        )


def _raw_metadata(path: Path) -> dict[str, str]:
    _check_file(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata()
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is not a valid safetensors file: {exc}"
        ) from None
    return dict(metadata or {})


def read_metadata(path: str | Path) -> dict[str, Any]:
    """A checkpoint's metadata, without loading its tensors.

    Args:
        path: the checkpoint file.

    Returns:
        ``format``, ``colorkit_version``, ``precision`` (strings), ``step`` (int),
        ``recipe_name`` (str or ``None``), ``overrides``, ``recipe``
        (:meth:`Recipe.to_dict` form), ``param_groups`` (per optimised part),
        ``optimizer_scalars`` and ``extra`` (dicts).

    Raises:
        CheckpointError: for a missing, empty, truncated or corrupt file, a safetensors
            file that is not a colorkit checkpoint, or an unknown format version.
    """
    path = Path(path)
    name = repr(str(path))
    raw = _raw_metadata(path)
    fmt = raw.get("format")
    if fmt is None:
        raise CheckpointError(
            f"{name} is a safetensors file but not a colorkit checkpoint "
            f"(its metadata has no 'format' field; expected {FORMAT!r})"
        )
    if fmt == WEIGHTS_FORMAT:
        raw.setdefault("param_groups", "{}")
    elif fmt != FORMAT:
        if fmt.startswith(_FORMAT_PREFIXES):
            raise CheckpointError(
                f"checkpoint {name} has format {fmt!r}, which colorkit {__version__} "
                f"cannot read (it reads {FORMAT!r}; written by colorkit "
                f"{raw.get('colorkit_version', '?')}, a newer colorkit may read it)"
            )
        raise CheckpointError(
            f"{name} is not a colorkit checkpoint: format {fmt!r}, expected {FORMAT!r}"
        )
    for key in _REQUIRED:
        if key not in raw:
            raise CheckpointError(f"checkpoint {name} lacks the metadata field {key!r}")
    meta: dict[str, Any] = dict(raw)
    for key in _JSON_FIELDS:
        if key not in raw:
            meta[key] = None if key == "recipe_name" else {}
            continue
        try:
            meta[key] = json.loads(raw[key])
        except ValueError as exc:
            raise CheckpointError(
                f"checkpoint {name} has corrupt metadata field {key!r}: {exc}"
            ) from None
    try:
        meta["step"] = int(raw["step"])
    except ValueError:
        raise CheckpointError(
            f"checkpoint {name} has step {raw['step']!r}; expected an integer"
        ) from None
    for key in ("recipe", "param_groups", "extra", "overrides", "optimizer_scalars"):
        if not isinstance(meta[key], dict):
            raise CheckpointError(
                f"checkpoint {name} has metadata field {key!r} of type "
                f"{type(meta[key]).__name__}; expected a JSON object"
            )
    return meta


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest readable checkpoint of a run.

    Files are ordered by the step in their name (``step-<step>.safetensors``). An
    unreadable one (truncated, corrupt, not a colorkit checkpoint) is skipped with a
    :class:`CheckpointWarning` naming it, and the previous one is tried.

    Args:
        run_dir: the run's directory; it need not exist.

    Returns:
        The checkpoint's path, or ``None`` if the run has no readable checkpoint.
    """
    for _, path in reversed(_checkpoints(Path(run_dir))):
        try:
            read_metadata(path)
        except CheckpointError as exc:
            warnings.warn(
                f"skipping checkpoint {str(path)!r}: {exc}", CheckpointWarning, stacklevel=2
            )
            continue
        return path
    return None


def prune_checkpoints(run_dir: str | Path, keep: int) -> list[Path]:
    """Delete all but a run's newest ``keep`` checkpoints.

    Only readable checkpoints count towards ``keep``, so a truncated newest file never
    causes the last good checkpoint to be deleted; unreadable files newer than the
    kept ones are left in place. Temporary files of writes in progress are not touched.

    Args:
        run_dir: the run's directory; it need not exist.
        keep: how many of the newest readable checkpoints to keep (0 deletes them all).

    Returns:
        The deleted files, oldest first.

    Raises:
        ValueError: if ``keep`` is negative.
    """
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
        raise ValueError(f"keep must be a non-negative integer, got {keep!r}")
    found = _checkpoints(Path(run_dir))
    # files before index `cut` are deleted; with fewer than `keep` readable ones, none are
    cut = len(found) if keep == 0 else 0
    kept = 0
    for index in range(len(found) - 1, -1, -1):
        if kept == keep:
            break
        try:
            read_metadata(found[index][1])
        except CheckpointError:
            continue
        kept += 1
        if kept == keep:
            cut = index
    deleted = []
    for _, path in found[:cut]:
        path.unlink()
        deleted.append(path)
    return deleted


# -- using checkpoints ----------------------------------------------------------------------
def _recipe(meta: Mapping[str, Any], path: Path) -> Recipe:
    try:
        return Recipe.from_dict(meta["recipe"])
    except (InvalidOptionError, TypeError) as exc:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has a recipe colorkit {__version__} cannot "
            f"rebuild (written by colorkit {meta.get('colorkit_version', '?')}): {exc}"
        ) from None


def _check_installed(recipe: Recipe, path: Path, registry: Registry) -> None:
    needed = [("generator", recipe.generator), ("refiner", recipe.refiner)]
    if recipe.discriminator is not None:
        needed.append(("discriminator", recipe.discriminator))
    needed += [("loss", name) for name in recipe.loss_names()]
    for kind, name in needed:
        if name not in registry.list(kind):
            raise CheckpointError(
                f"checkpoint {str(path)!r} needs {kind} {name!r}, which is not installed; "
                f"install the plugin that provides it (installed {kind}s: "
                f"{', '.join(registry.list(kind)) or 'none'})"
            )


def _describe(name: str | None, recipe: Mapping[str, Any]) -> str:
    parts = ", ".join(f"{key}={recipe.get(key)!r}" for key in _ARCHITECTURE_FIELDS)
    return f"{name or 'custom recipe'!r} ({parts})"


def _shape_mismatch(
    model: Colorizer,
    shapes: Mapping[str, tuple[int, ...]],
    parts: tuple[str, ...] | None = None,
) -> str | None:
    """Text naming the first parameter that differs between model and checkpoint.

    ``parts`` limits the comparison to parameters with these prefixes.
    """
    state = model.state_dict()
    if parts is not None:
        state = {key: value for key, value in state.items() if key.startswith(parts)}
    for key, value in state.items():
        if key not in shapes:
            return f"parameter {key!r} {tuple(value.shape)} of the model is not in the checkpoint"
        if tuple(shapes[key]) != tuple(value.shape):
            return (
                f"parameter {key!r} has shape {tuple(shapes[key])} in the checkpoint but "
                f"{tuple(value.shape)} in the model"
            )
    for key, shape in shapes.items():
        if key not in state:
            return f"parameter {key!r} {tuple(shape)} of the checkpoint is not in the model"
    return None


def _model_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    with safe_open(str(path), framework="pt") as handle:
        return {
            key[len(_MODEL) :]: tuple(handle.get_slice(key).get_shape())
            for key in handle.keys()  # noqa: SIM118 - safe_open is not a mapping
            if key.startswith(_MODEL)
        }


def _read_tensors(path: Path, prefix: str) -> dict[str, torch.Tensor]:
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            return {
                key: handle.get_tensor(key)
                for key in handle.keys()  # noqa: SIM118 - safe_open is not a mapping
                if key.startswith(prefix)
            }
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(
            f"cannot read the tensors of checkpoint {str(path)!r}: {exc}"
        ) from None


def _locate(path_or_name: str | Path) -> Path:
    """A checkpoint file, or the file of registered weights of that name."""
    path = Path(path_or_name)
    if path.exists() or path.suffix or len(path.parts) > 1:
        return path
    return resolve_weights(str(path_or_name))


def load(path: str | Path, device: str | torch.device = "cpu", fast: bool = True) -> Colorizer:
    """Rebuild a model from a checkpoint or weights, ready for :meth:`Colorizer.colorize`.

    The model is built from the saved recipe and overrides, its weights are loaded
    strictly, it is moved to ``device`` and put in eval mode. It is fast like a built
    model (precision ``"auto"`` for ``device``, channels-last weights, the inference copy
    for colorizing); with ``fast=False`` it is the plain model with the saved precision.
    Change the precision with :meth:`Colorizer.set_precision`. Optimiser state is not
    loaded; use :func:`restore` to resume training. A weights-only file (see
    :func:`export_weights`) fills the generator and the refiner; the discriminator
    keeps its initial weights.

    Args:
        path: a checkpoint or weights file, or the name of registered weights
            (``colorkit list weights``), e.g. ``"starter"``.
        device: where to put the model.
        fast: the fast defaults of :class:`~colorkit.engine.Colorizer`; ``False`` for
            the plain model.

    Returns:
        The model.

    Raises:
        CheckpointError: for an unreadable file (see :func:`read_metadata`), a recipe
            needing a component that is not installed (naming it), or weights that do
            not fit the rebuilt model.
        WeightsError: for a name that is neither a file nor registered weights (naming
            the nearest registered ones), or registered weights whose file is missing.
    """
    path = _locate(path)
    meta = read_metadata(path)
    recipe = _recipe(meta, path)
    registry = default_registry()
    _check_installed(recipe, path, registry)
    try:
        model = Colorizer(
            recipe, registry, name=meta["recipe_name"], overrides=meta["overrides"], fast=fast
        )
    except (ColorkitError, ValueError, TypeError) as exc:
        raise CheckpointError(
            f"cannot rebuild the model of checkpoint {str(path)!r}: {exc}"
        ) from exc
    parts = _COLORIZING_PARTS if meta["format"] == WEIGHTS_FORMAT else None
    mismatch = _shape_mismatch(model, _model_shapes(path), parts)
    if mismatch is not None:
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not fit the model its recipe builds: {mismatch}"
        )
    state = {key[len(_MODEL) :]: value for key, value in _read_tensors(path, _MODEL).items()}
    if parts is None:
        model.load_state_dict(state, strict=True)
    else:
        for part in parts:
            getattr(model, part[:-1]).load_state_dict(
                {key[len(part) :]: value for key, value in state.items() if key.startswith(part)},
                strict=True,
            )
    model.to(device)
    try:
        model.set_precision("auto" if fast else meta["precision"])
        resolve_precision(meta["precision"], model.device)  # a fast load checks it too
    except ValueError as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} has a bad precision: {exc}") from None
    return model.eval()


def initialize_from(model: Colorizer, path: str | Path) -> list[str]:
    """Copy the weights of another run into a new model, part by part, to fine-tune it.

    Each part of ``model`` (``generator``, ``refiner``, ``discriminator``) that has
    parameters and that the file holds is copied when every shape matches; a part the file
    lacks (e.g. the discriminator of a weights-only export, or a refiner of a recipe
    without one) keeps its fresh initialisation. The recipes may differ (initialise
    ``pix2pix`` from ``unet-l1``, say); optimiser state is never copied.

    Args:
        model: the freshly built model.
        path: a checkpoint or weights file, or the name of registered weights.

    Returns:
        The parts copied, e.g. ``["generator"]``.

    Raises:
        CheckpointError: for an unreadable file, a part whose shapes differ (naming the
            first parameter that does), or a file from which no part could be copied.
        WeightsError: for a name that is neither a file nor registered weights.
    """
    path = _locate(path)
    read_metadata(path)  # a clear error for a file that is no colorkit checkpoint
    shapes = _model_shapes(path)
    copied = []
    for part in ("generator", "refiner", "discriminator"):
        prefix = f"{part}."
        own = {k: v for k, v in model.state_dict().items() if k.startswith(prefix)}
        saved = {k: v for k, v in shapes.items() if k.startswith(prefix)}
        if not own or not saved:
            continue
        mismatch = _shape_mismatch(model, saved, (prefix,))
        if mismatch is not None:
            raise CheckpointError(f"cannot initialise the {part} from {str(path)!r}: {mismatch}")
        tensors = _read_tensors(path, _MODEL + prefix)
        getattr(model, part).load_state_dict(
            {key[len(_MODEL + prefix) :]: value for key, value in tensors.items()}, strict=True
        )
        copied.append(part)
    if not copied:
        raise CheckpointError(
            f"{str(path)!r} holds no weights for any part of the {model.recipe_name!r} model"
        )
    return copied


def _averaged(paths: Sequence[Path]) -> Colorizer:
    """The first checkpoint's model with every floating tensor averaged over all of them."""
    models = [load(path, fast=False) for path in paths]
    first = models[0]
    for path, model in zip(paths[1:], models[1:], strict=True):
        if (model.recipe_name, model.overrides, model.recipe.to_dict()) != (
            first.recipe_name,
            first.overrides,
            first.recipe.to_dict(),
        ):
            raise CheckpointError(
                f"cannot average {str(path)!r} with {str(paths[0])!r}: their models differ "
                f"({_describe(model.recipe_name, model.recipe.to_dict())} against "
                f"{_describe(first.recipe_name, first.recipe.to_dict())})"
            )
    states = [model.state_dict() for model in models]
    averaged = {
        # integer buffers (BatchNorm's step counts) are the last checkpoint's
        key: torch.stack([state[key].double() for state in states]).mean(0).to(value.dtype)
        if value.is_floating_point()
        else states[-1][key]
        for key, value in states[0].items()
    }
    first.load_state_dict(averaged)
    return first


def export_weights(
    source: str | Path | Colorizer | Sequence[str | Path], path: str | Path, dtype: str = "fp32"
) -> Path:
    """Write what colorizing needs, and nothing else, to a safetensors file.

    The generator's and the refiner's weights are kept (floating-point tensors in
    ``dtype``), with the recipe, overrides, step and precision; the optimiser state and
    the discriminator are dropped. The file loads with :func:`load` (and so with
    ``colorkit colorize``) and executes no code. Written atomically.

    Several checkpoints of one run are averaged tensor by tensor (weights, biases and
    BatchNorm statistics): the average of the last checkpoints of a noisy run is usually
    better than any one of them, as in stochastic weight averaging.

    Args:
        source: a checkpoint or weights file, a registered weights name, a model, or a
            sequence of checkpoints of the same model to average.
        path: the file to write; parent folders are created.
        dtype: ``"fp32"``, ``"bf16"`` or ``"fp16"``: the stored precision of the weights.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: for an unknown ``dtype`` or an empty sequence.
        CheckpointError: for an unreadable source, checkpoints of different models, or a
            file that cannot be written.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {tuple(DTYPES)}, got {dtype!r}")
    if isinstance(source, Colorizer):
        model, step, origin = source, 0, "a model in memory"
    else:
        sources = [source] if isinstance(source, (str, Path)) else list(source)
        if not sources:
            raise ValueError("export_weights needs at least one checkpoint")
        paths = [_locate(item) for item in sources]
        # fast=False keeps the saved precision, recorded below
        model = _averaged(paths) if len(paths) > 1 else load(paths[0], fast=False)
        step = read_metadata(paths[-1])["step"]
        origin = ", ".join(Path(item).name for item in paths)
    tensors = {}
    for key, value in model.state_dict().items():
        if key.startswith(_COLORIZING_PARTS):
            stored = value.to(DTYPES[dtype]) if value.is_floating_point() else value
            tensors[_MODEL + key] = _storable(stored)
    metadata = {
        **_model_metadata(model, WEIGHTS_FORMAT, step),
        "dtype": dtype,
        "extra": json.dumps({"exported_from": origin}),
    }
    return _write(Path(path), tensors, metadata, "weights")


def _architecture_difference(model: Colorizer, saved: Mapping[str, Any]) -> list[str]:
    current = json.loads(json.dumps(jsonable(model.recipe.to_dict(), "recipe")))
    return [key for key in _ARCHITECTURE_FIELDS if current.get(key) != saved.get(key)]


def _optimizer_states(
    model: Colorizer, meta: Mapping[str, Any], path: Path
) -> dict[str, dict[str, Any]]:
    """The optimisers' state dicts rebuilt from the flat tensors, checked against the model."""
    name = repr(str(path))
    saved_parts = set(meta["param_groups"])
    if saved_parts != set(model.optimizers):
        raise CheckpointError(
            f"checkpoint {name} has optimiser state for {sorted(saved_parts)} but the model "
            f"trains {sorted(model.optimizers)}"
        )
    states: dict[str, dict[str, Any]] = {
        part: {"state": {}, "param_groups": []} for part in model.optimizers
    }
    for key, value in _read_tensors(path, _OPTIMIZER).items():
        try:
            part, index, entry = key[len(_OPTIMIZER) :].split(".", 2)
            states[part]["state"].setdefault(int(index), {})[entry] = value
        except (ValueError, KeyError):
            raise CheckpointError(
                f"checkpoint {name} has an unexpected optimiser tensor {key!r}"
            ) from None
    for part, entries in meta["optimizer_scalars"].items():
        for index, values in entries.items():
            if part in states:
                states[part]["state"].setdefault(int(index), {}).update(values)
    for part, optimizer in model.optimizers.items():
        groups = meta["param_groups"][part]
        # JSON turned tuples (Adam's betas) into lists; restore them so the
        # optimiser's settings equal the saved ones exactly
        states[part]["param_groups"] = [
            {k: (tuple(v) if isinstance(v, list) and k != "params" else v) for k, v in g.items()}
            for g in groups
        ]
        params = [p for group in optimizer.param_groups for p in group["params"]]
        saved_count = sum(len(group.get("params", [])) for group in groups)
        if len(groups) != len(optimizer.param_groups) or saved_count != len(params):
            raise CheckpointError(
                f"checkpoint {name}: optimiser {part!r} has {saved_count} parameters in "
                f"{len(groups)} groups, the model's has {len(params)} in "
                f"{len(optimizer.param_groups)}"
            )
        ids = [i for group in groups for i in group["params"]]
        for index, entries in states[part]["state"].items():
            if index not in ids:
                raise CheckpointError(
                    f"checkpoint {name}: optimiser {part!r} has state for unknown "
                    f"parameter index {index}"
                )
            param = params[ids.index(index)]
            for entry, value in entries.items():
                tensor = isinstance(value, torch.Tensor) and value.dim() > 0
                if tensor and value.shape != param.shape:
                    raise CheckpointError(
                        f"checkpoint {name}: optimiser {part!r} state {entry!r} of "
                        f"parameter {index} has shape {tuple(value.shape)}, the "
                        f"parameter has {tuple(param.shape)}"
                    )
    return states


def restore(model: Colorizer, path: str | Path) -> dict[str, Any]:
    """Load a checkpoint's weights and optimiser state into a model, to resume training.

    Everything is checked before anything is changed: a failed restore leaves the
    model as it was. The next :meth:`Colorizer.train_step` continues exactly as if
    training had not stopped (given the same batch and random state). The model's
    precision is left as it is.

    Args:
        model: a model built from the same recipe (losses and learning rate may differ;
            the saved optimiser settings are restored).
        path: the checkpoint file.

    Returns:
        The metadata (see :func:`read_metadata`), including ``step`` and ``extra``.

    Raises:
        CheckpointError: for an unreadable file, or a checkpoint of another architecture
            (naming the differing recipe fields, the first mismatching parameter with
            both shapes, and the two recipes).
    """
    path = Path(path)
    meta = read_metadata(path)
    if meta["format"] == WEIGHTS_FORMAT:
        raise CheckpointError(
            f"{str(path)!r} holds weights only (no optimiser state, no discriminator): it "
            "colorizes but cannot resume training; resume from a training checkpoint"
        )
    differing = _architecture_difference(model, meta["recipe"])
    mismatch = _shape_mismatch(model, _model_shapes(path))
    if differing or mismatch:
        reasons = []
        if mismatch:
            reasons.append(mismatch)
        if differing:
            reasons.append("the recipes differ in " + ", ".join(differing))
        raise CheckpointError(
            f"checkpoint {str(path)!r} holds another architecture than the model: "
            f"{'; '.join(reasons)}. Checkpoint recipe: "
            f"{_describe(meta['recipe_name'], meta['recipe'])}; model recipe: "
            f"{_describe(model.recipe_name, model.recipe.to_dict())}"
        )
    optimizer_states = _optimizer_states(model, meta, path)
    state = {key[len(_MODEL) :]: value for key, value in _read_tensors(path, _MODEL).items()}
    try:
        model.load_state_dict(state, strict=True)
        for part, optimizer in model.optimizers.items():
            optimizer.load_state_dict(optimizer_states[part])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"cannot restore checkpoint {str(path)!r}: {exc}") from exc
    return meta
