"""Frame decoding: exact frame times at NTSC rates and VFR, the legacy int(fps) rule, and bad input."""

import bisect
import os
from fractions import Fraction

import av
import numpy as np
import pytest
import soundfile

from engine.errors import InputVideoError
from engine.training.sample_video import write_video
from engine.video import EditSpan, decode_edit, decode_frames, probe_video, target_times
from tests.conftest import coded_video, read_code


def expected_indices(frame_times: list[Fraction], targets: list[Fraction]) -> list[int]:
    """The frame on screen at each target: the last one that started at or before it."""
    return [bisect.bisect_right(frame_times, t) - 1 for t in targets]


@pytest.mark.parametrize("rate", [Fraction(24000, 1001), Fraction(30000, 1001), Fraction(25)])
def test_constant_rate_frames_are_the_ones_on_screen(tmp_path, rate):
    times = [Fraction(i) / rate for i in range(int(10 * rate))]
    path = coded_video(tmp_path / "cfr.mp4", times, rate)
    frames = decode_frames(path, Fraction(2), Fraction(7))
    targets = target_times(Fraction(2), Fraction(7), 2)
    pixels = frames.model_input()
    assert len(targets) == 10 and frames.rgb.shape == (10, 224, 224, 3) and frames.rgb.dtype == np.uint8
    assert pixels.shape == (10, 3, 224, 224) and pixels.dtype == np.float32 and 0 <= pixels.min() <= pixels.max() <= 1
    assert [read_code(p) for p in frames.model_input()] == expected_indices(times, targets)
    for time, index in zip(frames.times, expected_indices(times, targets)):
        assert abs(time - times[index]) <= Fraction(1, 90000)


def test_variable_frame_rate_uses_timestamps(tmp_path):
    durations = [Fraction(1, 60), Fraction(1, 24), Fraction(1, 10), Fraction(1, 30)] * 40
    times = [sum(durations[:i], Fraction(0)) for i in range(len(durations))]
    path = coded_video(tmp_path / "vfr.mp4", times, Fraction(30))
    start, end = Fraction(1, 3), Fraction(7, 2)
    frames = decode_frames(path, start, end)
    targets = target_times(start, end, 2)
    assert [read_code(p) for p in frames.model_input()] == expected_indices(times, targets)


def test_legacy_rule_reproduces_int_fps_indices(tmp_path):
    rate = Fraction(30000, 1001)
    times = [Fraction(i) / rate for i in range(300)]
    path = coded_video(tmp_path / "ntsc.mp4", times, rate)
    frames = decode_frames(path, Fraction(0), probe_video(path).duration, legacy=True)
    # reference: fps = int(29.97) = 29, indices floor(arange(0, ceil(300/29)*29, 14.5)), kept while < 300
    expected = [int(i) for i in np.floor(np.arange(0, 11 * 29, 14.5)) if i < 300]
    assert [read_code(p) for p in frames.model_input()] == expected
    # the real-time rule drifts away from it: 29.97 fps frames at 0.5 s steps are 14.985 frames apart
    real = decode_frames(path, Fraction(0), probe_video(path).duration)
    assert [read_code(p) for p in real.model_input()] != expected


def test_preprocessing_resizes_short_side_and_centre_crops(tmp_path):
    rate = Fraction(25)
    images = [np.zeros((120, 400, 3), np.uint8) for _ in range(10)]
    for image in images:
        image[:, 180:220] = 255  # a white bar in the middle survives the centre crop
    path = write_video(tmp_path / "wide.mp4", images, [Fraction(i) / rate for i in range(10)], rate)
    frames = decode_frames(path, Fraction(0), Fraction(2, 5))
    assert frames.rgb.shape == (1, 224, 224, 3)
    assert frames.rgb[0, 112, 112].min() > 230 and frames.rgb[0, 112, 5].max() < 25


def bad(path, start=0, end=1, match=""):
    with pytest.raises(InputVideoError, match=match):
        decode_frames(path, Fraction(start), Fraction(end))


def test_bad_inputs_name_the_problem(tmp_path):
    bad(tmp_path / "nope.mp4", match="No such video file")
    wav = tmp_path / "sound.wav"
    soundfile.write(wav, np.zeros(16000, np.float32), 16000)
    bad(wav, match="audio-only")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(os.urandom(4096))
    bad(junk, match="corrupt or not a media file")
    rate = Fraction(25)
    clip = coded_video(tmp_path / "clip.mp4", [Fraction(i) / rate for i in range(50)], rate)
    bad(clip, 1, 1, match="at or before its start")
    bad(clip, 1.5, 3, match="goes past the end")
    bad(clip, -1, 1, match="must start at 0")


def test_zero_length_videos_are_refused(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.touch()
    bad(empty, match="is empty")
    no_frames = tmp_path / "no-frames.mp4"
    with av.open(str(no_frames), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        container.start_encoding()
    bad(no_frames, match="no video stream")


def test_an_edit_takes_each_frame_from_the_span_on_screen_and_gaps_are_black(tmp_path):
    rate = Fraction(25)
    times = [Fraction(i) / rate for i in range(250)]
    path = coded_video(tmp_path / "coded.mp4", times, rate)
    # record 0-1 s shows source 4-5 s; 1-1.5 s is a gap; 1.5-3 s shows source 0.2-1.7 s
    spans = [EditSpan(path, Fraction(0), Fraction(1), Fraction(4)),
             EditSpan(path, Fraction(3, 2), Fraction(3), Fraction(1, 5))]
    frames = decode_edit(spans, Fraction(0), Fraction(3), rate=2)
    codes = [read_code(p) for p in frames.model_input()]
    assert codes[:2] == [100, 112] and codes[3:] == [5, 17, 30]  # 25 fps frame indices of the source times
    assert frames.rgb[2].max() == 0 and frames.times[2] == Fraction(1)  # the gap: black, at its record time
    assert frames.times[:2] == (Fraction(4), Fraction(112, 25))  # 4.5 s falls inside frame 112
    with pytest.raises(InputVideoError, match="There is no video in 1.000-1.500 s"):
        decode_edit(spans, Fraction(1), Fraction(3, 2), rate=2)
    with pytest.raises(InputVideoError, match="goes past the end"):
        decode_edit([EditSpan(path, Fraction(0), Fraction(2), Fraction(9))], Fraction(0), Fraction(2), rate=2)
