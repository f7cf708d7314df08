"""Mux foley into a copy of the video with PyAV: the video stream is copied packet for packet (never re-encoded);
the original audio is kept as its own track or dropped; the foley becomes an AAC track."""

import logging
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from export.stems import ExportError

logger = logging.getLogger(__name__)

FOLEY_RATE = 48000
AAC_FRAME = 1024
AAC_BIT_RATE = 128_000  # mono; the encoder's default (about 64 kb/s) lost 0.4 LU of foley and smeared its peaks


def _foley_frames(audio: np.ndarray, rate: int):
    """Mono float audio as a sequence of AAC-sized planar float frames with running pts."""
    for first in range(0, len(audio), AAC_FRAME):
        chunk = np.ascontiguousarray(audio[first : first + AAC_FRAME], np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, first, Fraction(1, rate)
        yield frame


def mux(video: Path, foley: np.ndarray, out: Path, *, keep_original_audio: bool = True) -> Path:
    """Write `out`: `video`'s video (copied) + its audio (copied, if kept) + `foley` (48 kHz mono from the video's
    time 0, padded or cut to the video's duration), atomically."""
    part = out.with_name(f".{out.name}.part{out.suffix}")
    try:
        with av.open(str(video)) as source, av.open(str(part), "w") as target:
            if not source.streams.video:
                raise ExportError(f"{video} has no video stream to mux the foley into.")
            copied = {}
            for stream in source.streams:
                if stream.type == "video" or (stream.type == "audio" and keep_original_audio):
                    copied[stream.index] = target.add_stream_from_template(stream)
            duration = Fraction(source.duration or 0, av.time_base)
            length = int(duration * FOLEY_RATE) if duration else len(foley)
            foley = np.pad(foley, (0, max(0, length - len(foley))))[:length]
            encoder = target.add_stream("aac", rate=FOLEY_RATE, layout="mono")
            encoder.bit_rate = AAC_BIT_RATE
            encoder.metadata["title"] = "Foley"
            for packet in source.demux(*[source.streams[i] for i in copied]):
                if packet.dts is None:
                    continue
                packet.stream = copied[packet.stream.index]
                target.mux(packet)
            for frame in _foley_frames(foley, FOLEY_RATE):
                target.mux(encoder.encode(frame))
            target.mux(encoder.encode(None))
        part.replace(out)
    except av.error.FFmpegError as exc:
        raise ExportError(f"Muxing into {out.name} failed ({exc}); the source was not changed.") from None
    finally:
        part.unlink(missing_ok=True)
    return out


def decoded_foley(path: Path) -> np.ndarray:
    """The foley track of a muxed file (its last audio stream), decoded back to float samples."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[-1]
        frames = [frame.to_ndarray().mean(axis=0) for frame in container.decode(stream)]
    return np.concatenate(frames).astype(np.float64) if frames else np.zeros(0)
