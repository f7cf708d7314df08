"""DaVinci Resolve without scripting: real Resolve OTIO exports read exactly and get foley in Resolve's dialect.

Fixtures: tests/fixtures/resolve (PROVENANCE.md). Every test works on a copy in tmp_path whose media paths point at
media made here; cases marked "derived" also rewrite the copy's frame rate (no real 23.976/25/29.97 export found).
"""

import difflib
import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
import soundfile
from opentimelineio.opentime import RationalTime, TimeRange

from editor_plugin import interchange
from editor_plugin.contract import Placement, exact_rate, seconds, timeline_rate
from editor_plugin.errors import MissingMediaError, ProjectWriteError, SelectionError, UnsupportedClipError
from engine.training.sample_video import make_demo_video
from tests.projects import burst, otio_timeline
from ui.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "resolve"
FTW = "E117_resolve_ftw_export.otio"  # 24 fps, clip cut_src.mp4 from source frame 24, two Solid Color generators
RETIMED = "resolve_transitions.otio"  # 30 fps, both clips at 43 % speed
NESTED = "E120_resolve_nested_export.otio"  # 24 fps, a clip then a compound clip holding a compound clip
MEDIA = {FTW: ("/Users/samuelgursky/Movies/mcp_probe_tmp/cut_src.mp4", "cut_src.mp4"),
         NESTED: ("/Users/samuelgursky/Movies/mcp_probe_tmp/cut_src.mp4", "cut_src.mp4"),
         RETIMED: ("/Users/akaisuisei/Downloads/happy_horse_cheerful_meadow.mp4", "happy_horse_cheerful_meadow.mp4")}
# derived rates: (fixture, the rate Resolve writes for it, global start value at 01:00:00:00, nominal fps)
RATES = {
    "24 (real)": (FTW, None, None, 24),
    "30 (real)": (RETIMED, None, None, 30),
    "24 nested (real)": (NESTED, None, None, 24),
    "23.976 (derived)": (FTW, "23.976", None, 24),
    "25 (derived)": (FTW, "25.0", "90000.0", 25),
    "29.97 (derived)": (RETIMED, "29.97", None, 30),
}


def resolve_copy(tmp_path: Path, fixture: str, *, rate: str | None = None, start: str | None = None,
                 url: str | None = None, video: bool = False) -> Path:
    """The fixture in tmp_path with its media path pointing at a file made here (only the copy changes)."""
    text = (FIXTURES / fixture).read_text(encoding="utf-8")
    old_url, name = MEDIA[fixture]
    media = tmp_path / name
    if video:
        make_demo_video(media, seconds=8.0, rate=Fraction(24))
    else:
        media.write_bytes(b"")  # selection only checks that the file is there
    text = text.replace(json.dumps(old_url), json.dumps(url or media.as_posix()))
    if rate is not None:
        original = json.loads(text)["global_start_time"]["rate"]
        text = text.replace(f'"rate": {original}', f'"rate": {rate}')
    if start is not None:
        text = text.replace(f'"value": {json.loads(text)["global_start_time"]["value"]}', f'"value": {start}', 1)
    path = tmp_path / fixture
    path.write_text(text, encoding="utf-8")
    return path


def tracks(document: dict) -> list[dict]:
    return document["tracks"]["children"]


def assert_insertions_only(before: str, after: str) -> None:
    """Every line of the original is still there, in order: the writer only inserted text."""
    opcodes = difflib.SequenceMatcher(None, before.splitlines(), after.splitlines(), autojunk=False).get_opcodes()
    assert {tag for tag, *_ in opcodes} == {"equal", "insert"}


def test_resolve_rounded_rates_are_the_ntsc_rates():
    assert exact_rate(23.976) == exact_rate(24000 / 1001) == Fraction(24000, 1001)
    assert exact_rate(29.97) == exact_rate(30000 / 1001) == Fraction(30000, 1001)
    assert exact_rate(59.94) == Fraction(60000, 1001)
    assert [exact_rate(r) for r in (24.0, 25.0, 30.0, 50.0, 60.0)] == [24, 25, 30, 50, 60]


@pytest.mark.parametrize("case", RATES, ids=list(RATES))
def test_resolve_exports_read_at_exact_rate_from_the_timeline_start(tmp_path, case):
    fixture, rate, start, fps = RATES[case]
    timeline = interchange.read_timeline(resolve_copy(tmp_path, fixture, rate=rate, start=start))
    exact = exact_rate(timeline_rate(timeline))
    assert exact == (Fraction(fps * 1000, 1001) if rate in ("23.976", "29.97") else fps)
    assert timeline.global_start_time.value == 3600 * fps  # 01:00:00:00 (non-drop) as a frame count
    first = next(iter(timeline.find_clips()))
    assert first.range_in_parent().start_time.value == 0  # record times count from the timeline start


def test_clip_selection_resolves_the_source_in_point(tmp_path):
    path = resolve_copy(tmp_path, FTW)
    selection = interchange.read_selection(path, clip="cut_src.mp4")
    [span] = selection.edit()
    assert (span.record_start, span.record_end, span.source_start) == (0, 4, 1)  # source frame 24 at 24 fps
    assert span.media == tmp_path / "cut_src.mp4"
    with pytest.raises(SelectionError, match="no video in the selection"):  # Solid Color generators only
        interchange.read_selection(path, record=TimeRange(RationalTime(120, 24), RationalTime(80, 24)))


def test_resolve_speed_changes_are_refused(tmp_path):
    path = resolve_copy(tmp_path, RETIMED)
    with pytest.raises(UnsupportedClipError, match=r"speed change \(0.43x\)"):
        interchange.read_selection(path, clip="happy_horse_cheerful_meadow.mp4")
    # derived: the same clips with the retime written as a generic TimeEffect (how speed ramps come out)
    path.write_text(path.read_text(encoding="utf-8").replace('"LinearTimeWarp.1"', '"TimeEffect.1"'), encoding="utf-8")
    with pytest.raises(UnsupportedClipError, match="plays with a time effect"):
        interchange.read_selection(path, clip="happy_horse_cheerful_meadow.mp4")


def test_compound_clips_are_refused_not_misplaced(tmp_path):
    path = resolve_copy(tmp_path, NESTED)
    [span] = interchange.read_selection(path, record=TimeRange(RationalTime(0, 24), RationalTime(48, 24))).edit()
    assert (span.record_start, span.record_end, span.source_start) == (0, 2, 1)  # the plain clip before it
    # the compound clip E57_OUT sits at frames 48-96; its inner clips count their times from its own start
    with pytest.raises(UnsupportedClipError, match="'E57_OUT' is a compound clip"):
        interchange.read_selection(path, record=TimeRange(RationalTime(40, 24), RationalTime(20, 24)))
    with pytest.raises(UnsupportedClipError, match="'E57_OUT' is a compound clip"):
        interchange.read_selection(path, clip="white_src.mp4")  # inside E57_IN inside E57_OUT


def test_media_on_another_machine_asks_for_a_relink(tmp_path):
    with pytest.raises(MissingMediaError, match="E:/Footage/cut_src.mp4, a Windows path this machine cannot open"):
        interchange.read_selection(resolve_copy(tmp_path, FTW, url="E:/Footage/cut_src.mp4"), clip="cut_src.mp4")
    with pytest.raises(MissingMediaError, match="does not exist. Relink the clip"):
        interchange.read_selection(FIXTURES / FTW, clip="cut_src.mp4")  # the exporter's own /Users/... path


@pytest.mark.parametrize("case", RATES, ids=list(RATES))
def test_place_puts_foley_at_the_exact_frame_in_resolve_dialect(tmp_path, case, capsys):
    fixture, rate, start, fps = RATES[case]
    path = resolve_copy(tmp_path, fixture, rate=rate, start=start)
    before = path.read_text(encoding="utf-8")
    wav = burst(tmp_path / "hit.wav", seconds=1.25)
    assert main(["place", str(path), "--wav", str(wav), "--at", "01:00:02:00"]) == 0, capsys.readouterr().err
    after = path.read_text(encoding="utf-8")
    assert_insertions_only(before, after)

    # independent read-back: plain JSON and frame arithmetic
    old, new = json.loads(before), json.loads(after)
    assert {key: new[key] for key in new if key != "tracks"} == {key: old[key] for key in old if key != "tracks"}
    assert tracks(new)[:-1] == tracks(old)  # every original track, clip, gap and effect as it was
    foley = tracks(new)[-1]
    assert (foley["name"], foley["kind"]) == ("Foley", "Audio")
    assert foley["metadata"] == {"Resolve_OTIO": {"Audio Type": "Mono", "Locked": False, "SoloOn": False}}
    assert list(foley) == list(tracks(old)[-1])  # the same keys, in the order Resolve writes them
    gap, clip = foley["children"]
    file_rate = old["global_start_time"]["rate"]
    assert gap["source_range"]["duration"] == {"OTIO_SCHEMA": "RationalTime.1", "rate": file_rate, "value": 2 * fps}
    frames = clip["source_range"]["duration"]["value"]
    assert frames == math.ceil(Fraction(5, 4) * exact_rate(file_rate))  # the whole 1.25 s WAV, in whole frames
    assert clip["metadata"] == {"Resolve_OTIO": {"Channels": [{"Source Channel ID": 0, "Source Track ID": 0}]}}
    reference = clip["media_references"]["DEFAULT_MEDIA"]
    assert (reference["name"], reference["target_url"]) == ("hit.wav", wav.resolve().as_posix())  # a plain path
    assert reference["available_range"] == clip["source_range"]
    # and through the OTIO reader: the foley starts 2 s after 01:00:00:00
    reread = otio.adapters.read_from_file(str(path))
    placed = reread.tracks[-1].find_clips()[0]
    assert seconds(placed.range_in_parent().start_time) == 2 * fps / exact_rate(file_rate)
    assert len(list(tmp_path.glob(f"{fixture}.foley-backup-*"))) == 1


def test_generate_for_a_range_and_place_it_on_a_resolve_export(tmp_path, capsys):
    path = resolve_copy(tmp_path, FTW, video=True)
    before = path.read_text(encoding="utf-8")
    out = tmp_path / "out"
    code = main(["generate", "--project", str(path), "--in", "01:00:01:00", "--out", "01:00:03:00", "--steps", "1",
                 "--seed", "1", "--variants", "1", "--place", "-o", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "selection in/out: 1 span(s), 1.000-3.000 s" in captured.out
    [wav] = out.glob("*.wav")
    sidecar = json.loads(wav.with_suffix(".json").read_text())
    assert sidecar["source"]["frame_times"][0] == "2"  # record 1 s shows source 2 s (in-point 24 + 24 frames)
    after = path.read_text(encoding="utf-8")
    assert_insertions_only(before, after)
    gap, clip = tracks(json.loads(after))[-1]["children"]
    assert gap["source_range"]["duration"]["value"] == 24
    assert clip["source_range"]["duration"]["value"] == math.ceil(Fraction(soundfile.info(wav).frames,
                                                                            soundfile.info(wav).samplerate) * 24)


def test_a_named_timeline_in_a_collection_gets_the_foley(tmp_path, capsys):
    resolve = json.loads(resolve_copy(tmp_path, FTW).read_text(encoding="utf-8"))
    resolve["name"] = "Resolve cut"
    plain = json.loads(otio_timeline(tmp_path, Fraction(25)).to_json_string())
    plain["name"] = "Reel 1"
    path = tmp_path / "bin.otio"
    path.write_text(json.dumps({"OTIO_SCHEMA": "SerializableCollection.1", "metadata": {}, "name": "bin",
                                "children": [plain, resolve]}, indent=4, ensure_ascii=False), encoding="utf-8")
    before = path.read_text(encoding="utf-8")
    wav = burst(tmp_path / "hit.wav")
    assert main(["place", str(path), "--wav", str(wav), "--at", "01:00:00:12", "--sequence", "Resolve cut"]) == 0
    assert_insertions_only(before, path.read_text(encoding="utf-8"))
    reel, cut = json.loads(path.read_text(encoding="utf-8"))["children"]
    assert reel == plain and tracks(cut)[:-1] == tracks(resolve)
    assert tracks(cut)[-1]["children"][0]["source_range"]["duration"]["value"] == 12


def test_plain_otio_files_keep_the_plain_form(tmp_path):
    path = tmp_path / "edit.otio"
    otio.adapters.write_to_file(otio_timeline(tmp_path, Fraction(25)), str(path))
    wav = burst(tmp_path / "hit.wav")
    interchange.write_audio_clips(path, [Placement(wav, RationalTime(10, 25),
                                                               RationalTime(16000, 16000), "hit")])
    reread = otio.adapters.read_from_file(str(path))
    foley = reread.tracks[-1]
    assert "Resolve_OTIO" not in foley.metadata
    assert foley.find_clips()[0].media_reference.target_url == wav.resolve().as_uri()


def test_foley_resolve_cannot_take_is_refused_and_nothing_is_written(tmp_path):
    path = resolve_copy(tmp_path, FTW)
    before = path.read_bytes()
    wav = tmp_path / "surround.wav"
    soundfile.write(wav, np.zeros((1600, 3), dtype=np.float32), 16000)
    placement = Placement(wav, RationalTime(0, 24), RationalTime(1600, 16000),
                                      "surround")
    with pytest.raises(ProjectWriteError, match="mono or stereo clips; the foley has 3 channels"):
        interchange.write_audio_clips(path, [placement])
    assert path.read_bytes() == before and not list(tmp_path.glob("*.foley-backup-*"))
