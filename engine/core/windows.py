"""Ranges longer than the model's window: plan overlapping windows (ending at shot cuts where possible),
join them with equal-power crossfades, and measure the seams.

A window is generated from its own frames; the next one starts at least `OVERLAP` before the previous one
ends, on the range's frame grid, and the crossfade spans the overlap. When a shot cut falls in the second half of a window, the window ends half
an overlap after the cut so the crossfade is centred on the cut, where a change of sound is expected.
"""

import math
from fractions import Fraction

import numpy as np

from engine.video import Frames

OVERLAP = Fraction(1)  # seconds; a whole number of frames at the model's 2 fps
CUT_LEVEL = 40.0  # mean absolute difference (0-255) between consecutive frames that marks a cut
CUT_CONTRAST = 3.0  # ... and how many times the window's median difference it must be


def estimate_windows(duration: Fraction, window: Fraction, rate: int = 2) -> int:
    """How many windows a range needs without cuts (progress uses it before cuts are known)."""
    if duration <= window:
        return 1
    step = Fraction(math.floor((window - OVERLAP) * rate), rate)  # starts stay on the frame grid
    return 1 + math.ceil((duration - window) / step)


def detect_cuts(frames: Frames) -> list[Fraction]:
    """Times of the frames that start a new shot: a jump in the picture much larger than the window's usual motion."""
    if len(frames.rgb) < 3:
        return []
    small = frames.rgb[:, ::8, ::8].astype(np.float32)
    jumps = np.abs(np.diff(small, axis=0)).mean(axis=(1, 2, 3))
    usual = max(float(np.median(jumps)), 1.0)
    step = Fraction(1, frames.rate)
    return [frames.start + (i + 1) * step for i, jump in enumerate(jumps) if jump > CUT_LEVEL and jump > CUT_CONTRAST * usual]


def window_end(frames: Frames, window: Fraction) -> Fraction:
    """Where a window that starts at `frames.start` should end: centred-crossfade after the last cut in its
    second half, else its full length."""
    full = frames.end
    cuts = [c for c in detect_cuts(frames) if frames.start + window / 2 <= c <= full - OVERLAP / 2]
    return cuts[-1] + OVERLAP / 2 if cuts else full


def _ramp(length: int) -> np.ndarray:
    return np.sin((np.arange(length) + 0.5) * np.pi / (2 * length)).astype(np.float32)


def crossfade_add(out: np.ndarray, offset: int, piece: np.ndarray, fade_in: int, fade_out: int) -> None:
    """Overlap-add `piece` into `out` at `offset`, with sin/cos fades of `fade_in`/`fade_out` samples (0: none) at
    the joins: they keep the power of uncorrelated signals constant through a join (a linear fade dips 3 dB)."""
    shaped = piece.astype(np.float32)  # a copy: the caller's array stays as it was
    if fade_in:
        shaped[..., :fade_in] *= _ramp(fade_in)
    if fade_out:
        shaped[..., -fade_out:] *= _ramp(fade_out)[::-1]
    end = min(out.shape[-1], offset + shaped.shape[-1])
    out[..., offset:end] += shaped[..., : end - offset]


def seam_report(audio: np.ndarray, joins: list[int], rate: int, block_seconds: float = 0.05) -> dict:
    """Seam metric: level dip (dB) of the block at each join against the median block, and spectral flux at each
    join against the median flux. Good joins: dip near 0 dB, flux ratio near 1."""
    block = int(rate * block_seconds)
    blocks = audio[: len(audio) // block * block].reshape(-1, block)
    rms = np.sqrt((blocks.astype(np.float64) ** 2).mean(axis=1)) + 1e-12
    spectra = np.abs(np.fft.rfft(blocks * np.hanning(block), axis=1))
    flux = np.concatenate([[0.0], np.sqrt((np.diff(spectra, axis=0).clip(min=0) ** 2).sum(axis=1))])
    at = [min(j // block, len(rms) - 1) for j in joins]
    median_rms, median_flux = float(np.median(rms)), float(np.median(flux)) + 1e-12
    return {
        "joins": len(joins),
        "worst_dip_db": min((20 * math.log10(rms[i] / median_rms) for i in at), default=0.0),
        "worst_flux_ratio": max((max(flux[i], flux[min(i + 1, len(flux) - 1)]) / median_flux for i in at), default=1.0),
    }
