"""Real Kdenlive 22.12-26.07 and Shotcut 25.03 projects (tests/fixtures, PROVENANCE.md): read, write, melt renders.

The media these files refer to are regenerated beside the copy (same names and lengths) instead of being
committed. Placement is proven by rendering the written project with the real melt: the render with the
foley minus the render without it is the foley alone, whose onset must be within 1 ms of its frame.
"""

import difflib
import re
import xml.etree.ElementTree as ET
from fractions import Fraction

import numpy as np
import pytest
from opentimelineio.opentime import RationalTime, TimeRange

from editor_plugin import mlt
from editor_plugin.contract import Placement
from editor_plugin.errors import MissingMediaError, ProjectFormatError, SelectionError, UnsupportedClipError
from engine.training.sample_video import make_demo_video
from tests.projects import burst, real_project, render_audio, render_tractor_audio, tone_file

SAMPLE_RATE = 48000
ONE_MS = 48  # samples at 48 kHz


def placement(wav, frame: int, rate: Fraction, name="foley v1") -> Placement:
    return Placement(wav, RationalTime(frame, float(rate)), RationalTime(16000, 16000), name)


def track_names(project, sequence=None) -> list[str]:
    timeline = mlt.read_timeline(project, sequence=sequence)  # keep the timeline alive while its tracks are read
    return [track.name for track in timeline.tracks]


def onset(before: np.ndarray, after: np.ndarray) -> int:
    """First sample where the two renders differ audibly (the foley burst starts at its sample 0)."""
    length = max(len(before), len(after))
    foley = np.pad(after, (0, length - len(after))) - np.pad(before, (0, length - len(before)))
    return int(np.argmax(np.abs(foley) > 0.05))


def only_insertions(original: str, changed: str) -> bool:
    opcodes = difflib.SequenceMatcher(a=original.splitlines(True), b=changed.splitlines(True), autojunk=False)
    return {tag for tag, *_ in opcodes.get_opcodes()} == {"equal", "insert"}


def every_original_element_survives(original: str, changed: str) -> None:
    """Each element of the original (tag and attributes, by id or position) is still in the written file."""
    def signature(root):
        return sorted((el.tag, tuple(sorted(el.attrib.items())), (el.text or "").strip()) for el in root.iter())
    old, new = signature(ET.fromstring(original)), signature(ET.fromstring(changed))
    missing = [item for item in old if item not in new]
    assert not missing, missing[:3]


def audio_mix(folder):
    """Kdenlive 24.11.70 (document 1.1): Sequence 1 with tones on A2, a same-track mix, two colour clips."""
    project = real_project("kdenlive", "audio-mix.kdenlive", folder)
    for name in re.findall(r'name="resource">(footage/[^<]+\.ogg)<', project.read_text()):
        frequency = int(re.search(r"(\d+)hz", name).group(1))
        tone_file(folder / name, frequency, 30.0, 1 if "mono" in name else 2)
    return project


def test_kdenlive_24_sequence_foley_lands_on_its_frame_and_only_inserts(tmp_path):
    project = audio_mix(tmp_path)
    original = project.read_text()
    timeline = mlt.read_timeline(project)
    assert timeline.name == "Sequence 1"
    assert [(t.name, t.kind) for t in timeline.tracks] == [
        ("A1", "Audio"), ("A2", "Audio"), ("A2 (mix 1)", "Audio"), ("V1", "Video"), ("V2", "Video")]
    a2 = [(c.name, c.range_in_parent().start_time.value, c.source_range.duration.value)
          for c in timeline.tracks[1].find_clips()]
    assert a2 == [("stereo-350hz.ogg", 0, 20), ("mono-440hz.ogg", 30, 10)]

    before = render_audio(project, tmp_path / "before.wav", 39)
    report = mlt.write_audio_clips(project, [placement(burst(tmp_path / "foley.wav"), 10, Fraction(25))])
    assert report.track == "Foley" and report.backup.read_text() == original
    changed = project.read_text()
    assert only_insertions(original, changed)
    every_original_element_survives(original, changed)
    after = render_audio(project, tmp_path / "after.wav", 39)
    assert abs(onset(before, after) - 10 / 25 * SAMPLE_RATE) <= ONE_MS
    assert np.allclose(after[:4000], before[:4000])  # the user's tones before the foley are unchanged

    timeline = mlt.read_timeline(project)
    foley = timeline.tracks[-1]
    assert (foley.name, foley.kind) == ("Foley", "Audio")
    assert [c.range_in_parent().start_time.value for c in foley.find_clips()] == [10]
    root = ET.fromstring(changed)
    sequence = root.find("tractor[@id='{e4d6071e-62db-4c12-819e-595560599cec}']")
    new_track = sequence.findall("track")[-1]
    mix = sequence.findall("transition")[-1]
    assert mlt.properties(mix)["b_track"] == str(len(sequence.findall("track")) - 1) == "5"
    track_tractor = root.find(f"tractor[@id='{new_track.get('producer')}']")
    assert mlt.properties(track_tractor)["kdenlive:audio_track"] == "1"
    assert [t.get("hide") for t in track_tractor.findall("track")] == ["video", "video"]
    assert {mlt.properties(f)["mlt_service"] for f in track_tractor.findall("filter")} == {"volume", "panner",
                                                                                           "audiolevel"}
    order = [el.get("id") for el in root]
    (wav_producer,) = [el.get("id") for el in root.findall("chain") if el.get("id").startswith("foley_producer")]
    assert order.index(wav_producer) < order.index(track_tractor.get("id")) < order.index(sequence.get("id"))
    assert wav_producer in [e.get("producer") for e in root.find("playlist[@id='main_bin']").findall("entry")]


def test_foley_past_the_sequence_end_extends_sequence_and_project_tractor(tmp_path):
    project = audio_mix(tmp_path)
    before = render_audio(project, tmp_path / "before.wav", 80)
    assert len(before) == 40 * SAMPLE_RATE // 25  # melt stops at the sequence's end (frame 39)
    mlt.write_audio_clips(project, [placement(burst(tmp_path / "foley.wav"), 30, Fraction(25))])
    root = ET.fromstring(project.read_text())
    project_tractor = root.findall("tractor")[-1]
    assert project_tractor.get("out") == project_tractor.find("track").get("out") == "00:00:02.160"  # frame 54
    assert root.find("tractor[@id='{e4d6071e-62db-4c12-819e-595560599cec}']").get("out") == "00:00:02.160"
    after = render_audio(project, tmp_path / "after.wav", 80)
    assert len(after) == 55 * SAMPLE_RATE // 25
    assert abs(onset(before, after) - 30 / 25 * SAMPLE_RATE) <= ONE_MS
    assert np.abs(after[int(1.7 * SAMPLE_RATE):]).max() > 0.3  # heard after the old end


def test_kdenlive_26_sequence_zone_selection_and_write(tmp_path):
    """Kdenlive 26.04.1 saves the sequence as tractor1 (not its uuid); zone = the sequence's own zone."""
    project = real_project("kdenlive", "avfilter-negate.kdenlive", tmp_path)
    (tmp_path / "footage").mkdir()
    make_demo_video(tmp_path / "footage" / "stock_flags.mp4", seconds=10.1, rate=Fraction(30))
    selection = mlt.read_selection(project)
    assert selection.label == "zone" and selection.range_seconds() == (0, Fraction(5, 30))
    (span,) = selection.spans
    assert span.media == tmp_path / "footage" / "stock_flags.mp4"  # relative to the file (root="")
    assert mlt.read_selection(project, sequence="Main Timeline").record == selection.record

    before = render_audio(project, tmp_path / "before.wav", 60)
    mlt.write_audio_clips(project, [placement(burst(tmp_path / "foley.wav"), 3, Fraction(30))])
    after = render_audio(project, tmp_path / "after.wav", 60)
    assert abs(onset(before, after) - 3 / 30 * SAMPLE_RATE) <= ONE_MS
    root = ET.fromstring(project.read_text())
    assert root.find("tractor[@id='tractor1']").findall("track")[-1].get("producer").startswith("foley_tractor")
    assert track_names(project) == ["V1", "Foley"]


def test_kdenlive_25_at_29_97_lands_on_the_ntsc_frame(tmp_path):
    project = real_project("kdenlive", "qtblend-zoom.kdenlive", tmp_path)
    rate = Fraction(30000, 1001)
    original = project.read_text()
    before = render_audio(project, tmp_path / "before.wav", 149)
    mlt.write_audio_clips(project, [placement(burst(tmp_path / "foley.wav"), 101, rate)])
    assert only_insertions(original, project.read_text())
    after = render_audio(project, tmp_path / "after.wav", 149)
    assert abs(onset(before, after) - 101 / rate * SAMPLE_RATE) <= ONE_MS
    timeline = mlt.read_timeline(project)
    (foley,) = [t for t in timeline.tracks if t.name == "Foley"]
    assert [c.range_in_parent().start_time.value for c in foley.find_clips()] == [101]

    mlt.write_audio_clips(project, [placement(burst(tmp_path / "foley.wav"), 140, rate)])  # past the end (149)
    root = ET.fromstring(project.read_text())
    outs = [root.find("tractor[@id='tractor8']").get("out"), root.findall("tractor")[-1].get("out"),
            root.findall("tractor")[-1].find("track").get("out")]
    assert [mlt.parse_time(out, rate) for out in outs] == [169, 169, 169]  # written as clock times, like Kdenlive
    longer = render_audio(project, tmp_path / "longer.wav", 400)
    assert len(longer) == round(170 / rate * SAMPLE_RATE)


SEQUENCE_2 = "{33ab7e7b-b157-40a8-95c5-133789a4b043}"


def test_kdenlive_several_sequences_named_nested_and_unknown(tmp_path):
    """Kdenlive 24.01.95: three sequences, the active Sequence 3 uses Sequences 1 and 2 as clips."""
    project = real_project("kdenlive", "sequences.kdenlive", tmp_path)
    original = project.read_text()
    assert mlt.read_timeline(project).name == "Sequence 3"  # docproperties.activetimeline
    assert mlt.read_timeline(project, sequence="Sequence 2").name == "Sequence 2"
    with pytest.raises(SelectionError, match="no sequence named 'Main'. Sequences: 'Sequence 1', 'Sequence 2', "
                                             "'Sequence 3'"):
        mlt.read_timeline(project, sequence="Main")
    with pytest.raises(UnsupportedClipError, match="Clip 'Sequence 2' is a nested sequence; .*Select a range"):
        mlt.read_selection(project)  # the zone 0-75 of Sequence 3
    with pytest.raises(UnsupportedClipError, match="Clip 'Sequence 1' is a nested sequence"):
        mlt.read_selection(project, clip="Sequence 1")
    with pytest.raises(UnsupportedClipError, match="Clip 'Sequence 1' is a nested sequence"):
        mlt.read_selection(project, record=TimeRange(RationalTime(70, 25), RationalTime(5, 25)))
    with pytest.raises(SelectionError, match="no sequence named 'Main'"):
        mlt.write_audio_clips(project, [placement(burst(tmp_path / "foley.wav"), 5, Fraction(25))], sequence="Main")
    assert project.read_text() == original and not list(tmp_path.glob("*.foley-*"))

    before = render_tractor_audio(project, SEQUENCE_2, tmp_path / "before.wav", 60)
    mlt.write_audio_clips(project, [placement(burst(tmp_path / "foley.wav"), 12, Fraction(25))], sequence="Sequence 2")
    changed = project.read_text()
    assert only_insertions(original, changed)
    every_original_element_survives(original, changed)
    after = render_tractor_audio(project, SEQUENCE_2, tmp_path / "after.wav", 60)
    assert abs(onset(before, after) - 12 / 25 * SAMPLE_RATE) <= ONE_MS
    assert track_names(project, "Sequence 2") == ["A1", "A2", "V1", "V2", "Foley"]
    assert "Foley" not in track_names(project)  # the active Sequence 3 is untouched
    assert "Foley" not in track_names(project, "Sequence 1")


def test_kdenlive_22_12_document_1_04_still_works(tmp_path):
    project = real_project("kdenlive", "mix-slide.kdenlive", tmp_path)
    original = project.read_text()
    before = render_audio(project, tmp_path / "before.wav", 60)
    mlt.write_audio_clips(project, [placement(burst(tmp_path / "foley.wav"), 20, Fraction(25))])
    assert only_insertions(original, project.read_text())
    order = [el.get("id") for el in ET.fromstring(project.read_text())]
    assert order.index("foley_producer1") < order.index("main_bin") < order.index("tractor4")  # defined before use
    after = render_audio(project, tmp_path / "after.wav", 60)
    assert abs(onset(before, after) - 20 / 25 * SAMPLE_RATE) <= ONE_MS


def test_kdenlive_26_07_newest_verified_and_newer_version_refused(tmp_path):
    project = real_project("kdenlive", "qtblend-rotate.kdenlive", tmp_path)
    assert mlt.read_timeline(project).name == "Sequence 1"
    newer = tmp_path / "newer.kdenlive"
    newer.write_text(project.read_text().replace('docproperties.version">1.1<', 'docproperties.version">1.2<'))
    with pytest.raises(ProjectFormatError, match=r"newer.kdenlive is a Kdenlive document version 1\.2 file \(written "
                                                 r"by 26\.07\.70\).*Export the timeline as OpenTimelineIO"):
        mlt.read_selection(newer)


SHOTCUT = "shotcut-25.03-collection.mlt"


def test_shotcut_25_foley_lands_on_its_frame_and_only_inserts(tmp_path):
    """Shotcut 25.03.29: chains, shotcut:projectFolder, transition tractors inside V1; media absent (silent)."""
    project = real_project("shotcut", SHOTCUT, tmp_path)
    original = project.read_text()
    timeline = mlt.read_timeline(project)
    assert [t.name for t in timeline.tracks] == ["V1", "V2", "V3", "V4", "V5", "A1", "A2"]
    before = render_audio(project, tmp_path / "before.wav", 200)
    mlt.write_audio_clips(project, [placement(burst(tmp_path / "foley.wav"), 100, Fraction(25))])
    changed = project.read_text()
    assert only_insertions(original, changed)
    every_original_element_survives(original, changed)
    after = render_audio(project, tmp_path / "after.wav", 200)
    assert abs(onset(before, after) - 100 / 25 * SAMPLE_RATE) <= ONE_MS
    timeline = mlt.read_timeline(project)
    foley = timeline.tracks[-1]
    assert foley.name == "Foley" and [c.range_in_parent().start_time.value for c in foley.find_clips()] == [100]
    main = ET.fromstring(changed).find("tractor[@id='tractor2']")
    assert main.findall("track")[-1].get("hide") == "video"
    assert mlt.properties(main.findall("transition")[-1])["b_track"] == "8"


def test_shotcut_25_missing_media_and_time_remap_are_refused_clearly(tmp_path):
    project = real_project("shotcut", SHOTCUT, tmp_path)
    with pytest.raises(MissingMediaError, match="coast_seaside_pebbles_stones_rounded_845.mp4, which does not exist"):
        mlt.read_selection(project, record=TimeRange(RationalTime(0, 25), RationalTime(50, 25)))
    # the Time Remap filter of Shotcut 22.09+ is a <link mlt_service="timeremap"> inside the clip's <chain>
    text = project.read_text()
    chain = text.index('<chain id="chain7"')
    link = ('    <link id="link0">\n      <property name="mlt_service">timeremap</property>\n'
            '      <property name="map">0=0;00:00:04.680=00:00:02.340</property>\n    </link>\n')
    close = text.index("  </chain>", chain)
    project.write_text(text[:close] + link + text[close:])
    with pytest.raises(UnsupportedClipError, match="coast_seaside_pebbles_stones_rounded_845.mp4' plays with a "
                                                   "time remap"):
        mlt.read_selection(project, record=TimeRange(RationalTime(0, 25), RationalTime(50, 25)))


def test_shotcut_25_cross_fade_reads_as_its_incoming_clip(tmp_path):
    """V1's tractor0 (lumaMix) fades chain8 out into chain9; chain9's source time runs on into the next entry."""
    project = real_project("shotcut", SHOTCUT, tmp_path)
    timeline = mlt.read_timeline(project)
    v1 = [(c.name, c.range_in_parent().start_time.value, c.source_range.start_time.value,
           c.source_range.duration.value) for c in timeline.tracks[0].find_clips()][1:4]
    assert v1 == [("00001.AVI", 118, 0, 209), ("3D Hearts_02.mp4", 327, 0, 28), ("3D Hearts_02.mp4", 355, 28, 98)]
