"""The local web page of ``colorkit serve``: drop photos in, compare, download the colour versions.

:func:`create_app` builds the application (a Starlette ASGI app) and :func:`serve` runs it
with uvicorn. Every image goes through :func:`colorkit.colorizing.colorize_file`, the code
``colorkit colorize`` runs, so a result keeps the photo's full-resolution lightness, its
alpha and its metadata. Needs the ``web`` extra: ``pip install "colorkit[web]"``.

What keeps it safe on a shared machine:

* it listens on 127.0.0.1 unless told otherwise, and then only answers requests whose
  ``Host`` is the address it listens on (no DNS-rebinding page can reach it through a name
  of its own);
* uploads larger than :attr:`Limits.upload_bytes`, or images declaring more than
  :attr:`Limits.pixels` pixels, are refused before they are decoded (a decompression bomb
  costs nothing);
* one worker thread colorizes one image at a time; other uploads wait in a queue of at
  most :attr:`Limits.queued` images;
* each browser gets a session (a random token in a ``SameSite=Strict`` cookie) and can read
  only its own results; nothing else on disk is served, and upload names are shown and
  used for download names, never as paths;
* results live in a temporary folder that is removed when the server stops.

>>> from colorkit.web import Limits
>>> Limits().pixels
64000000
"""

from __future__ import annotations

import collections
import contextlib
import importlib.resources
import ipaddress
import re
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import time
import unicodedata
import zipfile
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image

from colorkit.checkpoint import load, read_metadata
from colorkit.colorizing import colorize_file
from colorkit.imaging import check_pixels, open_image, to_rgb, without_path
from colorkit.registry import ColorkitError, default_registry
from colorkit.weights import DEFAULT_WEIGHTS, WeightsError, resolve_weights

try:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Route
except ImportError as exc:  # the web extra is not installed: create_app says how to get it
    _MISSING: ImportError | None = exc
else:
    _MISSING = None

if TYPE_CHECKING:
    from colorkit.engine import Colorizer

__all__ = ["LOCAL_HOSTS", "Limits", "WebError", "create_app", "serve"]

#: The ``Host`` names a server listening on a loopback address answers to.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")

_COOKIE = "colorkit_session"
#: long side of the before/after images shown on the page; the download is full size
_PREVIEW = 1600
_PREVIEW_QUALITY = 88
#: sessions kept; a new one beyond this drops the oldest idle one with its results
_SESSIONS = 256
#: models kept loaded, so that switching back and forth between two weights is quick
_LOADED_MODELS = 2
_ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
# Everything the page loads comes from this server: the policy also keeps it offline.
_SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


class WebError(ColorkitError, RuntimeError):
    """The web server cannot start: the ``web`` extra is missing, or the address is taken."""


@dataclass(frozen=True)
class Limits:
    """What one server accepts.

    Attributes:
        upload_bytes: the largest upload, in bytes.
        pixels: the most pixels (width × height) of an image; larger ones are refused from
            their header, before any decoding.
        queued: the most images waiting to be colorized, all sessions together; more
            uploads are refused (HTTP 503) until some are done.
        min_working_size: the smallest working size a page may ask for.
        max_working_size: the largest working size a page may ask for (the networks'
            memory grows with its square).
    """

    upload_bytes: int = 100 * 2**20
    pixels: int = 64_000_000
    queued: int = 100
    min_working_size: int = 32
    max_working_size: int = 1024

    def __post_init__(self) -> None:
        for name in ("upload_bytes", "pixels", "queued", "min_working_size", "max_working_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Limits.{name} must be a positive integer, got {value!r}")
        if self.min_working_size > self.max_working_size:
            raise ValueError(
                f"Limits.min_working_size ({self.min_working_size}) is above "
                f"max_working_size ({self.max_working_size})"
            )


# -- weights ------------------------------------------------------------------------------------
@dataclass
class _Choice:
    """Weights the page offers: registered ones, or a file given on the command line."""

    key: str  # what the page sends back; never a path
    label: str
    source: str  # what colorkit.load is given
    description: str = ""
    # "available" (not loaded yet), "loading", "ready", "missing" (registered, file absent),
    # "error" (failed to load)
    status: str = "available"
    message: str = ""

    def to_json(self) -> dict[str, str]:
        return {
            "key": self.key,
            "label": self.label,
            "description": self.description,
            "status": self.status,
            "message": self.message,
        }


def _choices(given: Sequence[str]) -> list[_Choice]:
    """The weights given (the first is the default), then the registered ones not given.

    A file given that cannot be read, or a name that is neither a file nor registered,
    fails here, before the server starts; registered weights whose file is missing are
    offered with their error, which the page shows.
    """
    registry = default_registry()
    registered = registry.list("weights")
    sources = list(dict.fromkeys([*(given or [DEFAULT_WEIGHTS]), *registered]))
    # files are shown by name, or by the path given where two names are the same
    names = collections.Counter(Path(source).name for source in sources)
    choices = []
    for index, source in enumerate(sources):
        name = Path(source).name
        label = name if source in registered or names[name] == 1 else source
        choice = _Choice(key=str(index), label=label, source=source)
        if source in registered and not Path(source).exists():
            choice.description = registry.get("weights", source).factory.description
            try:
                resolve_weights(source, registry)
            except WeightsError as exc:
                choice.status, choice.message = "missing", str(exc)
        else:
            path = Path(source)
            if not path.is_file():
                resolve_weights(source, registry)  # raises, naming the nearest registered names
            meta = read_metadata(path)
            recipe, step = meta.get("recipe_name", "?"), meta.get("step", "?")
            choice.description = f"{source}: {recipe}, step {step}"
        choices.append(choice)
    return choices


class _Models:
    """The loaded models, by choice; used from the worker thread only."""

    def __init__(self, device: str | torch.device, precision: str, working_size: int) -> None:
        self.device = device
        self.precision = precision
        self.working_size = working_size
        self._loaded: collections.OrderedDict[str, Colorizer] = collections.OrderedDict()

    def get(self, choice: _Choice) -> Colorizer:
        if choice.key in self._loaded:
            self._loaded.move_to_end(choice.key)
            return self._loaded[choice.key]
        if choice.status in ("missing", "error"):
            raise WeightsError(choice.message)
        choice.status = "loading"
        try:
            model = load(choice.source, device=self.device).set_precision(self.precision)
            self._warm_up(model)
        except Exception as exc:
            choice.status, choice.message = "error", f"cannot load {choice.label}: {exc}"
            raise WeightsError(choice.message) from exc
        self._loaded[choice.key] = model
        while len(self._loaded) > _LOADED_MODELS:
            self._loaded.popitem(last=False)
        choice.status, choice.message = "ready", ""
        return model

    def _warm_up(self, model: Colorizer) -> None:
        # The first call builds the inference copy and the convolutions' kernels for the
        # shape, seconds that would otherwise fall on the first photo.
        side = self.working_size
        model.predict_chroma(torch.full((1, 1, side * 3 // 4, side), 0.5), working_size=side)


# -- jobs and sessions --------------------------------------------------------------------------
@dataclass
class _Job:
    id: str
    name: str  # the upload's name, cleaned, for display and the download's name
    folder: Path
    upload: Path
    choice: _Choice
    working_size: int
    width: int
    height: int
    status: str = "queued"  # "queued", "running", "done", "error"
    message: str = ""
    result: Path | None = None
    seconds: float | None = None

    @property
    def download_name(self) -> str:
        suffix = self.result.suffix if self.result is not None else ""
        return f"{PurePosixPath(self.name).stem}-colorized{suffix}"

    def to_json(self, position: int | None) -> dict[str, Any]:
        done = self.status == "done" and self.result is not None
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "position": position,
            "message": self.message,
            "weights": self.choice.label,
            "working_size": self.working_size,
            "width": self.width,
            "height": self.height,
            "seconds": self.seconds,
            "download_name": self.download_name if done else None,
            "bytes": self.result.stat().st_size if done else None,
        }


@dataclass
class _Session:
    token: str
    jobs: dict[str, _Job] = field(default_factory=dict)


def _clean_name(raw: str) -> str:
    """A file name fit to show and to offer as a download name: no folders, no controls."""
    name = PurePosixPath(raw.replace("\\", "/")).name
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip(" .")
    return name[:150] or "image"


def _upload_suffix(name: str) -> str:
    """The upload's own suffix when it is a plain one: it picks the result's format."""
    suffix = PurePosixPath(name).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""


def _preview(src: Path, target: Path, width: int, height: int) -> None:
    """A screen-size JPEG of an image file (JPEGs decode at a reduced scale: much faster)."""
    shorter = -(-_PREVIEW * min(width, height) // max(width, height, 1))
    image = to_rgb(open_image(src, min_size=max(1, shorter)))
    image.thumbnail((_PREVIEW, _PREVIEW), Image.Resampling.BILINEAR, reducing_gap=2.0)
    image.save(target, "JPEG", quality=_PREVIEW_QUALITY)


class _Worker:
    """One thread that colorizes queued jobs in order, one at a time, and loads weights."""

    def __init__(self, models: _Models, capacity: int) -> None:
        self.models = models
        self.capacity = capacity
        self._pending: collections.deque[_Job | _Choice] = collections.deque()
        self._condition = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="colorkit-serve", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        self._thread.join(timeout)

    @property
    def full(self) -> bool:
        with self._condition:
            return sum(isinstance(item, _Job) for item in self._pending) >= self.capacity

    def submit(self, item: _Job | _Choice) -> bool:
        with self._condition:
            if isinstance(item, _Job) and self.full:
                return False
            self._pending.append(item)
            self._condition.notify()
            return True

    def position(self, job: _Job) -> int | None:
        """How many images are ahead of a queued job."""
        with self._condition:
            ahead = 0
            for item in self._pending:
                if item is job:
                    return ahead
                ahead += isinstance(item, _Job)
        return None

    def _loop(self) -> None:
        while True:
            with self._condition:
                while not self._pending and not self._stopping:
                    self._condition.wait()
                if self._stopping:
                    return
                item = self._pending.popleft()
            if isinstance(item, _Job):
                self._run(item)
            else:
                with contextlib.suppress(Exception):  # the choice records its own error
                    self.models.get(item)

    def _run(self, job: _Job) -> None:
        job.status = "running"
        started = time.perf_counter()
        try:
            model = self.models.get(job.choice)
            result = colorize_file(model, job.upload, job.folder / "result", job.working_size)
            _preview(job.upload, job.folder / "before.jpg", job.width, job.height)
            _preview(result, job.folder / "after.jpg", job.width, job.height)
        # Whatever goes wrong with one image (a bad file, a model that fails, memory) is
        # that image's error: the worker must live on for the others.
        except Exception as exc:
            message = str(exc) or type(exc).__name__
            message = without_path(message, job.upload).replace(str(job.folder), "…")
            job.message, job.status = message, "error"
        else:
            job.result, job.status = result, "done"
        finally:
            job.seconds = round(time.perf_counter() - started, 2)
            job.upload.unlink(missing_ok=True)


# -- the application ----------------------------------------------------------------------------
def _require_web() -> None:
    if _MISSING is not None:
        raise WebError(
            f"colorkit serve needs the web extra ({_MISSING}); install it with "
            "pip install 'colorkit[web]' (or pip install -e '.[web]' in a checkout)"
        )


def _read_assets() -> dict[str, bytes]:
    folder = importlib.resources.files("colorkit").joinpath("webpage")
    return {name: folder.joinpath(name).read_bytes() for name in _ASSETS}


def _host_of(header: str) -> str:
    """The host of a ``Host`` header, without the port (IPv6 keeps its brackets)."""
    if header.startswith("["):
        return header[: header.find("]") + 1]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class _Guard:
    """ASGI middleware: refuse foreign ``Host`` headers, add the security headers."""

    def __init__(self, app: Any, allowed_hosts: frozenset[str] | None) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.allowed_hosts is not None:
            headers = dict(scope["headers"])
            host = _host_of(headers.get(b"host", b"").decode("latin-1")).lower()
            if host not in self.allowed_hosts:
                response = Response("unknown Host header", status_code=400)
                await response(scope, receive, send)
                return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _bytes_text(count: int) -> str:
    return f"{count / 2**20:.3g} MiB" if count >= 2**20 else f"{count / 2**10:.3g} KiB"


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class _Server:
    """The state behind the routes: choices, sessions, the worker and the results folder."""

    def __init__(
        self,
        choices: list[_Choice],
        models: _Models,
        limits: Limits,
        working_size: int,
        preload: bool,
    ) -> None:
        self.choices = {choice.key: choice for choice in choices}
        self.default = choices[0]
        self.limits = limits
        self.working_size = working_size
        self.preload = preload
        self.worker = _Worker(models, limits.queued)
        self.sessions: dict[str, _Session] = {}
        self.assets = _read_assets()
        self.root: Path | None = None

    # lifetime
    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        self.root = Path(tempfile.mkdtemp(prefix="colorkit-serve-"))
        self.worker.start()
        if self.preload and self.default.status == "available":
            self.worker.submit(self.default)
        try:
            yield
        finally:
            # a colorization in progress is not interrupted: wait for it a little
            await run_in_threadpool(self.worker.stop, 30.0)
            shutil.rmtree(self.root, ignore_errors=True)

    # helpers
    def _session(self, request: Request) -> _Session | None:
        return self.sessions.get(request.cookies.get(_COOKIE, ""))

    def _job(self, request: Request) -> _Job | None:
        session = self._session(request)
        return None if session is None else session.jobs.get(request.path_params["job"])

    def _state(self, session: _Session) -> dict[str, Any]:
        return {
            "weights": [choice.to_json() for choice in self.choices.values()],
            "default_weights": self.default.key,
            "working_size": {
                "default": self.working_size,
                "min": self.limits.min_working_size,
                "max": self.limits.max_working_size,
            },
            "limits": {"upload_bytes": self.limits.upload_bytes, "pixels": self.limits.pixels},
            "jobs": [
                job.to_json(self.worker.position(job) if job.status == "queued" else None)
                for job in session.jobs.values()
            ],
        }

    # routes
    async def index(self, request: Request) -> Response:
        response = Response(self.assets["index.html"], media_type=_ASSETS["index.html"])
        response.headers["cache-control"] = "no-store"
        if self._session(request) is None:
            self._forget_old_sessions()
            token = secrets.token_urlsafe(32)
            self.sessions[token] = _Session(token)
            response.set_cookie(_COOKIE, token, httponly=True, samesite="strict", path="/")
        return response

    def _forget_old_sessions(self) -> None:
        """Keep fewer than :data:`_SESSIONS` sessions, so that page loads cannot fill the disk."""
        for token, session in list(self.sessions.items()):  # oldest first
            if len(self.sessions) < _SESSIONS:
                return
            if all(job.status in ("done", "error") for job in session.jobs.values()):
                del self.sessions[token]
                for job in session.jobs.values():
                    shutil.rmtree(job.folder, ignore_errors=True)

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self.assets or name == "index.html":
            return _error("not found", 404)
        return Response(self.assets[name], media_type=_ASSETS[name])

    async def state(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return _error("no session: reload the page", 401)
        return JSONResponse(self._state(session), headers={"cache-control": "no-store"})

    async def load_weights(self, request: Request) -> Response:
        if self._session(request) is None:
            return _error("no session: reload the page", 401)
        choice = self.choices.get(request.path_params["key"])
        if choice is None:
            return _error("no such weights", 404)
        if choice.status == "available":
            self.worker.submit(choice)
        return JSONResponse(choice.to_json(), status_code=202)

    def _parameters(self, request: Request) -> tuple[str, _Choice, int] | JSONResponse:
        query = request.query_params
        name = _clean_name(query.get("name", ""))
        choice = self.choices.get(query.get("weights", self.default.key))
        if choice is None:
            return _error(f"{name}: no such weights {query.get('weights')!r}", 400)
        text = query.get("working_size", str(self.working_size))
        low, high = self.limits.min_working_size, self.limits.max_working_size
        if not text.isdigit() or not low <= int(text) <= high:
            return _error(
                f"{name}: working_size must be a whole number of pixels from {low} to {high}, "
                f"got {text!r}",
                400,
            )
        return name, choice, int(text)

    async def upload(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return _error("no session: reload the page", 401)
        parameters = self._parameters(request)
        if isinstance(parameters, JSONResponse):
            return parameters
        name, choice, working_size = parameters
        limit = self.limits.upload_bytes
        too_large = f"{name}: file too large (the limit is {_bytes_text(limit)})"
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return _error(too_large, 413)
        if self.worker.full:
            return _error(
                f"{name}: {self.limits.queued} images are already waiting; "
                "add it again when some are done",
                503,
            )
        assert self.root is not None
        job_id = secrets.token_urlsafe(12)
        folder = self.root / job_id
        folder.mkdir()
        upload = folder / f"upload{_upload_suffix(name)}"
        try:
            received = 0
            with open(upload, "wb") as stream:
                async for chunk in request.stream():
                    received += len(chunk)
                    if received > limit:
                        break
                    stream.write(chunk)
            if received > limit:
                shutil.rmtree(folder, ignore_errors=True)
                return _error(too_large, 413)
            width, height = await run_in_threadpool(check_pixels, upload, self.limits.pixels)
        except ColorkitError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            return _error(f"{name}: {without_path(str(exc), upload)}", 422)
        except (ClientDisconnect, OSError):
            shutil.rmtree(folder, ignore_errors=True)
            raise
        job = _Job(job_id, name, folder, upload, choice, working_size, width, height)
        if not self.worker.submit(job):
            shutil.rmtree(folder, ignore_errors=True)
            return _error(f"{name}: the queue is full; add it again when some are done", 503)
        session.jobs[job_id] = job
        return JSONResponse(job.to_json(self.worker.position(job)), status_code=202)

    async def result(self, request: Request) -> Response:
        job = self._job(request)
        if job is None or job.status != "done" or job.result is None:
            return _error("no such result", 404)
        return FileResponse(job.result, filename=job.download_name)

    async def preview(self, request: Request) -> Response:
        job = self._job(request)
        if job is None or job.status != "done":
            return _error("no such result", 404)
        side = request.path_params["side"]
        if side not in ("before", "after"):
            return _error("not found", 404)
        return FileResponse(job.folder / f"{side}.jpg", media_type="image/jpeg")

    async def archive(self, request: Request) -> Response:
        session = self._session(request)
        done = [job for job in (session.jobs.values() if session else ()) if job.status == "done"]
        if not done:
            return _error("no results yet", 404)
        assert self.root is not None
        target = self.root / f"{secrets.token_urlsafe(12)}.zip"
        await run_in_threadpool(_write_zip, target, done)
        return FileResponse(
            target,
            filename="colorized.zip",
            background=BackgroundTask(target.unlink, missing_ok=True),
        )

    def routes(self) -> list[Route]:
        return [
            Route("/", self.index),
            Route("/assets/{name}", self.asset),
            Route("/api/state", self.state),
            Route("/api/weights/{key}/load", self.load_weights, methods=["POST"]),
            Route("/api/jobs", self.upload, methods=["POST"]),
            Route("/api/jobs/{job}/result", self.result),
            Route("/api/jobs/{job}/{side:str}.jpg", self.preview),
            Route("/api/results.zip", self.archive),
        ]


def _write_zip(target: Path, jobs: Sequence[_Job]) -> None:
    used: set[str] = set()
    # the images are compressed already: storing them is as small and much faster
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        for job in jobs:
            assert job.result is not None
            name, number = job.download_name, 2
            stem, suffix = PurePosixPath(name).stem, PurePosixPath(name).suffix
            while name.casefold() in used:
                name, number = f"{stem}-{number}{suffix}", number + 1
            used.add(name.casefold())
            archive.write(job.result, name)


def create_app(
    weights: Sequence[str] = (),
    *,
    device: str | torch.device = "cpu",
    precision: str = "auto",
    working_size: int = 256,
    limits: Limits | None = None,
    allowed_hosts: Sequence[str] | None = LOCAL_HOSTS,
    preload: bool = True,
) -> Starlette:
    """The web application: the page, its assets and its API.

    The weights offered are those given (the first is selected) followed by every
    registered one (``colorkit list weights``); without any given, the
    :data:`~colorkit.weights.DEFAULT_WEIGHTS` come first. Registered weights whose file is
    missing are offered with their error, which the page shows. Models load in the
    worker thread, the selected one as soon as the server starts (with ``preload``), so
    the page answers at once.

    Args:
        weights: checkpoints, weights files or registered weights names.
        device: where the models run.
        precision: ``"auto"``, ``"bf16"`` or ``"fp32"``
            (:meth:`~colorkit.engine.Colorizer.set_precision`).
        working_size: the page's default working size (the longer side, in pixels, the
            networks run at).
        limits: what the server accepts; :class:`Limits` defaults if ``None``.
        allowed_hosts: the ``Host`` names answered (with any port); ``None`` answers any,
            for a server reachable under names of its own.
        preload: load the selected weights when the server starts rather than on the
            first upload.

    Returns:
        The ASGI application; its lifespan starts the worker and removes the results
        when it ends.

    Raises:
        WebError: if the ``web`` extra is not installed.
        WeightsError: for a name that is neither a file nor registered weights.
        CheckpointError: for a file that is not a readable checkpoint or weights file.
        ValueError: for a working size outside the limits.
    """
    _require_web()
    limits = limits or Limits()
    if not limits.min_working_size <= working_size <= limits.max_working_size:
        raise ValueError(
            f"working_size must be from {limits.min_working_size} to "
            f"{limits.max_working_size} pixels, got {working_size}"
        )
    choices = _choices(list(weights))
    server = _Server(
        choices, _Models(device, precision, working_size), limits, working_size, preload
    )
    app = Starlette(routes=server.routes(), lifespan=server.lifespan)
    hosts = None if allowed_hosts is None else frozenset(h.lower() for h in allowed_hosts)
    app.add_middleware(_Guard, allowed_hosts=hosts)
    app.state.colorkit = server  # for tests and embedding
    return app


def _listening_socket(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise WebError(f"cannot listen on {host}:{port} ({exc})") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or exc
        raise WebError(f"cannot listen on {host}:{port} ({reason}); choose --port") from None
    return sock


def _is_loopback(sock: socket.socket) -> bool:
    address = sock.getsockname()[0]
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(address).is_loopback
    return False


def serve(
    weights: Sequence[str] = (),
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    device: str | torch.device = "cpu",
    precision: str = "auto",
    working_size: int = 256,
    limits: Limits | None = None,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Run the web page until interrupted (Ctrl+C).

    On a loopback address (the default) only requests naming a local host are answered;
    on any other address a warning is printed, since anyone who can reach the machine
    can then use it.

    Args:
        weights: checkpoints, weights files or registered weights names (see
            :func:`create_app`).
        host: the address to listen on.
        port: the port; 0 picks a free one.
        device: where the models run.
        precision: ``"auto"``, ``"bf16"`` or ``"fp32"``.
        working_size: the page's default working size.
        limits: what the server accepts.
        ready: called with the page's address once the socket listens; by default the
            address is printed.

    Raises:
        WebError: if the ``web`` extra is missing or the address cannot be listened on.
        WeightsError: for a name that is neither a file nor registered weights.
        CheckpointError: for a file that is not a readable checkpoint or weights file.
        ValueError: for a working size outside the limits.
    """
    _require_web()
    sock = _listening_socket(host, port)
    try:
        local = _is_loopback(sock)
        bound = sock.getsockname()
        name = f"[{bound[0]}]" if sock.family == socket.AF_INET6 else bound[0]
        allowed = (*LOCAL_HOSTS, name) if local else None
        app = create_app(
            weights,
            device=device,
            precision=precision,
            working_size=working_size,
            limits=limits,
            allowed_hosts=allowed,
        )
        if not local:
            print(
                f"warning: listening on {host}, which other machines can reach: anyone who "
                "can connect can upload images and use this computer's processor (there is "
                "no password); use --host 127.0.0.1 to keep the page to this computer",
                file=sys.stderr,
            )
        address = f"http://{name if local else host}:{bound[1]}/"
        (ready or (lambda url: print(f"colorkit serve: open {url} (Ctrl+C to stop)")))(address)
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5
        )
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
