"""The command line: every subcommand, its help, and its errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import colorkit
from colorkit.cli import build_parser, main, parse_overrides

TINY = ["--set", "generator_depth=3", "--set", "base_channels=8", "--set", "refiner_hidden=16"]
FAST = ["--size", "32", "--batch", "2", "--workers", "0", "--no-progress", "--device", "cpu"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint trained for 2 steps on the embedded photos through `colorkit train`."""
    run = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "--steps", "2", "--out", str(run), *FAST, *TINY]) == 0
    return run / "step-00000002.safetensors"


@pytest.mark.parametrize("command", ["train", "evaluate", "colorize", "list", "demo", "serve"])
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"colorkit {command}" in capsys.readouterr().out


def test_python_dash_m_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "colorkit", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"colorkit {colorkit.__version__}"


def test_list_shows_components_options_and_plugins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for recipe in colorkit.list_components("recipe"):
        assert recipe in out
    assert "patch=8" in out and "colorkit-convrefiner" in out
    assert main(["list", "generator", "unet*"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("generator")]
    assert [line.split()[1] for line in lines] == ["unet"]


def test_parse_overrides_reads_literals_and_strings() -> None:
    assert parse_overrides(["refiner_patch=8", "generator=timm-unet", "betas=(0.9, 0.99)"]) == {
        "refiner_patch": 8,
        "generator": "timm-unet",
        "betas": (0.9, 0.99),
    }
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_overrides(["refiner_patch"])


def test_train_writes_a_checkpoint_that_evaluates(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scores = tmp_path / "scores.json"
    code = main(["evaluate", str(trained), "--size", "32", "--json", str(scores), "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "psnr_ab" in out
    assert "protocol:" in out and "32×32" in out and "kernel 11" in out
    report = json.loads(scores.read_text())
    assert len(report["images"]) == len(list(colorkit.data.embedded_photos().glob("*.jpg")))
    assert report["protocol"]["size"] == 32
    assert 0.0 <= report["mean"]["ssim"] <= 1.0


def test_evaluate_compares_several_checkpoints(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    twin = tmp_path / "twin.safetensors"
    shutil.copyfile(trained, twin)
    scores = tmp_path / "both.json"
    args = ["evaluate", str(trained), str(twin), "--size", "32", "--json", str(scores)]
    assert main([*args, "--no-progress"]) == 0
    out = capsys.readouterr().out
    comparison = out[out.index("comparison on the same 5 images:") :].splitlines()
    assert comparison[3].startswith("gray input")
    assert comparison[4].split()[1:] == comparison[5].split()[1:]  # the same weights
    label = str(trained)
    assert comparison[4].startswith(label if len(label) <= 48 else "…" + label[-47:])
    reports = json.loads(scores.read_text())
    assert [r["protocol"]["checkpoint"] for r in reports] == [str(trained), str(twin)]
    assert reports[0]["mean"] == reports[1]["mean"]


def test_colorize_keeps_going_past_a_bad_file_and_exits_nonzero(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray(np.full((40, 30), 120, np.uint8), "L").save(inputs / "gray.png")
    (inputs / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "out"
    code = main(["colorize", str(trained), str(inputs), "-o", str(out), "--no-progress"])
    assert code == 1
    assert "broken.jpg" in capsys.readouterr().err
    written = list(out.iterdir())
    assert len(written) == 1
    with Image.open(written[0]) as image:
        assert image.size == (30, 40)


def _gray_photo(folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "gray.png"
    Image.fromarray(np.full((40, 30), 120, np.uint8), "L").save(path)
    return path


def test_export_then_colorize_with_the_weights(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = tmp_path / "light.safetensors"
    assert main(["export", str(trained), "-o", str(weights), "--dtype", "bf16"]) == 0
    assert "bf16" in capsys.readouterr().out and weights.is_file()
    photo = _gray_photo(tmp_path / "in")
    code = main(["colorize", "--weights", str(weights), str(photo), "-o", str(tmp_path / "out")])
    assert code == 0
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["gray.png"]


class _Weights:
    def __init__(self, path: Path) -> None:
        self.path = path

    @colorkit.hookimpl
    def colorkit_components(self) -> list[colorkit.Component]:
        from colorkit.weights import Weights

        return [colorkit.Component("weights", "cli_test_default", Weights(self.path))]


def test_colorize_without_weights_uses_the_default_and_says_which(
    trained: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plugin = _Weights(trained)
    colorkit.default_registry().register_plugin(plugin)
    monkeypatch.setattr("colorkit.cli.DEFAULT_WEIGHTS", "cli_test_default")
    try:
        photo = _gray_photo(tmp_path / "in")
        assert main(["colorize", str(photo), "-o", str(tmp_path / "out"), "--no-progress"]) == 0
    finally:
        colorkit.default_registry().unregister_plugin(plugin)
    assert "using the 'cli_test_default' weights" in capsys.readouterr().out
    assert (tmp_path / "out" / "gray.png").is_file()


def test_colorize_with_unknown_weights_names_the_nearest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = _gray_photo(tmp_path / "in")
    code = main(["colorize", "--weights", "startr", str(photo), "-o", str(tmp_path / "out")])
    assert code == 2
    assert "did you mean 'starter'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_bad_override_names_the_option_and_nearest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["train", "--steps", "1", "--out", str(tmp_path / "r"), *FAST, "--set", "refiner_pach=4"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "refiner_pach" in err and "refiner_patch" in err


def test_train_into_an_existing_run_needs_resume(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["train", "--steps", "2", "--out", str(trained.parent), *FAST, *TINY])
    assert code == 2
    assert "--resume" in capsys.readouterr().err
    assert trained.exists()


def test_train_eval_data_reaches_the_data_loader(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code = main(["train", "--steps", "1", "--out", str(out), "--eval-data", str(tmp_path / "nope")])
    assert code == 2
    assert "nope: no such folder" in capsys.readouterr().err
    assert not list(out.glob("*.safetensors"))


def test_evaluate_rejects_a_file_that_is_no_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = tmp_path / "model.safetensors"
    fake.write_text("hello")
    assert main(["evaluate", str(fake), "--no-progress"]) == 2
    assert str(fake) in capsys.readouterr().err


def test_train_init_starts_a_new_run_from_weights_and_resume_ignores_it(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(steps: int, out: str, *extra: str) -> int:
        common = ["--recipe", "pix2pix", "--steps", str(steps), *FAST, *TINY[:4]]
        return main(["train", *common, "--out", str(tmp_path / out), *extra])

    assert run(1, "tuned", "--init", str(trained)) == 0
    assert f"initialised the generator and discriminator from {trained}" in capsys.readouterr().err
    assert run(2, "tuned", "--init", str(trained), "--resume") == 0
    assert "initialised" not in capsys.readouterr().err
    assert run(1, "other", "--init", str(tmp_path / "none.safetensors")) == 2
    assert "none.safetensors" in capsys.readouterr().err


def test_demo_trains_scores_and_draws_a_grid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--train", "--steps", "2", "--out", str(out), *FAST, *TINY]) == 0
    printed = capsys.readouterr().out
    assert "demo.png" in printed
    metrics = json.loads((out / "demo-metrics.json").read_text())
    assert metrics["images"] and "colorfulness" in metrics["mean"]
    with Image.open(out / "demo.png") as grid:
        assert grid.width == 4 * 32
        photos = len(list(colorkit.data.embedded_photos().glob("*.jpg")))
        assert grid.height > photos * 32


def test_demo_colorizes_the_embedded_photos_with_the_weights_given(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "shown"
    args = ["demo", "--weights", str(trained), "--out", str(out), "--no-progress"]
    assert main([*args, "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    photos = len(list(colorkit.data.embedded_photos().glob("*.jpg")))
    assert f"{photos} photos, gray | {trained.stem} | truth" in printed
    assert "model - gray" in printed
    assert (out / f"{trained.stem}.png").is_file()
    metrics = json.loads((out / f"{trained.stem}-metrics.json").read_text())
    assert metrics[trained.stem]["protocol"]["weights"] == str(trained)
    assert not (out / "demo.png").exists()  # nothing was trained


def test_demo_names_missing_weights_and_the_way_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.safetensors"
    assert main(["demo", "--weights", str(missing), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "nowhere.safetensors" in err
    assert not (tmp_path / "o").exists()


def test_option_defaults_are_the_train_configs() -> None:
    """argparse takes its defaults from TrainConfig (and the demo's from DEMO)."""
    import dataclasses

    from colorkit.demo import DEMO
    from colorkit.trainer import TrainConfig

    parser = build_parser()
    for command, defaults in (("train", TrainConfig()), ("demo", DEMO)):
        args = vars(parser.parse_args([command]))
        for field in dataclasses.fields(TrainConfig):
            if field.name in args and field.name != "overrides":
                assert args[field.name] == getattr(defaults, field.name), (command, field.name)


def test_colorize_takes_a_video_by_content_with_its_options(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from support import make_video, moving_frames

    from colorkit.video import probe_video

    clip = make_video(tmp_path / "clip.mp4", moving_frames(6, 24, 32))
    reel = tmp_path / "reel.bin"  # a video by its content, whatever its name
    reel.write_bytes(clip.read_bytes())
    out = tmp_path / "out"
    options = ["--stabilizer-set", "strength=0.5", "--crf", "30", "--video-batch", "4"]
    code = main(["colorize", str(trained), str(reel), "-o", str(out), "--no-progress", *options])
    assert code == 0, capsys.readouterr().err
    assert probe_video(out / "reel.mp4").frames == 6
    code = main(["colorize", str(trained), str(reel), "-o", str(out), "--stabilizer", "flwo"])
    assert code == 1
    assert "unknown stabilizer 'flwo'; did you mean 'flow'?" in capsys.readouterr().err


def test_list_stabilizers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "stabilizer"]) == 0
    listed = capsys.readouterr().out
    assert "stabilizer    flow" in listed and "stabilizer    none" in listed
    assert "strength=0.95" in listed
