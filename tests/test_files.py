"""Tests of colorkit.files: atomic writes and the clean-up of what a killed write left."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch
from support import dead_pid

from colorkit.files import atomic_path, jsonable, remove_stale_temporaries, write_json


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


def test_jsonable_makes_plain_json_data() -> None:
    data = {
        "path": Path("a/b"),
        "pair": (1, 2),
        2: torch.tensor(0.5),
        "device": torch.device("cpu"),
    }
    assert jsonable(data) == {"path": "a/b", "pair": [1, 2], "2": 0.5, "device": "cpu"}
    with pytest.raises(TypeError, match=r"extra\['device'\] is a device"):
        jsonable({"device": torch.device("cpu")}, "extra", strict=True)


def test_write_json_is_atomic_and_can_write_nan_as_null(tmp_path: Path) -> None:
    target = write_json(tmp_path / "new" / "scores.json", {"a": (1.0, math.nan)})
    assert target.read_text() == '{\n  "a": [\n    1.0,\n    NaN\n  ]\n}\n'
    write_json(target, {"a": math.inf}, nan_as_null=True)
    assert json.loads(target.read_text()) == {"a": None}
    assert [p.name for p in target.parent.iterdir()] == ["scores.json"]
