"""Tests of colorkit.video and the stabilizers: streaming video colorization, safe output."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch
from support import build_tiny, make_video, moving_frames, read_video

import colorkit
from colorkit.colorizing import colorize_paths
from colorkit.components.stabilizers import FlowStabilizer, NoStabilizer, estimate_flow, warp
from colorkit.registry import ContractError
from colorkit.video import (
    VideoReadError,
    VideoSettings,
    VideoWriteError,
    colorize_video,
    is_video,
    output_suffix,
    probe_video,
)

HEIGHT, WIDTH = 32, 48
WORKING_SIZE = 24


@pytest.fixture(scope="module")
def model() -> colorkit.Colorizer:
    """The tiny model, its last layer's bias set so it predicts clearly visible colour."""
    tiny = build_tiny()
    last = [m for m in tiny.generator.modules() if isinstance(m, torch.nn.ConvTranspose2d)][-1]
    with torch.no_grad():
        last.bias.copy_(torch.tensor([0.4, -0.3]))
    return tiny.eval()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12-frame gray H.264 MP4 with an AAC track."""
    folder = tmp_path_factory.mktemp("clip")
    return make_video(folder / "clip.mp4", moving_frames(12, HEIGHT, WIDTH), audio=True)


def _colorize(model: colorkit.Colorizer, src: Path, target: Path, **settings: Any):
    return colorize_video(
        model, src, target, WORKING_SIZE, VideoSettings(**settings), progress=False
    )


def _luminance(rgb: np.ndarray) -> np.ndarray:
    from support import gray_of

    return gray_of(rgb)


def _packets(path: Path, kind: str) -> list[bytes]:
    with av.open(str(path)) as container:
        stream = next(s for s in container.streams if s.type == kind)
        return [bytes(p) for p in container.demux(stream) if p.size]


# -- the output ----------------------------------------------------------------------------------
def test_video_keeps_frames_timing_size_lightness_and_audio(
    model: colorkit.Colorizer, clip: Path, tmp_path: Path
) -> None:
    target = tmp_path / "out" / "clip.mp4"
    report = _colorize(model, clip, target)
    assert report.target == target and target.is_file()
    assert report.frames == 12 and report.copied == ["audio aac"]
    assert not report.notes, report.notes
    source, colour = probe_video(clip), probe_video(target)
    assert (colour.width, colour.height, colour.frames) == (WIDTH, HEIGHT, 12)
    assert colour.codec == "h264" and colour.rate == source.rate == 10
    assert colour.duration == pytest.approx(source.duration, abs=0.05)
    before, before_times, _ = read_video(clip)
    after, after_times, pixel_format = read_video(target)
    assert pixel_format == "yuv420p"
    assert after_times == pytest.approx(before_times)
    # the lightness is the input's (up to H.264 at crf 18 and 4:2:0 chroma); colour was added
    for gray, rgb in zip(before, after, strict=True):
        assert np.abs(_luminance(rgb) - _luminance(gray)).mean() < 3 / 255
    assert np.abs(after[5].astype(int) - after[5][..., :1]).mean() > 3
    assert _packets(target, "audio") == _packets(clip, "audio")


def test_subtitles_are_copied_into_matroska(model: colorkit.Colorizer, tmp_path: Path) -> None:
    cues = "1\n00:00:00,000 --> 00:00:00,400\nHello\n\n2\n00:00:00,400 --> 00:00:00,700\nWorld\n"
    src = make_video(
        tmp_path / "film.mkv", moving_frames(8, HEIGHT, WIDTH), audio=True, subtitles=cues
    )
    # MP4 holds no SubRip text, so the output name says Matroska
    assert output_suffix(src) == ".mkv"
    target = tmp_path / "out.mkv"
    report = _colorize(model, src, target, stabilizer="none")
    assert sorted(report.copied) == ["audio aac", "subtitle srt"]
    assert _packets(target, "subtitle") == [b"Hello", b"World"]
    assert _packets(target, "audio") == _packets(src, "audio")
    with pytest.raises(VideoWriteError, match=r"film\.mkv.*subtitle.*\.mkv"):
        _colorize(model, src, tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()


def test_variable_frame_rate_keeps_every_timestamp(
    model: colorkit.Colorizer, tmp_path: Path
) -> None:
    times = [0, 100, 150, 400, 433, 700, 1000, 1040]
    src = make_video(tmp_path / "vfr.mkv", moving_frames(8, HEIGHT, WIDTH), timestamps=times)
    report = _colorize(model, src, tmp_path / "vfr.mp4")
    assert any("variable frame rate" in note for note in report.notes)
    _, after_times, _ = read_video(tmp_path / "vfr.mp4")
    assert after_times == pytest.approx([t / 1000 for t in times], abs=1e-3)


def test_odd_dimensions_keep_the_exact_size(model: colorkit.Colorizer, tmp_path: Path) -> None:
    src = make_video(tmp_path / "odd.mkv", moving_frames(6, 17, 33))
    report = _colorize(model, src, tmp_path / "odd.mp4")
    info = probe_video(tmp_path / "odd.mp4")
    assert (info.width, info.height, info.frames) == (33, 17, 6)
    assert any("odd frame size 33×17" in note for note in report.notes)
    assert read_video(tmp_path / "odd.mp4")[2] == "yuv444p"


def test_a_colour_video_is_colorized_from_its_lightness_and_said_so(
    model: colorkit.Colorizer, tmp_path: Path
) -> None:
    src = make_video(tmp_path / "colour.mp4", moving_frames(6, HEIGHT, WIDTH, colour=True))
    report = _colorize(model, src, tmp_path / "out.mp4")
    assert any("already in colour" in note and "colour.mp4" in note for note in report.notes)


def test_codec_and_quality_options_reach_the_encoder(
    model: colorkit.Colorizer, clip: Path, tmp_path: Path
) -> None:
    small = _colorize(model, clip, tmp_path / "small.mp4", crf=40, stabilizer="none")
    large = _colorize(model, clip, tmp_path / "large.mp4", crf=5, stabilizer="none")
    assert small.target.stat().st_size < large.target.stat().st_size
    _colorize(model, clip, tmp_path / "vp9.mkv", codec="libvpx-vp9", stabilizer="none")
    assert probe_video(tmp_path / "vp9.mkv").codec == "vp9"
    # WebM holds Vorbis and Opus only: the AAC track does not fit, and the message says so
    with pytest.raises(VideoWriteError, match=r"clip\.mp4: its audio stream \(aac\)"):
        _colorize(model, clip, tmp_path / "vp9.webm", codec="libvpx-vp9")
    with pytest.raises(ValueError, match="video codec 'h265'"):
        _colorize(model, clip, tmp_path / "bad.mp4", codec="h265")
    with pytest.raises(ValueError, match=r"suffix '\.xyz'"):
        _colorize(model, clip, tmp_path / "bad.xyz")


# -- bad input and safe output -------------------------------------------------------------------
def test_files_are_recognised_by_content(clip: Path, tmp_path: Path) -> None:
    renamed = tmp_path / "clip.dat"
    renamed.write_bytes(clip.read_bytes())
    assert is_video(renamed) and is_video(clip)
    png = tmp_path / "photo.mp4"
    from PIL import Image

    Image.new("L", (8, 8)).save(png, format="PNG")
    assert not is_video(png) and not is_video(tmp_path) and not is_video(tmp_path / "missing")


def test_unreadable_videos_name_the_file(model: colorkit.Colorizer, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x00\x00\x18ftypisom" + os.urandom(2000))
    with pytest.raises(VideoReadError, match=r"garbage\.mp4"):
        _colorize(model, garbage, tmp_path / "out.mp4")

    # an MP4 cut short loses its index (written last): nothing can be decoded
    whole = make_video(tmp_path / "whole.mp4", moving_frames(8, HEIGHT, WIDTH))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(VideoReadError, match=r"cut\.mp4"):
        _colorize(model, cut, tmp_path / "out.mp4")

    sound = tmp_path / "sound.m4a"
    with av.open(str(sound), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=8000)
        stream.layout = "mono"
        piece = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        piece.sample_rate, piece.pts = 8000, 0
        container.mux(stream.encode(piece))
        container.mux(stream.encode(None))
    with pytest.raises(VideoReadError, match=r"sound\.m4a: no video stream \(it holds audio aac"):
        probe_video(sound)

    # a codec FFmpeg does not know: an AVI whose video FourCC was altered
    avi = make_video(tmp_path / "known.avi", moving_frames(4, HEIGHT, WIDTH), codec="mpeg4")
    alien = tmp_path / "alien.avi"
    alien.write_bytes(avi.read_bytes().replace(b"FMP4", b"QZQZ"))
    with pytest.raises(VideoReadError, match=r"alien\.avi.*codec"):
        _colorize(model, alien, tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()


def test_a_truncated_stream_is_colorized_as_far_as_it_goes(
    model: colorkit.Colorizer, tmp_path: Path
) -> None:
    whole = make_video(tmp_path / "whole.mkv", moving_frames(30, HEIGHT, WIDTH))
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    report = _colorize(model, cut, tmp_path / "out.mp4")
    assert 5 < report.frames < 30
    assert probe_video(tmp_path / "out.mp4").frames == report.frames
    assert any("cut.mkv: damaged or truncated" in note for note in report.notes)


class _FailingModel:
    """Colorizes the first batch, then fails as a full disk or a crash would."""

    def __init__(self, model: colorkit.Colorizer) -> None:
        self.model, self.calls = model, 0

    def predict_chroma(self, gray: torch.Tensor, working_size: int | None = None) -> torch.Tensor:
        self.calls += 1
        if self.calls > 1:
            raise OSError("no space left on device")
        return self.model.predict_chroma(gray, working_size=working_size)


def test_a_failed_write_never_replaces_a_good_file(
    model: colorkit.Colorizer, tmp_path: Path
) -> None:
    src = make_video(tmp_path / "long.mp4", moving_frames(20, HEIGHT, WIDTH))
    target = tmp_path / "out" / "long.mp4"
    target.parent.mkdir()
    target.write_bytes(b"an earlier, good result")
    with pytest.raises(OSError, match="no space left"):
        colorize_video(
            _FailingModel(model),  # type: ignore[arg-type]
            src,
            target,
            WORKING_SIZE,
            VideoSettings(batch_size=4),
            progress=False,
        )
    assert target.read_bytes() == b"an earlier, good result"
    assert sorted(p.name for p in target.parent.iterdir()) == ["long.mp4"]


def test_colorize_paths_takes_videos_beside_images(
    model: colorkit.Colorizer, clip: Path, tmp_path: Path
) -> None:
    from PIL import Image

    inputs = tmp_path / "in"
    inputs.mkdir()
    video = inputs / "holiday.bin"  # a video by content, not by name
    video.write_bytes(clip.read_bytes())
    photo = inputs / "photo.png"
    Image.new("L", (30, 20), 100).save(photo)
    broken = inputs / "broken.mkv"
    broken.write_bytes(b"\x1a\x45\xdf\xa3" + b"\x00" * 64)
    out = tmp_path / "out"
    report = colorize_paths(
        model,
        [video, photo, broken],
        out,
        WORKING_SIZE,
        progress=False,
        video=VideoSettings(stabilizer="none"),
    )
    assert report.written == [out / "holiday.mp4", out / "photo.png"]
    assert [path for path, _ in report.failed] == [broken]
    assert probe_video(out / "holiday.mp4").frames == 12


# -- stabilizers -----------------------------------------------------------------------------------
def _pattern(height: int = 48, width: int = 64) -> torch.Tensor:
    frame = moving_frames(1, height, width)[0][..., 0]
    return torch.from_numpy(frame).float().div(255.0)[None, None]


def test_estimate_flow_recovers_a_known_shift() -> None:
    source = _pattern()
    shift = torch.tensor([2.6, -1.3]).view(1, 2, 1, 1).expand(1, 2, 48, 64)
    target = warp(source, shift)
    flow = estimate_flow(target, source)
    inner = (flow - shift)[..., 8:-8, 8:-8].norm(dim=1)
    assert inner.median() < 0.15
    still = estimate_flow(source, source)
    assert still.abs().max() < 1e-3
    with pytest.raises(ValueError, match="B×1×h×w"):
        estimate_flow(source, source[..., :-1])


def test_flow_stabilizer_calms_flicker_on_a_steady_scene() -> None:
    torch.manual_seed(0)
    gray = _pattern().expand(16, 1, 48, 64).contiguous()
    ab = torch.tensor([20.0, -10.0]).view(1, 2, 1, 1) + 6.0 * torch.randn(16, 2, 1, 1)
    ab = ab.expand(16, 2, 48, 64).contiguous()
    plain = NoStabilizer()(gray, ab)
    stabilizer = FlowStabilizer(strength=0.8)
    # two calls: the second batch continues from the first
    steady = torch.cat([stabilizer(gray[:8], ab[:8]), stabilizer(gray[8:], ab[8:])])

    def flicker(x: torch.Tensor) -> float:
        return (x[1:] - x[:-1]).abs().mean().item()

    assert flicker(steady) < 0.5 * flicker(plain)
    assert steady[0].equal(ab[0])  # nothing to blend with before the first frame


def test_flow_stabilizer_does_not_carry_colour_across_a_cut() -> None:
    first = _pattern()
    rows, columns = torch.meshgrid(torch.arange(48), torch.arange(64), indexing="ij")
    other = ((rows // 6 + columns // 6) % 2 * 0.8 + 0.1).float()[None, None]  # another shot
    gray = torch.cat([first, first, other])
    ab = torch.cat([torch.full((2, 2, 48, 64), 30.0), torch.full((1, 2, 48, 64), -30.0)])
    stabilizer = FlowStabilizer()
    out = stabilizer(gray, ab)
    assert out[2].equal(ab[2]) and stabilizer.cuts == 1
    stabilizer.reset()
    assert stabilizer(gray[2:], ab[2:]).equal(ab[2:])


def test_stabilizers_check_their_input_and_options() -> None:
    for stabilizer in (NoStabilizer(), FlowStabilizer()):
        with pytest.raises(ValueError, match="ab must be shaped"):
            stabilizer(torch.rand(2, 1, 8, 8), torch.rand(3, 2, 8, 8))
    with pytest.raises(ValueError, match="strength"):
        FlowStabilizer(strength=1.0)
    flow = FlowStabilizer()
    flow(torch.rand(1, 1, 16, 16), torch.rand(1, 2, 16, 16))
    with pytest.raises(ValueError, match="call reset"):
        flow(torch.rand(1, 1, 8, 8), torch.rand(1, 2, 8, 8))


def test_a_stabilizer_plugin_is_checked_against_its_contract(
    model: colorkit.Colorizer, clip: Path, tmp_path: Path
) -> None:
    class NoReset:
        def __call__(self, gray: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
            return ab

    class Plugin:
        @colorkit.hookimpl
        def colorkit_components(self) -> list[colorkit.Component]:
            return [colorkit.Component("stabilizer", "forgetful", NoReset)]

    registry = colorkit.default_registry()
    plugin = Plugin()
    registry.register_plugin(plugin, name="forgetful")
    try:
        assert "forgetful" in colorkit.list_components("stabilizer")
        with pytest.raises(ContractError, match=r"stabilizer 'forgetful'.*reset"):
            _colorize(model, clip, tmp_path / "out.mp4", stabilizer="forgetful")
    finally:
        registry.unregister_plugin(plugin)
