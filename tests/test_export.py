"""Stem packages: BWF time references, loudness by ffmpeg's meter, manifest, OTIO, and a mux that copies video."""

import hashlib
import json
from fractions import Fraction

import av
import numpy as np
import opentimelineio as otio
import pytest

from export.package import export_package, stem_input
from export.stems import ExportError, read_time_reference
from engine.sample_video import make_demo_video
from tests.projects import burst
from tests.test_stems import ffmpeg_loudness
from ui.cli import main


def foley(tmp_path, name: str, start: str, seed: int):
    wav = burst(tmp_path / f"{name}.wav", seconds=2.0)
    sidecar = {"format": "FoleySidecar.1", "seed": seed, "model": {"name": "tiny"}, "sampler": "ddpm", "steps": 3,
               "guidance": 3.0, "licences": [{"component": "all", "licence": "test licence"}],
               "source": {"path": "/shots/a.mov", "start": start, "end": "9"}}
    wav.with_suffix(".json").write_text(json.dumps(sidecar))
    return wav


def video_packets(path) -> list[str]:
    with av.open(str(path)) as container:
        return [hashlib.sha256(bytes(p)).hexdigest() for p in container.demux(container.streams.video[0]) if p.size]


def test_package_places_stems_by_timecode_at_the_loudness_target(tmp_path):
    inputs = [stem_input(foley(tmp_path, "door", "2", 1)), stem_input(foley(tmp_path, "steps", "11/2", 2))]
    hour = Fraction(3600)
    manifest = export_package(inputs, tmp_path / "pkg", timeline_start=hour, rate=Fraction(25))
    package = tmp_path / "pkg"
    assert manifest["format"] == "StemSet.1" and manifest["licences"] == ["test licence"]
    assert [s["seed"] for s in manifest["stems"]] == [1, 2] and manifest["stems"][0]["source"] == "/shots/a.mov"
    refs = [read_time_reference(package / s["file"]) for s in manifest["stems"]]
    assert refs == [(3600 + 2) * 48000, int((3600 + Fraction(11, 2)) * 48000)]
    assert read_time_reference(package / "mixdown_48k.wav") == (3600 + 2) * 48000
    lufs, peak = ffmpeg_loudness(package / "mixdown_48k.wav")
    assert abs(lufs + 23) <= 0.5 and peak <= -0.9
    assert json.loads((package / "stems.json").read_text()) == manifest
    timeline = otio.adapters.read_from_file(str(package / "stems.otio"))
    starts = {c.name: c.range_in_parent().start_time.value for c in timeline.find_clips()}
    assert starts == {"door_48k": 50, "steps_48k": 137.5, "mixdown_48k": 50}
    assert not list(tmp_path.glob(".*part"))


def test_mux_copies_the_video_stream_and_keeps_or_replaces_the_audio(tmp_path):
    video = make_demo_video(tmp_path / "clip.mp4", seconds=8.0)
    with_audio = tmp_path / "with-audio.mp4"
    from export.mux import mux

    mux(video, np.full(48000, 0.1, np.float32), with_audio)  # a video that has an audio track of its own
    inputs = [stem_input(foley(tmp_path, "door", "2", 1))]
    keep = export_package(inputs, tmp_path / "keep", video=with_audio)
    drop = export_package(inputs, tmp_path / "drop", video=with_audio, keep_original_audio=False)
    for manifest, folder, audio_tracks in ((keep, "keep", 2), (drop, "drop", 1)):
        muxed = tmp_path / folder / manifest["muxed"]["file"]
        assert video_packets(muxed) == video_packets(video)  # bit-identical video: copied, not re-encoded
        with av.open(str(muxed)) as out, av.open(str(video)) as source:
            assert len(out.streams.audio) == audio_tracks
            assert abs(out.duration - source.duration) <= 0.05 * av.time_base


def test_failures_leave_nothing_behind(tmp_path):
    inputs = [stem_input(foley(tmp_path, "door", "2", 1))]
    (tmp_path / "taken").mkdir()
    with pytest.raises(ExportError, match="already exists"):
        export_package(inputs, tmp_path / "taken")
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("not a video")
    with pytest.raises(ExportError, match="Muxing into notes_foley.mp4 failed"):
        export_package(inputs, tmp_path / "pkg", video=not_video)
    assert not (tmp_path / "pkg").exists() and not list(tmp_path.glob(".*part"))
    with pytest.raises(ExportError, match="no sidecar"):
        stem_input(burst(tmp_path / "bare.wav"))


def test_cli_export_generated_variants_with_mux(tmp_path, capsys):
    video = make_demo_video(tmp_path / "clip.mp4", seconds=6.0)
    assert main(["generate", str(video), "--start", "1", "--end", "4", "--steps", "1", "--seed", "5",
                 "--variants", "2", "-o", str(tmp_path / "gen")]) == 0
    wavs = sorted(str(p) for p in (tmp_path / "gen").glob("*.wav"))
    capsys.readouterr()
    assert main(["export", *wavs, "-o", str(tmp_path / "pkg"), "--loudness", "none", "--timeline-start",
                 "01:00:00:00", "--mux", str(video)]) == 0
    assert "2 stem(s), mixdown, stems.json, stems.otio, clip_foley.mp4" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "pkg" / "stems.json").read_text())
    assert [s["record_start"] for s in manifest["stems"]] == ["1", "1"]
    assert [s["seed"] for s in manifest["stems"]] == [5, 6] and manifest["licences"]
    assert read_time_reference(tmp_path / "pkg" / manifest["stems"][0]["file"]) == 3601 * 48000
    assert main(["export", wavs[0], "-o", str(tmp_path / "pkg")]) == 2
    assert "already exists" in capsys.readouterr().err


def test_timeline_start_timecodes_count_frames_at_the_rate():
    from export.commands import timecode_seconds

    assert timecode_seconds("01:00:00:00", Fraction(25)) == 3600
    ntsc = Fraction(30000, 1001)
    assert timecode_seconds("01:00:00;00", ntsc) == 107_892 / ntsc  # drop-frame: an hour of wall time, nearly
    assert timecode_seconds("01:00:00:00", ntsc) == 108_000 / ntsc  # non-drop at 29.97 runs 3.6 s behind
    assert timecode_seconds("12.5", ntsc) == Fraction(25, 2)
