"""colorkit serve's application through Starlette's test client: limits, names, sessions, errors."""

from __future__ import annotations

import io
import re
import socket
import struct
import threading
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("starlette", reason="colorkit serve needs the web extra: pip install -e .[web]")
pytest.importorskip("httpx", reason="starlette's test client needs httpx (the dev extra)")

from starlette.testclient import TestClient

import colorkit
from colorkit import web
from colorkit.checkpoint import save_checkpoint
from colorkit.cli import main
from colorkit.registry import Component, default_registry
from colorkit.weights import Weights, WeightsError

TINY = {"generator_depth": 3, "base_channels": 8, "refiner_hidden": 16, "refiner_patch": 4}
BASE = "http://127.0.0.1"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = colorkit.build("pix2pix+mlp", **TINY)
    return save_checkpoint(model, tmp_path_factory.mktemp("run") / "tiny.safetensors", 1)


def _jpeg(width: int = 96, height: int = 64, mode: str = "L") -> bytes:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width×height`` pixels and holds almost nothing."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


@pytest.fixture
def client_for(checkpoint: Path) -> Iterator[Any]:
    clients: list[TestClient] = []

    def make(**options: Any) -> TestClient:
        app = web.create_app([str(checkpoint)], **options)
        client = TestClient(app, base_url=BASE)
        client.__enter__()
        clients.append(client)
        assert client.get("/").status_code == 200  # the page gives the session cookie
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def _wait(client: TestClient, job_id: str, timeout: float = 30.0) -> dict[str, Any]:
    server = client.app.state.colorkit
    job = next(s.jobs[job_id] for s in server.sessions.values() if job_id in s.jobs)
    deadline = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if job.status in ("done", "error"):
            break
        deadline.wait(0.02)
    state = client.get("/api/state").json()
    return next(j for j in state["jobs"] if j["id"] == job_id)


def _upload(client: TestClient, data: bytes, name: str, **params: Any) -> Any:
    return client.post("/api/jobs", params={"name": name, **params}, content=data)


def test_page_assets_and_headers(client_for: Any) -> None:
    client = client_for()
    page = client.get("/")
    assert "text/html" in page.headers["content-type"]
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert client.get("/assets/app.js").status_code == 200
    for asset in ("/", "/assets/app.js", "/assets/style.css"):  # offline: nothing from elsewhere
        assert not re.search(r"(https?:)?//[\w.-]+\.\w", client.get(asset).text), asset
    assert client.get("/assets/style.css").headers["content-type"].startswith("text/css")
    for path in ("/assets/web.py", "/assets/..%2Fweb.py", "/assets/index.html", "/web.py"):
        assert client.get(path).status_code == 404, path
    state = client.get("/api/state").json()
    assert state["weights"][0]["label"] == "tiny.safetensors"
    assert state["working_size"] == {"default": 256, "min": 32, "max": 1024}


def test_a_photo_is_colorized_at_full_size_and_downloaded(client_for: Any) -> None:
    client = client_for()
    data = _jpeg(96, 64)
    response = _upload(client, data, "old photo.jpg", working_size="64")
    assert response.status_code == 202, response.text
    job = _wait(client, response.json()["id"])
    assert job["status"] == "done", job
    assert job["download_name"] == "old photo-colorized.jpg"
    result = client.get(f"/api/jobs/{job['id']}/result")
    assert result.status_code == 200
    assert "filename*=utf-8''old%20photo-colorized.jpg" in result.headers["content-disposition"]
    colour = Image.open(io.BytesIO(result.content))
    assert colour.size == (96, 64) and colour.mode == "RGB"
    for side in ("before", "after"):
        preview = client.get(f"/api/jobs/{job['id']}/{side}.jpg")
        assert Image.open(io.BytesIO(preview.content)).size == (96, 64)
    assert client.get(f"/api/jobs/{job['id']}/upload.jpg").status_code == 404


def test_only_the_session_that_uploaded_reads_its_results(
    client_for: Any, checkpoint: Path
) -> None:
    client = client_for()
    job = _upload(client, _jpeg(), "mine.jpg").json()
    assert _wait(client, job["id"])["status"] == "done"
    stranger = TestClient(client.app, base_url=BASE)  # same server, no cookie
    assert stranger.get("/api/state").status_code == 401
    assert stranger.get(f"/api/jobs/{job['id']}/result").status_code == 404
    stranger.get("/")  # a session of its own sees none of the other's
    assert stranger.get("/api/state").json()["jobs"] == []
    assert stranger.get(f"/api/jobs/{job['id']}/result").status_code == 404
    assert stranger.get("/api/results.zip").status_code == 404
    assert _upload(TestClient(client.app, base_url=BASE), b"x", "a.jpg").status_code == 401


def test_old_idle_sessions_are_forgotten_with_their_results(
    client_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web, "_SESSIONS", 2)
    client = client_for()
    job = _upload(client, _jpeg(), "first.jpg").json()
    assert _wait(client, job["id"])["status"] == "done"
    server = client.app.state.colorkit
    folders = list(server.root.iterdir())
    for _ in range(2):  # two more browsers
        assert TestClient(client.app, base_url=BASE).get("/").status_code == 200
    assert len(server.sessions) == 2
    assert client.get("/api/state").status_code == 401
    assert not any(folder.exists() for folder in folders)


def test_upload_names_never_become_paths(client_for: Any) -> None:
    client = client_for()
    server = client.app.state.colorkit
    names = {"../../../etc/passwd.jpg": "passwd.jpg", "C:\\photos\\été 1950.JPG": "été 1950.JPG"}
    for raw, shown in names.items():
        job = _upload(client, _jpeg(), raw).json()
        assert job["name"] == shown
        done = _wait(client, job["id"])
        assert done["status"] == "done"
        assert done["download_name"] == f"{Path(shown).stem}-colorized.jpg"
        files = [p for p in server.root.rglob("*") if p.is_file()]
        assert all(p.name in ("upload.jpg", "before.jpg", "after.jpg") for p in files), files
    result = client.get(f"/api/jobs/{job['id']}/result")
    assert (
        "filename*=utf-8''%C3%A9t%C3%A9%201950-colorized.jpg"
        in result.headers["content-disposition"]
    )


def test_limits_refuse_large_uploads_and_decompression_bombs(client_for: Any) -> None:
    client = client_for(limits=web.Limits(upload_bytes=4096, pixels=100_000))
    too_big = _upload(client, b"\xff" * 5000, "huge.jpg")
    assert too_big.status_code == 413
    assert too_big.json()["error"] == "huge.jpg: file too large (the limit is 4 KiB)"
    bomb = _upload(client, _png_header(100_000, 100_000), "bomb.png")
    assert bomb.status_code == 422 and "bomb.png: image too large" in bomb.json()["error"]
    many = _upload(client, _png_header(400, 300), "many.png")
    assert many.status_code == 422
    assert many.json()["error"] == (
        "many.png: image too large (400×300 pixels, 0.12 megapixels; the limit is 0.1)"
    )
    assert not list(client.app.state.colorkit.root.iterdir())  # nothing refused is kept
    job = _upload(client, _jpeg(48, 32), "fine.jpg").json()  # the server goes on serving
    assert _wait(client, job["id"])["status"] == "done"


def test_bad_files_and_settings_get_messages_and_others_complete(client_for: Any) -> None:
    client = client_for()
    corrupt = _upload(client, b"not an image" * 20, "notes.jpg")
    assert corrupt.status_code == 422
    assert corrupt.json()["error"] == "notes.jpg: not an image file PIL can read"
    truncated = _upload(client, _jpeg(160, 120)[:600], "cut.jpg")  # a valid header
    good = _upload(client, _jpeg(), "good.jpg")
    assert truncated.status_code == good.status_code == 202
    failed = _wait(client, truncated.json()["id"])
    assert failed["status"] == "error" and "cannot decode image" in failed["message"]
    assert str(client.app.state.colorkit.root) not in failed["message"]
    assert _wait(client, good.json()["id"])["status"] == "done"
    bad_size = _upload(client, _jpeg(), "a.jpg", working_size="5000")
    assert bad_size.status_code == 400
    assert "working_size must be a whole number of pixels from 32 to 1024" in bad_size.text
    assert _upload(client, _jpeg(), "a.jpg", weights="99").status_code == 400


def test_uploads_queue_and_run_one_at_a_time(
    client_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    running: list[int] = []
    active = 0
    real = web.colorize_file

    def slow(*args: Any, **kwargs: Any) -> Path:
        nonlocal active
        active += 1
        running.append(active)
        release.wait(10)
        try:
            return real(*args, **kwargs)
        finally:
            active -= 1

    monkeypatch.setattr(web, "colorize_file", slow)
    client = client_for(limits=web.Limits(queued=2))
    first = _upload(client, _jpeg(), "1.jpg").json()
    for _ in range(500):
        if client.app.state.colorkit.sessions and running:
            break
        threading.Event().wait(0.01)
    second, third = (_upload(client, _jpeg(), f"{n}.jpg").json() for n in (2, 3))
    assert (second["position"], third["position"]) == (0, 1)
    full = _upload(client, _jpeg(), "4.jpg")
    assert full.status_code == 503 and "2 images are already waiting" in full.json()["error"]
    states = {j["name"]: j["status"] for j in client.get("/api/state").json()["jobs"]}
    assert states == {"1.jpg": "running", "2.jpg": "queued", "3.jpg": "queued"}
    release.set()
    for job in (first, second, third):
        assert _wait(client, job["id"])["status"] == "done"
    assert max(running) == 1
    archive = zipfile.ZipFile(io.BytesIO(client.get("/api/results.zip").content))
    assert archive.namelist() == ["1-colorized.jpg", "2-colorized.jpg", "3-colorized.jpg"]


def test_foreign_host_headers_are_refused(client_for: Any) -> None:
    client = client_for()
    assert client.get("/", headers={"host": "evil.example"}).status_code == 400
    assert client.get("/", headers={"host": "localhost:8000"}).status_code == 200
    assert client.get("/", headers={"host": "[::1]:8000"}).status_code == 200


class _Plugin:
    def __init__(self, path: Path) -> None:
        self.path = path

    @colorkit.hookimpl
    def colorkit_components(self) -> list[Component]:
        return [Component("weights", "gone-test-weights", Weights(self.path))]


def test_missing_registered_weights_are_shown_not_fatal(
    client_for: Any, tmp_path: Path, checkpoint: Path
) -> None:
    plugin = _Plugin(tmp_path / "never-written.safetensors")
    registry = default_registry()
    registry.register_plugin(plugin, name="gone-test-weights")
    try:
        client = client_for()
        client.app.state.colorkit  # noqa: B018 - the app starts despite the missing file
        state = client.get("/api/state").json()
        gone = next(w for w in state["weights"] if w["label"] == "gone-test-weights")
        assert gone["status"] == "missing" and "never-written.safetensors" in gone["message"]
        job = _upload(client, _jpeg(), "a.jpg", weights=gone["key"]).json()
        failed = _wait(client, job["id"])
        assert failed["status"] == "error" and "does not exist" in failed["message"]
    finally:
        registry.unregister_plugin(plugin)


def test_unknown_weights_fail_before_the_server_starts(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="no checkpoint file 'nope'"):
        web.create_app(["nope"])
    with pytest.raises(ValueError, match=r"Limits\.pixels must be a positive integer"):
        web.Limits(pixels=0)


def test_serve_listens_on_loopback_and_warns_otherwise(
    monkeypatch: pytest.MonkeyPatch, checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bound: list[str] = []

    def run(server: Any, sockets: list[Any]) -> None:
        bound.append(sockets[0].getsockname()[0])

    monkeypatch.setattr(web.uvicorn.Server, "run", run)
    assert main(["serve", "--weights", str(checkpoint), "--port", "0"]) == 0
    out, err = capsys.readouterr()
    assert "open http://127.0.0.1:" in out and "warning" not in err
    assert bound == ["127.0.0.1"]
    # tests listen on loopback only: another address is simulated
    monkeypatch.setattr(web, "_is_loopback", lambda sock: False)
    assert main(["serve", "--weights", str(checkpoint), "--port", "0"]) == 0
    assert "which other machines can reach" in capsys.readouterr().err
    monkeypatch.setattr(web, "_MISSING", ImportError("No module named 'starlette'"))
    assert main(["serve", "--weights", str(checkpoint)]) == 2
    assert "pip install 'colorkit[web]'" in capsys.readouterr().err


def test_a_taken_port_is_a_clear_error(
    checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--weights", str(checkpoint), "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
