"""Stems: 48 kHz 24-bit BWF with the time reference read back, loudness checked by ffmpeg's ebur128 meter."""

import re
import subprocess
from fractions import Fraction

import numpy as np
import pytest
import soundfile

from export.stems import read_time_reference, write_stem
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
    lufs, peak = ffmpeg_loudness(tmp_path / "stem.wav")
    assert loudness.limited_by_ceiling and peak <= -0.9 and lufs < -16.0
