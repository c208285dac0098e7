"""Tests of colorkit.data: finding, checking, splitting and serving photographs."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from support import (
    CORRUPT,
    GRAYSCALE,
    USABLE,
    color_array,
    exif_rotated_jpeg,
    linear_rgb_icc,
    noise_array,
    save,
    save_rgb,
)

from colorkit.color import linear_to_srgb
from colorkit.data import (
    TRAIN_RESIZE_FACTOR,
    DataError,
    DataWarning,
    PhotoDataset,
    ScanResult,
    embedded_photos,
    evaluation_photos,
    find_images,
    load_photos,
    photo_folder,
    scan_images,
    split_paths,
)
from colorkit.imaging import IMAGE_EXTENSIONS, ImageReadError, load_rgb
from colorkit.registry import ColorkitError


def relative(paths: list[Path], root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


def scan_quietly(paths: list[Path]) -> ScanResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return scan_images(paths)


# -- find_images ------------------------------------------------------------------------


def test_find_images_is_recursive_sorted_case_insensitive_and_skips_hidden(mixed_folder):
    found = find_images(mixed_folder)
    names = relative(found, mixed_folder)
    assert set(names) == USABLE | GRAYSCALE | CORRUPT
    assert found == sorted(found)
    assert all(p.is_file() and p.is_relative_to(mixed_folder) for p in found)


def test_find_images_accepts_str(mixed_folder):
    assert find_images(str(mixed_folder)) == find_images(mixed_folder)


def test_find_images_errors_name_the_root_and_extensions(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=r"nowhere.*no such folder.*\.jpg"):
        find_images(missing)
    a_file = save_rgb(tmp_path / "single.jpg")
    with pytest.raises(DataError, match=r"single\.jpg.*not a folder"):
        find_images(a_file)
    empty = tmp_path / "empty_dir"
    (empty / ".hidden").mkdir(parents=True)
    save_rgb(empty / ".hidden" / "x.jpg")
    (empty / "notes.txt").write_text("x")
    with pytest.raises(DataError) as info:
        find_images(empty)
    message = str(info.value)
    assert "empty_dir" in message and "no image files" in message
    assert all(ext in message for ext in IMAGE_EXTENSIONS)


def test_data_error_is_a_colorkit_error_and_value_error():
    assert issubclass(DataError, ColorkitError)
    assert issubclass(DataError, ValueError)


# -- split_paths ------------------------------------------------------------------------


def fake_paths(count: int) -> list[Path]:
    return [Path(f"/data/img_{i:03d}.jpg") for i in range(count)]


def test_split_is_deterministic_disjoint_complete_and_order_independent():
    paths = fake_paths(50)
    train, test = split_paths(paths, 0.2, seed=3)
    assert (train, test) == split_paths(list(reversed(paths)), 0.2, seed=3)
    assert (train, test) == split_paths(paths[::2] + paths[1::2], 0.2, seed=3)
    assert len(test) == 10 and len(train) == 40
    assert not set(train) & set(test)
    assert set(train) | set(test) == set(paths)
    assert train == sorted(train) and test == sorted(test)


def test_split_depends_on_seed():
    paths = fake_paths(30)
    tests = {tuple(split_paths(paths, 0.3, seed=seed)[1]) for seed in range(5)}
    assert len(tests) > 1
    assert split_paths(paths, 0.3, seed=0) != split_paths(paths, 0.3, seed=1)


def test_split_is_a_shuffle_not_a_prefix():
    paths = fake_paths(40)
    _, test = split_paths(paths, 0.25, seed=0)
    assert test != paths[:10] and test != paths[-10:]


@pytest.mark.parametrize("fraction", [0.01, 0.5, 0.99])
def test_split_keeps_one_image_in_each_set(fraction):
    for count in (2, 3, 7):
        train, test = split_paths(fake_paths(count), fraction)
        assert len(train) >= 1 and len(test) >= 1
        assert len(train) + len(test) == count


def test_split_of_one_path_and_of_duplicates():
    only = fake_paths(1)
    assert split_paths(only, 0.5) == (only, [])
    paths = fake_paths(6)
    train, test = split_paths(paths + paths, 0.5)
    assert not set(train) & set(test)
    assert len(train) + len(test) == 6


@pytest.mark.parametrize("fraction", [0, 0.0, 1, 1.0, -0.1, 1.5, math.nan, "0.2", True, None])
def test_split_rejects_bad_fraction(fraction):
    with pytest.raises(DataError, match=r"test_fraction.*between 0 and 1"):
        split_paths(fake_paths(10), fraction)


# -- scan_images ------------------------------------------------------------------------


def test_scan_reports_corrupt_and_grayscale_files_with_warnings(mixed_folder):
    paths = find_images(mixed_folder)
    with pytest.warns(DataWarning) as record:
        result = scan_images(paths)
    assert set(relative(result.usable, mixed_folder)) == USABLE
    assert set(relative(result.grayscale, mixed_folder)) == GRAYSCALE
    corrupt = {p.relative_to(mixed_folder).as_posix(): why for p, why in result.corrupt}
    assert set(corrupt) == CORRUPT
    assert "empty" in corrupt["empty.jpg"]
    assert "truncated" in corrupt["truncated.jpg"]
    assert "not an image" in corrupt["notes.png"]
    assert result.usable == [p for p in paths if p in set(result.usable)]  # input order kept

    messages = [str(w.message) for w in record]
    for name in CORRUPT:
        assert any(name in m and "unreadable" in m for m in messages), name
    for name in GRAYSCALE:
        assert any(name in m and "grayscale" in m for m in messages), name
    summary = f"skipped 7 of {len(paths)} files: 3 unreadable, 4 grayscale"
    assert messages[-1] == summary
    assert len(messages) == 3 + 4 + 1


def test_scan_of_good_files_warns_nothing(tmp_path):
    paths = [save_rgb(tmp_path / f"{i}.jpg", seed=i) for i in range(3)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = scan_images(paths)
    assert result.usable == paths and result.corrupt == [] and result.grayscale == []


def test_scan_counts_a_mostly_gray_photo_with_some_colour_as_colour(tmp_path):
    array = np.full((64, 64, 3), 128, dtype=np.uint8)
    array[:16, :16] = (200, 30, 30)  # a small red object on a gray background
    path = save(tmp_path / "mostly_gray.png", Image.fromarray(array))
    assert scan_images([path]).usable == [path]


def test_scan_counts_a_gray_palette_image_as_grayscale(tmp_path):
    gray = color_array(24, 32)[..., 0]
    path = save(tmp_path / "gray_palette.png", Image.fromarray(gray, "L").convert("P"))
    with pytest.warns(DataWarning) as record, pytest.raises(DataError):
        scan_images([path])
    assert "gray_palette.png" in str(record[0].message)
    assert str(record[-1].message) == "skipped 1 of 1 files: 0 unreadable, 1 grayscale"


def test_scan_with_nothing_usable_names_the_folder(tmp_path):
    folder = tmp_path / "all_bad"
    folder.mkdir()
    (folder / "x.jpg").write_bytes(b"")
    save(folder / "y.png", Image.fromarray(color_array(8, 8)[..., 0], "L"))
    with (
        pytest.warns(DataWarning),
        pytest.raises(DataError, match=r"all_bad.*no usable colour image.*1 unreadable, 1 gray"),
    ):
        scan_images(sorted(folder.iterdir()))
    with pytest.raises(DataError, match="no image files to scan"):
        scan_images([])


# -- PhotoDataset -----------------------------------------------------------------------


def test_dataset_items_have_shape_dtype_and_range(mixed_folder):
    paths = [mixed_folder / name for name in sorted(USABLE)]
    small = save_rgb(mixed_folder / "tiny.png", height=5, width=7)  # scaled up
    tall = save_rgb(mixed_folder / "tall.jpg", height=90, width=30)
    for train in (True, False):
        dataset = PhotoDataset([*paths, small, tall], size=16, train=train)
        assert len(dataset) == len(paths) + 2
        assert dataset.paths[-1] == tall and isinstance(dataset.paths[0], Path)
        for index in range(len(dataset)):
            item = dataset[index]
            assert item.shape == (3, 16, 16) and item.dtype == torch.float32
            assert item.min() >= 0.0 and item.max() <= 1.0
            assert item.std() > 0
        with pytest.raises(IndexError):
            dataset[len(dataset)]


def test_dataset_batches_through_a_dataloader(tmp_path):
    paths = [save_rgb(tmp_path / f"{i}.png", seed=i) for i in range(5)]
    loader = torch.utils.data.DataLoader(PhotoDataset(paths, size=8), batch_size=2)
    shapes = [batch.shape for batch in loader]
    assert shapes == [(2, 3, 8, 8), (2, 3, 8, 8), (1, 3, 8, 8)]


def test_train_items_are_random_crops_and_flips_reproducible_by_seed(tmp_path):
    # a 24×18 image needs no resize for size 16 (18 = round(16 × 1.125)), so every item
    # must be an exact 16×16 crop of it, possibly mirrored
    array = noise_array(18, 24)
    path = save(tmp_path / "noise.png", Image.fromarray(array))
    dataset = PhotoDataset([path], size=16, train=True)
    source = torch.from_numpy(array).permute(2, 0, 1).float() / 255

    def draws(seed: int) -> list[torch.Tensor]:
        torch.manual_seed(seed)
        return [dataset[0] for _ in range(12)]

    first, again, other = draws(0), draws(0), draws(1)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))

    seen = set()
    for item in first + other:
        matches = [
            (top, left, flip)
            for top in range(3)
            for left in range(9)
            for flip in (False, True)
            if torch.equal(
                item,
                source[:, top : top + 16, left : left + 16].flip(-1)
                if flip
                else source[:, top : top + 16, left : left + 16],
            )
        ]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len({flip for _, _, flip in seen}) == 2  # both flipped and plain crops occur
    assert len({(top, left) for top, left, _ in seen}) > 3


def test_max_resize_draws_crops_at_several_scales(tmp_path):
    # a horizontal ramp: the span of values a crop covers is the share of the photo's
    # width it shows, so it tells the scale the item was resized to
    ramp = np.repeat(np.linspace(0, 255, 64, dtype=np.float64)[None, :], 64, axis=0)
    array = np.stack([ramp, 255 - ramp, np.full_like(ramp, 128)], axis=-1).astype(np.uint8)
    path = save(tmp_path / "ramp.png", Image.fromarray(array))

    def spans(max_resize: float) -> list[float]:
        dataset = PhotoDataset([path], size=32, train=True, max_resize=max_resize)
        torch.manual_seed(0)
        items = [dataset[0][0] for _ in range(40)]
        return [float(item.max() - item.min()) for item in items]

    plain, zoomed = spans(TRAIN_RESIZE_FACTOR), spans(3.0)
    # 32 of round(32 × 1.125) = 36 pixels: about 0.86 of the ramp in every item
    assert min(plain) > 0.8
    assert max(plain) - min(plain) < 0.02
    # factors up to 3 show as little as a third of the ramp, and the factor varies
    assert min(zoomed) < 0.45
    assert max(zoomed) > 0.7


@pytest.mark.parametrize("max_resize", [1.0, 0.5, "2", None])
def test_max_resize_below_the_pix2pix_factor_is_refused(max_resize):
    with pytest.raises(DataError, match="max_resize"):
        PhotoDataset(fake_paths(2), size=16, max_resize=max_resize)
    with pytest.raises(DataError, match="max_resize"):
        load_photos(None, size=16, max_resize=max_resize)


def test_eval_items_are_deterministic_centre_crops(tmp_path):
    array = noise_array(20, 16)
    path = save(tmp_path / "noise.png", Image.fromarray(array))
    dataset = PhotoDataset([path], size=16, train=False)
    torch.manual_seed(0)
    first = dataset[0]
    torch.manual_seed(1)
    assert torch.equal(first, dataset[0])
    expected = torch.from_numpy(array[2:18]).permute(2, 0, 1).float() / 255
    assert torch.equal(first, expected)


def test_dataset_decodes_large_jpegs_at_reduced_scale_faithfully(tmp_path):
    path = save_rgb(tmp_path / "large.jpg", height=600, width=800, quality=95)
    item = PhotoDataset([path], size=32, train=False)[0]
    full = load_rgb(path).resize((43, 32), Image.Resampling.BICUBIC).crop((5, 0, 37, 32))
    expected = torch.from_numpy(np.asarray(full).copy()).permute(2, 0, 1).float() / 255
    assert (item - expected).abs().mean() < 0.02


def test_dataset_converts_colour_profiles_at_reduced_scale(tmp_path):
    linear = Image.new("RGB", (400, 300), (128, 64, 200))  # linear light under the profile
    path = tmp_path / "tagged.jpg"
    linear.save(path, quality=100, icc_profile=linear_rgb_icc())
    item = PhotoDataset([path], size=32, train=False)[0]
    expected = linear_to_srgb(torch.tensor([128.0, 64.0, 200.0]) / 255)
    assert torch.allclose(item.mean(dim=(1, 2)), expected, atol=3 / 255)


def test_dataset_applies_exif_rotation_at_reduced_scale(tmp_path):
    path = exif_rotated_jpeg(tmp_path / "rot.jpg", width=400, height=200)
    item = PhotoDataset([path], size=32, train=False)[0]  # upright 200×400 → 32×64, crop
    top, bottom = item[:, :12].mean(dim=(1, 2)), item[:, 20:].mean(dim=(1, 2))
    assert top[0] > 0.6 > top[2]
    assert bottom[2] > 0.6 > bottom[0]


def test_dataset_raises_for_a_file_broken_after_the_scan(tmp_path):
    paths = [save_rgb(tmp_path / f"{i}.jpg", seed=i) for i in range(2)]
    dataset = PhotoDataset(scan_images(paths).usable, size=8)
    paths[1].write_bytes(b"garbage, no longer a JPEG")
    assert dataset[0].shape == (3, 8, 8)
    with pytest.raises(ImageReadError, match=r"1\.jpg"):
        dataset[1]
    paths[0].unlink()
    with pytest.raises(ImageReadError, match=r"0\.jpg.*no such file"):
        dataset[0]


@pytest.mark.parametrize("size", [0, -4, 2.5, "64", True])
def test_dataset_rejects_bad_size(size):
    with pytest.raises(DataError, match="size"):
        PhotoDataset(fake_paths(2), size=size)


# -- embedded photos and load_photos --------------------------------------------------


def test_embedded_photos_are_five_usable_colour_images():
    folder = embedded_photos()
    assert folder.is_dir() and folder.name == "photos"
    paths = find_images(folder)
    assert len(paths) == 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = scan_images(paths)
    assert result.usable == paths
    for path in paths:
        rgb = np.asarray(load_rgb(path)).astype(int)
        assert (rgb.max(axis=-1) - rgb.min(axis=-1)).mean() > 20, path.name


def test_load_photos_on_the_embedded_set():
    train, test, scan = load_photos(None, size=32, test_fraction=0.2, seed=0)
    assert isinstance(train, PhotoDataset) and isinstance(test, PhotoDataset)
    assert train.train and not test.train
    assert len(train) == 4 and len(test) == 1
    assert set(train.paths) | set(test.paths) == set(scan.usable)
    assert not set(train.paths) & set(test.paths)
    assert train[0].shape == test[0].shape == (3, 32, 32)
    again = load_photos(embedded_photos(), size=32, test_fraction=0.2, seed=0)
    assert again[0].paths == train.paths and again[1].paths == test.paths


def test_load_photos_on_a_mixed_folder(mixed_folder):
    with pytest.warns(DataWarning) as record:
        train, test, scan = load_photos(mixed_folder, size=16, test_fraction=0.3, seed=1)
    assert str(record[-1].message).startswith("skipped 7 of")
    assert len(scan.usable) == len(USABLE)
    assert len(test) == 3 and len(train) == len(USABLE) - 3
    assert set(train.paths) | set(test.paths) == set(scan.usable)
    assert all(p not in scan.grayscale for p in train.paths + test.paths)


def test_load_photos_errors(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        load_photos(tmp_path / "missing")
    with pytest.raises(DataError, match="test_fraction"):
        load_photos(None, test_fraction=1.0)
    with pytest.raises(DataError, match="size"):
        load_photos(None, size=0)
    folder = tmp_path / "one"
    save_rgb(folder / "only.jpg")
    with pytest.raises(DataError, match=r"one.*only 1 usable.*at least 2"):
        load_photos(folder)


def test_load_photos_with_a_separate_test_folder(tmp_path):
    train_paths = [save_rgb(tmp_path / "train" / f"{i}.jpg", seed=i) for i in range(3)]
    test_paths = [save_rgb(tmp_path / "test" / f"{i}.png", seed=10 + i) for i in range(2)]
    train, test, scan = load_photos(tmp_path / "train", size=16, eval_data=tmp_path / "test")
    assert train.paths == train_paths and test.paths == test_paths
    assert train.train and not test.train
    assert scan.usable == train_paths
    single = save_rgb(tmp_path / "one" / "only.jpg")  # one training photo is enough here
    assert load_photos(single.parent, size=16, eval_data=tmp_path / "test")[0].paths == [single]


def test_load_photos_refuses_overlapping_or_unusable_test_folders(tmp_path):
    for i in range(3):
        save_rgb(tmp_path / "all" / "train" / f"{i}.jpg", seed=i)
    with pytest.raises(DataError, match=r"train: 3 of its photos are also in .*all"):
        load_photos(tmp_path / "all", eval_data=tmp_path / "all" / "train")
    save(tmp_path / "gray" / "g.png", Image.new("L", (16, 16), 90))
    with pytest.warns(DataWarning), pytest.raises(DataError, match=r"gray: no usable colour"):
        load_photos(tmp_path / "all" / "train", eval_data=tmp_path / "gray")
    with pytest.raises(DataError, match=r"missing: no such folder"):
        load_photos(tmp_path / "all" / "train", eval_data=tmp_path / "missing")


def test_evaluation_photos_are_the_split_training_uses(mixed_folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        train, test, _ = load_photos(mixed_folder, size=16, test_fraction=0.3, seed=2)
        held_out = evaluation_photos(mixed_folder, 16, "test", test_fraction=0.3, seed=2)
        trained = evaluation_photos(mixed_folder, 16, "train", test_fraction=0.3, seed=2)
        everything = evaluation_photos(mixed_folder, 16)
    assert held_out.paths == test.paths and trained.paths == train.paths
    assert sorted(everything.paths) == sorted(train.paths + test.paths)
    assert not everything.train and everything.size == 16
    with pytest.raises(DataError, match="split='dev'"):
        evaluation_photos(mixed_folder, split="dev")
    assert photo_folder(None) == embedded_photos() and photo_folder("x") == Path("x")
