"""Levels: BS.1770 loudness and true peak, and the gain that puts a variant at the documented listening level.

Variants are written at -23 LUFS (EBU R128, the level of the broadcast export, so nothing is auditioned louder
than it is delivered), with the gain lowered where needed so the true peak stays at or under -1 dBTP: a plain
gain, never a limiter, so the model's dynamics are kept (its peaky takes usually land on the peak).
"""

import math
from dataclasses import dataclass

import numpy as np
import pyloudnorm
import soxr

from engine.config import LevelMode

OVERSAMPLE = 4
VARIANT_TARGET_LUFS = -23.0
VARIANT_CEILING_DBTP = -1.0


@dataclass(frozen=True)
class Level:
    """What the output step measured and did to one variant (recorded in its sidecar)."""

    mode: LevelMode
    gain_db: float
    integrated_lufs: float | None  # after the gain; None for silence
    true_peak_dbtp: float | None  # after the gain; None for silence
    target_lufs: float | None
    ceiling_dbtp: float | None


def true_peak_dbtp(audio: np.ndarray, rate: int) -> float:
    """Peak of the 4x oversampled signal in dB relative to full scale (BS.1770 true peak)."""
    upsampled = soxr.resample(audio.astype(np.float64), rate, rate * OVERSAMPLE, quality="VHQ")
    peak = max(np.abs(upsampled).max(initial=0.0), np.abs(audio).max(initial=0.0))
    return 20 * math.log10(peak) if peak > 0 else -math.inf


def integrated_lufs(audio: np.ndarray, rate: int) -> float | None:
    """BS.1770 integrated loudness; None when the signal is too short or gated away (silence)."""
    padded = audio if len(audio) >= rate // 2 else np.pad(audio, (0, rate // 2 - len(audio)))  # one 400 ms block
    value = pyloudnorm.Meter(rate).integrated_loudness(padded.astype(np.float64))
    return None if not math.isfinite(value) else float(value)


def variant_level(audio: np.ndarray, rate: int, mode: LevelMode = "normalised") -> Level:
    """The gain for one variant: to the target loudness, lowered so the true peak stays under the ceiling."""
    measured, peak = integrated_lufs(audio, rate), true_peak_dbtp(audio, rate)
    if mode == "raw" or measured is None:
        return Level(mode, 0.0, measured, peak if math.isfinite(peak) else None, None, None)
    gain_db = min(VARIANT_TARGET_LUFS - measured, VARIANT_CEILING_DBTP - peak)
    return Level(mode, gain_db, measured + gain_db, peak + gain_db, VARIANT_TARGET_LUFS, VARIANT_CEILING_DBTP)


def apply_gain(audio: np.ndarray, gain_db: float) -> np.ndarray:
    """A copy of `audio` scaled by `gain_db` decibels."""
    return audio * 10 ** (gain_db / 20)
