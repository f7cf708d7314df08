"""Procedural test and demo videos written with PyAV (no files shipped, nothing downloaded)."""

import math
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

TIME_BASE = Fraction(1, 90000)
DEMO_PERIOD = 1.2  # seconds between the demo ball's floor impacts
# The first impact, half a 25 fps frame after a frame: a camera's contacts fall between its frames, as every
# training scene's do (an impact exactly on a frame is the one case no footage shows).
DEMO_FIRST_IMPACT = 0.5


def write_video(path: str | Path, frames: Iterable[np.ndarray], times: Iterable[Fraction], rate: Fraction) -> Path:
    """Encode RGB frames [H, W, 3] uint8 shown at `times` (seconds) as H.264; VFR when the times are uneven."""
    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = None
        for image, time in zip(frames, times, strict=True):
            if stream is None:
                stream = container.add_stream("libx264", rate=rate)
                stream.width, stream.height = image.shape[1], image.shape[0]
                stream.pix_fmt = "yuv420p"
                stream.time_base = TIME_BASE
                stream.codec_context.time_base = TIME_BASE  # keeps uneven (VFR) timestamps exact
                stream.options = {"preset": "veryfast", "crf": "12"}
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = round(time / TIME_BASE)
            frame.time_base = TIME_BASE
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def bouncing_ball_frames(seconds: float, rate: Fraction, size: tuple[int, int] = (320, 240)) -> list[np.ndarray]:
    """A ball falling and bouncing on a floor; the floor flashes on each impact (the demo clip)."""
    width, height = size
    count = int(seconds * rate)
    yy, xx = np.mgrid[0:height, 0:width]
    floor, radius, period = height - 30, 14, DEMO_PERIOD
    images = []
    for index in range(count):
        t = index / float(rate)
        phase = ((t - DEMO_FIRST_IMPACT) % period) / period  # 0 at an impact, falls back to the floor at 1
        y = floor - radius - (floor - 2 * radius - 10) * 4 * phase * (1 - phase)
        x = (width - height) / 2 + 40 + (height - 80) * (t / seconds)  # inside the centre square models see
        image = np.full((height, width, 3), (40, 44, 52), np.uint8)
        image[floor:] = (200, 200, 90) if phase < 0.06 else (110, 90, 70)
        ball = (xx - x) ** 2 + (yy - y) ** 2 <= radius**2
        image[ball] = (220, 60, 50)
        images.append(image)
    return images


def demo_impacts(seconds: float = 8.0) -> list[float]:
    """When the demo ball hits the floor (s)."""
    count = math.ceil((seconds - DEMO_FIRST_IMPACT) / DEMO_PERIOD)
    return [round(DEMO_FIRST_IMPACT + k * DEMO_PERIOD, 6) for k in range(count)]


def make_demo_video(path: str | Path, seconds: float = 8.0, rate: Fraction = Fraction(25)) -> Path:
    """The clip `foley demo` runs on: 8 s of a bouncing ball at 25 fps."""
    images = bouncing_ball_frames(seconds, rate)
    return write_video(path, images, (Fraction(i) / rate for i in range(len(images))), rate)
