"""`foley generate --project` and `foley place` on real project files, tiny model."""

import json
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import opentimelineio as otio
import pytest
import soundfile
from opentimelineio.opentime import RationalTime

from editor_plugin import mlt
from editor_plugin.errors import ProjectFormatError
from editor_plugin.hosts import Project
from engine.models import model_config
from tests.projects import burst, kdenlive_project, otio_timeline
from ui.cli import main


def test_generate_for_the_kdenlive_zone_and_place_the_variants(tmp_path, capsys):
    project = kdenlive_project(tmp_path, Fraction(25))
    out = tmp_path / "out"
    code = main(["generate", "--project", str(project), "--steps", "1", "--seed", "3", "--variants", "2",
                 "--place", "-o", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "selection zone: 2 span(s), 0.800-6.400 s" in captured.out
    wavs = sorted(out.glob("*.wav"))
    assert [w.name for w in wavs] == ["edit_0.800-6.400_v1_seed3.wav", "edit_0.800-6.400_v2_seed4.wav"]
    assert all(soundfile.info(w).frames == 140 * 16000 // 25 for w in wavs)  # frames 20-160 at 25 fps
    sidecar = json.loads(wavs[0].with_suffix(".json").read_text())
    assert sidecar["source"]["path"] == str(project.resolve())
    # record 0.8 s shows source 0.8 s (first span); record 4.8 s shows source 6.4 s (second span, in-point 150)
    rate = model_config("builtin").frame_rate
    assert sidecar["source"]["frame_times"][0] == "4/5" and sidecar["source"]["frame_times"][4 * rate] == "32/5"
    assert "placed 2 clip(s) on track(s) Foley, Foley 2" in captured.out
    timeline = mlt.read_timeline(project)
    placed = {t.name: [c.range_in_parent().start_time.value for c in t.find_clips()] for t in timeline.audio_tracks()}
    assert placed["Foley"] == [20] and placed["Foley 2"] == [20]
    assert len(list(tmp_path.glob("edit.kdenlive.foley-backup-*"))) == 1


def test_place_by_timecode_counts_from_the_timeline_start(tmp_path, capsys):
    timeline = otio_timeline(tmp_path, Fraction(25))
    timeline.global_start_time = RationalTime(90000, 25)  # 01:00:00:00
    project = tmp_path / "edit.otio"
    otio.adapters.write_to_file(timeline, str(project))
    wav = burst(tmp_path / "hit.wav")
    assert main(["place", str(project), "--wav", str(wav), "--at", "01:00:10:00"]) == 0
    assert main(["place", str(project), "--wav", str(wav), "--at", "12.5s", "--track", "Hits"]) == 0
    placed = otio.adapters.read_from_file(str(project))
    starts = {t.name: [c.range_in_parent().start_time.value for c in t.find_clips()] for t in placed.audio_tracks()}
    assert starts == {"Foley": [250], "Hits": [312.5]}
    assert "at frame 250" in capsys.readouterr().out


def test_host_command_errors_are_clear_and_change_nothing(tmp_path, capsys):
    project = kdenlive_project(tmp_path, Fraction(25))
    before = project.read_bytes()
    cases = [
        (["generate", "--project", str(project), "--clip", "nope"], "No video clip named 'nope'"),
        (["generate", "--project", str(project), "--in", "10"], "give both --in and --out"),
        (["generate", "--project", str(project), "--in", "100", "--out", "110"], "There is no video in the selection"),
        (["generate", "--project", str(tmp_path / "edit.prproj")], "no bridge for '.prproj'"),
        (["generate"], "give a video file"),
        (["place", str(project), "--wav", str(tmp_path / "missing.wav"), "--at", "10"], "missing.wav"),
        (["place", str(project), "--wav", str(burst(tmp_path / "b.wav")), "--at", "ten"], "not a frame number"),
    ]
    for args, message in cases:
        assert main([*args, *(["--steps", "1"] if args[0] == "generate" else [])]) == 2, args
        assert message in capsys.readouterr().err, args
    assert project.read_bytes() == before and not list(tmp_path.glob("*.foley-backup-*"))


def test_place_into_a_named_sequence_and_refuse_an_unknown_one(tmp_path, capsys):
    first, second = otio_timeline(tmp_path, Fraction(25)), otio_timeline(tmp_path, Fraction(25))
    first.name, second.name = "Assembly", "Reel 2"
    project = tmp_path / "cuts.otio"
    otio.adapters.write_to_file(otio.schema.SerializableCollection(children=[first, second]), str(project))
    wav = burst(tmp_path / "hit.wav")
    assert main(["place", str(project), "--wav", str(wav), "--at", "40", "--sequence", "Reel 2"]) == 0
    placed = {t.name: t for t in otio.adapters.read_from_file(str(project)).find_children(
        descended_from_type=otio.schema.Timeline)}
    assert not placed["Assembly"].audio_tracks() and len(placed["Reel 2"].audio_tracks()) == 1
    before = project.read_bytes()
    assert main(["place", str(project), "--wav", str(wav), "--at", "40", "--sequence", "Reel 9"]) == 2
    assert "no sequence named 'Reel 9'. Sequences: 'Assembly', 'Reel 2'." in capsys.readouterr().err
    assert project.read_bytes() == before


def test_a_fault_inside_a_bridge_is_one_line_not_a_traceback(tmp_path):
    def read_timeline(project, **options):
        return {}["tracks"]  # what a bridge meeting an element it never saw might do

    bridge = SimpleNamespace(read_timeline=read_timeline, host_name=lambda: "Test host")
    project = Project(bridge, tmp_path / "edit.test", "edit.test")
    with pytest.raises(ProjectFormatError) as caught:
        project.read_timeline()
    assert str(caught.value).startswith("edit.test: the Test host bridge cannot handle this timeline (KeyError: 'tracks')")
    assert caught.value.__cause__ is None and "nothing was written" in str(caught.value)


def test_generate_for_a_project_writes_beside_it_not_in_the_current_folder(tmp_path, capsys, monkeypatch):
    (tmp_path / "film").mkdir()
    project = kdenlive_project(tmp_path / "film", Fraction(25))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code = main(["generate", "--project", str(project), "--steps", "1", "--seed", "3"])
    assert code == 0, capsys.readouterr().err
    wavs = [Path(line) for line in capsys.readouterr().out.splitlines() if line.endswith(".wav")]
    assert [w.parent for w in wavs] == [project.parent / "Foley Desk"] and wavs[0].is_file()
    assert not any(elsewhere.iterdir())
