"""Tests of colorkit.imaging: reading any mode, colour profiles, finding images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms
from support import (
    CORRUPT,
    GRAYSCALE,
    MODES,
    USABLE,
    color_array,
    exif_rotated_jpeg,
    linear_rgb_icc,
    save,
    save_rgb,
)

from colorkit.color import linear_to_srgb, rgb_to_gray
from colorkit.imaging import (
    ImageReadError,
    check_pixels,
    file_key,
    load_rgb,
    open_image,
    read_gray,
    same_file,
    walk_images,
    without_path,
)


# -- every mode ----------------------------------------------------------------------------
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


def test_check_pixels_reads_the_header_only_and_refuses_large_images(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    Image.new("1", (9_000, 9_000)).save(bomb)  # 81 megapixels in a few kilobytes
    assert bomb.stat().st_size < 100_000
    with pytest.raises(ImageReadError, match=r"bomb\.png: image too large \(9000×9000 pixels"):
        check_pixels(bomb, 50_000_000)
    assert check_pixels(bomb, 81_000_000) == (9_000, 9_000)
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"empty\.jpg: empty file"):
        check_pixels(tmp_path / "empty.jpg", 100)


# -- load_rgb ---------------------------------------------------------------------------


def test_load_rgb_converts_every_mode(mixed_folder):
    for name in USABLE | GRAYSCALE:
        image = load_rgb(mixed_folder / name)
        assert image.mode == "RGB", name
        assert image.size == ((20, 40) if name == "rotated.jpg" else (32, 24)), name


def test_load_rgb_composites_alpha_on_white(tmp_path):
    array = np.zeros((4, 4, 4), dtype=np.uint8)
    array[..., :3] = (10, 200, 30)
    array[:2, :, 3] = 255  # top opaque, bottom fully transparent
    array[2:, :, :3] = 0  # colour under the transparency must not show
    rgb = np.asarray(load_rgb(save(tmp_path / "rgba.png", Image.fromarray(array, "RGBA"))))
    assert (rgb[:2] == (10, 200, 30)).all()
    assert (rgb[2:] == 255).all()

    la = np.zeros((4, 4, 2), dtype=np.uint8)
    la[..., 0] = 50
    la[:, 2:, 1] = 255
    rgb = np.asarray(load_rgb(save(tmp_path / "la.png", Image.fromarray(la, "LA"))))
    assert (rgb[:, :2] == 255).all() and (rgb[:, 2:] == 50).all()


def test_load_rgb_keeps_palette_colours(tmp_path):
    array = np.zeros((4, 4, 3), dtype=np.uint8)
    array[:, :2] = (255, 0, 0)
    array[:, 2:] = (0, 0, 255)
    image = Image.fromarray(array).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    rgb = np.asarray(load_rgb(save(tmp_path / "p.png", image)))
    assert (rgb == array).all()


def test_load_rgb_rescales_16_bit(tmp_path):
    levels = np.array([[0, 257 * 128, 65535, 257 * 10]], dtype=np.uint16)
    path = save(tmp_path / "i16.png", Image.fromarray(levels))
    assert Image.open(path).mode.startswith("I")
    rgb = np.asarray(load_rgb(path))
    assert rgb[0, :, 0].tolist() == [0, 128, 255, 10]
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()


def test_load_rgb_converts_cmyk(tmp_path):
    array = color_array(24, 32, seed=4)
    path = save(tmp_path / "cmyk.jpg", Image.fromarray(array).convert("CMYK"), quality=98)
    assert Image.open(path).mode == "CMYK"
    rgb = np.asarray(load_rgb(path)).astype(int)
    assert np.abs(rgb - array.astype(int)).mean() < 6


def test_load_rgb_applies_exif_rotation(tmp_path):
    path = exif_rotated_jpeg(tmp_path / "rot.jpg")
    assert Image.open(path).size == (40, 20)
    rgb = np.asarray(load_rgb(path)).astype(int)
    assert rgb.shape == (40, 20, 3)
    top, bottom = rgb[:15].mean(axis=(0, 1)), rgb[25:].mean(axis=(0, 1))
    assert top[0] > 150 > top[2]  # the stored left (red) half is on top once upright
    assert bottom[2] > 150 > bottom[0]


def test_load_rgb_errors_name_the_file(mixed_folder):
    for name in CORRUPT:
        with pytest.raises(ImageReadError, match=name):
            load_rgb(mixed_folder / name)


# -- finding -------------------------------------------------------------------------------
def test_walk_images_goes_folder_by_folder_skipping_hidden_and_excluded(tmp_path: Path) -> None:
    for name in ("b.jpg", "a.PNG", ".hidden.jpg", "sub/c.tif", ".cache/d.jpg"):
        save_rgb(tmp_path / name)
    (tmp_path / "notes.txt").write_text("x")
    save_rgb(tmp_path / "out" / "e.jpg")
    found = [p.relative_to(tmp_path).as_posix() for p in walk_images(tmp_path, tmp_path / "out")]
    assert found == ["a.PNG", "b.jpg", "sub/c.tif"]


def test_walk_images_follows_folder_links_once(tmp_path: Path) -> None:
    save_rgb(tmp_path / "real" / "a.jpg")
    os.symlink(tmp_path / "real", tmp_path / "link")
    os.symlink(tmp_path, tmp_path / "real" / "loop")  # a loop back to the top
    os.symlink(tmp_path / "missing.jpg", tmp_path / "broken.jpg")
    found = [p.relative_to(tmp_path).as_posix() for p in walk_images(tmp_path)]
    assert len(found) == 1 and found[0].endswith("a.jpg")


def test_file_helpers(tmp_path: Path) -> None:
    path = save_rgb(tmp_path / "a.jpg")
    assert same_file(path, tmp_path / "." / "a.jpg") and not same_file(path, tmp_path / "b.jpg")
    assert file_key(path) == file_key(str(path).upper()) or os.name != "posix"
    assert without_path(f"{path}: empty file", path) == "empty file"
    assert without_path("something else", path) == "something else"
