"""MMAudio as a model family of the engine: the published files imported with strict checks, then `foley generate`
with prompts on ranges longer than a window, at 16 kHz and 44.1 kHz, through the same job path as VTA-LDM."""

import json
from fractions import Fraction

import numpy as np
import pytest
import soundfile
import torch

from engine.errors import CheckpointError
from engine.mmaudio.checkpoint import import_folder
from engine.models import load_model, models_dir
from engine.training.sample_video import make_demo_video
from tests.mmaudio_layout import write_published
from ui.cli import main


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLEY_HOME", str(tmp_path / "home"))
    return tmp_path


def test_the_published_files_import_strictly_and_load_as_written(home):
    folder = write_published(home / "download", "tiny")
    manifest = import_folder(folder, models_dir())
    assert manifest["name"] == "mmaudio-tiny" and manifest["family"] == "mmaudio" and manifest["takes_text"]
    assert {item["licence"] for item in manifest["licences"]} >= {"CC-BY-NC-4.0 (non-commercial)"}
    assert str(home) not in json.dumps(manifest)  # file names, never machine paths
    components = load_model("mmaudio-tiny")
    published = torch.load(folder / "weights" / "mmaudio_tiny.pth", weights_only=True)
    loaded = components.stages.network.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in published.items())
    vae = torch.load(folder / "ext_weights" / "v1-16.pth", weights_only=True)
    assert torch.equal(components.stages.vae.state_dict()["decoder.conv_in.weight"], vae["decoder.conv_in.weight"])


def test_a_missing_file_and_a_damaged_one_are_named(home):
    folder = write_published(home / "download", "tiny")
    (folder / "ext_weights" / "synchformer_state_dict.pth").unlink()
    with pytest.raises(CheckpointError, match=r"synchformer_state_dict\.pth \(from https://github.com/hkchengrex"):
        import_folder(folder, models_dir())
    write_published(folder, "tiny")
    network = torch.load(folder / "weights" / "mmaudio_tiny.pth", weights_only=True)
    del network["final_layer.conv.weight"]
    torch.save(network, folder / "weights" / "mmaudio_tiny.pth")
    with pytest.raises(CheckpointError, match=r"missing: final_layer\.conv\.weight"):
        import_folder(folder, models_dir())
    assert not (models_dir() / "mmaudio-tiny").exists()  # nothing half-installed


def test_a_folder_of_several_variants_asks_which(home):
    folder = write_published(home / "download", "tiny")
    write_published(folder, "tiny_44k")
    with pytest.raises(CheckpointError, match="choose one with --variant"):
        import_folder(folder, models_dir())
    assert import_folder(folder, models_dir(), variant="tiny_44k")["variant"] == "tiny_44k"


@pytest.mark.parametrize("variant, rate", [("tiny", 16000), ("tiny_44k", 44100)])
def test_foley_generate_with_a_prompt_over_two_windows(home, capsys, variant, rate):
    """9.9 s at an NTSC-like offset: two 8 s windows joined, exactly round((end - start) * rate) samples, the
    prompts recorded in the sidecar; the same seed gives the same sound, another prompt another one."""
    assert main(["models", "import", str(write_published(home / "download", variant))]) == 0
    assert "licences:" in capsys.readouterr().out
    video = make_demo_video(home / "clip.mp4", seconds=11.0)
    start, end = Fraction(1001, 3000), Fraction(103, 10)
    out = home / "out"
    common = ["generate", str(video), "--start", "1001/3000", "--end", "10.3", "--model",
              "mmaudio-" + variant.replace("_", "-"), "--steps", "2", "--seed", "5", "--level", "raw"]
    assert main([*common, "--prompt", "footsteps on gravel", "--negative-prompt", "music", "-o", str(out / "a")]) == 0
    assert main([*common, "--prompt", "footsteps on gravel", "--negative-prompt", "music", "-o", str(out / "b")]) == 0
    assert main([*common, "--prompt", "a door slams", "-o", str(out / "c")]) == 0
    (a,), (b,), (c,) = (sorted((out / x).glob("*.wav")) for x in "abc")
    audio, sample_rate = soundfile.read(a)
    assert sample_rate == rate and len(audio) == round((end - start) * rate)
    sidecar = json.loads(a.with_suffix(".json").read_text())
    assert sidecar["prompt"] == "footsteps on gravel" and sidecar["negative_prompt"] == "music"
    assert sidecar["model"]["family"] == "mmaudio" and sidecar["sampler"] == "euler" and sidecar["guidance"] == 4.5
    assert len(sidecar["window_joins"]) == 1
    assert np.array_equal(audio, soundfile.read(b)[0])
    assert not np.array_equal(audio, soundfile.read(c)[0])
    assert np.abs(audio).max() > 0


def test_a_prompt_for_a_model_without_text_is_refused_in_one_line(home, capsys):
    video = make_demo_video(home / "clip.mp4", seconds=2.0)
    assert main(["generate", str(video), "--model", "builtin", "--prompt", "rain", "-o", str(home / "out")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "does not take text prompts" in error[0]
    assert not (home / "out").exists() or not list((home / "out").iterdir())
