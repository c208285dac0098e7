"""A before/after strip of video frames: gray input, per-frame colours, stabilised, truth.

    python benchmarks/video_strip.py CLIP WEIGHTS -o docs/images/video-strip.jpg
        [--start 100] [--frames 4] [--step 3] [--width 256]

The colour clip is turned to gray, its first ``start + frames × step`` frames are
colorized by :func:`colorkit.video.colorize_video` with the ``none`` and the ``flow``
stabilizer, and ``frames`` frames ``step`` apart from ``start`` on are drawn in four rows.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw
from test_video_quality import decoded_frames, write_video

import colorkit
from colorkit.files import atomic_path
from colorkit.plots import load_font
from colorkit.video import VideoSettings, colorize_video

ROWS = ("gray input", "each frame alone (none)", "stabilised (flow)", "true colours")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clip", type=Path, help="a colour video")
    parser.add_argument("weights", help="weights or checkpoint to colorize with")
    parser.add_argument("-o", "--out", type=Path, required=True, help="the image to write")
    parser.add_argument("--start", type=int, default=100, help="first frame shown")
    parser.add_argument("--frames", type=int, default=4, help="frames shown")
    parser.add_argument("--step", type=int, default=3, help="frames between those shown")
    parser.add_argument("--width", type=int, default=256, help="width of each frame drawn")
    args = parser.parse_args()

    model = colorkit.load(args.weights)
    length = args.start + args.frames * args.step
    shown = [args.start + index * args.step for index in range(args.frames)]
    with av.open(str(args.clip)) as container:
        rate = container.streams.video[0].average_rate
    with tempfile.TemporaryDirectory() as folder:
        gray = Path(folder) / "gray.mkv"
        write_video(gray, decoded_frames(args.clip, length), rate, gray=True)
        rows = [list(decoded_frames(gray))]
        for stabilizer in ("none", "flow"):
            out = Path(folder) / f"{stabilizer}.mp4"
            settings = VideoSettings(stabilizer=stabilizer, crf=12)
            colorize_video(model, gray, out, settings=settings, progress=False)
            rows.append(list(decoded_frames(out)))
        rows.append(list(decoded_frames(args.clip, length)))

    height = round(rows[0][0].shape[0] * args.width / rows[0][0].shape[1])
    label = 22
    font = load_font(15)
    sheet = Image.new("RGB", (args.width * args.frames, (height + label) * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for row, (title, frames) in enumerate(zip(ROWS, rows, strict=True)):
        top = row * (height + label)
        draw.text((4, top + 3), title, fill="black", font=font)
        for column, index in enumerate(shown):
            tile = Image.fromarray(np.ascontiguousarray(frames[index]))
            tile = tile.resize((args.width, height), Image.Resampling.LANCZOS)
            sheet.paste(tile, (column * args.width, top + label))
            if row == 0:
                draw.text(
                    (column * args.width + args.width - 70, top + 3),
                    f"frame {index}",
                    fill="black",
                    font=font,
                )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as temporary:
        sheet.save(temporary, format="JPEG", quality=88)
    print(f"wrote {args.out}: frames {shown} of {args.clip}")


if __name__ == "__main__":
    main()
