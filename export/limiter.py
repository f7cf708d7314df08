"""A look-ahead true-peak limiter: the gain falls smoothly before each over (seen on the 4x oversampled signal),
holds, and recovers at a fixed rate. Written with numpy/scipy because no audio limiter is among the dependencies.

The gain curve is built in dB from the gain each sample needs (`required`):
1. look ahead: the minimum of `required` over the next L samples;
2. release: the gain may rise by at most `RELEASE_DB_PER_SECOND`;
3. smooth: a moving average over the last L samples, which never exceeds what any sample in its window needs.
"""

import logging
import math

import numpy as np
import soxr
from scipy.ndimage import maximum_filter1d, minimum_filter1d

from engine.core.levels import OVERSAMPLE, true_peak_dbtp

logger = logging.getLogger(__name__)

LOOKAHEAD_SECONDS = 0.002  # a smooth attack before a transient, too short to duck what leads up to it
RELEASE_DB_PER_SECOND = 240.0  # 6 dB back in 25 ms: a hit's body after its crack is not ducked, lows barely bent
MARGIN_DB = 0.05  # aimed under the ceiling so the oversampled output does not graze it


def peak_envelope(audio: np.ndarray, rate: int) -> np.ndarray:
    """Per sample, the largest |value| of the 4x oversampled signal between its neighbours."""
    up = soxr.resample(audio, rate, rate * OVERSAMPLE, quality="VHQ")
    up = np.pad(up, (0, max(0, OVERSAMPLE * len(audio) - len(up))))[: OVERSAMPLE * len(audio)]
    per_sample = np.maximum(np.abs(up).reshape(len(audio), OVERSAMPLE).max(axis=1), np.abs(audio))
    return maximum_filter1d(per_sample, size=3)  # an inter-sample peak belongs to the samples either side


def gain_curve_db(required_db: np.ndarray, lookahead: int, release_per_sample: float) -> np.ndarray:
    """Smooth gain (dB, <= 0) that is at or under `required_db` at every sample (steps 1-3 above)."""
    padded = np.pad(required_db, (lookahead, lookahead))  # unity gain either side, so the edges ramp too
    ahead = minimum_filter1d(padded, size=lookahead, origin=-(lookahead // 2))
    ramp = np.arange(len(padded)) * release_per_sample
    released = np.minimum(ahead, ramp + np.minimum.accumulate(ahead - ramp))  # y[n] = min(x[n], y[n-1] + d)
    totals = np.concatenate([[0.0], np.cumsum(released)])
    smooth = (totals[lookahead:] - totals[:-lookahead]) / lookahead  # mean of released[n - L + 1 .. n]
    return np.minimum(smooth[1 : 1 + len(required_db)], 0.0)  # sample i sits at padded index i + L


def limit(audio: np.ndarray, rate: int, ceiling_db: float) -> tuple[np.ndarray, float]:
    """`audio` with its true peak held at or under `ceiling_db`; returns (audio, deepest gain reduction in dB)."""
    audio = audio.astype(np.float64)
    lookahead = max(1, round(LOOKAHEAD_SECONDS * rate))
    aim = ceiling_db - MARGIN_DB
    deepest = 0.0
    for _ in range(4):  # the gain moves slowly, so one pass nearly always lands; re-aim by any remaining over
        with np.errstate(divide="ignore"):
            required = np.minimum(aim - 20 * np.log10(peak_envelope(audio, rate)), 0.0)
        gain = gain_curve_db(required, lookahead, RELEASE_DB_PER_SECOND / rate)
        audio = audio * 10 ** (gain / 20)
        deepest += float(gain.min(initial=0.0))
        over = true_peak_dbtp(audio, rate) - ceiling_db
        if over <= 0 or not math.isfinite(over):
            break
        aim -= over + MARGIN_DB
    return audio, max(0.0, -deepest)
