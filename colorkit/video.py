"""Colorizing video files: streaming, any length, other streams kept, colours stable in time.

A video is read, colorized and written in one pass with bounded memory: a reader thread
demuxes and decodes (PyAV) while the main thread colorizes batches of frames through
the model's own :meth:`~colorkit.engine.Colorizer.predict_chroma` at the working size,
hands the chroma to a *stabilizer* (the ``stabilizer`` kind:
:mod:`colorkit.components.stabilizers`), combines it with each frame's full-resolution
lightness (:func:`colorkit.color.recombine`) and encodes. Audio and subtitle packets are
copied to the output as they come, unchanged. Every frame keeps its timestamp, so frame
count, rate (variable rates too) and duration stay those of the input. The output is
written to a temporary file and renamed when complete (:func:`colorkit.files.atomic_path`).

>>> import colorkit
>>> from colorkit.video import colorize_video
>>> model = colorkit.load("starter")  # doctest: +SKIP
>>> report = colorize_video(model, "film.mkv", "film-colour.mp4")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import queue
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from colorkit.color import recombine, srgb8_to_gray
from colorkit.contracts import contract_problem
from colorkit.files import atomic_path
from colorkit.registry import ColorkitError, ContractError, default_registry

if TYPE_CHECKING:
    from colorkit.engine import Colorizer

__all__ = [
    "CONTAINERS",
    "VideoInfo",
    "VideoReadError",
    "VideoReport",
    "VideoSettings",
    "VideoWriteError",
    "colorize_video",
    "is_video",
    "output_suffix",
    "probe_video",
]

#: Output file suffixes and the container each is written in.
CONTAINERS = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".avi": "avi",
}
# encoders whose quality is set by a constant rate factor, and those with x264's presets
_CRF_CODECS = frozenset({"libx264", "libx265", "libvpx", "libvpx-vp9", "libaom-av1", "libsvtav1"})
_PRESET_CODECS = frozenset({"libx264", "libx265"})
# how many frames are checked for colour in a video given as gray
_COLOUR_CHECK_FRAMES = 5
# mean spread between an 8-bit frame's channels above which it is taken for a colour frame
_COLOUR_SPREAD = 4.0


class VideoReadError(ColorkitError, OSError):
    """A file that could not be read as a video."""


class VideoWriteError(ColorkitError, OSError):
    """A colorized video that could not be written (the destination is left as it was)."""


# -- recognising and probing -------------------------------------------------------------------
# ISO media brands of still images (HEIF, AVIF): an 'ftyp' box does not make a file a video
_IMAGE_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif"})
_MOV_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})


def is_video(path: str | Path) -> bool:
    """Whether a file's content is a video container colorkit reads, whatever its name.

    The first bytes are compared with the signatures of MP4 and QuickTime (an ``ftyp``
    box that is not a still-image brand, or a leading ``moov``/``mdat`` atom), Matroska
    and WebM (EBML), AVI (RIFF ``AVI``), MPEG transport and program streams, FLV and Ogg.

    Args:
        path: the file.

    Returns:
        ``True`` for a video container; ``False`` for anything else, a folder or a
        file that cannot be read.
    """
    try:
        with open(path, "rb") as file:
            head = file.read(377)
    except OSError:
        return False
    if len(head) < 12:
        return False
    if head[4:8] == b"ftyp":
        return head[8:12] not in _IMAGE_BRANDS
    if head[4:8] in _MOV_ATOMS:
        return True
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska, WebM
        return True
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return True
    if head[0] == 0x47 and len(head) > 376 and head[188] == 0x47 and head[376] == 0x47:
        return True  # MPEG transport stream: a sync byte every 188 bytes
    return head.startswith((b"\x00\x00\x01\xba", b"FLV\x01", b"OggS"))


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` reads from a video file's headers.

    Attributes:
        width: frame width in pixels.
        height: frame height in pixels.
        frames: the frame count the file announces, or ``None`` where it announces none.
        rate: the average frame rate, frames per second, or ``None`` where unknown.
        duration: seconds, or ``None`` where unknown.
        codec: the video codec's name.
        streams: ``"kind codec"`` of every stream, in file order.
    """

    width: int
    height: int
    frames: int | None
    rate: Fraction | None
    duration: float | None
    codec: str
    streams: tuple[str, ...]


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn what opening or decoding a video raises into a :class:`VideoReadError` naming it."""
    try:
        yield
    except VideoReadError:
        raise
    except FileNotFoundError:
        raise VideoReadError(f"{path}: no such file") from None
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise VideoReadError(f"{path}: cannot read as video ({exc})") from None


def _describe(stream: Any) -> str:
    name = stream.codec_context.name if stream.codec_context is not None else "unknown"
    return f"{stream.type} {name}"


def _video_stream(container: Any, path: Path) -> Any:
    if not container.streams.video:
        found = ", ".join(_describe(s) for s in container.streams) or "no streams at all"
        raise VideoReadError(f"{path}: no video stream (it holds {found})")
    stream = container.streams.video[0]
    if stream.codec_context is None or stream.codec_context.name in ("", "none"):
        raise VideoReadError(f"{path}: its video codec is not one FFmpeg can decode")
    if not stream.codec_context.width or not stream.codec_context.height:
        raise VideoReadError(f"{path}: its video stream declares no frame size")
    return stream


def _info(container: Any, stream: Any) -> VideoInfo:
    rate = stream.average_rate or stream.guessed_rate
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    frames = stream.frames or None
    if frames is None and duration is not None and rate:
        frames = round(duration * rate)
    return VideoInfo(
        width=stream.codec_context.width,
        height=stream.codec_context.height,
        frames=frames,
        rate=Fraction(rate) if rate else None,
        duration=duration,
        codec=stream.codec_context.name,
        streams=tuple(_describe(s) for s in container.streams),
    )


def probe_video(path: str | Path) -> VideoInfo:
    """Read a video file's size, frame count, rate, duration and streams from its headers.

    Args:
        path: the video file.

    Returns:
        The :class:`VideoInfo`.

    Raises:
        VideoReadError: naming the file, if it cannot be opened as a video or has no
            video stream FFmpeg can decode.
    """
    path = Path(path)
    with _reading(path), av.open(str(path)) as container:
        return _info(container, _video_stream(container, path))


@functools.cache
def _container_codecs(container_format: str) -> frozenset[str]:
    with av.open(io.BytesIO(), "w", format=container_format) as container:
        return frozenset(container.supported_codecs)


def _copied_streams(container: Any) -> list[Any]:
    return [s for s in container.streams if s.type in ("audio", "subtitle")]


def output_suffix(path: str | Path) -> str:
    """The suffix of the colorized video's file: ``.mp4``, or ``.mkv`` where MP4 cannot hold it.

    MP4 with H.264 plays nearly everywhere, but it holds only some audio and subtitle
    codecs (not SubRip or ASS subtitles, for instance); a video with a stream MP4
    cannot hold is written as Matroska, which holds them all.

    Args:
        path: the input video.

    Returns:
        ``".mp4"`` or ``".mkv"``.

    Raises:
        VideoReadError: naming the file, if it cannot be opened as a video.
    """
    path = Path(path)
    with _reading(path), av.open(str(path)) as container:
        codecs = {s.codec_context.name for s in _copied_streams(container) if s.codec_context}
    return ".mp4" if codecs <= _container_codecs("mp4") else ".mkv"


# -- settings and report ---------------------------------------------------------------------
@dataclass(frozen=True)
class VideoSettings:
    """How a video is colorized and encoded.

    Args:
        stabilizer: the registered stabilizer (``colorkit list stabilizer``): ``"flow"``
            (motion-compensated blending) or ``"none"`` (each frame on its own).
        stabilizer_options: options of the stabilizer, e.g. ``{"strength": 0.7}``.
        codec: the video encoder: ``"libx264"`` (H.264, plays nearly everywhere),
            ``"libx265"``, ``"libvpx-vp9"``, ... (any FFmpeg encoder PyAV has).
        crf: constant rate factor of encoders that have one (lower is better and larger;
            18 is close to visually lossless for H.264).
        preset: x264/x265 speed preset (``"ultrafast"`` ... ``"veryslow"``).
        batch_size: frames colorized together.
        encoder_options: further encoder options, as FFmpeg names them.
        threads: PyTorch's intra-op threads while the video is colorized; ``None`` takes
            half the cores (at least one), leaving the rest to the decoder and encoder
            threads. On a CPU shared with other work, threads beyond the free cores wait
            for each other at every operation and slow the whole pass down several times.
    """

    stabilizer: str = "flow"
    stabilizer_options: Mapping[str, Any] = field(default_factory=dict)
    codec: str = "libx264"
    crf: int = 18
    preset: str = "veryfast"
    batch_size: int = 8
    encoder_options: Mapping[str, str] = field(default_factory=dict)
    threads: int | None = None


@dataclass
class VideoReport:
    """What :func:`colorize_video` did.

    Attributes:
        source: the input video.
        target: the file written.
        frames: frames colorized and written.
        seconds: wall-clock time of the whole pass.
        stabilizer: the stabilizer's name.
        copied: ``"kind codec"`` of the streams copied unchanged.
        notes: what a user should know: a colour input, a variable frame rate, damaged
            data, streams left out, a less common pixel format.
    """

    source: Path
    target: Path
    frames: int = 0
    seconds: float = 0.0
    stabilizer: str = ""
    copied: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def frames_per_second(self) -> float:
        """Frames colorized per second of wall-clock time, end to end."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def _check_settings(settings: VideoSettings, working_size: int | None) -> None:
    if working_size is not None and (
        isinstance(working_size, bool) or not isinstance(working_size, int) or working_size < 1
    ):
        raise ValueError(f"working_size must be a positive number of pixels, got {working_size!r}")
    if settings.threads is not None and settings.threads < 1:
        raise ValueError(f"threads must be at least 1, got {settings.threads}")
    if settings.batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {settings.batch_size}")
    try:
        av.codec.Codec(settings.codec, "w")
    except (av.codec.codec.UnknownCodecError, ValueError):
        raise ValueError(
            f"video codec {settings.codec!r} is not an encoder this FFmpeg has; "
            "try 'libx264' (H.264), 'libx265' or 'libvpx-vp9'"
        ) from None


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    wanted = threads or max(1, (os.cpu_count() or 2) // 2)
    torch.set_num_threads(wanted)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _stabilizer(settings: VideoSettings) -> Any:
    stabilizer = default_registry().create(
        "stabilizer", settings.stabilizer, **dict(settings.stabilizer_options)
    )
    problem = contract_problem("stabilizer", settings.stabilizer, stabilizer)
    if problem:
        raise ContractError(problem)
    stabilizer.reset()
    return stabilizer


# -- reading ---------------------------------------------------------------------------------
@dataclass
class _Frame:
    rgb: np.ndarray
    pts: int | None
    duration: int | None


_END = object()


class _Reader:
    """Demuxes and decodes in a thread: decoded frames and packets to copy, in file order.

    The queue is bounded, so the reader is never more than a few frames ahead of the
    colorizing, whatever the video's length.
    """

    def __init__(
        self, src: Path, container: Any, video: Any, copied: list[Any], depth: int
    ) -> None:
        self.src = src
        self._container, self._video, self._copied = container, video, copied
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self.damaged = 0  # packets the decoder refused
        self._thread = threading.Thread(target=self._run, name="colorkit-video-reader", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for packet in self._container.demux(self._video, *self._copied):
                if packet.stream.index != self._video.index:
                    # a packet without a timestamp is a demuxer's end-of-stream marker
                    if packet.dts is not None and not self._put(packet):
                        return
                    continue
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    self.damaged += 1
                    continue
                for frame in frames:
                    item = _Frame(frame.to_ndarray(format="rgb24"), frame.pts, frame.duration)
                    if not self._put(item):
                        return
        except av.error.FFmpegError as exc:  # raised in the consuming thread, naming the file
            self._put(VideoReadError(f"{self.src}: cannot decode the video ({exc})"))
        except Exception as exc:
            self._put(exc)
        finally:
            self._put(_END)

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, Exception):
                raise item
            yield item

    def close(self) -> None:
        """Stop the thread (when the consumer gives up early) and wait for it."""
        self._stop.set()
        self._thread.join()


# -- writing --------------------------------------------------------------------------------
def _container_format(target: Path) -> str:
    try:
        return CONTAINERS[target.suffix.lower()]
    except KeyError:
        raise ValueError(
            f"{target}: unknown video suffix {target.suffix!r}; expected one of "
            f"{', '.join(CONTAINERS)}"
        ) from None


def _pixel_format(codec: str, width: int, height: int, notes: list[str], src: Path) -> str | None:
    formats = [f.name for f in (av.codec.Codec(codec, "w").video_formats or ())]
    if "yuv420p" not in formats:
        return None  # the encoder's own default
    if width % 2 == 0 and height % 2 == 0:
        return "yuv420p"
    # 4:2:0 halves the chroma planes, so it needs even sides; 4:4:4 keeps the exact size
    if "yuv444p" in formats:
        notes.append(
            f"{src}: odd frame size {width}×{height}: written with 4:4:4 chroma to keep the "
            "size exactly (some players play only 4:2:0; crop to even sides for those)"
        )
        return "yuv444p"
    raise VideoWriteError(
        f"{src}: odd frame size {width}×{height}, which encoder {codec!r} cannot write; "
        "crop the video to even sides or choose libx264"
    )


class _Writer:
    """The output container: the colorized video stream and the copied streams."""

    def __init__(
        self,
        path: Path,
        target: Path,
        container_format: str,
        source: Any,
        video: Any,
        copied: list[Any],
        settings: VideoSettings,
        notes: list[str],
        src: Path,
    ) -> None:
        self.target = target  # what errors name: the temporary file is never shown
        self.container = av.open(str(path), "w", format=container_format)
        try:
            self._add_streams(container_format, source, video, copied, settings, notes, src)
        except BaseException:
            self.close()  # the handle; the caller removes the temporary file
            raise
        self._last_pts: int | None = None
        self._step = max(1, round(1 / (self.rate * self.time_base)))

    def _add_streams(
        self,
        container_format: str,
        source: Any,
        video: Any,
        copied: list[Any],
        settings: VideoSettings,
        notes: list[str],
        src: Path,
    ) -> None:
        self.container.metadata.update(source.metadata)
        holds = _container_codecs(container_format)
        self.streams: dict[int, Any] = {}
        for stream in copied:
            name = stream.codec_context.name if stream.codec_context else "unknown"
            if name not in holds:
                raise VideoWriteError(
                    f"{src}: its {stream.type} stream ({name}) cannot be copied into "
                    f"{container_format}; write a .mkv file instead"
                )
            self.streams[stream.index] = self.container.add_stream_from_template(stream)
        context = video.codec_context
        self.rate = video.average_rate or video.guessed_rate or Fraction(25)
        self.time_base = video.time_base or 1 / self.rate
        self.video = self.container.add_stream(settings.codec, rate=self.rate)
        self.video.width, self.video.height = context.width, context.height
        pix_fmt = _pixel_format(settings.codec, context.width, context.height, notes, src)
        if pix_fmt is not None:
            self.video.pix_fmt = pix_fmt
        self.video.time_base = self.time_base
        self.video.codec_context.time_base = self.time_base
        options = {}
        if settings.codec in _CRF_CODECS:
            options["crf"] = str(settings.crf)
        if settings.codec in _PRESET_CODECS:
            options["preset"] = settings.preset
        options.update({key: str(value) for key, value in settings.encoder_options.items()})
        self.video.options = options
        self.video.metadata.update(video.metadata)

    def copy(self, packet: Any) -> None:
        """Mux a packet of a copied stream, unchanged."""
        packet.stream = self.streams[packet.stream.index]
        try:
            self.container.mux(packet)
        except av.error.FFmpegError as exc:
            raise VideoWriteError(f"{self.target}: cannot copy a packet ({exc})") from None

    def encode(self, rgb: np.ndarray, pts: int | None, duration: int | None) -> None:
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        # the encoder needs strictly increasing timestamps; a missing or repeated one
        # (damaged files) takes the next slot at the nominal rate
        if pts is None or (self._last_pts is not None and pts <= self._last_pts):
            pts = 0 if self._last_pts is None else self._last_pts + self._step
        frame.pts, frame.time_base = pts, self.time_base
        if duration:
            frame.duration = duration
        self._last_pts = pts
        try:
            self.container.mux(self.video.encode(frame))
        except av.error.FFmpegError as exc:
            raise VideoWriteError(f"{self.target}: cannot encode the video ({exc})") from None

    def finish(self, target: Path) -> None:
        """Flush the encoder and close the file."""
        try:
            self.container.mux(self.video.encode(None))
            self.container.close()
        except av.error.FFmpegError as exc:
            raise VideoWriteError(f"{target}: cannot finish the video ({exc})") from None

    def close(self) -> None:
        """Close the file, finished or not (a second close does nothing)."""
        with contextlib.suppress(av.error.FFmpegError, OSError, ValueError):
            self.container.close()


# -- colorizing -----------------------------------------------------------------------------
def _is_colour(rgb: np.ndarray) -> bool:
    sample = rgb[::4, ::4].astype(np.int16)
    spread = sample.max(axis=2) - sample.min(axis=2)
    return float(spread.mean()) > _COLOUR_SPREAD


class _Colorizing:
    """Frames in, batches through the model and the stabilizer, frames out to the writer."""

    def __init__(
        self, model: Colorizer, stabilizer: Any, writer: _Writer, working_size: int | None
    ) -> None:
        self.model, self.stabilizer, self.writer = model, stabilizer, writer
        self.working_size = working_size
        self.pending: list[tuple[torch.Tensor, int | None, int | None]] = []
        self.written = 0

    def add(self, frame: _Frame, batch_size: int) -> int:
        gray = srgb8_to_gray(frame.rgb)[None, None]
        self.pending.append((gray, frame.pts, frame.duration))
        return self.flush() if len(self.pending) >= batch_size else 0

    def flush(self) -> int:
        if not self.pending:
            return 0
        gray = torch.cat([item[0] for item in self.pending])
        ab = self.model.predict_chroma(gray, working_size=self.working_size)
        ab = ab.to("cpu", torch.float32)
        # the gray the networks saw, for the stabilizer's motion estimate
        small = F.interpolate(gray, size=ab.shape[-2:], mode="area")
        ab = self.stabilizer(small, ab)
        for index, (full, pts, duration) in enumerate(self.pending):
            self.writer.encode(recombine(full, ab[index : index + 1]), pts, duration)
        count = len(self.pending)
        self.pending.clear()
        self.written += count
        return count


def _timing_notes(timestamps: list[int], src: Path) -> list[str]:
    steps = set(np.diff(timestamps).tolist()) if len(timestamps) > 2 else set()
    if len(steps) > 1:
        return [f"{src}: variable frame rate: every frame keeps its own timestamp"]
    return []


def colorize_video(
    model: Colorizer,
    src: str | Path,
    target: str | Path,
    working_size: int | None = 256,
    settings: VideoSettings | None = None,
    progress: bool = True,
) -> VideoReport:
    """Colorize a video file, streaming, into a new video file.

    Frames are decoded in a reader thread, colorized in batches by the model's
    :meth:`~colorkit.engine.Colorizer.predict_chroma` at ``working_size``, made stable
    in time by the settings' stabilizer, combined with each frame's own full-resolution
    lightness, and encoded (H.264 in MP4 by default). Audio and subtitle streams are
    copied unchanged; container and stream metadata are kept. Every frame keeps its
    timestamp, so the frame count, rate and duration are the input's, variable frame
    rates included. Memory stays bounded by the batch size, whatever the length.

    The output is written to a temporary file beside ``target`` and renamed over it
    only when complete: a failure or an interruption leaves any earlier file there as
    it was. Damaged data that the decoder skips, a truncated file and a video that is
    already in colour are colorized as far as they decode, and said in the report's
    notes.

    Args:
        model: the colorization model.
        src: the video file (any container and codec FFmpeg decodes).
        target: the file to write; its suffix picks the container (see
            :data:`CONTAINERS`); its folder is created if needed.
        working_size: longer side, in pixels, the networks run at; ``None`` runs them
            at the frames' own size.
        settings: stabilizer, encoder and batch size; the defaults if ``None``.
        progress: show a progress bar with frames per second and the time left.

    Returns:
        The :class:`VideoReport`.

    Raises:
        VideoReadError: naming the file, if it cannot be read as a video, has no video
            stream, its codec cannot be decoded, or no frame decodes.
        VideoWriteError: naming the file, if the output cannot be written, or a stream
            to copy does not fit the chosen container.
        ValueError: for a bad working size, batch size, codec or suffix.
    """
    src, target = Path(src), Path(target)
    settings = settings or VideoSettings()
    _check_settings(settings, working_size)
    container_format = _container_format(target)
    stabilizer = _stabilizer(settings)
    report = VideoReport(src, target, stabilizer=settings.stabilizer)
    started = time.perf_counter()
    with _reading(src):
        source = av.open(str(src))
    with source:
        with _reading(src):
            video = _video_stream(source, src)
            video.thread_type = "AUTO"  # frame-threaded decoding where the codec allows it
            info = _info(source, video)
        copied = _copied_streams(source)
        report.copied = [_describe(s) for s in copied]
        left_out = [_describe(s) for s in source.streams if s.index != video.index]
        left_out = [name for name in left_out if name not in report.copied]
        if left_out:
            report.notes.append(f"{src}: streams not copied: {', '.join(left_out)}")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise VideoWriteError(f"{target}: cannot create its folder ({exc})") from None
        bar = tqdm(
            total=info.frames,
            desc=src.name,
            unit="frame",
            file=sys.stderr,
            disable=not progress,
            leave=False,
        )
        with bar, atomic_path(target) as temporary:
            try:
                writer = _Writer(
                    temporary,
                    target,
                    container_format,
                    source,
                    video,
                    copied,
                    settings,
                    report.notes,
                    src,
                )
            except av.error.FFmpegError as exc:
                raise VideoWriteError(f"{target}: cannot start the output ({exc})") from None
            with contextlib.closing(writer):
                work = _Colorizing(model, stabilizer, writer, working_size)
                reader = _Reader(src, source, video, copied, depth=2 * settings.batch_size)
                with contextlib.closing(reader), _torch_threads(settings.threads):
                    span = _pump(reader, work, writer, settings.batch_size, bar, report)
                if work.written == 0:
                    raise VideoReadError(f"{src}: no frame of its video stream could be decoded")
                writer.finish(target)
    report.frames = work.written
    # the header's frame count is not compared: AVI files, for one, announce the slots of
    # frames they skip; the time the decoded frames cover is what shows a cut-off file
    decoded = float(span * writer.time_base)
    slack = 2.0 / float(writer.rate)
    if reader.damaged or (info.duration and decoded < 0.95 * info.duration - slack):
        covered = f" ({decoded:.1f} s of {info.duration:.1f} s)" if info.duration else ""
        report.notes.append(
            f"{src}: damaged or truncated video: {work.written} frames decoded{covered}, "
            f"{reader.damaged} damaged packet(s) skipped"
        )
    report.seconds = time.perf_counter() - started
    return report


def _pump(
    reader: _Reader,
    work: _Colorizing,
    writer: _Writer,
    batch_size: int,
    bar: tqdm,
    report: VideoReport,
) -> int:
    """Move everything the reader yields to the writer: packets copied, frames colorized.

    Returns the time the decoded frames cover, in the video stream's time base.
    """
    timestamps: list[int] = []
    first = end = None
    checked = colourful = 0
    for item in reader:
        if not isinstance(item, _Frame):
            writer.copy(item)
            continue
        if checked < _COLOUR_CHECK_FRAMES:
            checked += 1
            colourful += _is_colour(item.rgb)
        if item.pts is not None:
            first = item.pts if first is None else min(first, item.pts)
            end = max(end or item.pts, item.pts + (item.duration or 0))
            if len(timestamps) < 1000:
                timestamps.append(item.pts)
        bar.update(work.add(item, batch_size))
    bar.update(work.flush())
    if checked and colourful > checked // 2:
        report.notes.append(
            f"{reader.src}: already in colour; its colours were replaced by the model's "
            "(its lightness is kept)"
        )
    report.notes.extend(_timing_notes(timestamps, reader.src))
    return 0 if first is None or end is None else end - first
