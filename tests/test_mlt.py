"""Kdenlive and Shotcut projects: read timeline and zone, write foley tracks, prove placement with real melt."""

import difflib
import os
import stat
from fractions import Fraction

import numpy as np
import pytest
from opentimelineio.opentime import RationalTime, TimeRange

from editor_plugin import mlt
from editor_plugin.contract import Placement
from editor_plugin.errors import (
    MissingMediaError,
    ProjectFormatError,
    ProjectWriteError,
    SelectionError,
    UnsupportedClipError,
)
from tests.projects import TONE_LEVEL, burst, kdenlive_project, render_audio, shotcut_project

RATES = [Fraction(25), Fraction(30000, 1001), Fraction(24000, 1001)]


def placement(wav, frame: int, rate: Fraction, name="foley v1") -> Placement:
    return Placement(wav, RationalTime(frame, float(rate)), RationalTime(16000, 16000), name)


def band_level(signal: np.ndarray, frequency: float, rate: int = 48000) -> float:
    """Amplitude of one sine component (single-bin DFT over a whole number of periods)."""
    t = np.arange(len(signal)) / rate
    return 2 * abs(np.mean(signal * np.exp(-2j * np.pi * frequency * t)))


def test_kdenlive_timeline_and_zone_resolve_to_source_spans(tmp_path):
    project = kdenlive_project(tmp_path, Fraction(30000, 1001))
    timeline = mlt.read_timeline(project)
    assert [(t.name, t.kind) for t in timeline.tracks] == [("Dialogue", "Audio"), ("V1", "Video")]
    shots = list(timeline.video_tracks()[0].find_clips())
    assert [(c.range_in_parent().start_time.value, c.source_range.start_time.value) for c in shots] == [(0, 0), (110, 150)]
    assert shots[0].media_reference.target_url == (tmp_path / "shot.mp4").as_uri()  # relative to <mlt root>

    selection = mlt.read_selection(project)  # the zone: frames 20-160
    ntsc = Fraction(1001, 30000)
    assert selection.label == "zone" and selection.range_seconds() == (20 * ntsc, 160 * ntsc)
    edit = selection.edit()
    assert [(s.record_start, s.record_end, s.source_start) for s in edit] == [
        (20 * ntsc, 100 * ntsc, 20 * ntsc), (110 * ntsc, 160 * ntsc, 150 * ntsc)]

    by_name = mlt.read_selection(project, clip="shot")
    assert by_name.record == TimeRange(RationalTime(0, 30000 / 1001), RationalTime(100, 30000 / 1001))
    ranged = mlt.read_selection(project, record=TimeRange(RationalTime(90, 30000 / 1001), RationalTime(40, 30000 / 1001)))
    assert [(s.record_start, s.record_end) for s in ranged.edit()] == [(90 * ntsc, 100 * ntsc), (110 * ntsc, 130 * ntsc)]


@pytest.mark.parametrize("rate", RATES, ids=["25", "29.97", "23.976"])
@pytest.mark.parametrize("make", [kdenlive_project, shotcut_project], ids=["kdenlive", "shotcut"])
def test_foley_lands_at_the_exact_sample_in_a_melt_render(tmp_path, make, rate):
    project = make(tmp_path, rate)
    original = project.read_text()
    before = render_audio(project, tmp_path / "before.wav", 209)
    report = mlt.write_audio_clips(project, [placement(burst(tmp_path / "foley.wav"), 100, rate)])
    assert report.track == "Foley" and report.backup.read_text() == original
    after = render_audio(project, tmp_path / "after.wav", 209)

    foley = after - before  # the mix is a sum, so the difference is the foley alone
    expected = 100 / rate * 48000
    onset = int(np.argmax(np.abs(foley) > 0.05))
    assert abs(onset - expected) <= 48, (onset, float(expected))  # within 1 ms
    # melt spreads a mono clip over two channels at -3 dB: the foley gets the same gain as the dialogue clip
    mono_gain = band_level(before[:24000], 440) / TONE_LEVEL
    assert mono_gain == pytest.approx(2**-0.5, rel=0.02)
    assert band_level(foley[onset : onset + 24000], 1000) == pytest.approx(0.5 * mono_gain, rel=0.02)
    window = after[onset : onset + 24000]
    assert band_level(window, 440) == pytest.approx(TONE_LEVEL * mono_gain, rel=0.02)  # the dialogue still plays

    timeline = mlt.read_timeline(project)
    (foley_track,) = [t for t in timeline.audio_tracks() if t.name == "Foley"]
    (clip,) = foley_track.find_clips()
    assert clip.range_in_parent().start_time.value == 100 and clip.name == "foley v1"


@pytest.mark.parametrize("make", [kdenlive_project, shotcut_project], ids=["kdenlive", "shotcut"])
def test_writing_only_inserts_and_keeps_the_file_mode(tmp_path, make):
    project = make(tmp_path, Fraction(25))
    os.chmod(project, 0o640)
    original = project.read_text().splitlines(keepends=True)
    wav = burst(tmp_path / "foley.wav")
    # two variants at one spot stack on two tracks; a later one shares the first track
    report = mlt.write_audio_clips(project, [placement(wav, 40, Fraction(25)), placement(wav, 40, Fraction(25), "v2"),
                                             placement(wav, 150, Fraction(25), "v3")])
    assert report.track == "Foley, Foley 2"
    changed = project.read_text().splitlines(keepends=True)
    opcodes = difflib.SequenceMatcher(a=original, b=changed, autojunk=False).get_opcodes()
    assert {tag for tag, *_ in opcodes} == {"equal", "insert"}
    assert stat.S_IMODE(project.stat().st_mode) == 0o640
    timeline = mlt.read_timeline(project)
    foley = {t.name: [c.range_in_parent().start_time.value for c in t.find_clips()] for t in timeline.audio_tracks()}
    assert foley["Foley"] == [40, 150] and foley["Foley 2"] == [40]
    mlt.write_audio_clips(project, [placement(wav, 10, Fraction(25))])  # a second pass adds "Foley 3"
    timeline = mlt.read_timeline(project)
    assert "Foley 3" in [t.name for t in timeline.tracks]


def test_foley_past_the_timeline_end_extends_it(tmp_path):
    project = shotcut_project(tmp_path, Fraction(25))
    mlt.write_audio_clips(project, [placement(burst(tmp_path / "foley.wav"), 200, Fraction(25))])
    assert 'out="224"' in project.read_text()
    audio = render_audio(project, tmp_path / "after.wav", 224)
    assert np.abs(audio[int(8.4 * 48000) :]).max() > 0.3  # the part after the old end (frame 209) is heard


def test_read_only_project_is_refused_and_untouched(tmp_path):
    project = kdenlive_project(tmp_path, Fraction(25))
    before = project.read_bytes()
    os.chmod(project, 0o444)
    try:
        with pytest.raises(ProjectWriteError, match="read-only"):
            mlt.write_audio_clips(project, [placement(burst(tmp_path / "foley.wav"), 10, Fraction(25))])
    finally:
        os.chmod(project, 0o644)
    assert project.read_bytes() == before and not list(tmp_path.glob("*.foley-*"))


def test_bad_projects_and_selections_fail_clearly(tmp_path):
    broken = tmp_path / "broken.kdenlive"
    broken.write_text("<mlt><producer")
    with pytest.raises(ProjectFormatError, match="not readable MLT XML"):
        mlt.read_timeline(broken)
    with pytest.raises(ProjectFormatError, match="No project file"):
        mlt.read_timeline(tmp_path / "absent.kdenlive")

    (tmp_path / "newer").mkdir()
    newer = kdenlive_project(tmp_path / "newer", Fraction(25), version="1.2")
    with pytest.raises(ProjectFormatError, match=r"document version 1\.2 file \(written by 22\.12\.3\).*up to 1\.1.*"
                       "Export the timeline as OpenTimelineIO"):
        mlt.read_timeline(newer)
    before = newer.read_bytes()
    with pytest.raises(ProjectFormatError, match=r"version 1\.2"):
        mlt.write_audio_clips(newer, [placement(burst(tmp_path / "foley.wav"), 10, Fraction(25))])
    assert newer.read_bytes() == before and not list((tmp_path / "newer").glob("*.foley-*"))

    project = kdenlive_project(tmp_path, Fraction(25))
    with pytest.raises(SelectionError, match="There is no video in the selection"):
        mlt.read_selection(project, record=TimeRange(RationalTime(100, 25), RationalTime(10, 25)))
    with pytest.raises(SelectionError, match="No video clip named 'nope'.*Clips: shot"):
        mlt.read_selection(project, clip="nope")
    (tmp_path / "shot.mp4").rename(tmp_path / "moved.mp4")
    with pytest.raises(MissingMediaError, match="shot.mp4, which does not exist. Relink"):
        mlt.read_selection(project)


def test_speed_changed_clips_are_refused(tmp_path):
    project = kdenlive_project(tmp_path, Fraction(25), speed=2.0)
    with pytest.raises(UnsupportedClipError, match=r"a speed change \(2x\).*would drift"):
        mlt.read_selection(project)


@pytest.mark.parametrize("rate", RATES, ids=["25", "29.97", "23.976"])
def test_clock_times_written_for_an_out_parse_back_to_the_same_frame(rate):
    assert all(mlt.parse_time(mlt.format_time(frame, rate, "00:00:01.000"), rate) == frame for frame in range(5000))
    assert mlt.format_time(169, Fraction(30000, 1001), "00:00:04.972") == "00:00:05.639"
    assert mlt.format_time(169, rate, "149") == "169"
