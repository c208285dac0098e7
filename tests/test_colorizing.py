"""Tests of colorkit.colorizing: full-resolution colorizing of files, safe output."""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from support import (
    HEIGHT,
    MODES,
    WIDTH,
    colour_pixels,
    dead_pid,
    gray_of,
    make_rgb,
)

import colorkit
from colorkit.colorizing import (
    ColorizeReport,
    collect_inputs,
    colorize_file,
    colorize_paths,
    output_path,
)
from colorkit.imaging import ImageWriteError

WORKING_SIZE = 16


@pytest.fixture(scope="module")
def model() -> colorkit.Colorizer:
    """The tiny model, its last layer's bias set so it predicts clearly visible colour."""
    torch.manual_seed(0)
    tiny = colorkit.build(
        "pix2pix+mlp", generator_depth=3, base_channels=8, refiner_hidden=16, refiner_patch=4
    )
    last = [m for m in tiny.generator.modules() if isinstance(m, torch.nn.ConvTranspose2d)][-1]
    with torch.no_grad():
        last.bias.copy_(torch.tensor([0.4, -0.3]))  # a ≈ +42, b ≈ -33 before tanh's spread
    return tiny


@pytest.mark.parametrize("mode", list(MODES))
def test_colorize_file_keeps_size_luminance_and_alpha(
    tmp_path: Path, model: colorkit.Colorizer, mode: str
) -> None:
    path, expected, alpha = MODES[mode](tmp_path)
    out = colorize_file(model, path, tmp_path / "out", working_size=WORKING_SIZE)
    assert out.parent == tmp_path / "out"
    with Image.open(out) as image:
        assert image.size == (expected.shape[1], expected.shape[0])
        assert 0x0112 not in image.getexif()  # already upright: no orientation to re-apply
        if mode == "EXIF-rotated":
            assert image.getexif().get(0x010F) == "Colorkit Test Camera"
        if alpha is None:
            assert image.mode == "RGB"
        else:
            assert image.mode == "RGBA" and out.suffix == ".png"
            np.testing.assert_array_equal(np.asarray(image.getchannel("A")), alpha)
        rgb = np.asarray(image.convert("RGB"))
    error = np.abs(gray_of(rgb) - expected)
    if out.suffix == ".jpg":  # lossy: JPEG codes luma and subsampled chroma, not luminance
        assert error.mean() < 1.5 / 255 and error.max() < 8 / 255
    else:
        assert error.max() < 1.0 / 255
    # the model's colours do reach the file (not a gray copy of the input)
    assert np.abs(rgb.astype(int) - rgb[..., :1]).max() > 2


def test_colorize_file_output_format_follows_input(
    tmp_path: Path, model: colorkit.Colorizer
) -> None:
    rgb = colour_pixels()
    expected = {"a.jpeg": ("a.jpg", "JPEG"), "b.webp": ("b.webp", "WEBP")}
    expected |= {"c.tiff": ("c.tif", "TIFF"), "d.bmp": ("d.png", "PNG")}
    for name, (out_name, image_format) in expected.items():
        Image.fromarray(rgb).save(tmp_path / name)
        out = colorize_file(model, tmp_path / name, tmp_path / "out", working_size=WORKING_SIZE)
        assert out.name == out_name
        with Image.open(out) as image:
            assert image.format == image_format and image.size == (WIDTH, HEIGHT)


def test_bad_working_size_is_named(tmp_path: Path, model: colorkit.Colorizer) -> None:
    path, _, _ = make_rgb(tmp_path)
    for bad in (0, -4, 2.5):
        with pytest.raises(ValueError, match="working_size"):
            colorize_file(model, path, tmp_path / "out", working_size=bad)
    assert not (tmp_path / "out" / "rgb.png").exists()


# -- output paths --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "has_alpha", "expected"),
    [
        ("a.jpg", False, "a.jpg"),
        ("a.JPEG", False, "a.jpg"),
        ("a.png", False, "a.png"),
        ("a.webp", False, "a.webp"),
        ("a.tiff", False, "a.tif"),
        ("a.bmp", False, "a.png"),
        ("a.gif", False, "a.png"),
        ("a.jpg", True, "a.png"),
        ("a.webp", True, "a.png"),
        ("my.photo.png", False, "my.photo.png"),
    ],
)
def test_output_path_suffix(tmp_path: Path, name: str, has_alpha: bool, expected: str) -> None:
    assert output_path(tmp_path / "in" / name, tmp_path / "out", has_alpha) == (
        tmp_path / "out" / expected
    )


def test_output_path_is_never_the_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.png").write_bytes(b"input")
    (tmp_path / "b.JPG").write_bytes(b"input")
    assert output_path(tmp_path / "a.png", tmp_path, False) == tmp_path / "a.colorized.png"
    # a.png with alpha is still a PNG; b.JPG -> b.jpg is the same file where names ignore case
    assert output_path(tmp_path / "a.png", tmp_path, True) == tmp_path / "a.colorized.png"
    assert output_path(tmp_path / "b.JPG", tmp_path, False) == tmp_path / "b.colorized.jpg"
    # a different suffix is a different file
    assert output_path(tmp_path / "b.JPG", tmp_path, True) == tmp_path / "b.png"
    # the same folder named another way
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    assert output_path(Path("a.png"), tmp_path / "sub" / "..", False).name == "a.colorized.png"


# -- many files ----------------------------------------------------------------------------
def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_collect_inputs(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    (folder / "sub" / "deeper").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    for name in ["b.JPG", "a.png", "sub/c.Tiff", "sub/deeper/d.webp", "notes.txt", ".e.jpg"]:
        (folder / name).write_bytes(b"x")
    (folder / ".hidden" / "f.png").write_bytes(b"x")
    (tmp_path / "single.gif").write_bytes(b"x")
    found = collect_inputs(
        [folder, tmp_path / "single.gif", tmp_path / "nope.png", folder / "a.png"]
    )
    assert found == [
        folder / "a.png",
        folder / "b.JPG",
        folder / "sub" / "c.Tiff",
        folder / "sub" / "deeper" / "d.webp",
        tmp_path / "single.gif",  # a file named explicitly is tried whatever its suffix
        tmp_path / "nope.png",  # kept, to be reported as failed
    ]


def test_colorize_paths_carries_on_past_bad_files(
    tmp_path: Path, model: colorkit.Colorizer
) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    rgb = colour_pixels()
    Image.fromarray(rgb).save(folder / "a.jpg", quality=90)
    Image.fromarray(rgb[..., 0]).save(folder / "sub" / "b.png")
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    (folder / "empty.jpg").write_bytes(b"")
    Image.fromarray(rgb).save(tmp_path / "single.webp")
    out = tmp_path / "out"
    out.mkdir()
    (out / "other.png").write_bytes(b"an earlier result of another file")
    before = {path: digest(path) for path in tmp_path.rglob("*") if path.is_file()}

    report = colorize_paths(
        model,
        [folder, tmp_path / "missing.jpg", tmp_path / "single.webp"],
        out,
        working_size=WORKING_SIZE,
        progress=False,
    )

    assert isinstance(report, ColorizeReport)
    assert report.written == [out / "a.jpg", out / "sub" / "b.png", out / "single.webp"]
    for path in report.written:
        with Image.open(path) as image:
            assert image.size == (WIDTH, HEIGHT)
    failed = dict(report.failed)
    assert list(failed) == [folder / "corrupt.png", folder / "empty.jpg", tmp_path / "missing.jpg"]
    assert "empty" in failed[folder / "empty.jpg"]
    assert "no such file" in failed[tmp_path / "missing.jpg"]
    assert all(str(path) not in message for path, message in report.failed)
    # inputs and other files are untouched, nothing else was left behind
    assert {path: digest(path) for path in before} == before
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        [*before, *report.written]
    )


def test_colorize_paths_removes_what_a_killed_run_left(
    tmp_path: Path, model: colorkit.Colorizer
) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(colour_pixels()).save(folder / "sub" / "a.png")
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    stale = out / "sub" / f".a.png.tmp-{dead_pid()}-0123abcd"
    stale.write_bytes(b"half a picture")
    with pytest.warns(UserWarning, match=r"sub: removed 1 temporary file"):
        report = colorize_paths(model, [folder], out, working_size=WORKING_SIZE, progress=False)
    assert report.written == [out / "sub" / "a.png"] and not stale.exists()


def test_colorize_paths_into_the_input_folder_overwrites_no_input(
    tmp_path: Path, model: colorkit.Colorizer
) -> None:
    rgb = colour_pixels()
    # a.bmp becomes a PNG, which must not land on a.png; a.png's own result must not either
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb).save(tmp_path / "a.bmp")
    Image.fromarray(rgb).save(tmp_path / "a.jpg")
    inputs = sorted(tmp_path.iterdir())
    before = {path: digest(path) for path in inputs}

    report = colorize_paths(model, inputs, tmp_path, working_size=WORKING_SIZE, progress=False)

    assert not report.failed
    assert [path.name for path in report.written] == [
        "a.colorized.png",  # a.bmp: a.png is an input
        "a.colorized.jpg",  # a.jpg
        "a.colorized-2.png",  # a.png: its first two choices are taken
    ]
    assert {path: digest(path) for path in inputs} == before


def test_colorize_paths_skips_its_output_folder_inside_an_input_folder(
    tmp_path: Path, model: colorkit.Colorizer
) -> None:
    Image.fromarray(colour_pixels()).save(tmp_path / "a.png")
    for _ in range(2):  # the second run must not colorize the first run's output
        report = colorize_paths(
            model, [tmp_path], tmp_path / "out", working_size=WORKING_SIZE, progress=False
        )
        assert report.written == [tmp_path / "out" / "a.png"] and not report.failed
    assert not (tmp_path / "out" / "out").exists()


def test_failed_write_keeps_the_earlier_file(
    tmp_path: Path, model: colorkit.Colorizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _, _ = make_rgb(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "rgb.png").write_bytes(b"earlier result")

    def failing_save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        fp.write(b"partial")  # type: ignore[attr-defined]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(ImageWriteError, match=r"rgb\.png"):
        colorize_file(model, path, out, working_size=WORKING_SIZE)
    report = colorize_paths(model, [path], out, working_size=WORKING_SIZE, progress=False)
    assert report.written == [] and "No space left" in report.failed[0][1]
    assert (out / "rgb.png").read_bytes() == b"earlier result"
    assert [p.name for p in out.iterdir()] == ["rgb.png"]  # no temporary file left


def test_written_file_has_ordinary_permissions(tmp_path: Path, model: colorkit.Colorizer) -> None:
    path, _, _ = make_rgb(tmp_path)
    out = colorize_file(model, path, tmp_path / "out", working_size=WORKING_SIZE)
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_large_working_size_and_tiny_image(tmp_path: Path, model: colorkit.Colorizer) -> None:
    Image.fromarray(colour_pixels(3, 2)).save(tmp_path / "tiny.png")
    out = colorize_file(model, tmp_path / "tiny.png", tmp_path / "out", working_size=64)
    with Image.open(out) as image:
        assert image.size == (3, 2)
    assert math.isfinite(float(np.asarray(Image.open(out)).mean()))
