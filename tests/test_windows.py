"""Any length: overlapping windows joined by equal-power crossfades, boundaries at shot cuts, exact lengths."""

import threading
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest

from engine.config import SAMPLING_PRESETS
from engine.core.generate import JobCancelled, generate, range_samples
from engine.core.windows import crossfade_add, estimate_windows, seam_report
from engine.training.sample_video import write_video
from engine.video import EditFrames, EditSpan

ONE_STEP = replace(SAMPLING_PRESETS["reference"], steps=1)


def flat_video(path, seconds: int, rate: Fraction, cut_at: float | None = None, size=(64, 48)):
    """A small video: grey noise-free pictures, switching from dark to bright at `cut_at` (a hard cut)."""
    count = int(seconds * rate)
    frames = []
    for i in range(count):
        level = 230 if cut_at is not None and i / rate >= cut_at else 30
        frames.append(np.full((size[1], size[0], 3), level, np.uint8))
    return write_video(path, frames, [Fraction(i) / rate for i in range(count)], rate)


def edit_of(video, start: Fraction, end: Fraction) -> EditFrames:
    return EditFrames((EditSpan(video, start, end, start),), start, end)


def test_a_37_second_ntsc_range_is_exact_and_reports_windows(tmp_path, tiny):
    rate = Fraction(30000, 1001)
    video = flat_video(tmp_path / "long.mp4", 40, rate)
    start, end = 5 / rate, (5 + 1109) / rate  # 37.0 s, frame accurate
    seen = []
    result = generate(edit_of(video, start, end), components=tiny, sampling=ONE_STEP, seeds=(3, 4), callback=seen.append)
    assert all(v.audio.shape == (range_samples(start, end, 16000),) for v in result.variants)  # 592,058 samples
    windows = estimate_windows(end - start, Fraction(256, 25))
    assert windows == 4 and len(result.joins) == 3
    assert sorted({info.window for info in seen}) == [0, 1, 2, 3] and {info.windows for info in seen} == {4}
    assert len(result.frame_times) == len(range(int(np.ceil((end - start) * 2))))  # one per 0.5 s, no repeats
    alone = generate(edit_of(video, start, end), components=tiny, sampling=ONE_STEP, seeds=(4,))
    np.testing.assert_allclose(alone.variants[0].audio, result.variants[1].audio, atol=1e-4 * np.abs(alone.variants[0].audio).max())


def test_window_boundaries_move_to_shot_cuts(tmp_path, tiny):
    video = flat_video(tmp_path / "cut.mp4", 20, Fraction(25), cut_at=7.0)
    result = generate(edit_of(video, Fraction(0), Fraction(20)), components=tiny, sampling=ONE_STEP)
    assert result.joins[0] == Fraction(7)  # the crossfade is centred on the cut, not at 9.74 s
    plain = generate(edit_of(flat_video(tmp_path / "plain.mp4", 20, Fraction(25)), Fraction(0), Fraction(20)),
                     components=tiny, sampling=ONE_STEP)
    # no cut: the next window starts on the 0.5 s grid at least 1 s before 10.24 s, at 9.0 s
    assert plain.joins[0] == (Fraction(9) + Fraction(256, 25)) / 2


def test_cancel_between_windows(tmp_path, tiny):
    video = flat_video(tmp_path / "long.mp4", 30, Fraction(25))
    cancel = threading.Event()

    def stop_in_second_window(info):
        if info.window == 1:
            cancel.set()

    with pytest.raises(JobCancelled):
        generate(edit_of(video, Fraction(0), Fraction(30)), components=tiny, sampling=ONE_STEP,
                 callback=stop_in_second_window, cancel=cancel)


@pytest.mark.slow
def test_ten_minutes_stream_window_by_window(tmp_path, tiny):
    video = flat_video(tmp_path / "ten.mp4", 600, Fraction(5), size=(32, 32))
    seen = []
    result = generate(edit_of(video, Fraction(0), Fraction(600)), components=tiny, sampling=ONE_STEP, callback=seen.append)
    assert result.variants[0].audio.shape == (9_600_000,) and len(result.joins) == estimate_windows(Fraction(600), Fraction(256, 25)) - 1
    assert max(info.window for info in seen) == len(result.joins)


def uncorrelated_pieces(seconds=10.24, overlap=1.0, rate=16000, count=4, seed=0):
    rng = np.random.default_rng(seed)
    length, fade = int(seconds * rate), int(overlap * rate)
    offsets = [k * (length - fade) for k in range(count)]
    return [(o, 0.1 * rng.standard_normal(length).astype(np.float32)) for o in offsets], offsets[-1] + length, fade


def test_seam_metric_passes_equal_power_joins_and_catches_bad_ones():
    pieces, total, fade = uncorrelated_pieces()
    joins = [offset + fade // 2 for offset, _ in pieces[1:]]
    out = np.zeros(total, np.float32)
    for index, (offset, piece) in enumerate(pieces):
        crossfade_add(out, offset, piece, fade if index > 0 else 0, fade if index < len(pieces) - 1 else 0)
    good = seam_report(out, joins, 16000)
    # thresholds: a 1 dB dip is below what listeners notice on noise-like foley; flux twice the median is within
    # the block-to-block spread of stationary noise (measured: about 1.2-1.6)
    assert good["worst_dip_db"] > -1.0 and good["worst_flux_ratio"] < 2.0, good

    linear = np.zeros(total, np.float32)
    ramp = np.linspace(0, 1, fade, dtype=np.float32)
    for index, (offset, piece) in enumerate(pieces):
        shaped = piece.copy()
        if index > 0:
            shaped[:fade] *= ramp
        if index < len(pieces) - 1:
            shaped[-fade:] *= ramp[::-1]
        linear[offset : offset + len(shaped)] += shaped
    assert seam_report(linear, joins, 16000)["worst_dip_db"] < -2.0  # the 3 dB hole of a linear fade

    spliced = np.concatenate([pieces[0][1][:80000], 4 * pieces[1][1][:80000]])
    assert seam_report(spliced, [80000], 16000)["worst_flux_ratio"] > 3.0  # a hard splice with a level jump


def test_variable_frame_rate_range_is_exact_by_timestamps(tmp_path, tiny):
    # frames at irregular times (a phone clip): the range ends on a frame's own timestamp
    times = [Fraction(0)]
    for i in range(1, 400):
        times.append(times[-1] + (Fraction(1, 30) if i % 3 else Fraction(1, 20)))
    images = [np.full((48, 64, 3), 40 + i % 100, np.uint8) for i in range(len(times))]
    video = write_video(tmp_path / "vfr.mp4", images, times, Fraction(30))
    start, end = times[7], times[371]  # 12.23 s: two windows
    result = generate(edit_of(video, start, end), components=tiny, sampling=ONE_STEP)
    assert result.variants[0].audio.shape == (range_samples(start, end, 16000),) and len(result.joins) == 1
