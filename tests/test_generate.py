"""`generate()` and the `foley` CLI end to end on the tiny model, including every bad input."""

import json
import subprocess
import sys
import threading
import tomllib
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from engine.config import SAMPLING_PRESETS
from engine.core.generate import JobCancelled, generate, range_samples
from engine.errors import UnsupportedRangeError
from engine.training.sample_video import make_demo_video
from engine.video import decode_frames
from tests.conftest import coded_video
from tests.published_layout import build_snapshot
from ui.cli import main

FAST = replace(SAMPLING_PRESETS["reference"], steps=3)


def frames_of(video, start, end):
    return decode_frames(video, Fraction(start), Fraction(end))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_demo_video(tmp_path_factory.mktemp("media") / "ball.mp4", seconds=12.0)


def test_range_samples_is_exact_rounding():
    assert range_samples(Fraction(2), Fraction(19, 2), 16000) == 120_000
    ntsc_frame = Fraction(1001, 24000)
    assert range_samples(Fraction(0), 37 * ntsc_frame, 16000) == round(37 * 1001 / 24000 * 16000)  # 24,691.33
    assert range_samples(Fraction(0), Fraction(1, 32000), 16000) == 1  # half a sample rounds up


def test_variants_are_reproducible_and_distinct(clip, tiny):
    seen = []
    result = generate(frames_of(clip, 2, Fraction(19, 2)), components=tiny, sampling=FAST, seeds=(7, 8), callback=seen.append)
    assert [v.seed for v in result.variants] == [7, 8]
    assert all(v.audio.shape == (120_000,) and v.audio.dtype == np.float32 for v in result.variants)
    assert not np.array_equal(result.variants[0].audio, result.variants[1].audio)
    same = generate(frames_of(clip, 2, Fraction(19, 2)), components=tiny, sampling=FAST, seeds=(7, 8))
    for a, b in zip(same.variants, result.variants):
        np.testing.assert_array_equal(a.audio, b.audio)  # a seed reproduces its run bit for bit
    alone = generate(frames_of(clip, 2, Fraction(19, 2)), components=tiny, sampling=FAST, seeds=(8,))
    scale = np.abs(result.variants[1].audio).max()
    # alone, the seed-8 variant differs only by batch-size rounding in the decoders
    np.testing.assert_allclose(alone.variants[0].audio, result.variants[1].audio, rtol=0, atol=1e-4 * scale)
    stages = [info.stage for info in seen]
    assert stages[0] == "decode" and stages[-1] == "vocode" and seen[-1].step == seen[-1].total
    steps = [(info.variant, info.step) for info in seen if info.stage == "sample"]
    assert steps == [(0, s) for s in range(0, 4)]  # both variants sample in one batch


@pytest.mark.parametrize("rate", [Fraction(24000, 1001), Fraction(30000, 1001)])
def test_ntsc_ranges_give_exact_sample_counts(tmp_path, tiny, rate):
    path = coded_video(tmp_path / "ntsc.mp4", [Fraction(i) / rate for i in range(100)], rate)
    start, end = 5 / rate, 77 / rate  # a frame-accurate range from an editor
    result = generate(frames_of(path, start, end), components=tiny, sampling=replace(FAST, steps=1))
    assert result.variants[0].audio.shape == (range_samples(start, end, 16000),)


def test_short_and_window_length_ranges(clip, tiny):
    short = generate(frames_of(clip, 1, Fraction(7, 5)), components=tiny, sampling=replace(FAST, steps=1))
    assert short.variants[0].audio.shape == (6400,) and len(short.frame_times) == 1
    full = generate(frames_of(clip, 0, Fraction(256, 25)), components=tiny, sampling=replace(FAST, steps=1))
    assert full.variants[0].audio.shape == (163_840,) and len(full.frame_times) == 21 and full.joins == ()


def test_ranges_past_the_limit_are_a_clear_error(clip, tiny):
    frames = frames_of(clip, 0, 1)
    with pytest.raises(UnsupportedRangeError, match="one job covers at most 3 h"):
        generate(replace(frames, end=Fraction(4 * 3600)), components=tiny, sampling=FAST)


def test_cancel_stops_the_job(clip, tiny):
    cancel = threading.Event()

    def stop_after_two_steps(info):
        if info.stage == "sample" and info.step == 2:
            cancel.set()

    with pytest.raises(JobCancelled):
        generate(frames_of(clip, 0, 2), components=tiny, sampling=FAST, callback=stop_after_two_steps, cancel=cancel)


@pytest.mark.slow
def test_reference_mode_runs_the_published_300_step_loop(clip, tiny):
    seen = []
    result = generate(frames_of(clip, 0, 1), components=tiny, seeds=(1,), callback=seen.append)
    assert result.timesteps[0] == 898 and result.timesteps[-1] == 1 and len(result.timesteps) == 300
    assert max(info.step for info in seen if info.stage == "sample") == 300
    assert np.isfinite(result.variants[0].audio).all()


def test_cli_generate_writes_wavs_and_sidecars(clip, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["generate", str(clip), "--start", "2.0", "--end", "9.5", "--variants", "2", "--seed", "7",
                 "--steps", "2", "-o", str(out)])
    assert code == 0
    captured = capsys.readouterr()
    wavs = sorted(out.glob("*.wav"))
    assert [p.name for p in wavs] == ["ball_2.000-9.500_v1_seed7.wav", "ball_2.000-9.500_v2_seed8.wav"]
    assert captured.out.split() == [str(p) for p in wavs]
    assert "sample  [" in captured.err and "built-in starter model" in captured.err
    for wav in wavs:
        info = soundfile.info(wav)
        assert (info.frames, info.samplerate, info.subtype) == (120_000, 16000, "PCM_16")
        meta = json.loads(wav.with_suffix(".json").read_text())
        assert meta["format"] == "FoleySidecar.1" and meta["steps"] == 2 and meta["guidance"] == 3.0
        assert meta["source"]["start"] == "2" and meta["source"]["end"] == "19/2"
        assert meta["licences"] and meta["model"]["trained"] is True
    assert not list(out.glob(".*part"))


def test_cli_imported_model_licences_reach_the_sidecar(clip, tmp_path, capsys):
    build_snapshot(tmp_path / "snap")
    assert main(["models", "import", str(tmp_path / "snap")]) == 0
    assert "test-sized" in capsys.readouterr().out
    assert main(["models", "list"]) == 0
    assert "tiny: vta-ldm tiny; licences: all: none (test-sized checkpoint)" in capsys.readouterr().out
    out = tmp_path / "out"
    assert main(["generate", str(clip), "--end", "1", "--steps", "1", "--seed", "1", "--model", "tiny", "-o", str(out)]) == 0
    meta = json.loads(next(out.glob("*.json")).read_text())
    assert meta["model"] == {"name": "tiny", "family": "vta-ldm", "preset": "tiny", "trained": True}
    assert meta["licences"][0]["licence"] == "none (test-sized checkpoint)"
    assert main(["models", "remove", "tiny"]) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.mp4"], "No such video file"),
        (["{clip}", "--start", "3", "--end", "3"], "at or before its start"),
        (["{clip}", "--start", "5", "--end", "13"], "goes past the end"),
        (["{clip}", "--start", "14"], "after the end of ball.mp4"),
        (["{clip}", "--end", "13"], "goes past the end"),
        (["{clip}", "--model", "vta-ldm-clip4clip-v-large"], "foley models pull vta-ldm"),
        (["{clip}", "--steps", "0"], "steps=0 is out of range"),
        (["{clip}", "--variants", "0"], "--variants 0: ask for 1 to 16 variants"),
        (["{clip}", "--variants", "-1"], "--variants -1: ask for 1 to 16 variants"),
        (["{clip}", "--seed", "99999999999999999999"], "--seed 99999999999999999999 is out of range; use a whole number from 0 to 4294967295."),
        (["{clip}", "--seed", "-1"], "--seed -1 is out of range"),
        (["{clip}", "--seed", "4294967295", "--variants", "2"], "from 0 to 4294967294 (with 2 variants"),
        (["{clip}", "--device", "cuda"], "sees no CUDA GPU; use --device cpu"),
        (["{clip}", "--device", "tpu"], "device 'tpu' is unknown"),
        (["{media}"], "is a folder, not a video file"),
    ],
)
def test_cli_bad_input_fails_clearly_and_writes_nothing(clip, tmp_path, capsys, args, message):
    out = tmp_path / "out"
    # --steps 1 first keeps the runs short; a case's own --steps comes later and wins (argparse: last one counts)
    code = main(["generate", "--steps", "1", *[a.format(clip=clip, media=clip.parent) for a in args], "-o", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err  # one line, no traceback
    assert not out.exists() or not any(out.iterdir())


def test_foley_demo_console_script(tmp_path):
    foley = Path(sys.executable).with_name("foley")
    env = {"FOLEY_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([str(foley), "demo", "--steps", "2", "--seed", "3", "-o", str(tmp_path / "demo")],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    wav = Path(run.stdout.strip())
    assert wav.is_file() and soundfile.info(wav).frames == 128_000  # the 8 s demo clip at 16 kHz
    assert "built-in starter model" in run.stderr and "untrained" not in run.stderr


def test_import_contracts_hold():
    linter = Path(sys.executable).with_name("lint-imports")
    run = subprocess.run([str(linter)], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    contracts = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert run.returncode == 0, run.stdout
    assert f"{len(contracts['contracts'])} kept, 0 broken" in run.stdout


def test_pcm_conversion_clips_instead_of_wrapping():
    from engine.core.output import to_pcm16

    pcm = to_pcm16(np.array([0.0, 0.5, 1.0, 1.5, -1.0, -2.0], np.float32))
    assert pcm.tolist() == [0, 16384, 32767, 32767, -32767, -32767]


def test_frames_of_the_wrong_shape_are_refused(clip, tiny):
    frames = frames_of(clip, 0, 1)
    with pytest.raises(ValueError, match=r"needs uint8 \[count >= 1, 224, 224, 3\]"):
        generate(replace(frames, rgb=frames.rgb[:, :100]), components=tiny, sampling=FAST)
    with pytest.raises(ValueError, match="2 frames came with 1 frame times"):
        generate(replace(frames, times=frames.times[:1]), components=tiny, sampling=FAST)


def test_cli_fast_preset_uses_dpm_solver(clip, tmp_path):
    out = tmp_path / "out"
    assert main(["generate", str(clip), "--end", "2", "--preset", "fast", "--steps", "2", "--seed", "1", "-o", str(out)]) == 0
    meta = json.loads(next(out.glob("*.json")).read_text())
    assert (meta["sampler"], meta["steps"]) == ("dpmpp_2m", 2)
    draft = ["generate", str(clip), "--end", "2", "--preset", "draft", "--seed", "1", "-o", str(tmp_path / "d")]
    assert main(draft) == 0
    meta = json.loads(next((tmp_path / "d").glob("*.json")).read_text())
    assert (meta["sampler"], meta["steps"], meta["spacing"]) == ("dpmpp_2m", 10, "trailing")


def test_bf16_unet_on_the_cpu_stays_close_to_fp32(clip, tiny):
    from engine.models import place

    frames = frames_of(clip, 0, 2)
    fp32 = generate(frames, components=tiny, sampling=replace(SAMPLING_PRESETS["fast"], steps=3), seeds=(1,))
    bf16 = generate(frames, components=place(tiny, "cpu", "bf16"), sampling=replace(SAMPLING_PRESETS["fast"], steps=3),
                    seeds=(1,))
    a, b = fp32.variants[0].audio, bf16.variants[0].audio
    assert not np.array_equal(a, b)  # bf16 really ran
    assert np.abs(a - b).max() <= 0.1 * np.abs(a).max()
    with pytest.raises(ValueError, match="fp16 runs on GPUs"):
        place(tiny, "cpu", "fp16")
    assert tiny.stages.unet.dtype == torch.float32  # the shared model was copied, not converted


def test_auto_precision_is_bf16_only_on_cpus_with_bf16_units(tmp_path, monkeypatch):
    from engine import models

    flags = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512bw {}\n"
    for extra, expected in (("", False), ("avx512_bf16", True), ("amx_tile amx_bf16", True)):
        (tmp_path / "cpuinfo").write_text(flags.format(extra))
        assert models.cpu_has_bf16_units(tmp_path / "cpuinfo") is expected
    assert not models.cpu_has_bf16_units(tmp_path / "missing")  # not Linux: fp32
    for units, cpu in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(models, "cpu_has_bf16_units", lambda: units)
        assert models.resolve_precision("auto", "cpu") == cpu
        assert models.resolve_precision("auto", "cuda") == "fp16"
        assert models.resolve_precision("fp32", "cpu") == "fp32"


def test_open_model_converts_the_unet_while_loading():
    """What `foley generate` loads equals loading in fp32 and converting a copy, without the fp32 copy."""
    from engine.models import load_model, open_model, place

    opened = open_model("builtin", "cpu", "bf16", "torch")
    placed = place(load_model("builtin"), "cpu", "bf16")
    assert (opened.precision, opened.encoder, opened.stages.unet.dtype) == ("bf16", "torch", torch.bfloat16)
    for name, tensor in placed.stages.unet.state_dict().items():
        assert torch.equal(opened.stages.unet.state_dict()[name], tensor), name
    assert next(opened.stages.vocoder.parameters()).dtype == torch.float32  # only the UNet's precision is set
