"""Picture encoders exported to ONNX (VTA-LDM's vision encoder, MMAudio's CLIP + Synchformer): parity with torch at each
precision, dynamic frame count, and use in a run."""

import json
from dataclasses import replace

import pytest
import torch

from engine.vta_ldm.config import STARTER
from engine.vta_ldm.vision_encoder import OnnxVisionEncoder, encode_frames, export_onnx, motion_inputs
from tests.conftest import untrained
from ui.cli import main


@pytest.fixture(scope="module")
def exports(tmp_path_factory, tiny):
    folder = tmp_path_factory.mktemp("onnx")
    return {precision: export_onnx(tiny.stages.vision, folder / f"enc-{precision}.onnx", precision)
            for precision in ("fp32", "fp16", "int8")}


@pytest.mark.parametrize("frames", [1, 7, 21])
def test_onnx_encoder_matches_torch(exports, tiny, frames):
    pixels = torch.rand(frames, 3, 224, 224, generator=torch.Generator().manual_seed(frames))
    reference = encode_frames(tiny.stages.vision, pixels)
    fp32 = OnnxVisionEncoder(exports["fp32"])
    assert fp32.providers[-1] == "CPUExecutionProvider"
    torch.testing.assert_close(encode_frames(fp32, pixels), reference, rtol=0, atol=1e-5)
    torch.testing.assert_close(encode_frames(OnnxVisionEncoder(exports["fp16"]), pixels), reference, rtol=0, atol=5e-3)
    int8 = encode_frames(OnnxVisionEncoder(exports["int8"]), pixels)
    assert torch.nn.functional.cosine_similarity(int8, reference, dim=1).min() > 0.99


def test_generate_with_the_onnx_encoder(exports, tmp_path, capsys):
    from engine.training.sample_video import make_demo_video

    video = make_demo_video(tmp_path / "clip.mp4", seconds=2.0)
    assert main(["models", "export-encoder", "builtin", "--precision", "int8", "-o", str(tmp_path / "e.onnx")]) == 0
    assert main(["generate", str(video), "--steps", "1", "--seed", "2", "--encoder", str(tmp_path / "e.onnx"),
                 "-o", str(tmp_path / "out")]) == 0
    assert json.loads(next((tmp_path / "out").glob("*.json")).read_text())["steps"] == 1
    assert main(["generate", str(video), "--encoder", str(tmp_path / "missing.onnx")]) == 2
    assert "foley models export-encoder" in capsys.readouterr().err


def test_the_models_own_int8_export_is_the_cpu_default(foley_home, tmp_path, capsys):
    """Without -o the export goes beside the model, and generate on a CPU then runs it unless told `--encoder torch`;
    the sidecar says what ran and in which precision."""
    from engine.models import resolve_precision
    from engine.training.sample_video import make_demo_video

    video = make_demo_video(tmp_path / "clip.mp4", seconds=2.0)
    assert main(["models", "export-encoder", "builtin", "--precision", "int8"]) == 0
    path = foley_home / "models" / "builtin" / "onnx" / "pictures-int8.onnx"
    assert capsys.readouterr().out.strip() == f"{path} (int8); generate uses it by default on CPUs"
    assert main(["models", "list"]) == 0 and "builtin" not in capsys.readouterr().out.splitlines()[1:]
    onnx = "onnx pictures-int8.onnx on CPUExecutionProvider"
    for encoder, expected in (([], onnx), (["--encoder", "torch"], "torch")):
        out = tmp_path / expected.split()[0]
        assert main(["generate", str(video), "--steps", "1", "--seed", "2", *encoder, "-o", str(out)]) == 0
        assert f"picture encoder {expected}" in capsys.readouterr().err
        runtime = json.loads(next(out.glob("*.json")).read_text())["runtime"]
        assert runtime == {"device": "cpu", "precision": resolve_precision("auto", "cpu"), "encoder": expected}


def test_onnx_encoder_of_a_flow_model_takes_the_motion_beside_the_pixels(tmp_path):
    """The flow and the onset detector's cells go in beside the pixels; the event branch (frame differences,
    temporal convolutions) and the onset detector with its peak picking are inside the graph and give what torch
    gives."""
    vision = untrained(replace(STARTER, vision=replace(STARTER.vision, onset_kernel=3))).stages.vision
    torch.manual_seed(0)
    torch.nn.init.normal_(vision.motion.conv_out.weight, std=0.1)  # the branches start at zero: make them count
    torch.nn.init.normal_(vision.onsets.score.weight, std=0.1)
    torch.nn.init.constant_(vision.onsets.score.bias, 2.0)  # sure of an onset everywhere: its peaks are marked
    pixels = torch.zeros(6, 3, 64, 64)
    for index in range(6):  # a bright square moving down 3 pixels a frame
        pixels[index, :, 10 + 3 * index : 22 + 3 * index, 20:32] = 1.0
    flow, cells = motion_inputs(pixels, STARTER.vision.flow_grid, STARTER.vision.onset_grid)
    assert flow[1:].abs().max() > 0.5 and cells[1:].abs().max() > 0.5
    session = OnnxVisionEncoder(export_onnx(vision, tmp_path / "flow.onnx"))
    assert [i.name for i in session.session.get_inputs()] == ["pixels", "flow", "cells"]
    expected = encode_frames(vision, pixels)
    assert (expected[:, -1] == 1).any()  # the detector marks onsets
    torch.testing.assert_close(encode_frames(session, pixels), expected, rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def mmaudio_exports(tmp_path_factory):
    """The tiny MMAudio model's two picture encoders as one graph, fp32 and int8, and the torch stages."""
    from engine.mmaudio.config import PRESETS
    from engine.mmaudio.encoders import export_onnx as export_pictures
    from engine.mmaudio.stages import build_modules

    stages = build_modules(PRESETS["tiny"])
    folder = tmp_path_factory.mktemp("mmaudio-onnx")
    paths = {p: export_pictures(stages.clip, stages.synchformer, folder / f"{p}.onnx", p) for p in ("fp32", "int8")}
    return stages, paths


@pytest.mark.parametrize("clip_frames, sync_frames", [(1, 16), (9, 40)])
def test_mmaudio_picture_encoders_on_onnxruntime_match_torch(mmaudio_exports, clip_frames, sync_frames):
    """CLIP's image tower and the Synchformer in one graph, any number of frames and segments (16 sync frames are
    one segment, 40 are four): fp32 gives what torch gives, int8 points the same way."""
    from engine.mmaudio.encoders import OnnxPictureEncoders, picture_features

    stages, paths = mmaudio_exports
    generator = torch.Generator().manual_seed(clip_frames)
    clip = torch.rand(clip_frames, 3, 384, 384, generator=generator)
    sync = torch.rand(1, sync_frames, 3, 224, 224, generator=generator)
    reference = picture_features(stages.clip, stages.synchformer, None, clip, sync)
    assert reference[1].shape[1] == 8 * ((sync_frames - 16) // 8 + 1)
    fp32 = OnnxPictureEncoders(paths["fp32"], stages.clip, stages.synchformer)
    assert fp32.providers[-1] == "CPUExecutionProvider"
    for ours, theirs in zip(picture_features(stages.clip, stages.synchformer, fp32, clip, sync), reference):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)
    int8 = OnnxPictureEncoders(paths["int8"], stages.clip, stages.synchformer)
    for ours, theirs in zip(int8(clip, sync), reference):
        assert torch.nn.functional.cosine_similarity(ours.flatten(0, -2), theirs.flatten(0, -2), dim=-1).min() > 0.98
    with pytest.raises(ValueError, match=r"\[B, T, 3, 224, 224\]"):
        fp32(clip, sync[:, :, :, :200])


def test_mmaudio_generate_with_its_onnx_encoders(tmp_path, monkeypatch, capsys):
    """`foley models export-encoder` of an MMAudio model writes one graph; `foley generate --encoder` runs it in
    place of the torch encoders: the fp32 graph gives the torch run's sound (both in fp32), and its features feed
    a bf16 network too."""
    import numpy as np
    import soundfile

    from engine.training.sample_video import make_demo_video
    from tests.mmaudio_layout import write_published

    monkeypatch.setenv("FOLEY_HOME", str(tmp_path / "home"))
    assert main(["models", "import", str(write_published(tmp_path / "download", "tiny"))]) == 0
    video = make_demo_video(tmp_path / "clip.mp4", seconds=3.0)
    assert main(["models", "export-encoder", "mmaudio-tiny", "-o", str(tmp_path / "pictures.onnx")]) == 0
    assert "pictures.onnx (fp32)" in capsys.readouterr().out
    common = ["generate", str(video), "--model", "mmaudio-tiny", "--steps", "2", "--seed", "4", "--level", "raw",
              "--prompt", "a ball bounces", "--encoder"]
    assert main([*common, "torch", "--precision", "fp32", "-o", str(tmp_path / "torch")]) == 0
    onnx = str(tmp_path / "pictures.onnx")
    assert main([*common, onnx, "--precision", "fp32", "-o", str(tmp_path / "onnx")]) == 0
    assert main([*common, onnx, "--precision", "bf16", "-o", str(tmp_path / "bf16")]) == 0
    (torch_wav,), (onnx_wav,), (bf16_wav,) = (sorted((tmp_path / x).glob("*.wav")) for x in ("torch", "onnx", "bf16"))
    torch_audio, onnx_audio = soundfile.read(torch_wav)[0], soundfile.read(onnx_wav)[0]
    assert np.abs(torch_audio).max() > 0
    assert np.abs(torch_audio - onnx_audio).max() <= 1e-3 * np.abs(torch_audio).max() + 2 / 32768
    runtime = json.loads(bf16_wav.with_suffix(".json").read_text())["runtime"]
    assert runtime == {"device": "cpu", "precision": "bf16", "encoder": "onnx pictures.onnx on CPUExecutionProvider"}
