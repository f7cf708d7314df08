"""MMAudio as a model family of the engine: the published files imported with strict checks, then `foley generate`
with prompts on ranges longer than a window, at 16 kHz and 44.1 kHz, through the same job path as VTA-LDM."""

import json
from dataclasses import replace
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
    assert main(["export", str(a), "-o", str(home / "stems")]) == 0  # stems at 48 kHz whatever the model's rate
    (stem,) = json.loads((home / "stems" / "stems.json").read_text())["stems"]
    # the WAV's own samples resampled (a 16 kHz sample is three at 48 kHz): within one of the range
    assert stem["samples"] == round(Fraction(len(audio) * 48000, rate)) and stem["prompt"] == "footsteps on gravel"
    assert abs(stem["samples"] - (end - start) * 48000) <= 1


def test_a_prompt_for_a_model_without_text_is_refused_in_one_line(home, capsys):
    video = make_demo_video(home / "clip.mp4", seconds=2.0)
    assert main(["generate", str(video), "--model", "builtin", "--prompt", "rain", "-o", str(home / "out")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "does not take text prompts" in error[0]
    assert not (home / "out").exists() or not list((home / "out").iterdir())


def _hub_cache(cache, repo: str, files: dict) -> None:
    """A Hugging Face cache holding `files` (name in repo -> source path) of `repo`, as hf_hub_download leaves it."""
    import shutil

    revision = "0123456789abcdef0123456789abcdef01234567"
    root = cache / ("models--" + repo.replace("/", "--"))
    for name, source in files.items():
        (root / "snapshots" / revision / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, root / "snapshots" / revision / name)
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(revision)


def test_pull_takes_hub_files_and_release_files_offline_from_their_caches(home, monkeypatch, capsys):
    """`foley models pull mmaudio-tiny-44k` through the real hf_hub_download code path (a populated cache,
    offline) and the kept release files; without them, one line that says what to download."""
    import shutil

    import huggingface_hub.constants as constants

    from engine.mmaudio.checkpoint import CLIP_REPO, NETWORK_REPO, VOCODER_44K_REPO, downloads_dir

    cache = home / "hf"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["models", "pull", "mmaudio-tiny-44k"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "Could not download bigvgan_generator.pt" in error[0] and "models import" in error[0]
    published = write_published(home / "download", "tiny_44k")
    _hub_cache(cache, NETWORK_REPO, {"weights/mmaudio_tiny_44k.pth": published / "weights" / "mmaudio_tiny_44k.pth"})
    _hub_cache(cache, CLIP_REPO, {"open_clip_pytorch_model.bin":
                                  published / "DFN5B-CLIP-ViT-H-14-384" / "open_clip_pytorch_model.bin"})
    hub = published / "bigvgan_v2_44khz_128band_512x"
    _hub_cache(cache, VOCODER_44K_REPO, {"bigvgan_generator.pt": hub / "bigvgan_generator.pt",
                                         "config.json": hub / "config.json"})
    assert main(["models", "pull", "mmaudio-tiny-44k"]) == 2
    assert "v1-44.pth is not downloaded and HF_HUB_OFFLINE is set" in capsys.readouterr().err
    downloads_dir().mkdir(parents=True)
    for name in ("v1-44.pth", "synchformer_state_dict.pth"):
        shutil.copy(published / "ext_weights" / name, downloads_dir() / name)
    assert main(["models", "pull", "mmaudio-tiny-44k"]) == 0
    assert "installed 'mmaudio-tiny-44k'" in capsys.readouterr().out
    assert load_model("mmaudio-tiny-44k").config.sample_rate == 44100


def test_layered_foley_three_prompts_their_own_tracks_stems_and_one_mixdown(home, capsys):
    """One job, three prompts: a variant set per layer, each layer on its own track of the real Kdenlive project,
    each take its own 48 kHz stem; the mixdown sums the layers (first take of each) and keeps the others as
    alternates."""
    from editor_plugin import mlt
    from tests.projects import kdenlive_project

    assert main(["models", "import", str(write_published(home / "download", "tiny"))]) == 0
    project = kdenlive_project(home, Fraction(25))
    out = home / "out"
    prompts = ["footsteps on gravel", "wind", "cloth rustle"]
    code = main(["generate", "--project", str(project), "--model", "mmaudio-tiny", "--steps", "1", "--seed", "3",
                 "--variants", "2", *[arg for text in prompts for arg in ("--prompt", text)], "--place", "-o", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    wavs = sorted(out.glob("*.wav"))
    assert [w.name for w in wavs] == [f"edit_0.800-6.400_{layer}_v{n}_seed{seed}.wav"
                                      for layer in ("L1-footsteps-on-gravel", "L2-wind", "L3-cloth-rustle")
                                      for n, seed in ((1, 3), (2, 4))]
    layers = [json.loads(w.with_suffix(".json").read_text())["layer"] for w in wavs]
    assert [(x["number"], x["of"], x["prompt"]) for x in layers[::2]] == [(1, 3, prompts[0]), (2, 3, prompts[1]),
                                                                          (3, 3, prompts[2])]
    first = {n: soundfile.read(w)[0] for n, w in enumerate(wavs)}
    assert not np.array_equal(first[0], first[2])  # another prompt, another sound, same seed
    timeline = mlt.read_timeline(project)
    tracks = {t.name: len(t.find_clips()) for t in timeline.audio_tracks()}
    for text in prompts:  # each layer's two variants on its own tracks
        assert sum(count for name, count in tracks.items() if name.startswith("Foley") and text in name) == 2
    assert main(["export", *map(str, wavs), "-o", str(home / "stems")]) == 0
    manifest = json.loads((home / "stems" / "stems.json").read_text())
    assert len(manifest["stems"]) == 6
    assert [s["take"] for s in manifest["stems"]] == ["mixdown", "alternate"] * 3
    assert [s["prompt"] for s in manifest["stems"][::2]] == prompts
    mix = soundfile.read(home / "stems" / manifest["mixdown"]["file"])[0]
    assert len(mix) == round(Fraction(28, 5) * 48000)  # 0.8-6.4 s at 48 kHz
    assert all(s["samples"] == len(mix) for s in manifest["stems"])
    assert "CC-BY-NC-4.0 (non-commercial)" in manifest["licences"]


def test_a_layered_job_encodes_each_window_of_pictures_once(home):
    """Three prompts over two windows: CLIP's image tower and the Synchformer run once per window, not per layer,
    and each layer sounds as the same prompt does in a job of its own."""
    from engine.config import Prompt
    from engine.core.job import JobSpec, run_job
    from engine.mmaudio.pipeline import SAMPLING_PRESETS
    from engine.video import EditSpan

    import_folder(write_published(home / "download", "tiny"), models_dir())
    components = load_model("mmaudio-tiny")
    calls = {"clip": 0, "sync": 0}
    components.stages.clip.visual.register_forward_hook(lambda *_: calls.__setitem__("clip", calls["clip"] + 1))
    components.stages.synchformer.register_forward_hook(lambda *_: calls.__setitem__("sync", calls["sync"] + 1))
    video = make_demo_video(home / "clip.mp4", seconds=11.0)
    prompts = (Prompt("footsteps"), Prompt("wind", "music"), Prompt("cloth"))

    def job(layers, out):
        spec = JobSpec(model="mmaudio-tiny", sampling=replace(SAMPLING_PRESETS["fast"], steps=1), seeds=(2,),
                       start=Fraction(0), end=Fraction(10), source="clip",
                       edit=(EditSpan(video, Fraction(0), Fraction(10), Fraction(0)),), prompts=layers)
        return run_job(spec, components, home / out)

    layered = job(prompts, "layered")
    assert len(layered.generations[0].joins) == 1 and calls == {"clip": 2, "sync": 2}  # two windows, once each
    alone = job(prompts[1:2], "alone")
    np.testing.assert_array_equal(layered.generations[1].variants[0].audio, alone.generations[0].variants[0].audio)
