"""Stem packages: BWF time references, loudness by ffmpeg's and pyloudnorm's meters, manifest, OTIO, alternate takes,
a mux that copies video and an AAC under the ceiling; variants written at the documented level."""

import hashlib
import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import opentimelineio as otio
import pytest
import soundfile

from engine.config import SAMPLING_PRESETS
from engine.core.generate import Generation, Variant
from engine.core.output import to_pcm16, write_variants
from engine.models import load_model
from engine.training.sample_video import make_demo_video
from export.package import export_package, stem_input
from export.stems import ExportError, read_time_reference
from tests.projects import burst
from tests.test_stems import ffmpeg_loudness, impacts, lufs, true_peak_4x
from ui.cli import main

SIDECAR = {"format": "FoleySidecar.1", "model": {"name": "tiny"}, "sampler": "ddpm", "steps": 3, "guidance": 3.0,
           "licences": [{"component": "all", "licence": "test licence"}]}


def with_sidecar(wav, seed: int, start: str, end: str = "9"):
    wav.with_suffix(".json").write_text(json.dumps({**SIDECAR, "seed": seed,
                                                    "source": {"path": "/shots/a.mov", "start": start, "end": end}}))
    return wav


def foley(tmp_path, name: str, start: str, seed: int):
    return with_sidecar(burst(tmp_path / f"{name}.wav", seconds=2.0), seed, start)


def sine_take(tmp_path, hz: int, seed: int):
    """A 3 s take of the range 2-5 s that is a pure tone, so the mixdown shows which take it holds."""
    wav = tmp_path / f"take_{hz}hz.wav"
    soundfile.write(wav, 0.3 * np.sin(2 * np.pi * hz * np.arange(48000) / 16000), 16000, subtype="PCM_16")
    return with_sidecar(wav, seed, "2", "5")


def tone_level(audio: np.ndarray, hz: float, rate: int = 48000) -> float:
    spectrum, freqs = np.abs(np.fft.rfft(audio)), np.fft.rfftfreq(len(audio), 1 / rate)
    return float(spectrum[np.abs(freqs - hz) < 5].max())


def decoded_last_audio(path) -> np.ndarray:
    """The muxed foley track decoded with PyAV, as a player would."""
    with av.open(str(path)) as container:
        return np.concatenate([f.to_ndarray()[0] for f in container.decode(container.streams.audio[-1])]).astype(float)


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
    measured, peak = ffmpeg_loudness(package / "mixdown_48k.wav")
    assert abs(measured + 23) <= 0.5 and peak <= -0.9
    mixdown, rate = soundfile.read(package / "mixdown_48k.wav", dtype="float64")
    assert abs(lufs(mixdown, rate) + 23) <= 0.5 and true_peak_4x(mixdown) <= -1.0
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
    out = capsys.readouterr().out
    assert "2 stem(s), mixdown, stems.json, stems.otio, clip_foley.mp4" in out
    assert "1 alternate take(s) kept as stems, not in the mixdown" in out  # two variants of one range
    manifest = json.loads((tmp_path / "pkg" / "stems.json").read_text())
    assert [s["take"] for s in manifest["stems"]] == ["mixdown", "alternate"]
    generated = json.loads(Path(wavs[0]).with_suffix(".json").read_text())["level"]
    assert generated["mode"] == "normalised" and generated["true_peak_dbtp"] <= -1.0 + 1e-9
    assert [s["record_start"] for s in manifest["stems"]] == ["1", "1"]
    assert [s["seed"] for s in manifest["stems"]] == [5, 6] and manifest["licences"]
    assert read_time_reference(tmp_path / "pkg" / manifest["stems"][0]["file"]) == 3601 * 48000
    assert main(["export", wavs[0], "-o", str(tmp_path / "pkg")]) == 2
    assert "already exists" in capsys.readouterr().err


def test_timeline_start_timecodes_count_frames_at_the_rate():
    from ui.commands.export import timecode_seconds

    assert timecode_seconds("01:00:00:00", Fraction(25)) == 3600
    ntsc = Fraction(30000, 1001)
    assert timecode_seconds("01:00:00;00", ntsc) == 107_892 / ntsc  # drop-frame: an hour of wall time, nearly
    assert timecode_seconds("01:00:00:00", ntsc) == 108_000 / ntsc  # non-drop at 29.97 runs 3.6 s behind
    assert timecode_seconds("12.5", ntsc) == Fraction(25, 2)


@pytest.mark.parametrize("first", [440, 1000])
def test_alternate_takes_of_one_range_are_stems_never_summed(tmp_path, first):
    other = 1440 - first
    inputs = [stem_input(sine_take(tmp_path, first, 1)), stem_input(sine_take(tmp_path, other, 2)),
              stem_input(foley(tmp_path, "door", "7", 3))]  # another range: mixed in
    manifest = export_package(inputs, tmp_path / "pkg")
    assert [s["take"] for s in manifest["stems"]] == ["mixdown", "alternate", "mixdown"]
    assert manifest["stems"][1]["alternate_of"] == manifest["stems"][0]["file"]
    mixdown, rate = soundfile.read(tmp_path / "pkg" / "mixdown_48k.wav", dtype="float64")
    takes = mixdown[: 3 * rate]  # the mixdown starts at 2 s, the takes' range; the door comes at 7 s
    assert tone_level(takes, first) > 100 * tone_level(takes, other)
    assert np.abs(mixdown[5 * rate :]).max() > 0.1  # the door, a range of its own, is in the mixdown too
    timeline = otio.adapters.read_from_file(str(tmp_path / "pkg" / "stems.otio"))
    assert [t.enabled for t in timeline.tracks] == [True, False, True, True]  # the alternate's track is muted


def test_muxed_aac_reaches_the_target_under_the_true_peak_ceiling(tmp_path):
    video = make_demo_video(tmp_path / "clip.mp4", seconds=6.0)
    wav = tmp_path / "hits.wav"
    soundfile.write(wav, impacts(4.0), 16000, subtype="PCM_16")
    manifest = export_package([stem_input(with_sidecar(wav, 1, "1"))], tmp_path / "pkg", video=video)
    aac = decoded_last_audio(tmp_path / "pkg" / manifest["muxed"]["file"])
    assert abs(lufs(aac, 48000) + 23) <= 0.5 and true_peak_4x(aac) <= -1.0, (lufs(aac, 48000), true_peak_4x(aac))
    assert manifest["muxed"]["loudness"]["true_peak_dbtp"] <= -1.0
    mixdown, rate = soundfile.read(tmp_path / "pkg" / "mixdown_48k.wav", dtype="float64")
    assert abs(lufs(mixdown, rate) + 23) <= 0.5 and true_peak_4x(mixdown) <= -1.0


@pytest.fixture(scope="module")
def builtin():
    return load_model("builtin")


def quiet_generation() -> Generation:
    """Two variants as quiet as the model's output (about -45 dBFS RMS)."""
    t = np.arange(3 * 16000) / 16000
    variants = (Variant(5, (0.008 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)),
                Variant(6, impacts(4.0, 3.0).astype(np.float32)))
    return Generation(variants, 16000, Fraction(1), Fraction(4), (), (), SAMPLING_PRESETS["fast"], (), np.zeros(0))


def test_variants_are_written_at_the_documented_level_and_raw_on_request(tmp_path, builtin):
    generation = quiet_generation()
    normal = write_variants(generation, builtin, "clip.mp4", tmp_path / "normal")
    raw = write_variants(generation, builtin, "clip.mp4", tmp_path / "raw", level="raw")
    for wav, raw_wav, variant in zip(normal, raw, generation.variants):
        level = json.loads(wav.with_suffix(".json").read_text())["level"]
        audio, rate = soundfile.read(wav, dtype="float64")
        assert level["mode"] == "normalised" and level["gain_db"] > 10
        assert lufs(audio, rate) <= -23 + 0.5 and true_peak_4x(audio) <= -1.0 + 0.01
        assert abs(lufs(audio, rate) + 23) <= 0.5 or abs(true_peak_4x(audio) + 1) <= 0.1  # the target, or the ceiling
        assert abs(level["integrated_lufs"] - lufs(audio, rate)) <= 0.1
        assert np.array_equal(soundfile.read(raw_wav, dtype="int16")[0], to_pcm16(variant.audio))  # unchanged
        assert json.loads(raw_wav.with_suffix(".json").read_text())["level"]["gain_db"] == 0.0
    gained = soundfile.read(normal[0], dtype="float64")[0]
    assert np.allclose(gained, variant_gain(generation.variants[0].audio, normal[0]), atol=2 / 32767)
    assert generation.variants[0].audio.max() < 0.01  # the engine's arrays are left as the model made them


def variant_gain(audio: np.ndarray, wav) -> np.ndarray:
    """The model's samples times the gain the sidecar records."""
    return audio * 10 ** (json.loads(wav.with_suffix(".json").read_text())["level"]["gain_db"] / 20)
