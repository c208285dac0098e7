"""Crash-safe file writing: a file colorkit writes lands whole or not at all.

Every result, checkpoint and report is first written under a temporary name in its
own folder (``.<name>.tmp-<pid>-<random>``), flushed to disk, then renamed over the
target, so a crash at any moment leaves either the previous file or the new one. A
process killed before its rename leaves its temporary file behind;
:func:`remove_stale_temporaries` deletes those whose writer is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import warnings
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "remove_stale_temporaries"]

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
