"""colorkit serve driven in a real browser: headless Chromium from the system, through Playwright.

The page is used as a person would: photos are picked, the results awaited, the comparison
looked at, the downloads saved and checked. One server and one browser serve the module.

``COLORKIT_WEB_SCREENSHOT=docs/images/web.png`` saves the screenshot the docs show.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

import colorkit
from colorkit import web
from colorkit.checkpoint import save_checkpoint
from colorkit.data import embedded_photos
from colorkit.imaging import read_gray
from colorkit.registry import Component, default_registry
from colorkit.weights import Weights

pytest.importorskip("starlette", reason="colorkit serve needs the web extra: pip install -e .[web]")
uvicorn = pytest.importorskip("uvicorn", reason="colorkit serve needs the web extra")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the browser tests need Playwright (the dev extra)"
)

TINY = {"generator_depth": 3, "base_channels": 8, "refiner_hidden": 16, "refiner_patch": 4}
_BROWSERS = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome")


def _chromium() -> str | None:
    """The system's Chromium (Debian's ``chromium`` package), or ``$COLORKIT_CHROMIUM``."""
    for candidate in (os.environ.get("COLORKIT_CHROMIUM"), *_BROWSERS):
        found = candidate and (shutil.which(candidate) or None)
        if found:
            return found
    return None


class _MissingWeights:
    def __init__(self, path: Path) -> None:
        self.path = path

    @colorkit.hookimpl
    def colorkit_components(self) -> list[Component]:
        return [Component("weights", "missing-test-weights", Weights(self.path))]


@pytest.fixture(scope="module")
def address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    torch.manual_seed(0)
    model = colorkit.build("pix2pix+mlp", **TINY)
    checkpoint = save_checkpoint(model, tmp_path_factory.mktemp("run") / "tiny.safetensors", 1)
    # registered weights whose file is missing, as a weights package's could be
    plugin = _MissingWeights(checkpoint.parent / "never-written.safetensors")
    default_registry().register_plugin(plugin, name="missing-test-weights")
    try:
        app = web.create_app([str(checkpoint)], working_size=128)
    finally:
        default_registry().unregister_plugin(plugin)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # tests listen on loopback only, on a free port
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the test server did not start"
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    server.should_exit = True
    thread.join(30)
    sock.close()


@pytest.fixture(scope="module")
def page(address: str) -> Iterator[Any]:
    executable = _chromium()
    if executable is None:
        reason = "no Chromium found (apt-get install chromium, or set COLORKIT_CHROMIUM)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {reason}")
        pytest.skip(reason)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable)
        context = browser.new_context(
            accept_downloads=True, viewport={"width": 1000, "height": 900}
        )
        page = context.new_page()
        page.set_default_timeout(60_000)
        try:
            yield page
        finally:
            browser.close()


def test_photos_are_colorized_compared_and_downloaded(
    page: Any, address: str, tmp_path: Path
) -> None:
    photo = tmp_path / "coffee.jpg"
    Image.open(embedded_photos() / "coffee.jpg").convert("L").save(photo, quality=95)
    corrupt = tmp_path / "letter.jpg"
    corrupt.write_bytes(b"Dear reader, this is not a photograph.\n" * 20)

    page.goto(address)
    page.wait_for_selector("body[data-ready='true']")
    assert page.locator("#weights option").first.inner_text() == "tiny.safetensors"
    page.set_input_files("#files", [str(corrupt), str(photo)])

    done = page.locator(".card[data-status='done']")
    failed = page.locator(".card[data-status='error']")
    done.wait_for()
    failed.wait_for()
    assert failed.locator(".name").inner_text() == "letter.jpg"
    assert failed.locator(".status").inner_text() == "letter.jpg: not an image file PIL can read"
    assert not failed.locator("a.download").is_visible()
    assert not failed.locator(".compare").is_visible()

    # the comparison: both images shown, the slider moves the boundary
    compare = done.locator(".compare")
    assert compare.is_visible()
    for side in ("before", "after"):
        image = compare.locator(f"img.{side}")
        image.wait_for()
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
        )
        assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [576, 384]
    compare.locator(".slider").fill("35")
    assert compare.evaluate("c => c.style.getPropertyValue('--position')") == "35%"
    screenshot = Path(os.environ.get("COLORKIT_WEB_SCREENSHOT") or tmp_path / "web.png")
    page.screenshot(path=str(screenshot))
    if "COLORKIT_WEB_SCREENSHOT" in os.environ:  # the docs' copy: a palette keeps it small
        Image.open(screenshot).convert("RGB").quantize(128).save(screenshot, optimize=True)
    assert Image.open(screenshot).size == (1000, 900)

    # the full-resolution download: the photo's size and its lightness
    with page.expect_download() as started:
        done.locator("a.download").click()
    download = started.value
    assert download.suggested_filename == "coffee-colorized.jpg"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    result = Image.open(saved)
    assert result.size == (576, 384) and result.mode == "RGB"
    gray_in, gray_out = read_gray(photo)[0], read_gray(saved)[0]
    assert (gray_in - gray_out).abs().mean().item() < 0.02

    with page.expect_download() as started:
        page.click("#download-all")
    archive = started.value
    assert archive.suggested_filename == "colorized.zip"
    names = zipfile.ZipFile(io.BytesIO(Path(archive.path()).read_bytes())).namelist()
    assert names == ["coffee-colorized.jpg"]


def test_a_reloaded_page_keeps_its_results(page: Any, address: str) -> None:
    page.goto(address)
    page.wait_for_selector("body[data-ready='true']")
    card = page.locator(".card[data-status='done']")
    card.wait_for()
    assert card.locator(".name").inner_text() == "coffee.jpg"
    assert page.get_attribute("#download-all", "aria-disabled") == "false"


def test_missing_weights_are_explained_on_the_page(page: Any, address: str) -> None:
    page.goto(address)
    page.wait_for_selector("body[data-ready='true']")
    assert page.locator("#notice").is_hidden()
    page.select_option("#weights", label="missing-test-weights")
    notice = page.locator("#notice")
    notice.wait_for()
    text = notice.inner_text()
    assert "“missing-test-weights” cannot be used" in text and "does not exist" in text
    assert "colorkit serve --weights CHECKPOINT" in text
    page.select_option("#weights", label="tiny.safetensors")
    assert notice.is_hidden()
