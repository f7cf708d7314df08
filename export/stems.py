"""Stems: generated foley as 48 kHz Broadcast WAV (24-bit, `bext` time reference), loudness-normalised.

Loudness is EBU R128 / ITU-R BS.1770 integrated loudness (pyloudnorm); the true peak is measured on a 4x
oversampled signal (soxr) and held under the ceiling by a look-ahead limiter (export/limiter.py). Files are
written to a `.part` name and renamed, so a failure leaves nothing.
"""

import logging
import math
import os
import struct
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile
import soxr

from engine.core.levels import apply_gain, integrated_lufs, true_peak_dbtp
from export.errors import ExportError
from export.limiter import limit

logger = logging.getLogger(__name__)

STEM_RATE = 48000
LOUDNESS_PRESETS: dict[str, float | None] = {"broadcast": -23.0, "online": -16.0, "none": None}
DEFAULT_CEILING = -1.0  # dBTP
MAX_LIMITING_DB = 12.0  # deeper limiting audibly flattens impacts; past it the target is missed and reported
BEXT_FIXED = 602  # EBU Tech 3285 v2: bytes before the coding history


@dataclass(frozen=True)
class Loudness:
    """What normalisation measured and did."""

    integrated_lufs: float | None  # after normalisation; None for silence
    true_peak_dbtp: float
    gain_db: float
    target_lufs: float | None
    limited_by_ceiling: bool  # the target was missed: reaching it would need more than MAX_LIMITING_DB
    limiting_db: float  # the limiter's deepest gain reduction


def resample(audio: np.ndarray, rate_in: int, rate_out: int = STEM_RATE) -> np.ndarray:
    """Very-high-quality resampling (soxr VHQ); float64 mono in and out."""
    if rate_in == rate_out:
        return audio.astype(np.float64)
    return soxr.resample(audio.astype(np.float64), rate_in, rate_out, quality="VHQ")


def normalise(audio: np.ndarray, rate: int, target: float | None, ceiling: float = DEFAULT_CEILING):
    """Gain to `target` LUFS with the true peak limited to `ceiling` dBTP; returns (audio, Loudness).

    The limiter may take off at most MAX_LIMITING_DB; a signal that needs more (clicks in near silence) stays below
    the target, and `limited_by_ceiling` says so. Without a target only the peak is held.
    """
    measured = integrated_lufs(audio, rate)
    peak = true_peak_dbtp(audio, rate)
    if target is None or measured is None:
        gain_db = min(0.0, ceiling - peak)
        out = apply_gain(audio, gain_db)
        return out, Loudness(integrated_lufs(out, rate), true_peak_dbtp(out, rate), gain_db, target, False, 0.0)
    most = ceiling + MAX_LIMITING_DB - peak  # beyond this gain the limiter would flatten the sound
    gain_db = min(target - measured, most)
    for _ in range(8):  # limiting lowers the loudness a little: add back what it took, within the cap
        out, depth = limit(apply_gain(audio, gain_db), rate, ceiling)
        achieved = integrated_lufs(out, rate)
        if abs(achieved - target) <= 0.1 or gain_db >= most:
            break
        gain_db = min(gain_db + target - achieved, most)
    limited = achieved < target - 0.5
    if limited:
        logger.info("%.1f LUFS, under the %.1f target: reaching it needs more than %.0f dB of limiting",
                    achieved, target, MAX_LIMITING_DB)
    return out, Loudness(achieved, true_peak_dbtp(out, rate), gain_db, target, limited, depth)


def _bext(description: str, time_reference: int, loudness: Loudness | None) -> bytes:
    now = time.gmtime()
    fields = struct.pack(
        "<256s32s32s10s8sIIH64s",
        description.encode("utf-8")[:256], b"Foley Desk", b"", time.strftime("%Y-%m-%d", now).encode(),
        time.strftime("%H:%M:%S", now).encode(), time_reference & 0xFFFFFFFF, time_reference >> 32, 2, b"",
    )
    undefined = 0x7FFF  # "not set" in Tech 3285 v2
    lufs = round(loudness.integrated_lufs * 100) if loudness and loudness.integrated_lufs is not None else undefined
    peak = round(loudness.true_peak_dbtp * 100) if loudness and math.isfinite(loudness.true_peak_dbtp) else undefined
    fields += struct.pack("<hhhhh180s", lufs, undefined, peak, undefined, undefined, b"")
    history = b"A=PCM,F=48000,W=24,M=mono,T=Foley Desk\r\n"
    return fields + history


def _chunk(tag: bytes, payload: bytes) -> bytes:
    pad = b"\0" if len(payload) % 2 else b""
    return tag + struct.pack("<I", len(payload)) + payload + pad


def write_bwf(path: Path, audio: np.ndarray, rate: int, time_reference: int, description: str,
              loudness: Loudness | None = None) -> Path:
    """Mono 24-bit Broadcast WAV with `bext` (TimeReference = samples since midnight), written atomically."""
    pcm = np.round(np.clip(audio, -1.0, 1.0 - 2.0**-23) * 2**23).astype("<i4")
    data = pcm.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 3, 3, 24)
    body = b"WAVE" + _chunk(b"bext", _bext(description, time_reference, loudness)) + _chunk(b"fmt ", fmt) + \
        _chunk(b"data", data)
    part = path.with_name(f".{path.name}.part")
    try:
        part.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
    return path


def read_time_reference(path: Path) -> int:
    """The `bext` TimeReference of a Broadcast WAV (what editors use to place it by timecode)."""
    data = path.read_bytes()
    offset = 12
    while offset + 8 <= len(data):
        tag, size = data[offset : offset + 4], struct.unpack("<I", data[offset + 4 : offset + 8])[0]
        if tag == b"bext":
            low, high = struct.unpack("<II", data[offset + 8 + 338 : offset + 8 + 346])
            return low + (high << 32)
        offset += 8 + size + size % 2
    raise ExportError(f"{path} has no bext chunk: it is not a Broadcast WAV.")


def read_48k(path: Path) -> np.ndarray:
    """A WAV as mono float64 at the stem rate."""
    try:
        audio, rate = soundfile.read(str(path), dtype="float64", always_2d=True)
    except (OSError, RuntimeError) as exc:
        raise ExportError(f"Cannot read {path} ({exc}); generate the foley again.") from None
    return resample(audio.mean(axis=1), rate)


def write_stem(source: Path, out: Path, record_seconds: Fraction, *, target: float | None = LOUDNESS_PRESETS["broadcast"],
               ceiling: float = DEFAULT_CEILING, description: str = "") -> Loudness:
    """One foley WAV as a 48 kHz 24-bit BWF stem placed at `record_seconds` (since midnight of the timecode)."""
    normalised, loudness = normalise(read_48k(source), STEM_RATE, target, ceiling)
    reference = math.floor(record_seconds * STEM_RATE + Fraction(1, 2))
    write_bwf(out, normalised, STEM_RATE, reference, description or source.stem, loudness)
    return loudness
