"""FCP 7 XML on files Premiere Pro, DaVinci Resolve, Final Cut Pro 7 and Hiero exported (tests/fixtures/xmeml).

Reading: exact rates and start timecodes, clip selections resolve to the right media and in-point. Writing: the
foley lands at the exact frame, read back by this reader and by the OTIO fcp_xml adapter (an independent
parser), and the user's file only gains lines.
"""

import collections
import difflib
import re
import shutil
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest
from opentimelineio.opentime import RationalTime, TimeRange

from editor_plugin import hosts, xmeml
from editor_plugin.contract import Placement, seconds
from editor_plugin.errors import HostError, ProjectFormatError, SelectionError, UnsupportedClipError
from engine.training.sample_video import make_demo_video
from tests.projects import burst
from ui.commands import hosts as commands

FIXTURES = Path(__file__).parent / "fixtures" / "xmeml"

# file -> (sequence, exact rate, start frame of the sequence timecode)
RATES = {
    "premiere_30p_nested.xml": ("sc01_sh010_layerA", Fraction(30), 0),
    "premiere_23976.xml": ("Generators", Fraction(24000, 1001), 0),
    "premiere_25p_disabled.xml": ("disabled_test_sequence", Fraction(25), 0),
    "premiere_cs6_50p_project.xml": ("Sequence 01", Fraction(50), 0),
    "resolve_60p.xml": ("Timeline 1 (Resolve)", Fraction(60), 216000),  # 01:00:00:00
    "resolve_25p_mixed_rates.xml": ("大太平洋 - S01E01 - 激情 (Resolve)", Fraction(25), 0),
    "fcp7_project_25p.xml": ("Sequence 1", Fraction(25), 90016),  # 01:00:00:16
    "fcp7_25p.xml": ("Tords Garasje - flue", Fraction(25), 0),
    "hiero_24p_speed.xml": ("hiero_xml_export", Fraction(24), 86400),
}


def copy_of(tmp_path: Path, name: str, *, media: bool = False) -> Path:
    """The fixture in tmp_path; with `media`, every <pathurl> points at a generated video there (this copy only)."""
    target = tmp_path / name
    data = (FIXTURES / name).read_bytes()
    if media:
        (tmp_path / "media").mkdir()
        video = make_demo_video(tmp_path / "media" / "shot.mp4", seconds=4.0)
        urls: dict[bytes, bytes] = {}

        def relink(match: re.Match) -> bytes:
            if match.group(1) not in urls:
                copy = video.with_name(f"clip {len(urls)}.mp4")
                shutil.copyfile(video, copy)
                urls[match.group(1)] = xmeml.pathurl(copy).encode()
            return b"<pathurl>" + urls[match.group(1)] + b"</pathurl>"

        data = re.sub(rb"<pathurl>(.*?)</pathurl>", relink, data)
    target.write_bytes(data)
    return target


def foley(tmp_path: Path, frame: int, rate: Fraction, name: str) -> Placement:
    """A 1.25 s WAV (16 kHz) to place at `frame`: 1.25 s is not a whole number of frames at NTSC rates."""
    wav = burst(tmp_path / f"{name}.wav", seconds=1.25)
    return Placement(wav, RationalTime(frame, float(rate)), RationalTime(20000, 16000), name)


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message
    return message


# -- reading -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RATES)
def test_rate_and_start_timecode_are_exact(name):
    sequence, rate, start = RATES[name]
    timeline = xmeml.read_timeline(FIXTURES / name)
    assert timeline.name == sequence
    assert Fraction(timeline.metadata["xmeml"]["rate"]) == rate
    assert timeline.global_start_time.value == start and timeline.global_start_time.rate == float(rate)


def test_timecode_strings_count_drop_frame_and_ndf():
    assert xmeml.timecode_frames("01:00:00:00", 60, drop=False) == 216000  # what Resolve writes as <frame>
    assert xmeml.timecode_frames("01:00:00;00", 30, drop=True) == 107892
    assert xmeml.timecode_frames("00:10:00;00", 30, drop=True) == 17982
    assert xmeml.timecode_frames("01:00:00:00", 24, drop=False) == 86400


@pytest.mark.parametrize("name", ["premiere_30p_nested.xml", "premiere_25p_disabled.xml", "resolve_60p.xml",
                                  "resolve_25p_mixed_rates.xml", "hiero_24p_speed.xml"])
def test_record_times_agree_with_the_otio_adapter(name):
    """Record placement of every media clip equals what the OTIO fcp_xml adapter reads from the same file."""
    def places(timeline):
        return collections.Counter(
            (index, clip.name, seconds(clip.range_in_parent().start_time), seconds(clip.range_in_parent().duration))
            for index, track in enumerate(timeline.video_tracks()) for clip in track.find_clips()
            if isinstance(clip.media_reference, otio.schema.ExternalReference))
    ours = places(xmeml.read_timeline(FIXTURES / name))
    assert ours and ours == places(otio.adapters.read_from_file(str(FIXTURES / name), adapter_name="fcp_xml"))


def test_clips_between_dissolves_keep_their_own_end_frames():
    """FCP 7 wrote start -1 after centred 25-frame dissolves (4334-4359, 4517-4542): the clips start at the cuts,
    4346 and 4529, and end at their <end> 4469 and 4677 (the OTIO adapter drifts 12 frames per dissolve here)."""
    track = xmeml.read_timeline(FIXTURES / "fcp7_25p.xml").video_tracks()[1]
    places = {c.name: c.range_in_parent() for c in track.find_clips() if c.name in ("MVI_0463", "MVI_0448")}
    assert [(r.start_time.value, r.end_time_exclusive().value) for r in places.values()] == [(4346, 4469), (4529, 4677)]


def test_clip_after_a_transition_starts_at_the_cut_with_the_handle_skipped(tmp_path):
    """Premiere wrote start -1 next to a centred dissolve (frames 1152-1177): the cut is frame 1164; the clip's
    <in> 6 is at the dissolve start, so the picture at the cut is source frame 18 (its audio twin says in=18)."""
    path = copy_of(tmp_path, "premiere_30p_nested.xml", media=True)
    selection = xmeml.read_selection(path, clip="sc01_sh010_anim.mov")
    assert selection.record.start_time.value == 1164 and selection.record.duration.value == 1246 - 1164
    (span,) = selection.spans
    assert seconds(span.source.start_time) == Fraction(18, 30)
    assert span.media.parent == tmp_path / "media" and span.media.is_file()


def test_record_range_on_a_resolve_timeline_at_01_00_00_00(tmp_path):
    """Record frames count from the timeline start; the source follows the clip's <in> at 60 fps."""
    path = copy_of(tmp_path, "resolve_60p.xml", media=True)
    record = TimeRange(RationalTime(122014 + 600, 60), RationalTime(120, 60))
    (span,) = xmeml.read_selection(path, record=record).spans
    assert seconds(span.source.start_time) == Fraction(181062 + 600, 60)  # <in>181062</in> of the clip at 122014
    assert seconds(span.record.start_time) == Fraction(122014 + 600, 60)


def test_clip_rate_differs_from_the_sequence_rate():
    """Premiere's clipitem-1 plays <in>0</in>-<out>50</out> at its own 15 fps over 100 record frames at 30 fps."""
    timeline = xmeml.read_timeline(FIXTURES / "premiere_30p_nested.xml")
    clip = next(c for c in timeline.video_tracks()[0].find_clips() if c.metadata["xmeml"]["id"] == "clipitem-1")
    assert clip.range_in_parent().start_time.value == 536
    assert seconds(clip.range_in_parent().duration) == Fraction(100, 30) == Fraction(50, 15)
    # positions typed by the user count in sequence frames, though the first clip runs at 15 fps
    assert commands.parse_position("100", timeline) == RationalTime(100, 30)


def test_timecode_positions_count_from_the_sequence_start():
    timeline = xmeml.read_timeline(FIXTURES / "resolve_60p.xml")
    assert commands.parse_position("01:00:10:00", timeline) == RationalTime(600, 60)


def test_disabled_clips_and_tracks_are_not_picture(tmp_path):
    path = copy_of(tmp_path, "premiere_25p_disabled.xml", media=True)
    timeline = xmeml.read_timeline(path)
    assert [track.enabled for track in timeline.video_tracks()] == [True, True, False]
    # frames 81-177: V1 holds a disabled clip, V3 a disabled track; V2's enabled clip is what the viewer shows
    selection = xmeml.read_selection(path, record=TimeRange(RationalTime(90, 25), RationalTime(25, 25)))
    assert [span.clip for span in selection.spans] == ["source.mp4"]
    assert seconds(selection.spans[0].source.start_time) == Fraction(9, 25)


def test_speed_changed_clip_is_refused_in_one_line(tmp_path):
    """Hiero's clip '/' carries a Time Remap at <speed>0.25</speed>; its media is offline in the file, so this
    test's copy gives it a <pathurl> (a clip without media is never picture, whatever its speed)."""
    assert xmeml.read_timeline(FIXTURES / "hiero_24p_speed.xml").video_tracks()[0][-1].effects[0].time_scalar == 0.25
    path = copy_of(tmp_path, "hiero_24p_speed.xml")
    video = make_demo_video(tmp_path / "offline.mp4", seconds=1.0)
    linked = f'<file id="/"><pathurl>{xmeml.pathurl(video)}</pathurl>'
    path.write_text(path.read_text().replace('<file id="/">', linked))
    with pytest.raises(UnsupportedClipError) as error:
        xmeml.read_selection(path, clip="/")
    assert "speed change (0.25x)" in one_line(error)


def test_nested_sequence_is_refused_in_one_line():
    path = FIXTURES / "premiere_30p_nested.xml"
    with pytest.raises(UnsupportedClipError) as error:
        xmeml.read_selection(path, record=TimeRange(RationalTime(700, 30), RationalTime(10, 30)))
    assert "'sc01_sh010_anim' is a nested sequence" in one_line(error)


def test_no_selection_names_the_fix():
    with pytest.raises(SelectionError, match="records no selection"):
        xmeml.read_selection(FIXTURES / "resolve_60p.xml")


# -- several sequences -------------------------------------------------------------------------------------------


def two_sequence_project(tmp_path: Path) -> Path:
    """A project holding two real Resolve timelines, one of them in a bin (as FCP 7 exports a project)."""
    def sequence(name: str) -> bytes:
        data = (FIXTURES / name).read_bytes()
        return data[data.index(b"<sequence"):data.rindex(b"</sequence>") + len(b"</sequence>")]
    path = tmp_path / "project.xml"
    path.write_bytes(b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE xmeml>\n<xmeml version="5">\n<project>\n'
                     b"<name>two</name>\n<children>\n" + sequence("resolve_60p.xml") + b"\n<bin>\n<name>cuts</name>\n"
                     b"<children>\n" + sequence("resolve_25p_mixed_rates.xml") + b"\n</children>\n</bin>\n"
                     b"</children>\n</project>\n</xmeml>\n")
    return path


def test_several_sequences_default_named_and_unknown(tmp_path):
    path = two_sequence_project(tmp_path)
    assert xmeml.read_timeline(path).name == "Timeline 1 (Resolve)"
    named = xmeml.read_timeline(path, sequence="大太平洋 - S01E01 - 激情 (Resolve)")
    assert named.metadata["xmeml"]["rate"] == "25" and len(named.video_tracks()) == 5
    with pytest.raises(SelectionError) as error:
        xmeml.read_timeline(path, sequence="Timeline 2")
    assert "'Timeline 1 (Resolve)', '大太平洋 - S01E01 - 激情 (Resolve)'" in one_line(error)


def test_writing_to_a_named_sequence_leaves_the_other_alone(tmp_path):
    path = two_sequence_project(tmp_path)
    wanted = "大太平洋 - S01E01 - 激情 (Resolve)"
    xmeml.write_audio_clips(path, [foley(tmp_path, 40, Fraction(25), "steps")], sequence=wanted)
    assert len(xmeml.read_timeline(path).audio_tracks()) == 1
    tracks = xmeml.read_timeline(path, sequence=wanted).audio_tracks()
    assert len(tracks) == 9 and [c.range_in_parent().start_time.value for c in tracks[-1].find_clips()] == [40]


# -- writing -----------------------------------------------------------------------------------------------------


def as_ntsc(tmp_path: Path, name: str, *, drop: bool) -> Path:
    """A real file with every rate made NTSC (30 -> 29.97, 60 -> 59.94), timecodes DF if `drop` (this copy only)."""
    path = copy_of(tmp_path, name)
    text = path.read_text(encoding="utf-8").replace("<ntsc>FALSE</ntsc>", "<ntsc>TRUE</ntsc>")
    if drop:
        text = text.replace("<displayformat>NDF</displayformat>", "<displayformat>DF</displayformat>")
    path.write_text(text, encoding="utf-8")
    return path


DERIVED = {"29.97 DF": ("premiere_30p_nested.xml", True), "29.97 NDF": ("premiere_30p_nested.xml", False),
           "59.94 DF": ("resolve_60p.xml", True)}
WRITES = ["premiere_30p_nested.xml", "premiere_23976.xml", "premiere_25p_disabled.xml", "premiere_cs6_50p_project.xml",
          "resolve_60p.xml", "resolve_25p_mixed_rates.xml", "fcp7_project_25p.xml", "fcp7_25p.xml",
          "hiero_24p_speed.xml", *DERIVED]


def elements(data: bytes) -> collections.Counter:
    root, _ = xmeml._parse(data)
    return collections.Counter((element.tag, tuple(sorted(element.attrib.items())), (element.text or "").strip())
                               for element in root.iter())


@pytest.mark.parametrize("name", WRITES)
def test_foley_lands_at_the_exact_frame_and_the_file_only_gains_lines(tmp_path, name):
    path = as_ntsc(tmp_path, DERIVED[name][0], drop=DERIVED[name][1]) if name in DERIVED else copy_of(tmp_path, name)
    before = path.read_bytes()
    timeline = xmeml.read_timeline(path)
    rate = Fraction(timeline.metadata["xmeml"]["rate"])
    assert name not in DERIVED or rate.denominator == 1001
    placements = [foley(tmp_path, 100, rate, "steps v1"), foley(tmp_path, 100, rate, "steps v2"),
                  foley(tmp_path, 200, rate, "door")]
    report = xmeml.write_audio_clips(path, placements)
    assert report.track == "Foley, Foley 2" and report.backup.read_bytes() == before
    frames = -(-Fraction(5, 4) * rate // 1)  # 1.25 s rounded up to whole frames

    ours = {c.name: c.range_in_parent() for t in xmeml.read_timeline(path).audio_tracks() for c in t.find_clips()}
    theirs = otio.adapters.read_from_file(str(path), adapter_name="fcp_xml")
    theirs = {c.name: c.range_in_parent() for t in theirs.audio_tracks() for c in t.find_clips()}
    for reading in (ours, theirs):
        assert [reading[n].start_time.value for n in ("steps v1", "steps v2", "door")] == [100, 100, 200]
        assert reading["door"].duration.value == frames and reading["door"].start_time.rate == float(rate)
    clip = next(c for t in xmeml.read_timeline(path).audio_tracks() for c in t.find_clips() if c.name == "door")
    assert xmeml.media_path(clip.media_reference.target_url, path.parent) == (tmp_path / "door.wav").resolve()

    after = path.read_bytes()
    changes = [line for line in difflib.ndiff(before.decode("utf-8-sig").splitlines(),
                                              after.decode("utf-8-sig").splitlines()) if line[:1] in "+-?"]
    assert changes and all(line.startswith("+") for line in changes)
    assert not elements(before) - elements(after)  # every original element, attribute and text survives


def test_premiere_track_carries_what_premiere_writes(tmp_path):
    path = copy_of(tmp_path, "premiere_30p_nested.xml")
    xmeml.write_audio_clips(path, [foley(tmp_path, 10, Fraction(30), "hit")], track_name="Foley FX")
    sequence = xmeml.load(path).sequences["sc01_sh010_layerA"]
    track = sequence.findall("media/audio/track")[-1]
    assert track.get("MZ.TrackName") == "Foley FX" and track.get("MZ.TrackTargeted") == "0"
    assert track.get("premiereTrackType") == "Mono" and track.findtext("outputchannelindex") == "1"
    item = track.find("clipitem")
    assert item.findtext("file/media/audio/samplecharacteristics/samplerate") == "16000"
    assert item.findtext("file/pathurl").startswith("file://localhost/") and item.findtext("rate/timebase") == "30"
    assert item.findtext("sourcetrack/mediatype") == "audio"
    assert xmeml.read_timeline(path).audio_tracks()[-1].name == "Foley FX"


def test_resolve_and_fcp7_tracks_stay_plain(tmp_path):
    path = copy_of(tmp_path, "resolve_60p.xml")
    report = xmeml.write_audio_clips(path, [foley(tmp_path, 10, Fraction(60), "hit")])
    assert report.warnings == ("FCP 7 / Resolve XML keeps no track names: the foley is on audio track(s) A2.",)
    track = xmeml.load(path).sequences["Timeline 1 (Resolve)"].findall("media/audio/track")[-1]
    assert track.attrib == {} and track.find("outputchannelindex") is None


def test_video_only_sequence_gets_an_audio_section(tmp_path):
    path = copy_of(tmp_path, "hiero_24p_speed.xml")
    text = path.read_text()
    path.write_text(text[:text.index("      <audio>")] + text[text.index("</audio>") + len("</audio>\n"):])
    xmeml.write_audio_clips(path, [foley(tmp_path, 30, Fraction(24), "hit")])
    (track,) = xmeml.read_timeline(path).audio_tracks()
    assert [c.range_in_parent().start_time.value for c in track.find_clips()] == [30]
    assert "\n      <audio>\n        <track>\n" in path.read_text()  # indented like Hiero's own lines


# -- refusals ----------------------------------------------------------------------------------------------------


def unchanged(folder: Path, path: Path, before: bytes) -> bool:
    return path.read_bytes() == before and not list(folder.glob("*.foley-backup-*"))


@pytest.mark.parametrize(("damage", "error", "words"), [
    (lambda data: data[: len(data) // 2], ProjectFormatError, "not readable XML"),
    (lambda data: data.replace(b'<xmeml version="5">', b'<xmeml version="6">'), ProjectFormatError,
     "xmeml version 6"),
    (lambda data: data.replace(b"xmeml", b"fcpxml"), ProjectFormatError, "not FCP 7 XML"),
    (lambda data: data.replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"'), ProjectFormatError,
     "encoded as iso-8859-1"),
], ids=["cut short", "newer version", "other format", "not UTF-8"])
def test_bad_files_fail_in_one_line_and_nothing_is_written(tmp_path, damage, error, words):
    path = copy_of(tmp_path, "resolve_60p.xml")
    path.write_bytes(damage(path.read_bytes()))
    before = path.read_bytes()
    calls = [lambda: xmeml.write_audio_clips(path, [foley(tmp_path, 10, Fraction(60), "hit")])]
    if "encoded" not in words:  # a Latin-1 file reads fine; only the UTF-8 insertion is refused
        calls.append(lambda: xmeml.read_timeline(path))
    for call in calls:
        with pytest.raises(error) as caught:
            call()
        assert words in one_line(caught)
    assert unchanged(tmp_path, path, before)


def test_unknown_sequence_on_write_changes_nothing(tmp_path):
    path = copy_of(tmp_path, "premiere_30p_nested.xml")
    before = path.read_bytes()
    with pytest.raises(SelectionError) as error:
        xmeml.write_audio_clips(path, [foley(tmp_path, 10, Fraction(30), "hit")], sequence="sc01_sh010_anim")
    assert "Sequences: 'sc01_sh010_layerA'" in one_line(error)
    assert unchanged(tmp_path, path, before)


def test_missing_media_names_the_file():
    with pytest.raises(HostError) as error:
        xmeml.read_selection(FIXTURES / "resolve_60p.xml",
                             record=TimeRange(RationalTime(400, 60), RationalTime(60, 60)))
    assert "2021-04-17_15-01-18.mp4" in one_line(error)


def test_xml_projects_use_this_bridge():
    assert hosts.bridge_for(Path("edit.xml")) is xmeml
