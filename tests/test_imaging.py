"""Tests of colorkit.imaging: reading any mode, banded recombination, safe file output."""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageCms
from support import dead_pid, linear_rgb_icc

import colorkit
from colorkit.color import gray_to_lightness, lab_to_rgb, linear_to_srgb, rgb_to_gray
from colorkit.imaging import (
    ColorizeReport,
    ImageReadError,
    ImageWriteError,
    _linear_taps,
    collect_inputs,
    colorize_file,
    colorize_paths,
    open_image,
    output_path,
    read_gray,
    recombine,
)

WIDTH, HEIGHT = 37, 23  # odd sizes, wider than tall, so a transposition shows
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


def colour_pixels(width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """A ``height×width×3`` uint8 picture: smooth ramps plus a fine, fixed texture."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = x / max(width - 1, 1), y / max(height - 1, 1)
    texture = 0.08 * np.sin(1.7 * x + 0.9 * y)
    rgb = np.stack(
        [0.1 + 0.8 * u + texture, 0.2 + 0.6 * v - texture, 0.9 - 0.7 * u * v + texture], axis=-1
    )
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)


def alpha_pixels(width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return ((x * 7 + y * 11) % 256).astype(np.uint8)


def gray_of(rgb: np.ndarray) -> np.ndarray:
    """Reference gray of 8-bit RGB: :func:`colorkit.color.rgb_to_gray`."""
    tensor = torch.from_numpy(np.array(rgb[..., :3])).permute(2, 0, 1)[None]
    return rgb_to_gray(tensor.double() / 255.0)[0, 0].numpy()


def output_gray(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return gray_of(np.asarray(image.convert("RGB")))


# -- every mode ----------------------------------------------------------------------------
def make_l(tmp: Path) -> tuple[Path, np.ndarray, np.ndarray | None]:
    values = colour_pixels()[..., 1]
    Image.fromarray(values).save(tmp / "l.png")
    return tmp / "l.png", values / 255.0, None


def make_la(tmp: Path) -> tuple[Path, np.ndarray, np.ndarray | None]:
    values, alpha = colour_pixels()[..., 0], alpha_pixels()
    Image.fromarray(np.stack([values, alpha], axis=-1), "LA").save(tmp / "la.png")
    return tmp / "la.png", values / 255.0, alpha


def make_rgb(tmp: Path) -> tuple[Path, np.ndarray, np.ndarray | None]:
    rgb = colour_pixels()
    Image.fromarray(rgb).save(tmp / "rgb.png")
    return tmp / "rgb.png", gray_of(rgb), None


def make_rgba(tmp: Path) -> tuple[Path, np.ndarray, np.ndarray | None]:
    rgb, alpha = colour_pixels(), alpha_pixels()
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp / "rgba.png")
    return tmp / "rgba.png", gray_of(rgb), alpha


def make_p(tmp: Path) -> tuple[Path, np.ndarray, np.ndarray | None]:
    image = Image.fromarray(colour_pixels()).quantize(colors=32)
    image.save(tmp / "p.png")
    return tmp / "p.png", gray_of(np.asarray(image.convert("RGB"))), None


def make_p_transparent(tmp: Path) -> tuple[Path, np.ndarray, np.ndarray | None]:
    image = Image.fromarray(colour_pixels()).quantize(colors=32)
    image.info["transparency"] = 3
    image.save(tmp / "pt.png", transparency=3)
    alpha = np.where(np.asarray(image) == 3, 0, 255).astype(np.uint8)
    assert 0 < (alpha == 0).sum() < alpha.size  # both kinds of pixel are present
    return tmp / "pt.png", gray_of(np.asarray(image.convert("RGB"))), alpha


def make_i16(tmp: Path) -> tuple[Path, np.ndarray, np.ndarray | None]:
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    values = (x * 1700 + y * 97 + 13).astype(np.uint16)
    Image.fromarray(values).save(tmp / "i16.png")
    with Image.open(tmp / "i16.png") as image:
        assert image.mode.startswith("I")
    return tmp / "i16.png", values / 65535.0, None


def make_cmyk(tmp: Path) -> tuple[Path, np.ndarray, np.ndarray | None]:
    image = Image.fromarray(colour_pixels()).convert("CMYK")
    image.save(tmp / "cmyk.tif")
    return tmp / "cmyk.tif", gray_of(np.asarray(image.convert("RGB"))), None


def make_exif_rotated(tmp: Path) -> tuple[Path, np.ndarray, np.ndarray | None]:
    rgb = colour_pixels()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: viewers rotate 90° clockwise
    exif[0x010F] = "Colorkit Test Camera"  # Make: metadata worth keeping
    Image.fromarray(rgb).save(tmp / "rotated.png", exif=exif)
    upright = np.rot90(rgb, k=-1)
    return tmp / "rotated.png", gray_of(upright), None


def make_jpeg(tmp: Path) -> tuple[Path, np.ndarray, np.ndarray | None]:
    Image.fromarray(colour_pixels()).save(tmp / "photo.jpg", quality=95)
    with Image.open(tmp / "photo.jpg") as image:
        decoded = np.asarray(image)
    return tmp / "photo.jpg", gray_of(decoded), None


MODES: dict[str, Callable[[Path], tuple[Path, np.ndarray, np.ndarray | None]]] = {
    "L": make_l,
    "LA": make_la,
    "RGB": make_rgb,
    "RGBA": make_rgba,
    "P": make_p,
    "P-transparency": make_p_transparent,
    "I;16": make_i16,
    "CMYK": make_cmyk,
    "EXIF-rotated": make_exif_rotated,
    "JPEG": make_jpeg,
}


@pytest.mark.parametrize("mode", list(MODES))
def test_read_gray_of_every_mode(tmp_path: Path, mode: str) -> None:
    path, expected, alpha = MODES[mode](tmp_path)
    gray, read_alpha, image = read_gray(path)
    assert gray.dtype == torch.float32
    assert gray.shape == (1, 1, *expected.shape)
    assert image.size == (expected.shape[1], expected.shape[0])
    np.testing.assert_allclose(gray[0, 0].numpy(), expected, atol=2e-6)
    if alpha is None:
        assert read_alpha is None
    else:
        assert read_alpha is not None and read_alpha.shape == gray.shape
        np.testing.assert_allclose(read_alpha[0, 0].numpy() * 255.0, alpha, atol=1e-3)


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


# -- colour profiles ---------------------------------------------------------------------
LINEAR = np.array([[[128, 64, 200]]], dtype=np.uint8)  # linear light under linear_rgb_icc()


def _as_srgb8(linear: np.ndarray) -> np.ndarray:
    encoded = linear_to_srgb(torch.from_numpy(linear / 255.0))
    return np.rint(encoded.numpy() * 255).astype(np.int16)


@pytest.mark.parametrize(("suffix", "mode"), [(".png", "RGB"), (".png", "RGBA"), (".jpg", "RGB")])
def test_an_embedded_profile_is_converted_to_srgb(tmp_path: Path, suffix: str, mode: str) -> None:
    pixels = np.broadcast_to(LINEAR, (8, 8, 3))
    image = Image.fromarray(np.ascontiguousarray(pixels)).convert(mode)
    if mode == "RGBA":
        image.putalpha(77)
    path = tmp_path / f"tagged{suffix}"
    image.save(path, icc_profile=linear_rgb_icc(), **({"quality": 100} if suffix == ".jpg" else {}))
    opened = open_image(path)
    assert opened.mode == mode and "icc_profile" not in opened.info
    values = np.asarray(opened).astype(np.int16)
    assert np.abs(values[..., :3] - _as_srgb8(LINEAR)).max() <= 2  # 128 linear is 188 sRGB
    if mode == "RGBA":
        assert (values[..., 3] == 77).all()
    gray = read_gray(path)[0]
    expected = rgb_to_gray(torch.from_numpy(_as_srgb8(LINEAR) / 255.0).permute(2, 0, 1)[None])
    assert torch.allclose(gray, expected.float().expand_as(gray), atol=3 / 255)


def test_an_srgb_profile_and_a_broken_one_leave_the_pixels_alone(tmp_path: Path) -> None:
    pixels = np.ascontiguousarray(np.broadcast_to(LINEAR, (4, 4, 3)))
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(pixels).save(tmp_path / "srgb.png", icc_profile=srgb)
    assert np.array_equal(np.asarray(open_image(tmp_path / "srgb.png")), pixels)
    Image.fromarray(pixels).save(tmp_path / "broken.png", icc_profile=b"not a profile")
    with pytest.warns(UserWarning, match=r"broken\.png.*ICC profile"):
        opened = open_image(tmp_path / "broken.png")
    assert np.array_equal(np.asarray(opened), pixels)


def test_read_gray_names_the_bad_file(tmp_path: Path) -> None:
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a picture")
    with pytest.raises(ImageReadError, match=r"broken\.jpg"):
        read_gray(tmp_path / "broken.jpg")
    with pytest.raises(ImageReadError, match=r"missing\.png: no such file"):
        read_gray(tmp_path / "missing.png")


def test_bad_working_size_is_named(tmp_path: Path, model: colorkit.Colorizer) -> None:
    path, _, _ = make_rgb(tmp_path)
    for bad in (0, -4, 2.5):
        with pytest.raises(ValueError, match="working_size"):
            colorize_file(model, path, tmp_path / "out", working_size=bad)
    assert not (tmp_path / "out" / "rgb.png").exists()


# -- recombine -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "target"),
    [
        ((37, 29), (300, 230)),
        ((23, 64), (100, 33)),
        ((171, 256), (4000, 300)),
        ((171, 256), (300, 6000)),
        ((3, 5), (7, 11)),
    ],
)
def test_chroma_taps_match_f_interpolate(source: tuple[int, int], target: tuple[int, int]) -> None:
    generator = torch.Generator().manual_seed(1)
    ab = torch.randn(1, 2, *source, generator=generator) * 40.0
    reference = F.interpolate(ab, size=target, mode="bilinear", align_corners=False)[0]
    left, right, left_weight, right_weight = _linear_taps(source[1], target[1])
    up, down, up_weight, down_weight = _linear_taps(source[0], target[0])
    rows = ab[0].index_select(2, left) * left_weight + ab[0].index_select(2, right) * right_weight
    ours = rows.index_select(1, up) * up_weight[:, None]
    ours += rows.index_select(1, down) * down_weight[:, None]
    assert (ours - reference).abs().max() < 1e-4


def smooth_gray(height: int, width: int, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    wave = 0.5 + 0.5 * torch.sin(9.0 * x + 4.0 * y) * torch.cos(5.0 * y)
    return (low + (high - low) * wave)[None, None].float()


def test_recombine_in_bands_equals_one_band() -> None:
    gray = smooth_gray(301, 229)
    ab = torch.randn(1, 2, 40, 31, generator=torch.Generator().manual_seed(2)) * 30.0
    whole = recombine(gray, ab, rows_per_chunk=10_000)
    for rows in (1, 7, 64):
        np.testing.assert_array_equal(recombine(gray, ab, rows_per_chunk=rows), whole)
    assert whole.shape == (301, 229, 3) and whole.dtype == np.uint8


def test_recombine_is_cielab_with_the_gray_lightness() -> None:
    # mid grays and modest chroma stay inside sRGB, where no gamut fitting happens
    gray = smooth_gray(64, 80, 0.3, 0.8)
    ab = torch.randn(1, 2, 9, 11, generator=torch.Generator().manual_seed(3)) * 12.0
    upsampled = F.interpolate(ab, size=(64, 80), mode="bilinear", align_corners=False)
    reference = lab_to_rgb(torch.cat([gray_to_lightness(gray), upsampled], dim=1), clamp=False)
    assert reference.min() >= 0.0 and reference.max() <= 1.0
    expected = reference[0].permute(1, 2, 0).numpy() * 255.0
    ours = recombine(gray, ab, rows_per_chunk=5).astype(np.float64)
    assert np.abs(ours - expected).max() <= 0.6  # rounding to 8 bits, and nothing more


def test_recombine_keeps_luminance_of_colours_outside_srgb() -> None:
    gray = smooth_gray(48, 48)  # from black to white
    ab = torch.full((1, 2, 3, 3), 90.0)  # far outside sRGB at most lightnesses
    rgb = recombine(gray, ab)
    error = np.abs(gray_of(rgb) - gray[0, 0].double().numpy())
    assert error.max() < 1.0 / 255
    assert (rgb[..., 0].astype(int) - rgb[..., 2]).max() > 50  # still strongly coloured


def test_recombine_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="gray"):
        recombine(torch.rand(1, 3, 4, 4), torch.zeros(1, 2, 2, 2))
    with pytest.raises(ValueError, match="ab"):
        recombine(torch.rand(1, 1, 4, 4), torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="rows_per_chunk"):
        recombine(torch.rand(1, 1, 4, 4), torch.zeros(1, 2, 2, 2), rows_per_chunk=0)


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
