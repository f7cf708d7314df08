"""The vision encoder exported to ONNX: parity with torch at each precision, dynamic frame count, and use in a run."""

import json

import pytest
import torch

from engine.vta_ldm.config import STARTER
from engine.vta_ldm.vision_encoder import OnnxVisionEncoder, encode_frames, export_onnx, flow_features
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


def test_onnx_encoder_of_a_flow_model_takes_the_flow_beside_the_pixels(tmp_path):
    """The flow goes in beside the pixels; the event branch (frame differences, temporal convolutions) is inside
    the graph and gives what torch gives."""
    vision = untrained(STARTER).stages.vision
    torch.nn.init.normal_(vision.motion.conv_out.weight, std=0.1)  # the branch starts at zero: make it count
    pixels = torch.zeros(6, 3, 64, 64)
    for index in range(6):  # a bright square moving down 3 pixels a frame
        pixels[index, :, 10 + 3 * index : 22 + 3 * index, 20:32] = 1.0
    assert flow_features(pixels, STARTER.vision.flow_grid)[1:].abs().max() > 0.5
    session = OnnxVisionEncoder(export_onnx(vision, tmp_path / "flow.onnx"))
    assert [i.name for i in session.inputs] == ["pixels", "flow"]
    torch.testing.assert_close(encode_frames(session, pixels), encode_frames(vision, pixels), rtol=0, atol=1e-5)
