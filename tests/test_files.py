"""Tests of colorkit.files: atomic writes and the clean-up of what a killed write left."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support import dead_pid

from colorkit.files import atomic_path, remove_stale_temporaries


def test_atomic_path_replaces_the_target_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "scores.json"
    target.write_text("old")
    with atomic_path(target) as temporary:
        assert temporary.parent == tmp_path and temporary.name.startswith(".scores.json.tmp-")
        temporary.write_text("new")
        assert target.read_text() == "old"
    assert target.read_text() == "new"
    with pytest.raises(RuntimeError, match="interrupted"), atomic_path(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.json"]


@pytest.mark.skipif(os.name != "posix", reason="process ids are only checked on POSIX")
def test_only_temporaries_of_finished_writers_are_removed(tmp_path: Path) -> None:
    stale = tmp_path / f".a.png.tmp-{dead_pid()}-0123abcd"
    live = tmp_path / f".b.png.tmp-{os.getpid()}-0123abcd"
    others = [tmp_path / "c.png.tmp-1-ab", tmp_path / ".d.png.tmp-x", tmp_path / "e.png"]
    for path in [stale, live, *others]:
        path.write_bytes(b"partial")
    with pytest.warns(UserWarning, match=r"removed 1 temporary file.*\.a\.png\.tmp-"):
        assert remove_stale_temporaries(tmp_path) == [stale]
    assert not stale.exists()
    assert all(path.exists() for path in [live, *others])
    assert remove_stale_temporaries(tmp_path / "missing") == []
