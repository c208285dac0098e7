"""Crash-safe file writing: a file colorkit writes lands whole or not at all.

Every result, checkpoint and report is first written under a temporary name in its
own folder (``.<name>.tmp-<pid>-<random>``), flushed to disk, then renamed over the
target, so a crash at any moment leaves either the previous file or the new one. A
process killed before its rename leaves its temporary file behind;
:func:`remove_stale_temporaries` deletes those whose writer is gone.

JSON goes through one path: :func:`jsonable` turns settings, reports and metadata into
plain JSON data, and :func:`write_json` writes it atomically.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "jsonable", "remove_stale_temporaries", "write_json"]

_TEMPORARY = re.compile(r"\..+\.tmp-(\d+)-[0-9a-f]+")


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """A temporary path beside ``target`` that replaces it when the block succeeds.

    Write the new content to the yielded path (and close it) inside the block. On
    success the file is flushed to disk and renamed over ``target``, and the rename
    itself is made durable; on any exception the temporary file is deleted and
    ``target`` is left as it was.

    Args:
        target: the file to write; its folder must exist.

    Yields:
        The temporary path to write to (it does not exist yet).

    Raises:
        OSError: if flushing or renaming fails (the exception of the block otherwise).

    Example::

        with atomic_path("scores.json") as temporary:
            temporary.write_text("{}")
    """
    target = Path(target)
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        yield temporary
        _fsync_file(temporary)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    _fsync_dir(target.parent)


def jsonable(value: Any, where: str = "value", strict: bool = False) -> Any:
    """A copy of ``value`` made of JSON types.

    Mappings get text keys, tuples and sets become lists, paths their text, one-element
    tensors and numpy scalars their number.

    Args:
        value: the data.
        where: its name in error messages (``strict`` only).
        strict: raise for a value JSON cannot represent; without it, such a value (a
            device, a dtype) becomes its text.

    Returns:
        Dicts, lists, strings, numbers, booleans and ``None``.

    Raises:
        TypeError: with ``strict``, naming ``where`` and what cannot be represented.
    """
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                if strict and not isinstance(key, (int, float, bool)):
                    raise TypeError(f"{where} has key {key!r} of type {type(key).__name__}")
                key = str(key)
            out[key] = jsonable(item, f"{where}[{key!r}]", strict)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(item, f"{where}[{i}]", strict) for i, item in enumerate(value)]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if _is_scalar(value):  # numpy and torch scalars, one-element tensors
        return jsonable(value.item(), where, strict)
    if strict:
        raise TypeError(
            f"{where} is a {type(value).__name__}; expected JSON data "
            "(dict, list, tuple, str, int, float, bool or None)"
        )
    return str(value)


def _is_scalar(value: Any) -> bool:
    if not callable(getattr(value, "item", None)):
        return False
    size = getattr(value, "size", None)
    count = value.numel() if callable(getattr(value, "numel", None)) else size
    return getattr(value, "ndim", None) == 0 or count == 1


def write_json(path: str | Path, data: Any, nan_as_null: bool = False) -> Path:
    """Write data as indented JSON, atomically (see :func:`atomic_path`), creating its folder.

    Args:
        path: the file to write.
        data: anything :func:`jsonable` converts.
        nan_as_null: write non-finite numbers as ``null`` (strict JSON has no NaN);
            otherwise as Python's ``json`` does (``NaN``, ``Infinity``).

    Returns:
        The path written.

    Raises:
        OSError: if the folder cannot be created or the file written.
    """
    path = Path(path)
    data = jsonable(data)
    if nan_as_null:
        data = _finite(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(data, indent=2, allow_nan=not nan_as_null) + "\n")
    return path


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporary files of :func:`atomic_path` whose writing process is gone.

    Only names of the form ``.<name>.tmp-<pid>-<hex>`` are considered, and only when
    no process with that id runs on this machine, so a write in progress elsewhere on
    it is never disturbed. Elsewhere than on POSIX nothing is deleted. What is deleted
    is named in a warning.

    Args:
        folder: the folder to clean (not searched recursively; it need not exist).

    Returns:
        The files deleted.
    """
    removed: list[Path] = []
    folder = Path(folder)
    if os.name != "posix" or not folder.is_dir():
        return removed
    for path in sorted(folder.glob(".*.tmp-*")):
        match = _TEMPORARY.fullmatch(path.name)
        if match is None or _running(int(match[1])) or not path.is_file():
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    if removed:
        names = ", ".join(path.name for path in removed[:3]) + (", ..." if len(removed) > 3 else "")
        warnings.warn(
            f"{folder}: removed {len(removed)} temporary file(s) left by an interrupted write "
            f"({names})",
            stacklevel=2,
        )
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists but belongs to someone else
    return True


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    # makes the rename itself durable; directories cannot be opened on Windows
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
