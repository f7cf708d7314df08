"""Video decode: frames of a time range at the model's frame rate, preprocessed as VTA-LDM does.

Times are exact fractions of a second computed from each frame's pts and the stream's time base, so
23.976, 29.97 and variable-frame-rate files sample the frame that is on screen at each target time.
"""

import functools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np
from PIL import Image

from engine.errors import InputVideoError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoInfo:
    """What the engine needs to know about a file's first video stream."""

    path: Path
    duration: Fraction
    average_rate: Fraction | None
    frame_count: int


@dataclass(frozen=True)
class Frames:
    """Frames of one range, fitted to the encoder: rgb [T, S, S, 3] uint8, their source times, and the range."""

    rgb: np.ndarray
    times: tuple[Fraction, ...]
    start: Fraction
    end: Fraction
    rate: int = 2

    def model_input(self) -> np.ndarray:
        """[T, 3, S, S] float32 in [0, 1] (VTA-LDM applies no CLIP normalisation)."""
        return (self.rgb.astype(np.float32) / 255.0).transpose(0, 3, 1, 2)

    def window(self, start: Fraction, end: Fraction) -> "Frames":
        """The frames of [start, end), a part of this range whose start lies on the 1/rate grid."""
        if (start, end) == (self.start, self.end):
            return self
        first, after = (math.ceil((t - self.start) * self.rate) for t in (start, end))
        return Frames(self.rgb[first:after], self.times[first:after], start, end, self.rate)


Fit = Literal["crop", "squash"]  # short side to the size and centre crop (VTA-LDM, Synchformer), or resize (CLIP)


@dataclass(frozen=True)
class EditFrames:
    """The frames of an edit, decoded window by window so long ranges stay within bounded memory."""

    spans: tuple["EditSpan", ...]
    start: Fraction
    end: Fraction
    rate: int = 2
    size: int = 224
    fit: Fit = "crop"

    def window(self, start: Fraction, end: Fraction) -> Frames:
        # a window may fall entirely in a gap of a long edit: black frames, as the viewer shows
        picture = functools.partial(fit_square if self.fit == "crop" else squash_square, size=self.size)
        return decode_edit(list(self.spans), start, end, rate=self.rate, size=self.size, fit=picture,
                           require_video=False)


@dataclass(frozen=True)
class FrameStreams:
    """One range sampled as several streams, for a family that conditions on pictures at more than one rate and
    size (MMAudio: CLIP at 8 fps, Synchformer at 25 fps). Windows start on a grid every stream shares; the first
    stream stands for the range where one picture sequence is needed (shot cuts, the motion curve)."""

    streams: dict[str, "Frames | EditFrames"]
    start: Fraction
    end: Fraction

    @property
    def rate(self) -> int:
        return math.gcd(*(stream.rate for stream in self.streams.values()))

    @property
    def primary(self) -> "Frames | EditFrames":
        return next(iter(self.streams.values()))

    @property
    def rgb(self) -> np.ndarray:
        return self.primary.rgb

    @property
    def times(self) -> tuple[Fraction, ...]:
        return self.primary.times

    def __getitem__(self, name: str) -> Frames:
        return self.streams[name]

    def window(self, start: Fraction, end: Fraction) -> "FrameStreams":
        return FrameStreams({name: stream.window(start, end) for name, stream in self.streams.items()}, start, end)


def _open(path: Path) -> av.container.InputContainer:
    if path.is_dir():
        raise InputVideoError(f"{path} is a folder, not a video file; give the path of a video inside it.")
    if not path.is_file():
        raise InputVideoError(f"No such video file: {path}. Check the path and try again.")
    if path.stat().st_size == 0:
        raise InputVideoError(f"{path} is empty (0 bytes): its export or copy did not finish. Export it again.")
    try:
        return av.open(str(path))
    except av.error.FFmpegError as exc:
        raise InputVideoError(
            f"Cannot read {path} as a video ({exc.strerror or exc}). The file is corrupt or not a media file; "
            "re-export it from your editor or pick another file."
        ) from None


def _video_stream(container: av.container.InputContainer, path: Path) -> av.video.stream.VideoStream:
    if container.streams.video:
        return container.streams.video[0]
    if container.streams.audio:
        raise InputVideoError(
            f"{path} is an audio-only file (no video stream). Foley is generated from pictures: pick the video file."
        )
    raise InputVideoError(f"{path} has no video stream. Pick a video file (mp4, mov, mkv, webm, ...).")


def _stream_origin(stream: av.video.stream.VideoStream) -> int:
    return stream.start_time if stream.start_time is not None else 0


def _duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> Fraction:
    if stream.duration:
        return Fraction(stream.duration) * stream.time_base
    if container.duration:
        return Fraction(container.duration, av.time_base)
    return Fraction(0)


def probe_video(path: str | Path) -> VideoInfo:
    """Open `path`, check that it holds decodable video, and return its duration and rate."""
    path = Path(path)
    with _open(path) as container:
        stream = _video_stream(container, path)
        duration = _duration(container, stream)
        if duration <= 0:
            raise InputVideoError(f"{path} has a zero-length video stream. Pick a file that contains pictures.")
        return VideoInfo(path, duration, stream.average_rate, stream.frames)


def check_range(info: VideoInfo, start: Fraction, end: Fraction) -> None:
    """Raise a clear error when [start, end) is empty or not inside the video."""
    if start < 0:
        raise InputVideoError(f"The range starts at {float(start):.3f} s; it must start at 0 s or later.")
    if start >= info.duration:
        raise InputVideoError(
            f"The range starts at {float(start):.3f} s, after the end of {info.path.name} "
            f"({float(info.duration):.3f} s long); choose a start inside the video."
        )
    if end <= start:
        raise InputVideoError(
            f"The range ends ({float(end):.3f} s) at or before its start ({float(start):.3f} s); "
            "give an end time after the start."
        )
    if end > info.duration:
        raise InputVideoError(
            f"The range {float(start):.3f}-{float(end):.3f} s goes past the end of {info.path.name}, "
            f"which is {float(info.duration):.3f} s long; choose an end at or before {float(info.duration):.3f} s."
        )


def target_times(start: Fraction, end: Fraction, rate: int) -> list[Fraction]:
    """Sample times start + k/rate that fall inside [start, end)."""
    count = math.ceil((end - start) * rate)
    return [start + Fraction(k, rate) for k in range(count)]


def legacy_targets(info: VideoInfo, start: Fraction, end: Fraction, rate: int) -> list[Fraction]:
    """The reference's rule: frame indices floor(k * int(fps) / rate), frame i taken to be at i / int(fps).

    This reproduces `tools/torch_tools.py::load_video` of VTA-LDM (int-truncated fps, so 29.97 fps files
    drift by 3 %), restricted to the frames whose index time lies in [start, end).
    """
    int_fps = int(info.average_rate or 0)
    if int_fps < 1:
        raise InputVideoError(f"{info.path} reports a frame rate below 1 fps; the legacy rule cannot sample it.")
    total_seconds = -(-info.frame_count // int_fps) if info.frame_count else math.ceil(info.duration)
    indices = np.floor(np.arange(0, total_seconds * int_fps, int_fps / rate)).astype(int)
    chosen = [int(i) for i in indices if start <= Fraction(int(i), int_fps) < end]
    if info.frame_count:
        chosen = [i for i in chosen if i < info.frame_count]
    # Index i is the i-th frame of a constant-rate stream, shown at i / true_rate seconds.
    return [Fraction(i) / info.average_rate for i in chosen]


def fit_square(image: Image.Image, size: int) -> np.ndarray:
    """Bicubic resize of the short side to `size` and centre crop, as VTA-LDM preprocesses: [S, S, 3] uint8."""
    width, height = image.size
    if width <= height:
        new_size = (size, int(size * height / width))
    else:
        new_size = (int(size * width / height), size)
    image = image.resize(new_size, Image.BICUBIC)
    left = int(round((new_size[0] - size) / 2.0))
    top = int(round((new_size[1] - size) / 2.0))
    return np.asarray(image.convert("RGB").crop((left, top, left + size, top + size)), dtype=np.uint8)


def squash_square(image: Image.Image, size: int) -> np.ndarray:
    """Bicubic resize of the whole picture to `size` x `size` (aspect ratio not kept, as MMAudio feeds CLIP)."""
    return np.asarray(image.convert("RGB").resize((size, size), Image.BICUBIC), dtype=np.uint8)


def fit_frames(rgb: np.ndarray, size: int) -> np.ndarray:
    """`fit_square` for a stack of uint8 pictures [T, H, W, 3]; pictures already at size are kept as they are."""
    if rgb.shape[1:] == (size, size, 3):
        return rgb
    return np.stack([fit_square(Image.fromarray(picture), size) for picture in rgb])


def _held_frames(path: Path, targets: list[Fraction]) -> list[tuple[Fraction, Image.Image]]:
    """For each target time, the frame on screen then: the last frame whose time is <= the target."""
    chosen: list[tuple[Fraction, Image.Image]] = []
    with _open(path) as container:
        stream = _video_stream(container, path)
        stream.thread_type = "AUTO"
        origin = _stream_origin(stream)
        container.seek(origin + int(targets[0] / stream.time_base), stream=stream, backward=True)
        previous = None
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                time = Fraction(frame.pts - origin) * stream.time_base
                while len(chosen) < len(targets) and time > targets[len(chosen)]:
                    held = previous if previous is not None else (time, frame)
                    chosen.append((held[0], held[1].to_image()))
                if len(chosen) == len(targets):
                    break
                previous = (time, frame)
        except av.error.FFmpegError as exc:
            raise InputVideoError(f"{path} is damaged: decoding stopped with '{exc}'. Re-export the clip.") from None
        while previous is not None and len(chosen) < len(targets):
            chosen.append((previous[0], previous[1].to_image()))
    if not chosen:
        raise InputVideoError(f"{path} contains no decodable video frames in the range. Re-export the clip.")
    return chosen


@dataclass(frozen=True)
class EditSpan:
    """One piece of an edit: `media` is on screen over [record_start, record_end) from `source_start` on."""

    media: Path
    record_start: Fraction
    record_end: Fraction
    source_start: Fraction

    @property
    def source_end(self) -> Fraction:
        return self.source_start + (self.record_end - self.record_start)


def decode_edit(spans: list[EditSpan], start: Fraction, end: Fraction, *, rate: int = 2, size: int = 224,
                fit: Callable[[Image.Image], np.ndarray] | None = None, require_video: bool = True) -> Frames:
    """Frames of [start, end) of an edited timeline: each target time shows what the span covering it shows.

    Spans must not overlap (the host bridge resolves which track is on top). Target times no span covers
    (gaps in the edit) get black frames, as the viewer shows them. Times in `Frames.times` are source
    times for covered targets and record times for gaps. `fit` turns a picture into the output array
    (default: the encoder's square crop of `size`; a preview passes its own).
    """
    picture = fit or functools.partial(fit_square, size=size)
    targets = target_times(start, end, rate)
    pictures: list[np.ndarray | None] = [None] * len(targets)
    times = list(targets)
    for span in spans:
        picks = [(i, span.source_start + (t - span.record_start)) for i, t in enumerate(targets)
                 if span.record_start <= t < span.record_end]
        if not picks:
            continue
        check_range(probe_video(span.media), span.source_start, span.source_end)
        for (index, _), (time, image) in zip(picks, _held_frames(span.media, [source for _, source in picks])):
            pictures[index], times[index] = picture(image), time
    shown = [p for p in pictures if p is not None]
    if not shown and require_video:
        raise InputVideoError(
            f"There is no video in {float(start):.3f}-{float(end):.3f} s: foley is generated from pictures. "
            "Select a range that contains video clips."
        )
    blank = np.zeros_like(shown[0] if shown else picture(Image.new("RGB", (size, size))))
    rgb = np.stack([p if p is not None else blank for p in pictures])
    return Frames(rgb=rgb, times=tuple(times), start=start, end=end, rate=rate)


def decode_frames(
    path: str | Path,
    start: Fraction,
    end: Fraction,
    *,
    rate: int = 2,
    size: int = 224,
    legacy: bool = False,
) -> Frames:
    """Decode the frames of [start, end) at `rate` fps and fit them to the vision encoder's input size.

    Args:
        path: the video file.
        start, end: the source range in seconds, as exact fractions.
        rate: frames per second the model was trained on (2 for VTA-LDM).
        size: square input size of the vision encoder.
        legacy: sample with the reference code's int(fps) frame-index rule instead of real time.

    Returns:
        `Frames` with one frame per target time.
    """
    info = probe_video(path)
    check_range(info, start, end)
    if not legacy:
        return decode_edit([EditSpan(info.path, start, end, start)], start, end, rate=rate, size=size)
    targets = legacy_targets(info, start, end, rate)
    if not targets:
        raise InputVideoError(f"No frame of {info.path.name} falls in {float(start):.3f}-{float(end):.3f} s.")
    held = _held_frames(info.path, targets)
    rgb = np.stack([fit_square(image, size) for _, image in held])
    return Frames(rgb=rgb, times=tuple(time for time, _ in held), start=start, end=end, rate=rate)
