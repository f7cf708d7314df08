"""Stems: 48 kHz 24-bit BWF with the time reference read back, loudness checked by ffmpeg's ebur128 meter."""

import re
import subprocess
from fractions import Fraction

import numpy as np
import pytest
import soundfile

from export.stems import MAX_LIMITING_DB, read_time_reference, write_stem
from tests.conftest import installed
from tests.projects import burst


def ffmpeg_loudness(path) -> tuple[float, float]:
    """Integrated loudness (LUFS) and true peak (dBTP) measured by ffmpeg, independent of our meter."""
    run = subprocess.run([installed("ffmpeg"), "-nostats", "-i", str(path), "-af", "ebur128=peak=true", "-f", "null", "-"],
                         capture_output=True, text=True, timeout=120)
    summary = run.stderr[run.stderr.rindex("Summary:") :]
    lufs = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))
    peak = float(re.search(r"Peak:\s+(-?[\d.]+) dBFS", summary).group(1))
    return lufs, peak


@pytest.mark.parametrize("target", [-23.0, -16.0])
def test_stem_is_a_placed_24_bit_bwf_at_the_loudness_target(tmp_path, target):
    source = burst(tmp_path / "foley.wav", seconds=3.0)
    out = tmp_path / "stem.wav"
    record = Fraction(3600) + Fraction(100 * 1001, 30000)  # frame 100 of a 29.97 timeline starting at 01:00:00:00
    loudness = write_stem(source, out, record, target=target)
    info = soundfile.info(out)
    assert (info.samplerate, info.subtype, info.frames) == (48000, "PCM_24", 144000)
    assert read_time_reference(out) == round(record * 48000)  # 172,960,160 samples since midnight
    lufs, peak = ffmpeg_loudness(out)
    assert abs(lufs - target) <= 0.5 and peak <= -1.0 + 0.1, (lufs, peak)
    assert abs(loudness.integrated_lufs - lufs) <= 0.5 and not loudness.limited_by_ceiling


def test_true_peak_ceiling_wins_over_the_loudness_target(tmp_path):
    t = np.arange(48000) / 16000
    spiky = np.zeros(48000)
    spiky[::4000] = 0.9  # clicks: loud peaks, little loudness
    soundfile.write(tmp_path / "clicks.wav", spiky + 0.01 * np.sin(2 * np.pi * 300 * t), 16000, subtype="PCM_16")
    loudness = write_stem(tmp_path / "clicks.wav", tmp_path / "stem.wav", Fraction(0), target=-16.0)
    measured, peak = ffmpeg_loudness(tmp_path / "stem.wav")
    assert loudness.limited_by_ceiling and peak <= -0.9 and measured < -16.0
    assert loudness.limiting_db <= MAX_LIMITING_DB + 0.5  # clicks are not flattened to reach the target


def true_peak_4x(audio: np.ndarray) -> float:
    """True peak (dBTP) at 4x oversampling by scipy's polyphase filter, independent of the soxr meter we ship."""
    from scipy.signal import resample_poly

    return 20 * np.log10(max(np.abs(resample_poly(audio, 4, 1)).max(), np.abs(audio).max()))


def lufs(audio: np.ndarray, rate: int) -> float:
    import pyloudnorm

    return pyloudnorm.Meter(rate).integrated_loudness(audio)


def impacts(crack: float = 4.0, seconds: float = 4.0, rate: int = 16000, every: float = 0.8) -> np.ndarray:
    """Foley-like transients: a crack `crack` times the body's level, then noise decaying in 50 ms (crack 4: a
    peak-to-loudness ratio of 26 dB, 4 dB more than -23 LUFS under -1 dBTP allows)."""
    rng = np.random.default_rng(0)
    n = int(seconds * rate)
    hit = rng.normal(0, 1, int(0.3 * rate)) * np.exp(-np.arange(int(0.3 * rate)) / (0.05 * rate))
    hit[: int(0.002 * rate)] *= crack  # the crack of an impact, far above its body
    audio = np.zeros(n)
    for start in range(0, n - len(hit), int(every * rate)):
        audio[start : start + len(hit)] += hit
    return 0.05 * audio / np.abs(audio).max()


@pytest.mark.parametrize(("target", "crack"), [(-23.0, 4.0), (-16.0, 1.0)])
def test_limiter_reaches_the_target_with_the_true_peak_under_the_ceiling(tmp_path, target, crack):
    soundfile.write(tmp_path / "hits.wav", impacts(crack), 16000, subtype="PCM_16")
    loudness = write_stem(tmp_path / "hits.wav", tmp_path / "stem.wav", Fraction(0), target=target)
    audio, rate = soundfile.read(tmp_path / "stem.wav", dtype="float64")
    assert abs(lufs(audio, rate) - target) <= 0.5, lufs(audio, rate)
    assert true_peak_4x(audio) <= -1.0 + 0.01
    assert loudness.limiting_db > 1.0 and not loudness.limited_by_ceiling  # the target needed the limiter


def test_limiter_gain_never_exceeds_what_any_sample_needs_and_moves_smoothly():
    from export.limiter import gain_curve_db

    required = np.zeros(2000)
    required[[300, 301, 1200]] = [-9.0, -4.0, -6.0]
    gain = gain_curve_db(required, lookahead=40, release_per_sample=0.01)
    assert np.all(gain <= required + 1e-9) and gain.max() == 0.0
    assert np.abs(np.diff(gain)).max() <= 9.0 / 40 + 1e-9  # the attack spreads over the look-ahead: no step
    assert gain[299 - 40] == 0.0 and gain[300 + 400] < 0.0  # no earlier than the look-ahead; a slow release
