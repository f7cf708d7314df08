"""Interchange round trips: read -> add foley -> write -> read gives the foley at the same rational times."""

from fractions import Fraction

import opentimelineio as otio
import pytest
from opentimelineio.opentime import RationalTime, TimeRange

from editor_plugin import interchange
from editor_plugin.contract import Placement, seconds
from editor_plugin.errors import ProjectFormatError, ProjectWriteError, SelectionError
from tests.projects import burst, otio_timeline

RATES = [Fraction(25), Fraction(30000, 1001), Fraction(24000, 1001)]


def foley_at(tmp_path, frame: int, rate: Fraction, name: str = "foley v1") -> Placement:
    wav = burst(tmp_path / f"{name}.wav", seconds=1.25)
    return Placement(wav, RationalTime(frame, float(rate)), RationalTime(20000, 16000), name)


# FCP 7 XML, FCPXML and AAF have bridges of their own: tests/test_xmeml.py, test_fcpxml.py, test_aaf.py
@pytest.mark.parametrize("rate", RATES, ids=[f"{float(r):.3f}" for r in RATES])
def test_otio_round_trip_keeps_foley_at_exact_record_times(tmp_path, rate):
    path = tmp_path / "edit.otio"
    otio.adapters.write_to_file(otio_timeline(tmp_path, rate), str(path))
    report = interchange.write_audio_clips(path, [foley_at(tmp_path, 100, rate), foley_at(tmp_path, 100, rate, "v2"),
                                                  foley_at(tmp_path, 160, rate, "v3")])
    assert report.track == "Foley, Foley 2" and report.backup.is_file()

    timeline = interchange.read_timeline(path)
    starts = {clip.name: seconds(clip.range_in_parent().start_time) for clip in timeline.find_clips()}
    frame = 1 / rate
    assert starts["foley v1"] == starts["v2"] == 100 * frame and starts["v3"] == 160 * frame
    assert starts["shot-b"] == 110 * frame  # the picture is untouched
    selection = interchange.read_selection(path, clip="shot-b")
    assert [(s.record_start, s.source_start) for s in selection.edit()] == [(110 * frame, 150 * frame)]
    foley = next(c for c in timeline.find_clips() if c.name == "v3")
    assert otio.url_utils.filepath_from_url(foley.media_reference.target_url) == str(tmp_path / "v3.wav")


def test_edl_reads_with_a_rate_and_refuses_audio_writes(tmp_path):
    path = tmp_path / "edit.edl"
    otio.adapters.write_to_file(otio_timeline(tmp_path, Fraction(25)), str(path))
    with pytest.raises(ProjectFormatError, match="does not record its frame rate"):
        interchange.read_timeline(path)
    timeline = interchange.read_timeline(path, rate=25)
    assert [c.range_in_parent().start_time.value for c in timeline.find_clips()] == [0, 110]
    before = path.read_bytes()
    with pytest.raises(ProjectWriteError, match="EDL cannot carry the foley track"):
        interchange.write_audio_clips(path, [foley_at(tmp_path, 10, Fraction(25))], rate=25)
    assert path.read_bytes() == before


def test_unreadable_interchange_files_fail_clearly(tmp_path):
    bad = tmp_path / "edit.otio"
    bad.write_text('{"OTIO_SCHEMA": "Timeline.1", "tracks": ')
    with pytest.raises(ProjectFormatError, match="could not be read as otio_json"):
        interchange.read_timeline(bad)
    with pytest.raises(ProjectFormatError, match="unknown timeline format"):
        interchange.read_timeline(tmp_path / "edit.prproj")
    empty = tmp_path / "edit.otio"
    otio.adapters.write_to_file(otio.schema.Timeline(), str(empty))
    with pytest.raises(SelectionError, match="records no selection"):
        interchange.read_selection(empty)
    with pytest.raises(SelectionError, match="starts after the end of the timeline"):
        interchange.read_selection(empty, record=TimeRange(RationalTime(0, 25), RationalTime(10, 25)))


def test_a_collection_of_timelines_uses_the_named_one_and_keeps_the_others(tmp_path):
    rate = Fraction(25)
    first, second = otio_timeline(tmp_path, rate), otio_timeline(tmp_path, rate)
    first.name, second.name = "Assembly", "Reel 2"
    second.tracks[0][0].source_range = TimeRange(RationalTime(20, 25), RationalTime(80, 25))
    collection = otio.schema.SerializableCollection(name="Project")
    bin_ = otio.schema.SerializableCollection(name="Cuts", children=[second])
    collection.extend([first, bin_])
    path = tmp_path / "cuts.otio"
    otio.adapters.write_to_file(collection, str(path))

    assert interchange.read_timeline(path).name == "Assembly"  # no name: the first
    assert interchange.read_selection(path, clip="shot-a", sequence="Reel 2").edit()[0].source_start == Fraction(20, 25)
    with pytest.raises(SelectionError, match="no sequence named 'Reel 3'. Sequences: 'Assembly', 'Reel 2'"):
        interchange.read_timeline(path, sequence="Reel 3")
    interchange.write_audio_clips(path, [foley_at(tmp_path, 30, rate)], sequence="Reel 2")
    written = otio.adapters.read_from_file(str(path))
    assert isinstance(written, otio.schema.SerializableCollection)
    by_name = {t.name: t for t in written.find_children(descended_from_type=otio.schema.Timeline)}
    assert [t.name for t in by_name["Assembly"].audio_tracks()] == []
    (foley,) = by_name["Reel 2"].audio_tracks()
    assert [c.range_in_parent().start_time.value for c in foley.find_clips()] == [30]
