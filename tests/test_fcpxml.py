"""FCPXML bridge on files that Final Cut Pro and DaVinci Resolve exported (tests/fixtures/fcpxml/PROVENANCE.md).

Each file is copied into tmp_path with its media URLs pointed at placeholder files there, so selections resolve;
placements are read back by the bridge and by an independent ElementTree walk written here, and the written
file is compared line by line with the original.
"""

import difflib
import math
import re
import shutil
import xml.etree.ElementTree as ET
from collections import Counter
from fractions import Fraction
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from opentimelineio.opentime import RationalTime, TimeRange

from editor_plugin import fcpxml, hosts
from editor_plugin.contract import Placement, seconds, timeline_rate
from editor_plugin.errors import HostError, ProjectFormatError, SelectionError, UnsupportedClipError
from tests.projects import burst

FIXTURES = Path(__file__).parent / "fixtures" / "fcpxml"
FOLEY_SECONDS = Fraction(20000, 16000)  # what burst(seconds=1.25) writes at 16 kHz

# file: (FCPXML version, frame rate, timeline start (tcStart) in seconds, drop-frame timecode)
FILES = {
    "23.98.fcpxml": ("1.11", Fraction(24000, 1001), Fraction(0), False),
    "24.fcpxml": ("1.11", Fraction(24), Fraction(0), False),
    "24With25Media.fcpxml": ("1.11", Fraction(24), Fraction(3600), False),
    "25i.fcpxml": ("1.10", Fraction(25), Fraction(0), False),
    "29.97.fcpxml": ("1.11", Fraction(30000, 1001), Fraction(0), False),
    "29.97d.fcpxml": ("1.11", Fraction(30000, 1001), Fraction(0), True),
    "30.fcpxml": ("1.11", Fraction(30), Fraction(0), False),
    "50.fcpxml": ("1.11", Fraction(50), Fraction(0), False),
    "59.94.fcpxml": ("1.11", Fraction(60000, 1001), Fraction(0), False),
    "60.fcpxml": ("1.11", Fraction(60), Fraction(0), False),
    "CompoundClips.fcpxml": ("1.11", Fraction(25), Fraction(3600), False),
    "SyncClip.fcpxml": ("1.11", Fraction(25), Fraction(3600), False),
    "MulticamMarkers.fcpxml": ("1.11", Fraction(24000, 1001), Fraction(6918912000, 1920000), False),
    "Structure.fcpxml": ("1.9", Fraction(30000, 1001), Fraction(0), False),
    "CutSample.fcpxml": ("1.13", Fraction(30000, 1001), Fraction(0), False),
    "MulticamSample.fcpxml": ("1.13", Fraction(24000, 1001), Fraction(0), False),
    "GeneralDemo.fcpxml": ("1.14", Fraction(24), Fraction(0), False),
    "HiddenMarkers.fcpxml": ("1.14", Fraction(25), Fraction(0), False),
    "fcpx_project.fcpxml": ("1.8", Fraction(30), Fraction(0), False),
    "resolve_1.8_24p_lanes.fcpxml": ("1.8", Fraction(24), Fraction(0), False),
    "resolve_1.8_25p_gap_lane.fcpxml": ("1.8", Fraction(25), Fraction(0), False),
    "resolve_1.9_30p_cuts.fcpxml": ("1.9", Fraction(30), Fraction(3600), False),
    "2997fps-rubric-clips.fcpxmld": ("1.13", Fraction(30000, 1001), Fraction(0), False),
    "60fps-rubric-compound-clips.fcpxmld": ("1.13", Fraction(60), Fraction(0), False),
}


def with_media(name: str, folder: Path) -> Path:
    """The fixture (file or .fcpxmld bundle) copied into `folder`, its media URLs pointed at placeholder files."""
    if (FIXTURES / name).is_dir():
        shutil.copytree(FIXTURES / name, folder / name)
        with_media(f"{name}/Info.fcpxml", folder)
        return folder / name
    text = (FIXTURES / name).read_text(encoding="utf-8")
    media = folder / "media"
    media.mkdir(exist_ok=True)

    def relink(match: re.Match) -> str:
        target = media / Path(unquote(urlparse(match.group(1)).path)).name
        target.touch()
        return f'src="{target.as_uri()}"'

    path = folder / name
    path.write_text(re.sub(r'src="(file://[^"]*)"', relink, text), encoding="utf-8")
    return path


def foley(folder: Path, frame: int, rate: Fraction, name: str = "foley v1") -> Placement:
    wav = burst(folder / f"{name}.wav", seconds=1.25)
    return Placement(wav, RationalTime(frame, float(rate)), RationalTime(20000, 16000), name)


def t(value: str | None) -> Fraction:
    """FCPXML time, parsed here independently of the bridge."""
    number, _, base = (value or "0s")[:-1].partition("/")
    return Fraction(int(number), int(base or 1))


def record_of_foley(path: Path, name: str) -> tuple[Fraction, Fraction, ET.Element, ET.Element]:
    """Where the connected clip `name` sits, by plain ElementTree arithmetic: its parent's record position plus
    (its offset - the parent's local start), minus the sequence's tcStart. Also its duration, clip and asset."""
    root = ET.parse(path).getroot()
    parents = {child: parent for parent in root.iter() for child in parent}
    resources = {node.get("id"): node for node in root.find("resources")}
    clip = next(node for node in root.iter("asset-clip") if node.get("name") == name)
    parent = parents[clip]
    holder = parents[parent]
    offset = t(holder.get("offset")) if holder.tag == "audition" else t(parent.get("offset"))
    if holder.tag == "audition":
        holder = parents[holder]
    assert holder.tag == "spine" and parents[holder].tag == "sequence"
    if parent.get("start") is not None:
        local = t(parent.get("start"))
    else:
        ref = resources.get(parent.get("ref"))
        inner = None if ref is None else (ref.find("sequence") or ref.find("multicam"))
        local = t(ref.get("start")) if ref is not None and ref.tag == "asset" else \
            t(inner.get("tcStart")) if inner is not None else Fraction(0)
    record = offset + t(clip.get("offset")) - local - t(parents[holder].get("tcStart"))
    return record, t(clip.get("duration")), clip, resources[clip.get("ref")]


def elements(path: Path) -> Counter:
    return Counter((node.tag, tuple(sorted(node.attrib.items()))) for node in ET.parse(path).getroot().iter())


def assert_only_insertions(before: str, after: str) -> None:
    """Line diff: inserted lines, or a line that gained text (an empty parent <x/> may open as <x>...</x>)."""
    old, new = before.splitlines(), after.splitlines()
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag in ("equal", "insert"):
            continue
        assert tag == "replace" and i2 - i1 == j2 - j1, (tag, old[i1:i2], new[j1:j2])
        for was, now in zip(old[i1:i2], new[j1:j2]):
            for op, a1, a2, _, _ in difflib.SequenceMatcher(None, was, now, autojunk=False).get_opcodes():
                assert op in ("equal", "insert") or (op == "replace" and was[a1:a2] == "/"), (op, was[a1:a2])


# what the FCPXML DTDs (1.8 to 1.14) put after a clip's anchored items: markers, channel/role/sync sources, filters
AFTER_ANCHORED = {"marker", "chapter-marker", "rating", "keyword", "analysis-marker", "hidden-clip-marker",
                  "audio-channel-source", "audio-role-source", "sync-source", "filter-video", "filter-video-mask",
                  "filter-audio", "metadata", "reserved"}


def assert_dtd_order(path: Path, clip: ET.Element) -> None:
    parent = next(node for node in ET.parse(path).getroot().iter() if any(c.attrib == clip.attrib for c in node))
    tags = [child.tag for child in parent]
    at = next(i for i, child in enumerate(parent) if child.attrib == clip.attrib)
    assert not AFTER_ANCHORED & set(tags[:at]) and set(tags[at + 1 :]) <= AFTER_ANCHORED | {"asset-clip"}, tags


@pytest.mark.parametrize("name", sorted(FILES))
def test_rate_version_and_timeline_start_are_exact(name):
    version, rate, tc_start, drop = FILES[name]
    doc = fcpxml.load(FIXTURES / name)
    assert "%d.%d" % doc.version == version
    project = next(iter(doc.projects.values()))
    assert (project.rate, project.tc_start, project.drop_frame) == (rate, tc_start, drop)
    assert project.field_order == ("lower first" if name == "25i.fcpxml" else None)
    timeline = fcpxml.timeline_of(doc, project)
    assert timeline_rate(timeline) == float(rate) and seconds(timeline.global_start_time) == tc_start
    length = fcpxml.parse_time(project.sequence.get("duration"))
    assert seconds(timeline.duration()) == length  # every track spans the sequence, from its start


SELECTIONS = [  # file, clip or (start, end) in seconds, expected record range, first span (media, record, source)
    ("25i.fcpxml", "Clip 2", (Fraction(17, 5), Fraction(17, 5) + Fraction(88, 25)),
     ("Test Video (29.97 fps).mp4", Fraction(17, 5), Fraction(35702, 5000))),
    ("25i.fcpxml", "Clip 3", (Fraction(173, 25), Fraction(173, 25) + Fraction(18, 5)),  # compound (ref-clip)
     ("Test Video (29.97 fps).mp4", Fraction(173, 25), Fraction(452452, 30000))),
    ("resolve_1.9_30p_cuts.fcpxml", (Fraction(2), Fraction(3)), (Fraction(2), Fraction(3)),
     ("Demo.mp4", Fraction(2), Fraction(4))),
    ("MulticamMarkers.fcpxml", "MC", (Fraction(0), Fraction(1001, 25)),  # active angle D = Cam 4
     ("Cam 4.mp4", Fraction(0), Fraction(19299280, 1920000) - Fraction(101101, 24000))),
    ("SyncClip.fcpxml", "TestVideo - Synchronized Clip", (Fraction(0), Fraction(738, 25)),
     ("TestVideo.m4v", Fraction(0), Fraction(0))),
    ("fcpx_project.fcpxml", "IMG_0740", (Fraction(119, 2), Fraction(69)),  # secondary storyline in a gap
     ("IMG_0740.MOV", Fraction(119, 2), Fraction(1, 2))),
    ("fcpx_project.fcpxml", "compound_clip_1", (Fraction(80), Fraction(110)),
     ("IMG_0233.MOV", Fraction(80), Fraction(10900, 3000))),
    ("30.fcpxml", (Fraction(15, 30), Fraction(25, 30)), (Fraction(1, 2), Fraction(5, 6)),
     ("TestVideo.mp4", Fraction(1, 2), Fraction(17017, 750000) + Fraction(1, 2))),
    ("29.97d.fcpxml", (Fraction(30 * 1001, 30000), Fraction(60 * 1001, 30000)),
     (Fraction(1001, 1000), Fraction(2002, 1000)), ("TestVideo.mp4", Fraction(1001, 1000), Fraction(1001, 1000))),
    ("59.94.fcpxml", (Fraction(60 * 1001, 60000), Fraction(90 * 1001, 60000)),
     (Fraction(1001, 1000), Fraction(3003, 2000)), ("TestVideo.mp4", Fraction(1001, 1000), Fraction(1001, 1000))),
    ("GeneralDemo.fcpxml", "Busking Broll-02", (Fraction(0), Fraction(87, 8)),  # lane 1 on top at first
     ("Busking Broll-10- HEVC-1080.m4v", Fraction(0), None)),
]


@pytest.mark.parametrize(("name", "pick", "record", "first"), SELECTIONS,
                         ids=[f"{case[0]}-{case[1]}" for case in SELECTIONS])
def test_selection_resolves_source_and_record(tmp_path, name, pick, record, first):
    path = with_media(name, tmp_path)
    rate = FILES[name][1]
    if isinstance(pick, str):
        selection = fcpxml.read_selection(path, clip=pick)
    else:
        wanted = TimeRange(RationalTime(int(pick[0] * rate), float(rate)),
                           RationalTime(int((pick[1] - pick[0]) * rate), float(rate)))
        selection = fcpxml.read_selection(path, record=wanted)
    assert selection.range_seconds() == record
    media, start, source = first
    span = selection.edit()[0]
    assert span.media == tmp_path / "media" / media and span.record_start == start
    if source is not None:
        assert span.source_start == source


CASES = sorted(FILES)


@pytest.mark.parametrize("name", CASES)
def test_foley_lands_at_the_exact_frame_and_only_adds(tmp_path, name):
    project_path = with_media(name, tmp_path)
    path = fcpxml.document_path(project_path)  # Info.fcpxml inside a bundle
    _, rate, _, _ = FILES[name]
    doc = fcpxml.load(path)
    project = next(iter(doc.projects.values()))
    length = fcpxml.parse_time(project.sequence.get("duration"))
    frame = math.floor(length * rate / 3) + 7  # somewhere inside, not on a cut
    before_text, before_elements = path.read_text(encoding="utf-8"), elements(path)

    report = fcpxml.write_audio_clips(project_path, [foley(tmp_path, frame, rate)])

    assert report.backup.read_text(encoding="utf-8") == before_text
    after_text = path.read_text(encoding="utf-8")
    assert_only_insertions(before_text, after_text)
    assert (b"\n" in path.read_bytes()) == (b"\n" in report.backup.read_bytes())  # its line endings (CR in 1.8)
    assert not before_elements - elements(path)  # every original element, with all its attributes
    # independent re-parse: the connected clip's record position, its duration on the grid, the exact asset
    record, duration, clip, asset = record_of_foley(path, "foley v1")
    assert record == Fraction(frame) / rate
    assert duration == math.ceil(FOLEY_SECONDS * rate) / rate and t(asset.get("duration")) == FOLEY_SECONDS
    assert int(clip.get("lane")) < 0 and clip.get("audioRole") == "Foley" and asset.get("hasAudio") == "1"
    assert_dtd_order(path, clip)
    url = asset.get("src") or asset.find("media-rep").get("src")
    assert Path(unquote(urlparse(url).path)) == (tmp_path / "foley v1.wav").resolve()
    assert (asset.get("src") is not None) == (FILES[name][0] == "1.8")  # media-rep from 1.9 on
    # the bridge reads it back at the same frame, on an audio track
    timeline = fcpxml.read_timeline(project_path)
    placed = [c for track in timeline.audio_tracks() for c in track.find_clips() if c.name == "foley v1"]
    assert [seconds(c.range_in_parent().start_time) for c in placed] == [Fraction(frame) / rate]
    assert placed[0].metadata["fcpxml"]["role"] == "Foley"


def test_a_second_placement_takes_a_new_lane_with_the_same_role(tmp_path):
    path = with_media("29.97d.fcpxml", tmp_path)
    rate = Fraction(30000, 1001)
    fcpxml.write_audio_clips(path, [foley(tmp_path, 45, rate), foley(tmp_path, 50, rate, "v2")])
    fcpxml.write_audio_clips(path, [foley(tmp_path, 45, rate, "v3")])
    clips = {name: record_of_foley(path, name) for name in ("foley v1", "v2", "v3")}
    assert [clips[n][0] for n in ("foley v1", "v2", "v3")] == [Fraction(45) / rate, Fraction(50) / rate,
                                                            Fraction(45) / rate]
    lanes = [int(clips[n][2].get("lane")) for n in ("foley v1", "v2", "v3")]
    assert lanes == [-1, -2, -3]  # the overlapping variant and the later write each get a lane of their own
    assert {clips[n][2].get("audioRole") for n in clips} == {"Foley"}
    assert len({clips[n][3].get("id") for n in clips}) == 3


def test_foley_after_the_storyline_end_goes_into_a_new_gap(tmp_path):
    path = with_media("resolve_1.9_30p_cuts.fcpxml", tmp_path)
    before = elements(path)
    end_frame = 3793  # the sequence is 3793/30 s long
    report = fcpxml.write_audio_clips(path, [foley(tmp_path, end_frame + 30, Fraction(30))])
    assert "a new gap holds them" in report.warnings[0]
    record, _, clip, _ = record_of_foley(path, "foley v1")
    assert record == Fraction(end_frame + 30, 30)
    sequence = ET.parse(path).getroot().find(".//sequence")
    assert t(sequence.get("duration")) == Fraction(end_frame + 30 + 38, 30)  # 1.25 s is 38 frames, rounded up
    gap = sequence.find("spine")[-1]
    assert gap.tag == "gap" and t(gap.get("offset")) == Fraction(3600) + Fraction(end_frame, 30)
    # the one attribute that changed is the sequence's duration
    (changed, count), = (before - elements(path)).items()
    assert changed[0] == "sequence" and ("duration", "3793/30s") in changed[1] and count == 1


def test_several_projects_are_chosen_by_name(tmp_path):
    path = with_media("Structure.fcpxml", tmp_path)
    assert fcpxml.read_timeline(path, sequence="Test Project 3").name == "Test Project 3"
    fcpxml.write_audio_clips(path, [foley(tmp_path, 12, Fraction(30000, 1001))], sequence="Test Project 2")
    root = ET.parse(path).getroot()
    written = [p.get("name") for p in root.iter("project") if p.find(".//asset-clip") is not None]
    assert written == ["Test Project 2"]
    before = path.read_bytes()
    with pytest.raises(SelectionError, match="no sequence named 'Nope'. Sequences: 'Test Project', "
                                             "'Test Project 2', 'Test Project 3'"):
        fcpxml.write_audio_clips(path, [foley(tmp_path, 12, Fraction(30000, 1001))], sequence="Nope")
    assert path.read_bytes() == before


def test_fcpxmld_bundle_reads_and_writes_its_info_fcpxml(tmp_path):
    bundle = with_media("60fps-rubric-compound-clips.fcpxmld", tmp_path)  # Final Cut Pro's own bundle export
    assert hosts.bridge_for(bundle) is fcpxml and hosts.bridge_for(tmp_path / "x.fcpxml") is fcpxml
    selection = fcpxml.read_selection(bundle, clip="60fps-rubric-compound-clips Clip 2")  # a compound clip
    assert selection.range_seconds() == (Fraction(10), Fraction(15))
    assert [(s.media.name, s.source_start) for s in selection.edit()] == [("60fps.mp4", Fraction(10))]
    report = fcpxml.write_audio_clips(bundle, [foley(tmp_path, 12 * 60 + 5, Fraction(60))])
    assert report.backup.parent == bundle and sorted(p.name for p in bundle.iterdir())[0] == "Info.fcpxml"
    record, _, clip, _ = record_of_foley(bundle / "Info.fcpxml", "foley v1")
    assert record == Fraction(12 * 60 + 5, 60) and clip.get("offset") == "25/12s"  # in the ref-clip's own time


def unchanged_after(path: Path, error, match: str, call) -> None:
    before = path.read_bytes()
    with pytest.raises(error, match=match):
        call()
    assert path.read_bytes() == before and not list(path.parent.glob("*.foley-backup-*"))


def test_retimed_clips_are_refused_by_name(tmp_path):
    conformed = with_media("24With25Media.fcpxml", tmp_path)  # 25 fps media conformed to 24 fps
    with pytest.raises(UnsupportedClipError, match="Clip 'TestVideo' plays with a speed change"):
        fcpxml.read_selection(conformed, clip="TestVideo")
    time_mapped = with_media("29.97.fcpxml", tmp_path)  # a timeMap on the clip at 317317/30000 s
    rate = Fraction(30000, 1001)
    with pytest.raises(UnsupportedClipError, match="Clip 'TestVideo' plays with a speed change"):
        fcpxml.read_selection(time_mapped, record=TimeRange(RationalTime(320, float(rate)),
                                                            RationalTime(10, float(rate))))


@pytest.mark.parametrize("name", ["fcpx_project.fcpxml", "25i.fcpxml", "MulticamMarkers.fcpxml"])
def test_damaged_files_never_raise_anything_but_a_host_error(tmp_path, name):
    text = (FIXTURES / name).read_text(encoding="utf-8")
    path = tmp_path / name
    damage = [text[:cut] for cut in range(0, len(text), max(1, len(text) // 40))]
    damage += [text.replace('s"', 'x"', 1 + n) for n in range(0, 60, 7)]  # times that are not times
    damage += [text.replace('lane="', 'lane="x', 1), text.replace('ref="r', 'ref="q'),
               text.replace('version="1.', 'version="9.'), text.replace("<spine>", "<spine><spine>", 1)]
    for broken in damage:
        path.write_text(broken, encoding="utf-8")
        try:
            fcpxml.read_timeline(path)
        except HostError as exc:
            assert "\n" not in str(exc)


def test_a_multicam_clip_without_a_video_angle_is_refused_by_name(tmp_path):
    path = with_media("MulticamMarkers.fcpxml", tmp_path)
    path.write_text(path.read_text().replace('srcEnable="all"', 'srcEnable="audio"'))
    with pytest.raises(UnsupportedClipError, match="Multicam clip 'MC' has no active video angle"):
        fcpxml.read_timeline(path)


def test_bad_inputs_fail_with_one_clear_line_and_change_nothing(tmp_path):
    rate = Fraction(24)
    newer = with_media("24.fcpxml", tmp_path)
    newer.write_text(newer.read_text().replace('<fcpxml version="1.11">', '<fcpxml version="1.15">'))
    unchanged_after(newer, ProjectFormatError, r"FCPXML 1.15, newer than this reader knows \(1.8 to 1.14\)\. In "
                    "Final Cut Pro choose File > Export XML and pick version 1.14",
                    lambda: fcpxml.write_audio_clips(newer, [foley(tmp_path, 10, rate)]))
    damaged = tmp_path / "damaged.fcpxml"
    damaged.write_text((FIXTURES / "24.fcpxml").read_text()[:5000])
    unchanged_after(damaged, ProjectFormatError, "is not readable XML .*the file is damaged",
                    lambda: fcpxml.write_audio_clips(damaged, [foley(tmp_path, 10, rate)]))
    unknown = with_media("23.98.fcpxml", tmp_path)
    unchanged_after(unknown, SelectionError, "no sequence named 'Other'. Sequences: '23.98_V1'",
                    lambda: fcpxml.write_audio_clips(unknown, [foley(tmp_path, 10, rate)], sequence="Other"))
    with pytest.raises(SelectionError, match="No clip named 'Nope' on the timeline '23.98_V1'. Clips: TestVideo, "
                                             "TestVideo2"):
        fcpxml.read_selection(unknown, clip="Nope")
    with pytest.raises(SelectionError, match="records no selection"):
        fcpxml.read_selection(unknown)
    still = with_media("resolve_1.8_25p_gap_lane.fcpxml", tmp_path)  # a still image is not filmed picture
    with pytest.raises(SelectionError, match="no video in the selection"):
        fcpxml.read_selection(still, record=TimeRange(RationalTime(360, 25), RationalTime(50, 25)))
    with pytest.raises(ProjectFormatError, match="No FCPXML file at"):
        fcpxml.read_timeline(tmp_path / "missing.fcpxml")
    empty_bundle = tmp_path / "Empty.fcpxmld"
    empty_bundle.mkdir()
    with pytest.raises(ProjectFormatError, match="folder without Info.fcpxml"):
        fcpxml.read_timeline(empty_bundle)
