"""AAF bridge on files Avid Media Composer, Pro Tools and Premiere Pro wrote: exact reads, foley added in place.

Expected values come from reading the fixtures with pyaaf2 here (a few lines per fact, not the bridge's walker);
written files are read back with pyaaf2 and with the OTIO AAF adapter.
"""

import logging
import shutil
from fractions import Fraction
from pathlib import Path

import aaf2
import opentimelineio as otio
import pytest
from opentimelineio.opentime import RationalTime, TimeRange

from editor_plugin import aaf, hosts
from editor_plugin.contract import Placement, seconds
from editor_plugin.errors import (
    HostError,
    MissingMediaError,
    ProjectFormatError,
    ProjectWriteError,
    SelectionError,
    UnsupportedClipError,
)
from tests.projects import burst
from ui.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "aaf"
WRITABLE = ["2997fps-DFTC.aaf", "multiple_top_level_mobs.aaf", "avid_data_track_example.aaf", "misc_speed_effects.aaf",
            "2997fps.aaf", "protools_sector_size_512.aaf", "avid_2398_linear01.aaf"]


# -- independent reads with pyaaf2 ---------------------------------------------------------------------------------


def relocated(tmp_path: Path, name: str) -> Path:
    """A copy of fixture `name` with an empty placeholder beside it for every media file its locators name."""
    path = shutil.copy(FIXTURES / name, tmp_path / name)
    with aaf2.open(str(path)) as handle:
        for mob in handle.content.sourcemobs():
            descriptor = mob["EssenceDescription"].value
            for locator in descriptor["Locator"].value if "Locator" in descriptor else []:
                url = locator["URLString"].value
                (tmp_path / otio.url_utils.filepath_from_url(url).rsplit("/", 1)[-1]).touch()
    return Path(path)


def composition(handle, name: str | None = None):
    mobs = list(handle.content.toplevel())
    return mobs[0] if name is None else next(mob for mob in mobs if mob.name == name)


def picture_sequence(mob, layer: int = 0):
    """The Sequence of the first picture slot (of layer `layer` when the slot is a Premiere NestedScope)."""
    slot = next(slot for slot in mob.slots if slot.media_kind == "Picture")
    segment = slot.segment
    return (list(segment.slots)[layer] if isinstance(segment, aaf2.components.NestedScope) else segment), slot


def start_timecode(mob):
    timecode = next(slot.segment for slot in mob.slots if slot.media_kind in ("Timecode", "LegacyTimecode"))
    return timecode.start, timecode.fps, timecode.drop


def plain_layers(mob) -> list[list[tuple[int, int, int]]]:
    """(record start, source start, length) of the clips of each picture layer made only of clips and fillers."""
    slot = next((slot for slot in mob.slots if slot.media_kind == "Picture"), None)
    if slot is None:
        return []
    segment = slot.segment
    layers, result = list(segment.slots) if isinstance(segment, aaf2.components.NestedScope) else [segment], []
    for layer in layers:
        parts = list(layer.components)
        if not all(isinstance(part, (aaf2.components.SourceClip, aaf2.components.Filler)) for part in parts):
            result.append(None)
            continue
        position, clips = 0, []
        for part in parts:
            if isinstance(part, aaf2.components.SourceClip) and part.mob is not None:
                clips.append((position, part.start, part.length))
            position += part.length
        result.append(clips)
    return result


def walk(obj, where=""):
    """Every property of `obj` and of the objects it owns, as (path, text of the value)."""
    for prop in obj.properties():
        value = prop.value
        owned = isinstance(prop, (aaf2.properties.StrongRefProperty, aaf2.properties.StrongRefVectorProperty,
                                  aaf2.properties.StrongRefSetProperty))
        if owned:
            for index, item in enumerate(value if isinstance(value, list) else [value]):
                yield from walk(item, f"{where}/{prop.name}.{index}")
        elif isinstance(value, aaf2.core.AAFObject):
            yield f"{where}/{prop.name}", f"{type(value).__name__}:{getattr(value, 'auid', '')}"
        else:
            yield f"{where}/{prop.name}", str(value)


def mob_contents(path: Path) -> dict:
    with aaf2.open(str(path)) as handle:
        return {str(mob.mob_id): dict(walk(mob)) for mob in handle.content.mobs}


def foley_at(tmp_path: Path, start: RationalTime, name: str = "foley v1", samples: int = 20000) -> Placement:
    wav = burst(tmp_path / f"{name}.wav", seconds=samples / 16000)
    return Placement(wav, start, RationalTime(samples, 16000), name)


def assert_one_line(error: pytest.ExceptionInfo) -> None:
    assert "\n" not in str(error.value) and "Traceback" not in str(error.value)


# -- reading -------------------------------------------------------------------------------------------------------


def test_aaf_files_go_to_the_aaf_bridge():
    assert hosts.bridge_for(Path("cut.aaf")) is aaf and hosts.bridge_for(Path("CUT.AAF")) is aaf


def test_premiere_2997_drop_frame_at_five_hours_with_23976_media(tmp_path):
    path = relocated(tmp_path, "2997fps-DFTC.aaf")
    with aaf2.open(str(path)) as handle:
        mob = composition(handle)
        sequence, slot = picture_sequence(mob)
        source = sequence.components[0]
        media_rate = Fraction(source.slot["EditRate"].value)  # the MasterMob slot
        tc_start, tc_fps, tc_drop = start_timecode(mob)
        length = source.length
    assert (Fraction(slot["EditRate"].value), media_rate, tc_fps, tc_drop) == (Fraction(30000, 1001),
                                                                              Fraction(24000, 1001), 30, True)

    timeline = aaf.read_timeline(path)
    assert aaf.host_name() and timeline.name == "2997-hour5-DFTC"
    assert timeline.metadata["aaf"] == {"edit_rate": "30000/1001", "start_timecode": "05:00:00;00", "drop_frame": True}
    assert timeline.global_start_time.value == tc_start == 539460  # 5 h of drop-frame timecode
    assert timeline.global_start_time.to_timecode(30000 / 1001, True) == "05:00:00;00"
    [clip] = timeline.video_tracks()[0].find_clips()
    assert clip.range_in_parent() == TimeRange(RationalTime(0, 30000 / 1001), RationalTime(length, 30000 / 1001))
    assert clip.source_range.start_time.rate == pytest.approx(float(media_rate))  # the media's own rate
    assert Path(otio.url_utils.filepath_from_url(clip.media_reference.target_url)) == \
        tmp_path / "58982c7f-78b3-4cf9-8432-729fc4eafd55.mov"

    # the user types the timecode they see: 05:01:00;02 is the first frame of minute 1 (;00 and ;01 are dropped)
    selection = aaf.read_selection(path, record=TimeRange(RationalTime(1800, 30000 / 1001),
                                                          RationalTime(240, 30000 / 1001)))
    [span] = selection.edit()
    assert span.record_start == Fraction(1800 * 1001, 30000) == span.source_start
    assert span.record_end == Fraction(2040 * 1001, 30000)
    assert seconds(selection.spans[0].source.start_time) == span.source_start
    assert selection.spans[0].source.start_time.value == 1440  # 1800 sequence frames = 1440 frames of 23.976


def test_mixed_rate_placement_lands_at_the_exact_drop_frame_timecode(tmp_path):
    path = relocated(tmp_path, "2997fps-DFTC.aaf")
    before = mob_contents(path)
    rate = 30000 / 1001
    at = RationalTime.from_timecode("05:01:00;02", rate) - RationalTime(539460, rate)
    assert at.value == 1800
    report = aaf.write_audio_clips(path, [foley_at(tmp_path, at)])
    assert report.track == "Foley" and report.backup.read_bytes() == (FIXTURES / "2997fps-DFTC.aaf").read_bytes()

    with aaf2.open(str(path)) as handle:
        mob = composition(handle)
        slot = mob.slots[-1]
        filler, clip = slot.segment.components
        assert (slot.name, slot.media_kind, Fraction(slot["EditRate"].value)) == ("Foley", "Sound",
                                                                                 Fraction(30000, 1001))
        assert isinstance(filler, aaf2.components.Filler) and filler.length == 1800
        assert clip.length == 38  # 20000 samples = 37.46 frames: the last frame holds the tail
        master = clip.mob
        assert isinstance(master, aaf2.mobs.MasterMob) and master.name == "foley v1"
        file_clip = master.slot_at(1).segment
        descriptor = file_clip.mob.descriptor
        assert isinstance(descriptor, aaf2.essence.PCMDescriptor) and descriptor.length == 20000
        assert Fraction(descriptor["SampleRate"].value) == 16000 and descriptor["QuantizationBits"].value == 16
        [locator] = descriptor["Locator"].value
        assert locator.classdef.class_name == "NetworkLocator"
        assert locator["URLString"].value == (tmp_path / "foley v1.wav").resolve().as_uri()
        assert len(list(handle.content.essencedata)) == 0  # linked, not embedded
        numbers = [s["PhysicalTrackNumber"].value for s in mob.slots if s.media_kind == "Sound"]
        assert numbers == [1, 2, 3, 4, 5, 6, 7]

    adapter = otio.adapters.read_from_file(str(path), adapter_name="AAF")
    foley = next(c for c in adapter.find_clips() if c.name == "foley v1")
    start = foley.range_in_parent().start_time + adapter.global_start_time
    assert foley.range_in_parent().start_time.value == 1800 and start.to_timecode(rate, True) == "05:01:00;02"
    assert otio.url_utils.filepath_from_url(foley.media_reference.target_url) == str(tmp_path / "foley v1.wav")

    after = mob_contents(path)
    for mob_id, properties in before.items():  # every original object and value, the composition gained one slot
        assert after[mob_id].items() >= properties.items()
    [changed] = [mob_id for mob_id in before if after[mob_id] != before[mob_id]]
    assert {key.split("/")[1] for key in set(after[changed]) - set(before[changed])} == {"Slots.8"}
    assert len(after) == len(before) + 2  # one MasterMob + one SourceMob


@pytest.mark.parametrize("name", WRITABLE)
def test_every_fixture_reads_exactly_and_takes_foley_at_a_timecode(tmp_path, name):
    path = relocated(tmp_path, name)
    with aaf2.open(str(path)) as handle:
        mob = composition(handle)
        rate = Fraction(next(s for s in mob.slots if s.media_kind in ("Picture", "Sound"))["EditRate"].value)
        tc_start, tc_fps, tc_drop = start_timecode(mob)
        sounds = [s for s in mob.slots if s.media_kind == "Sound"]
        last_number = max(s["PhysicalTrackNumber"].value for s in sounds) if sounds else 0
        before_slots = len(mob.slots)
        layers = plain_layers(mob)
    before = mob_contents(path)

    timeline = aaf.read_timeline(path)
    for expected, track in zip(layers, timeline.video_tracks(), strict=True):
        if expected is not None:  # record and source starts in sequence frames (source at the media's own rate)
            assert [(c.range_in_parent().start_time.value, seconds(c.source_range.start_time) * rate,
                     c.range_in_parent().duration.value) for c in track.find_clips()] == expected
    assert Fraction(timeline.metadata["aaf"]["edit_rate"]) == rate
    start_units = tc_start * rate / (rate if round(rate) == tc_fps else tc_fps)
    assert timeline.global_start_time.value == start_units
    assert timeline.metadata["aaf"]["drop_frame"] == bool(tc_drop)

    frame = 60 if rate < 1000 else 96000  # Pro Tools edits in samples
    at = RationalTime(frame, float(rate))
    aaf.write_audio_clips(path, [foley_at(tmp_path, at), foley_at(tmp_path, at, "v2"),
                                 foley_at(tmp_path, at + RationalTime(frame, float(rate)), "v3", 8000)])
    with aaf2.open(str(path)) as handle:
        mob = composition(handle)
        new = list(mob.slots)[before_slots:]
        assert [s.name for s in new] == ["Foley", "Foley 2"]
        assert [s["PhysicalTrackNumber"].value for s in new] == [last_number + 1, last_number + 2]
        lane = [(type(c).__name__, c.length) for c in new[0].segment.components]
        first_length = new[0].segment.components[1].length
        assert first_length == -(-20000 * rate // 16000)
        assert lane[0] == ("Filler", frame) and lane[2][0] == "Filler" and lane[3][0] == "SourceClip"
        assert frame + first_length + lane[2][1] == 2 * frame  # v3 starts at the second frame count
        assert all(Fraction(s["EditRate"].value) == rate for s in new)
    after = mob_contents(path)
    assert all(after[m].items() >= props.items() for m, props in before.items())

    adapter = otio.adapters.read_from_file(str(path), adapter_name="AAF")
    timelines = list(adapter) if isinstance(adapter, otio.schema.SerializableCollection) else [adapter]
    placed = {c.name: c.range_in_parent().start_time for t in timelines[:1] for c in t.find_clips()
              if c.name in ("foley v1", "v2", "v3")}
    assert {k: v.value for k, v in placed.items()} == {"foley v1": frame, "v2": frame, "v3": 2 * frame}


def test_avid_data_track_and_transition(tmp_path):
    path = relocated(tmp_path, "avid_data_track_example.aaf")
    with aaf2.open(str(path)) as handle:
        sequence, _ = picture_sequence(composition(handle))
        first, transition, second, third = sequence.components
        cut = transition["CutPoint"].value
        assert "DataEssenceTrack" in [s.media_kind for s in composition(handle).slots]
    timeline = aaf.read_timeline(path)
    assert [t.kind for t in timeline.tracks].count(otio.schema.TrackKind.Video) == 1  # data and timecode ignored
    clips = timeline.video_tracks()[0].find_clips()
    # a transition overlaps its neighbours; the picture cuts at its CutPoint
    assert [c.range_in_parent().start_time.value for c in clips] == [0, first.length - transition.length + cut,
                                                                     first.length - transition.length + second.length]
    assert clips[1].source_range.start_time.value == second.start + cut
    assert clips[2].source_range.start_time.value == third.start
    selection = aaf.read_selection(path, clip=clips[2].name)
    assert selection.record.start_time.value == 30 and selection.spans[0].media.suffix == ".mxf"


def test_several_top_level_compositions(tmp_path):
    path = relocated(tmp_path, "multiple_top_level_mobs.aaf")
    with aaf2.open(str(path)) as handle:
        names = [mob.name for mob in handle.content.toplevel()]
        sequence, _ = picture_sequence(composition(handle), layer=1)
        [source] = sequence.components
        media_rate = Fraction(source.slot["EditRate"].value)
    assert names == ["nestTest2", "testNest30_2"]
    assert aaf.read_timeline(path).name == "nestTest2"
    assert aaf.read_timeline(path, sequence="testNest30_2").name == "testNest30_2"
    with pytest.raises(SelectionError, match="no sequence named 'cut 3'. Sequences: 'nestTest2', 'testNest30_2'") \
            as err:
        aaf.read_timeline(path, sequence="cut 3")
    assert_one_line(err)

    timeline = aaf.read_timeline(path)
    clip = timeline.video_tracks()[1].find_clips()[0]
    assert (clip.source_range.start_time.rate, media_rate) == (pytest.approx(24000 / 1001), Fraction(24000, 1001))
    assert clip.range_in_parent().duration.value == source.length

    before = path.read_bytes()
    aaf.write_audio_clips(path, [foley_at(tmp_path, RationalTime(12, 30000 / 1001))], sequence="testNest30_2")
    with aaf2.open(str(path)) as handle:
        default, named = list(handle.content.toplevel())
        assert default.slots[-1].name != "Foley" and named.slots[-1].name == "Foley"
        assert named.slots[-1].segment.components[0].length == 12
    assert path.read_bytes() != before


def test_speed_effects_are_refused_in_the_selection(tmp_path):
    path = relocated(tmp_path, "misc_speed_effects.aaf")
    with aaf2.open(str(path)) as handle:
        sequence, _ = picture_sequence(composition(handle))
        group = sequence.components[3]
        ratio = next(p.value for p in group["Parameters"].value if p.parameterdef.name == "SpeedRatio")
        assert group.operation.name == "Motion Control" and ratio == 2
        record = sum(component.length for component in list(sequence.components)[:3])
    before = path.read_bytes()
    rate = 24.0
    with pytest.raises(UnsupportedClipError, match="speed change \\(2x\\)") as err:
        aaf.read_selection(path, record=TimeRange(RationalTime(record, rate), RationalTime(8, rate)))
    assert_one_line(err)
    plain = aaf.read_selection(path, record=TimeRange(RationalTime(0, rate), RationalTime(8, rate)))
    assert plain.spans[0].source.start_time.value == sequence.components[0].start
    premiere = relocated(tmp_path, "multiple_top_level_mobs.aaf")
    with pytest.raises(UnsupportedClipError, match="speed change \\(1.11111x\\)"):
        aaf.read_selection(premiere, record=TimeRange(RationalTime(0, 30000 / 1001), RationalTime(5, 30000 / 1001)),
                           sequence="testNest30_2")
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.glob("*foley-backup*")) == []


def test_avid_2997_non_drop_linked_mxf(tmp_path):
    path = relocated(tmp_path, "2997fps.aaf")
    with aaf2.open(str(path)) as handle:
        sequence, _ = picture_sequence(composition(handle))
        first, second = sequence.components
    timeline = aaf.read_timeline(path)
    assert timeline.metadata["aaf"]["start_timecode"] == "00:00:00:00"
    clips = timeline.video_tracks()[0].find_clips()
    assert [(c.range_in_parent().start_time.value, c.source_range.start_time.value) for c in clips] == \
        [(0, first.start), (first.length, second.start)]
    assert clips[1].media_reference.target_url.endswith("Frame%20Debugger%200h.5B204F30V.mxf")


def test_pro_tools_audio_only_session(tmp_path):
    path = relocated(tmp_path, "protools_sector_size_512.aaf")
    timeline = aaf.read_timeline(path)
    assert timeline.metadata["aaf"] == {"edit_rate": "48000", "start_timecode": "01:00:00:00", "drop_frame": False}
    assert timeline.global_start_time == RationalTime(3600 * 48000, 48000)
    with pytest.raises(SelectionError, match="no video"):
        aaf.read_selection(path, record=TimeRange(RationalTime(240000, 48000), RationalTime(48000, 48000)))


# -- compositions built the way Premiere writes them ------------------------------------------------------------


def master_clip(handle, media_rate: Fraction, url: str | None = "file:///Volumes/Media%20Drive/shot.mov"):
    """A MasterMob of 10000 frames of shot.mov, linked by a SourceMob whose locator names another machine's volume."""
    source = handle.create.SourceMob("shot.mov")
    source.descriptor = handle.create.CDCIDescriptor()
    for key, value in (("SampleRate", media_rate), ("Length", 10000), ("ComponentWidth", 8),
                       ("HorizontalSubsampling", 2), ("StoredWidth", 1920), ("StoredHeight", 1080),
                       ("FrameLayout", "FullFrame"), ("VideoLineMap", [42, 0]), ("ImageAspectRatio", "16/9")):
        source.descriptor[key].value = value
    if url is not None:
        locator = handle.create.NetworkLocator()
        locator["URLString"].value = url
        source.descriptor["Locator"].append(locator)
    handle.content.mobs.append(source)
    source.create_empty_slot(edit_rate=media_rate, media_kind="picture", slot_id=1).segment.length = 10000
    master = handle.create.MasterMob("shot.mov")
    handle.content.mobs.append(master)
    master.create_timeline_slot(edit_rate=media_rate, slot_id=1).segment = source.create_source_clip(1)
    return master


def sequence_mob(handle, name: str, rate: Fraction, pieces, top_level: bool = True):
    """A CompositionMob whose picture slot holds `pieces` (Filler lengths or (mob, start, length) clips)."""
    mob = handle.create.CompositionMob(name)
    if top_level:
        mob.usage = "Usage_TopLevel"
    handle.content.mobs.append(mob)
    picture = mob.create_empty_sequence_slot(rate, slot_id=1, media_kind="picture")
    for piece in pieces:
        if isinstance(piece, int):
            picture.segment.components.append(handle.create.Filler("picture", piece))
        else:
            clip_mob, start, length = piece
            picture.segment.components.append(clip_mob.create_source_clip(1, start=start, length=length))
    return mob


def built(tmp_path: Path, rate: Fraction, media_rate: Fraction, tc_start: int, drop: bool) -> Path:
    """A Premiere-style file: V1 = filler 45, clip (source start 150, 240 long), clip (source 0, 60 long)."""
    path = tmp_path / f"built-{float(rate):.3f}.aaf"
    (tmp_path / "shot.mov").touch()
    with aaf2.open(str(path), "w") as handle:
        master = master_clip(handle, media_rate)
        mob = sequence_mob(handle, "built", rate, [45, (master, 150, 240), (master, 0, 60)])
        timecode = mob.create_timeline_slot(rate, slot_id=2)
        timecode.segment = handle.create.Timecode(round(rate), drop=drop, length=345)
        timecode.segment.start = tc_start
        timecode.segment.media_kind = "LegacyTimecode"
        timecode["PhysicalTrackNumber"].value = 1
    return path


def test_nested_sequence_is_read_through(tmp_path):
    path = tmp_path / "nest.aaf"
    (tmp_path / "shot.mov").touch()
    rate = Fraction(25)
    with aaf2.open(str(path), "w") as handle:
        master = master_clip(handle, rate)
        nest = sequence_mob(handle, "nest", rate, [(master, 0, 30), (master, 200, 40)], top_level=False)
        sequence_mob(handle, "edit", rate, [5, (nest, 10, 50)])
        sequence_mob(handle, "edit", rate, [(nest, 0, 70)])  # a second sequence of the same name
    timeline = aaf.read_timeline(path)
    clips = timeline.video_tracks()[0].find_clips()
    # the nest's frames 10-59: 20 frames of the first clip (from source 10), 30 of the second (from source 200)
    assert [(c.range_in_parent().start_time.value, c.range_in_parent().duration.value, c.source_range.start_time.value)
            for c in clips] == [(5, 20, 10), (25, 30, 200)]
    assert aaf.read_timeline(path, sequence="edit (2)").video_tracks()[0].duration().value == 70


BUILT = [(Fraction(30000, 1001), Fraction(24000, 1001), 539460, True, "05:00:00;00"),
         (Fraction(25), Fraction(25), 900000, False, "10:00:00:00")]


@pytest.mark.parametrize(("rate", "media_rate", "tc_start", "drop", "timecode"), BUILT, ids=["2997DF", "25"])
def test_built_premiere_layout_converts_source_starts_exactly(tmp_path, rate, media_rate, tc_start, drop, timecode):
    path = built(tmp_path, rate, media_rate, tc_start, drop)
    timeline = aaf.read_timeline(path)
    assert timeline.metadata["aaf"]["start_timecode"] == timecode
    selection = aaf.read_selection(path, clip="shot.mov")
    [span] = selection.edit()
    # a SourceClip's StartTime counts in its own slot's edit units (AAF object spec): 150 sequence frames
    assert span.record_start == 45 / rate and span.source_start == 150 / rate
    assert selection.spans[0].source.start_time.value == 150 * media_rate / rate  # 120 frames of 23.976
    assert span.media == tmp_path / "shot.mov"  # relinked beside the project

    at = RationalTime.from_timecode(timecode, float(rate)) + RationalTime(1000, float(rate))
    at -= timeline.global_start_time
    aaf.write_audio_clips(path, [foley_at(tmp_path, at)])
    adapter = otio.adapters.read_from_file(str(path), adapter_name="AAF")
    foley = next(c for c in adapter.find_clips() if c.name == "foley v1")
    assert foley.range_in_parent().start_time.value == 1000


# -- refusals --------------------------------------------------------------------------------------------------------


def test_picture_without_a_located_file_is_named(tmp_path):
    path = tmp_path / "offline.aaf"
    with aaf2.open(str(path), "w") as handle:
        sequence_mob(handle, "edit", Fraction(24), [(master_clip(handle, Fraction(24), url=None), 0, 48)])
    with pytest.raises(SelectionError, match="Clip 'shot.mov' has no media file") as err:
        aaf.read_selection(path, clip="shot.mov")
    assert_one_line(err)
    linked = tmp_path / "moved.aaf"
    with aaf2.open(str(linked), "w") as handle:
        sequence_mob(handle, "edit", Fraction(24), [(master_clip(handle, Fraction(24)), 0, 48)])
    with pytest.raises(MissingMediaError, match="points at /Volumes/Media Drive/shot.mov, which does not exist"):
        aaf.read_selection(linked, clip="shot.mov")


def test_damaged_and_missing_files_fail_in_one_line(tmp_path):
    damaged = tmp_path / "cut.aaf"
    damaged.write_bytes((FIXTURES / "2997fps.aaf").read_bytes()[:5000])
    for bad in (damaged, tmp_path / "missing.aaf"):
        with pytest.raises(ProjectFormatError) as err:
            aaf.read_timeline(bad)
        assert_one_line(err)
    garbage = tmp_path / "garbage.aaf"
    garbage.write_bytes(b"not an aaf at all" * 100)
    before = garbage.read_bytes()
    with pytest.raises(ProjectFormatError, match="not a readable AAF file"):
        aaf.write_audio_clips(garbage, [foley_at(tmp_path, RationalTime(1, 24))])
    assert garbage.read_bytes() == before and not list(tmp_path.glob("*foley-backup*"))


def test_unknown_sequence_on_write_writes_nothing(tmp_path):
    path = relocated(tmp_path, "multiple_top_level_mobs.aaf")
    before = path.read_bytes()
    with pytest.raises(SelectionError, match="Sequences: 'nestTest2', 'testNest30_2'"):
        aaf.write_audio_clips(path, [foley_at(tmp_path, RationalTime(1, 30000 / 1001))], sequence="nope")
    assert path.read_bytes() == before and not list(tmp_path.glob("*foley-backup*"))


def test_a_write_that_would_change_the_users_objects_is_refused(tmp_path, monkeypatch):
    path = relocated(tmp_path, "avid_data_track_example.aaf")
    before = path.read_bytes()
    original = aaf._add_lane

    def clumsy(handle, target, lane, name, number):
        original(handle, target, lane, name, number)
        target.mob.slots[0].name = "renamed"  # what a faulty rw save would do to the user's data

    monkeypatch.setattr(aaf, "_add_lane", clumsy)
    with pytest.raises(ProjectWriteError, match="pyaaf2 cannot safely modify avid_data_track_example.aaf") as err:
        aaf.write_audio_clips(path, [foley_at(tmp_path, RationalTime(10, 24))])
    assert_one_line(err)
    assert path.read_bytes() == before and not list(tmp_path.glob("*foley-backup*"))


def test_foley_before_the_sequence_start_or_not_audio_is_refused(tmp_path):
    path = relocated(tmp_path, "2997fps-DFTC.aaf")
    before = path.read_bytes()
    with pytest.raises(SelectionError, match="2 frame\\(s\\) before the timeline starts"):
        aaf.write_audio_clips(path, [foley_at(tmp_path, RationalTime(-2, 30000 / 1001))])
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    with pytest.raises(ProjectFormatError, match="as audio"):
        aaf.write_audio_clips(path, [Placement(text, RationalTime(0, 24), RationalTime(1, 16000), "notes")])
    assert path.read_bytes() == before and not list(tmp_path.glob("*foley-backup*"))


def test_read_only_project_is_refused_before_any_work(tmp_path):
    path = relocated(tmp_path, "2997fps.aaf")
    path.chmod(0o444)
    with pytest.raises(ProjectWriteError, match="read-only"):
        aaf.write_audio_clips(path, [foley_at(tmp_path, RationalTime(1, 30000 / 1001))])
    assert isinstance(ProjectWriteError("x"), HostError)


def test_no_selection_recorded(tmp_path, caplog):
    path = relocated(tmp_path, "2997fps.aaf")
    with caplog.at_level(logging.WARNING), pytest.raises(SelectionError, match="records no selection"):
        aaf.read_selection(path)


def test_cli_places_at_the_drop_frame_timecode_the_editor_shows(tmp_path, capsys):
    path = relocated(tmp_path, "2997fps-DFTC.aaf")
    wav = burst(tmp_path / "hit.wav")
    assert main(["place", str(path), "--wav", str(wav), "--at", "05:01:00;02"]) == 0
    assert "on track(s) Foley" in capsys.readouterr().out
    with aaf2.open(str(path)) as handle:
        assert composition(handle).slots[-1].segment.components[0].length == 1800
    damaged = tmp_path / "damaged.aaf"
    damaged.write_bytes(b"\0" * 4096)
    assert main(["place", str(damaged), "--wav", str(wav), "--at", "10"]) == 2
    err = capsys.readouterr().err
    assert "damaged.aaf is not a readable AAF file" in err and "Traceback" not in err
