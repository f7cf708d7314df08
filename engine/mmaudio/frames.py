"""MMAudio's own frame rule, the family's legacy switch: frames picked and resized as its `load_video` does.

The engine's rule takes, for each target time start + k / rate, the frame on screen then (the last one shown at or
before it), and resizes with PIL's bicubic filter. MMAudio's `read_frames` (mmaudio/data/av_utils.py) walks the
decoded frames instead and gives each target the first frame whose float time (`frame.time`: its pts in seconds,
the stream's start offset included) is at or after the target, the targets being a float sum of 1 / fps steps;
frames after the range's end are not read. Its transforms (torchvision v2 on uint8 tensors) resize with torch's
bicubic filter with antialiasing, in uint8: CLIP frames squashed to 384 x 384, Synchformer frames with the short
side to 224 (the long side truncated to int(224 * long / short)) and centre cropped at round((h - 224) / 2) (Python's round: halves to even).
"""

from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from torch.nn import functional as F

from engine.errors import InputVideoError
from engine.video import Frames, FrameStreams, probe_video, target_times


def _resize(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 [H, W, 3] -> [height, width, 3] by torch's antialiased bicubic filter run on uint8, as torchvision's
    `Resize(..., BICUBIC)` does on a CPU uint8 tensor."""
    if rgb.shape[:2] == (height, width):
        return rgb
    pixels = torch.from_numpy(rgb).permute(2, 0, 1)[None]  # channels-last memory, as their frames are
    resized = F.interpolate(pixels, size=[height, width], mode="bicubic", align_corners=False, antialias=True)
    return resized[0].permute(1, 2, 0).contiguous().numpy()


def squash_reference(rgb: np.ndarray, size: int) -> np.ndarray:
    """MMAudio's CLIP transform: the whole picture to size x size."""
    return _resize(rgb, size, size)


def crop_reference(rgb: np.ndarray, size: int) -> np.ndarray:
    """MMAudio's Synchformer transform: the short side to `size`, then the centre size x size."""
    height, width = rgb.shape[:2]
    if width <= height:
        height, width = int(size * height / width), size
    else:
        height, width = size, int(size * width / height)
    resized = _resize(rgb, height, width)
    top, left = round((height - size) / 2.0), round((width - size) / 2.0)
    return resized[top : top + size, left : left + size]


def read_reference_frames(path: str | Path, start: Fraction, end: Fraction, rates: Sequence[int],
                          fits: Sequence[Callable[[np.ndarray], np.ndarray]]) -> list[Frames]:
    """The frames of [start, end) of one file for each of `rates`, picked by MMAudio's `read_frames` and fitted by
    `fits` (one per rate).

    From start 0 (all MMAudio's demo reads) this is their rule exactly; a later start begins their target grid at
    `start` (their loader always reads from 0 s). Each stream holds one frame per target of the engine's grid
    (`target_times`), their first ones; where the file runs out before the end (MMAudio then shortens the
    duration) the last frame is held.
    """
    path = Path(path)
    probe_video(path)
    first, last = float(start), float(end)
    steps = [1 / float(rate) for rate in rates]
    next_times = [first] * len(rates)
    picks: list[list[tuple[Fraction, np.ndarray]]] = [[] for _ in rates]
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                time = frame.time
                if time is None or time < first:
                    continue
                if time > last:  # presentation order: every later frame is past the end too
                    break
                rgb = None
                for i, fit in enumerate(fits):
                    fitted = None
                    while time >= next_times[i]:
                        if fitted is None:
                            rgb = frame.to_ndarray(format="rgb24") if rgb is None else rgb
                            fitted = fit(rgb)
                        picks[i].append((Fraction(frame.pts) * stream.time_base, fitted))
                        next_times[i] += steps[i]
        except av.error.FFmpegError as exc:
            raise InputVideoError(f"{path} is damaged: decoding stopped with '{exc}'. Re-export the clip.") from None
    streams = []
    for rate, chosen in zip(rates, picks, strict=True):
        if not chosen:
            raise InputVideoError(f"{path} has no frame in {float(start):.3f}-{float(end):.3f} s.")
        count = len(target_times(start, end, rate))
        chosen = (chosen + [chosen[-1]] * count)[:count]
        streams.append(Frames(np.stack([rgb for _, rgb in chosen]), tuple(t for t, _ in chosen), start, end, rate))
    return streams


def reference_streams(path: str | Path, start: Fraction, end: Fraction, *, clip_rate: int, clip_size: int,
                      sync_rate: int, sync_size: int) -> FrameStreams:
    """Both of MMAudio's streams of one file, as its `load_video` makes them (Synchformer first, as the engine's
    frame source orders them)."""
    sync, clip = read_reference_frames(
        path, start, end, (sync_rate, clip_rate),
        (lambda rgb: crop_reference(rgb, sync_size), lambda rgb: squash_reference(rgb, clip_size)))
    return FrameStreams({"sync": sync, "clip": clip}, start, end)
