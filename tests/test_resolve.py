"""The Resolve bridge against a fake that follows Resolve's documented API and quirks; a real Resolve is opt-in."""

import os
import sys
from fractions import Fraction

import pytest
from opentimelineio.opentime import RationalTime

from editor_plugin import resolve as bridge
from editor_plugin.contract import Placement, seconds
from editor_plugin.errors import HostError, HostNotRunningError, HostVersionError, SelectionError, UnsupportedClipError
from engine.training.sample_video import make_demo_video
from tests.fakes.resolve import FakeResolve, FakeScriptModule, FakeTimeline
from tests.projects import burst
from ui.cli import main

NTSC_FILM = Fraction(24000, 1001)


@pytest.fixture
def video(tmp_path):
    return make_demo_video(tmp_path / "shot.mp4", seconds=12.0, rate=NTSC_FILM)


def resolve_with_edit(video, version=(19, 1, 0)):
    """23.976 timeline from 01:00:00:00: 'shot-a' (source 0-99) at 0, a gap, 'shot-b' (source 150-249) at 110."""
    app = FakeResolve(version, rate_text="23.976", start=86400)
    timeline = app.project.timeline
    timeline.add_video("shot-a", 86400, 100, 0, 100, video, "23.976")
    timeline.current_video_item = timeline.add_video("shot-b", 86510, 100, 150, 250, video, "23.976")
    timeline.marks = {"video": {"in": 20, "out": 159}, "audio": {"in": 20, "out": 159}}
    return bridge.get_resolve(FakeScriptModule(app)), app


def test_marks_resolve_to_source_spans_relative_to_the_timeline_start(video):
    resolve, _ = resolve_with_edit(video)
    selection = bridge.read_selection(resolve)
    frame = 1 / NTSC_FILM
    assert selection.label == "In/Out marks" and selection.range_seconds() == (20 * frame, 160 * frame)
    assert [(s.record_start, s.record_end, s.source_start) for s in selection.edit()] == [
        (20 * frame, 100 * frame, 20 * frame), (110 * frame, 160 * frame, 150 * frame)]


def test_before_19_1_the_clip_under_the_playhead_and_left_offsets_are_used(video):
    resolve, _ = resolve_with_edit(video, version=(18, 6, 4))
    selection = bridge.read_selection(resolve)  # no GetMarkInOut, no GetSourceStartFrame
    assert selection.label == "shot-b"
    assert [(s.record_start, s.source_start) for s in selection.edit()] == [(110 / NTSC_FILM, 150 / NTSC_FILM)]


def test_foley_goes_on_new_tracks_at_absolute_record_frames(video, tmp_path):
    resolve, app = resolve_with_edit(video)
    wav = burst(tmp_path / "v1.wav", seconds=1.0)
    other = burst(tmp_path / "v2.wav", seconds=1.0)
    at = RationalTime(100, float(NTSC_FILM))
    report = bridge.write_audio_clips(resolve, [Placement(wav, at, RationalTime(16000, 16000), "v1"),
                                                Placement(other, at, RationalTime(16000, 16000), "v2")])
    assert report.track == "Foley, Foley 2"
    timeline = app.project.timeline
    tracks = {t["name"]: t["items"] for t in timeline.tracks["audio"]}
    (first,), (second,) = tracks["Foley"], tracks["Foley 2"]
    assert first.GetStart() == second.GetStart() == 86500  # absolute: 86400 + 100
    # the WAV's 24 "frames" per second: 1 s -> endFrame 24 (exclusive) -> 24 timeline frames at 23.976
    assert (first.source_start, first.source_end, first.GetDuration()) == (0, 24, 24)
    bin_ = app.project.media_pool.root.subfolders[0]
    assert bin_.name.startswith("Foley ") and [i.path for i in bin_.items] == [str(wav), str(other)]
    # a second pass imports into a new bin, so the same file name never returns a stale item
    bridge.write_audio_clips(resolve, [Placement(wav, RationalTime(200, float(NTSC_FILM)), RationalTime(16000, 16000), "v1")])
    assert len(app.project.media_pool.root.subfolders) == 2
    model = bridge.read_timeline(resolve)  # read back through the bridge: record times from the timeline start
    starts = {t.name: [seconds(c.range_in_parent().start_time) for c in t.find_clips()] for t in model.audio_tracks()}
    frame = 1 / NTSC_FILM
    assert starts == {"A1": [], "Foley": [100 * frame], "Foley 2": [100 * frame], "Foley 3": [200 * frame]}


def test_a_named_timeline_is_read_and_placed_on_not_only_the_current_one(video, tmp_path):
    resolve, app = resolve_with_edit(video)
    other = FakeTimeline(app, "Reel 2", "25", 90000)
    other.add_video("wide", 90000 + 50, 75, 0, 72, video, "23.976")  # 3 s of 23.976 media on 25
    app.project.timelines.append(other)
    assert bridge.read_selection(resolve, clip="wide", sequence="Reel 2").record.start_time.value == 50
    report = bridge.write_audio_clips(resolve, [Placement(burst(tmp_path / "v.wav"), RationalTime(60, 25),
                                                          RationalTime(16000, 16000), "v")], sequence="Reel 2")
    assert app.project.timeline is other and "now shows the timeline 'Reel 2'" in report.warnings[0]
    (foley,) = [t for t in other.tracks["audio"] if t["name"] == "Foley"]
    assert [item.GetStart() for item in foley["items"]] == [90060]
    with pytest.raises(SelectionError, match="no sequence named 'Reel 9'. Sequences: 'Edit 1', 'Reel 2'"):
        bridge.read_timeline(resolve, sequence="Reel 9")


def test_resolve_problems_are_explained(video, tmp_path):
    with pytest.raises(HostNotRunningError, match="External scripting using: Local.*Studio"):
        bridge.get_resolve(FakeScriptModule(None))
    with pytest.raises(HostVersionError, match="needs Resolve 18.5 or newer"):
        bridge.get_resolve(FakeScriptModule(FakeResolve((18, 1, 4))))
    resolve, app = resolve_with_edit(video)
    app.project.timeline.marks = {}
    app.project.timeline.current_video_item = None
    with pytest.raises(SelectionError, match="Set In and Out marks"):
        bridge.read_selection(resolve)
    app.project.timeline.add_video("fast", 86700, 50, 0, 100, video, "23.976")  # 100 source frames in 50: 2x
    with pytest.raises(UnsupportedClipError, match=r"speed change \(2x\)"):
        bridge.read_selection(resolve, clip="fast")
    with pytest.raises(HostError, match="imported 0 of 1 WAV"):
        bridge.write_audio_clips(resolve, [Placement(tmp_path / "missing.wav", RationalTime(0, 24), RationalTime(1, 1), "x")])


@pytest.mark.skipif(not os.environ.get("FOLEY_TEST_RESOLVE"), reason="set FOLEY_TEST_RESOLVE=1 with Resolve Studio running")
def test_real_resolve_reads_the_current_timeline():
    resolve = bridge.get_resolve()
    timeline = bridge.read_timeline(resolve)
    assert timeline.tracks is not None and timeline.global_start_time is not None


def test_cli_generates_for_the_marks_and_places_in_resolve(video, tmp_path, monkeypatch, capsys):
    _, app = resolve_with_edit(video)
    monkeypatch.setitem(sys.modules, "DaVinciResolveScript", FakeScriptModule(app))  # what get_resolve() imports
    code = main(["generate", "--project", "resolve", "--steps", "1", "--seed", "2", "--place", "-o", str(tmp_path / "o")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "selection In/Out marks: 2 span(s)" in captured.out and "(undo in the host)" in captured.out
    (foley,) = [t for t in app.project.timeline.tracks["audio"] if t["name"] == "Foley"]
    (item,) = foley["items"]
    assert item.GetStart() == 86420  # mark in 20 -> 01:00:00:20
    # 140 frames at 23.976 are 5.839 s; at the WAV's 24 "frames" per second that is 141 (rounded up, tail silent)
    assert item.source_end == 141 and item.GetDuration() == 141


def test_panel_model_connects_to_resolve_and_places_live(video, tmp_path):
    from ui.panel_model import PanelModel

    _, app = resolve_with_edit(video)
    model = PanelModel(tmp_path / "out")
    model.connect_resolve(FakeScriptModule(app))
    assert model.project_name == "DaVinci Resolve" and [t.name for t in model.timeline.video_tracks()] == ["V1"]
    model.select_clip("shot-b")
    assert model.selection.record.start_time.value == 110
    model.connect_resolve(FakeScriptModule(None))  # Resolve gone: a message, the open timeline stays
    assert model.project_name == "DaVinci Resolve"
