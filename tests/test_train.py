"""`foley train`: mel features, the training stages (deterministic, resumable), LoRA, the ablation switches, and
the command end to end (train, install, generate, fine-tune)."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from engine.errors import InputVideoError
from engine.models import load_model
from engine.training.dataset import TrainingSet, clean, load_training_set, with_motion
from engine.training.synthetic import make_clip, write_clip
from engine.training.train import (
    LoRALinear,
    Recipe,
    VAETrainer,
    add_lora,
    mels_of,
    merge_lora,
    mirrored,
    onset_targets,
    splice,
    train_ldm,
    train_model,
    train_onsets,
    train_vae,
    with_switches,
)
from engine.video import fit_frames
from engine.vta_ldm.config import STARTER, TINY
from engine.vta_ldm.mel import log_mel, mel_filterbank
from engine.vta_ldm.unet import aligned_features, build_unet
from tests.conftest import installed, untrained

# a starter-shaped model small enough for unit tests: 25 fps, 4 s windows, aligned conditioning
SMALL = with_switches(replace(STARTER, unet=TINY.unet, vae=TINY.vae, vision=replace(TINY.vision, image_size=32,
                                                                                     patch_size=16, pe_max_frames=100)),
                      pe=True, flow_grid=0, aligned=4)


def test_log_mel_puts_a_tone_in_its_band_and_silence_at_the_floor():
    rate = 16000
    tone = torch.sin(2 * torch.pi * 1000 * torch.arange(rate) / rate)[None]
    mel = log_mel(tone, 100)
    assert mel.shape == (1, 100, 64)
    centres = (mel_filterbank() * torch.linspace(0, 8000, 513)).sum(1) / mel_filterbank().sum(1)
    assert abs(float(centres[mel[0].mean(0).argmax()]) - 1000) < 100
    assert float(log_mel(torch.zeros(1, rate), 100).max()) == pytest.approx(np.log(1e-5))


def test_aligned_features_place_each_frame_on_its_latent_frame():
    context = torch.arange(2 * 3 * 5, dtype=torch.float32).reshape(2, 3, 5)  # 3 frames, 5 dims
    laid = aligned_features(context, SMALL)  # 25 fps frames on 25 Hz latent frames: one to one
    assert laid.shape == (2, 4, SMALL.latent_frames, SMALL.latent_bins)
    assert torch.equal(laid[:, :, :3, 0], context[..., -4:].transpose(1, 2))
    assert not laid[:, :, 3:].any()  # after the last frame: nothing
    published = replace(SMALL, frame_rate=2, latent_frames=256)  # 2 fps on 25 Hz: frame k covers 12.5 latent frames
    two_fps = aligned_features(torch.ones(1, 20, 5).cumsum(1), published)
    assert float(two_fps[0, 0, 12, 0]) == 1 and float(two_fps[0, 0, 13, 0]) == 2
    assert aligned_features(context, TINY) is None


def _clips(count: int, size: int = 32) -> TrainingSet:
    clips = [make_clip(seed, size=96) for seed in range(count)]
    frames = np.stack([fit_frames(c.frames, size) for c in clips])
    return TrainingSet(torch.from_numpy(frames), torch.from_numpy(np.stack([c.audio for c in clips])),
                       tuple(str(c.seed) for c in clips))


def _ldm(tmp_path: Path, steps: int, work: str, config=SMALL, **recipe) -> dict:
    dataset = _clips(3)
    latents = torch.randn(3, *config.latent_shape, generator=torch.Generator().manual_seed(1))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        modules = {"vision": untrained(config).stages.vision, "unet": build_unet(config.unet, skip_zero_context=False)}
    losses = train_ldm(dataset, latents, modules, config, Recipe(steps=steps, batch=2, checkpoint_every=1, **recipe),
                       tmp_path / work, progress=lambda step, loss: None)
    return {"losses": losses, **{k: v.state_dict() for k, v in modules.items()}}


def test_ldm_training_is_deterministic_and_resumes_exactly(tmp_path):
    straight = _ldm(tmp_path, 3, "a", concat=True)
    again = _ldm(tmp_path, 3, "b", concat=True)
    assert straight["losses"] == again["losses"]
    _ldm(tmp_path, 2, "c", concat=True)  # interrupted after 2 steps: its state file is on disk
    resumed = _ldm(tmp_path, 3, "c", concat=True)
    assert len(resumed["losses"]) == 1 and resumed["losses"][0] == straight["losses"][2]
    for part in ("vision", "unet"):
        for key, value in straight[part].items():
            torch.testing.assert_close(resumed[part][key], value, rtol=0, atol=0)
    changed = _ldm(tmp_path, 3, "d", concat=False)
    assert changed["losses"][0] != straight["losses"][0]  # the concat switch changes what is trained on


DETECTING = replace(SMALL, vision=replace(SMALL.vision, onset_kernel=3))


def _onsets(tmp_path: Path, steps: int, work: str) -> tuple[list[float], dict]:
    dataset = with_motion(_clips(3), 0, DETECTING.vision.onset_grid)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        vision = untrained(DETECTING).stages.vision
    losses = train_onsets(dataset, vision, DETECTING, Recipe(steps=steps, batch=2, lr=1e-2, checkpoint_every=1),
                          tmp_path / work, progress=lambda step, loss: None)
    return losses, vision.state_dict()


def test_the_onset_detector_trains_alone_deterministically_and_resumes(tmp_path):
    losses, straight = _onsets(tmp_path, 3, "a")
    _onsets(tmp_path, 2, "b")
    resumed_losses, resumed = _onsets(tmp_path, 3, "b")  # the detector's own checkpoint
    assert resumed_losses == losses[2:]
    for key, value in straight.items():
        torch.testing.assert_close(resumed[key], value, rtol=0, atol=0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        start = untrained(DETECTING).stages.vision.state_dict()
    changed = {key for key, value in straight.items() if not torch.equal(value, start[key])}
    assert changed and all(key.startswith("onsets.") for key in changed)  # only the detector learned
    assert straight["onsets.score.weight"].abs().sum() > 0  # from its zero start
    ldm = _ldm(tmp_path, 2, "c", config=DETECTING)  # and the LDM stage leaves it as it was
    assert all(torch.equal(ldm["vision"][key], start[key]) for key in start if key.startswith("onsets."))
    with pytest.raises(ValueError, match="aligned"):
        train_model(_clips(1), replace(DETECTING, unet=replace(DETECTING.unet, aligned_channels=0)), tmp_path / "d",
                    {})


def test_the_onset_detector_finds_an_impact_wherever_it_happens_and_mirrors():
    """The same weights score every cell: one cell's motion gives the same logit in any cell away from the
    border. Mirrored cells are those of the mirrored picture (columns reversed, x flow negated)."""
    from engine.vta_ldm.vision_encoder import OnsetDetector, motion_inputs

    torch.manual_seed(0)
    detector = OnsetDetector(kernel=3, width=8)
    torch.nn.init.normal_(detector.score.weight)
    grid, logits = 16, []
    for row, column in ((6, 6), (9, 8)):  # three layers of 3 x 3: what it touches sees no border
        cells = torch.zeros(1, 10, 4, grid, grid)
        cells[0, 4:6, :, row, column] = torch.tensor([1.0, -2.0, 2.0, 3.0])  # a burst of motion in one cell
        logits.append(detector(cells.flatten(-3), grid))
    torch.testing.assert_close(logits[0], logits[1])
    assert logits[0][0, 5] > logits[0][0, 0] + 1e-3  # it responds to the motion
    pixels = torch.zeros(6, 3, 64, 64)
    for index in range(6):  # a bright square moving right 3 pixels a frame
        pixels[index, :, 20:32, 10 + 3 * index: 22 + 3 * index] = 1.0
    _, cells = motion_inputs(pixels, 0, 8)
    _, mirror = motion_inputs(pixels.flip(-1), 0, 8)
    torch.testing.assert_close(mirrored(cells, 8), mirror, rtol=0, atol=0.15)
    assert torch.equal(mirrored(mirrored(cells, 8), 8), cells)


def test_the_unet_is_trained_on_the_true_onsets_in_the_last_aligned_channel(tmp_path, monkeypatch):
    """Teacher forcing: what the UNet reads in the onset channel is the window's true onsets, not the detector's."""
    import engine.training.train as train

    seen = []
    laid = train.aligned_features
    monkeypatch.setattr(train, "aligned_features", lambda context, config: seen.append(context) or laid(context, config))
    _ldm(tmp_path, 1, "a", config=DETECTING)
    targets = onset_targets(_clips(3).audio, DETECTING)
    rows = torch.randint(3, (2,), generator=train._step_generator(0, 0))
    onsets = seen[0][..., -1]
    kept = onsets.abs().sum(dim=1) > 0  # rows trained unconditionally see zeros
    assert kept.any() and torch.equal(onsets[kept], targets[rows][kept])


def test_the_onset_map_marks_peaks_above_the_threshold_with_their_neighbours():
    from engine.vta_ldm.vision_encoder import onset_map

    p = torch.tensor([0.1, 0.2, 0.9, 0.3, 0.1, 0.45, 0.1, 0.6, 0.7, 0.2])
    logits = torch.log(p / (1 - p))
    assert onset_map(logits, 0.5).tolist() == [0, 0.5, 1, 0.5, 0, 0, 0, 0.5, 1, 0.5]
    assert onset_map(logits, 0.4).tolist() == [0, 0.5, 1, 0.5, 0.5, 1, 0.5, 0.5, 1, 0.5]
    assert not onset_map(torch.zeros(2, 10), 0.5).any()  # undecided (the detector's zero start): no onsets


def test_onset_targets_mark_the_frames_where_each_impact_sounds():
    clip = make_clip(4, size=32)
    impacts = [e.time for e in clip.events if e.kind == "impact"]
    targets = onset_targets(torch.from_numpy(clip.audio[None]), SMALL)[0]
    assert impacts and targets.shape == (int(SMALL.window_seconds * SMALL.frame_rate),)
    marked = (targets == 1).nonzero()[:, 0].numpy() / SMALL.frame_rate
    assert all(np.min(np.abs(marked - t)) <= 1.5 / SMALL.frame_rate for t in impacts)
    assert set(targets.unique().tolist()) <= {0.0, 0.5, 1.0} and (targets == 0).float().mean() > 0.7


def test_vae_training_lowers_reconstruction_loss(tmp_path):
    config = SMALL
    dataset = _clips(2)
    mels = mels_of(dataset.audio, config)
    trainer = VAETrainer(config, untrained(config).stages.vae)
    losses = train_vae(mels, trainer, Recipe(steps=60, batch=2, lr=1e-3, crop_frames=32, checkpoint_every=100),
                       tmp_path, progress=lambda step, loss: None)
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])


def test_splice_cuts_frames_and_latents_at_the_same_moment():
    frames = torch.arange(2)[:, None, None, None, None].expand(2, 100, 1, 1, 1).clone()
    latents = torch.arange(2)[:, None, None, None].float().expand(2, 8, 100, 16).clone()
    flow = torch.ones(2, 100, 8)
    onsets = torch.arange(2)[:, None].float().expand(2, 100).clone()
    cut_frames, cut_latents, cut_flow, cut_onsets = splice(frames, latents, flow, onsets, SMALL,
                                                           torch.Generator().manual_seed(3))
    cut = int((cut_frames[0, :, 0, 0, 0] != 0).nonzero()[0])
    assert 25 <= cut <= 75
    assert torch.equal(cut_latents[0, 0, :, 0] != 0, cut_frames[0, :, 0, 0, 0] != 0)  # 25 Hz both
    assert torch.equal(cut_onsets[0] != 0, cut_frames[0, :, 0, 0, 0] != 0)
    assert not cut_flow[:, cut].any() and cut_flow[:, cut - 1].all() and cut_flow[:, cut + 1].all()


def test_lora_starts_at_the_base_and_merges_exactly():
    torch.manual_seed(0)
    unet = build_unet(SMALL.unet, skip_zero_context=False)
    x, t, context = torch.randn(1, 12, 100, 16), torch.tensor([500]), torch.randn(1, 7, SMALL.unet.cross_attention_dim)
    before = unet(x, t, encoder_hidden_states=context).sample
    trainable = add_lora(unet, rank=2)
    assert all(not p.requires_grad for n, p in unet.named_parameters() if ".base." in n)
    assert len(trainable) == 2 * 4 * sum(1 for n, _ in unet.named_modules() if n.endswith(("attn1", "attn2")))
    torch.testing.assert_close(unet(x, t, encoder_hidden_states=context).sample, before)
    for parameter in trainable:
        parameter.data.normal_(std=0.05)
    adapted = unet(x, t, encoder_hidden_states=context).sample
    assert not torch.allclose(adapted, before)
    merge_lora(unet)
    assert not any(isinstance(m, LoRALinear) for m in unet.modules())
    torch.testing.assert_close(unet(x, t, encoder_hidden_states=context).sample, adapted, rtol=1e-4, atol=1e-4)


def test_training_set_reads_sound_from_the_video_or_a_wav_beside_it(tmp_path):
    clip = make_clip(5)
    video = write_clip(clip, tmp_path / "set")
    ffmpeg = installed("ffmpeg")
    joined = tmp_path / "own" / "with-sound.mp4"
    joined.parent.mkdir()
    subprocess.run([ffmpeg, "-v", "error", "-i", str(video), "-i", str(video.with_suffix(".wav")), "-c:v", "copy",
                    "-c:a", "aac", "-b:a", "192k", str(joined)], check=True)
    beside = load_training_set(tmp_path / "set", SMALL)
    inside = load_training_set(tmp_path / "own", SMALL)
    assert beside.frames.shape == (1, 100, 32, 32, 3) and beside.audio.shape == (1, 64000)
    assert np.corrcoef(beside.audio[0, :60000], inside.audio[0, :60000])[0, 1] > 0.9  # AAC delay is a few ms
    with pytest.raises(InputVideoError, match="no sound"):
        video.with_suffix(".wav").unlink()
        load_training_set(tmp_path / "set", SMALL)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputVideoError, match="holds no videos"):
        load_training_set(tmp_path / "empty", SMALL)


def test_the_training_set_is_read_back_from_its_cache_until_a_file_changes(tmp_path, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="engine.training.dataset")
    video = write_clip(make_clip(5), tmp_path / "set")
    cache = tmp_path / "work" / "training-set.pt"
    config = replace(SMALL, vision=replace(SMALL.vision, flow_grid=2))
    first = load_training_set(tmp_path / "set", config, cache=cache)
    again = load_training_set(tmp_path / "set", config, cache=cache)
    assert "read back" in caplog.text and first.sources == again.sources
    for field in ("frames", "audio", "flow"):
        assert torch.equal(getattr(first, field), getattr(again, field))
    caplog.clear()
    soundfile.write(str(video.with_suffix(".wav")), np.zeros(64000, np.float32), 16000)  # the sound replaced
    changed = load_training_set(tmp_path / "set", config, cache=cache)
    assert "read back" not in caplog.text and not changed.audio.any()
    assert load_training_set(tmp_path / "set", replace(config, frame_rate=20), cache=cache).frames.shape[1] == 80


def test_cleaning_keeps_windows_whose_sound_follows_the_pictures():
    dataset = _clips(4, size=64)
    silent = TrainingSet(dataset.frames, torch.zeros_like(dataset.audio) + 1e-4 * torch.randn(dataset.audio.shape),
                         dataset.sources)
    mixed = TrainingSet(torch.cat([dataset.frames, silent.frames]), torch.cat([dataset.audio, silent.audio]),
                        dataset.sources + tuple("silent" + s for s in silent.sources))
    kept = clean(mixed, 25, 16000, 0.05)
    assert kept.sources and not any(s.startswith("silent") for s in kept.sources)


def test_train_command_installs_a_model_that_generates_and_fine_tunes(tmp_path, foley_home):
    data = tmp_path / "data"
    for seed in range(2):
        write_clip(make_clip(seed), data)
    run = [sys.executable, "-m", "ui.cli", "train", str(data), "--name", "mine", "--steps", "2", "--vae-steps", "2",
           "--vocoder-steps", "2", "--onset-steps", "2", "--batch", "2", "--threads", "2"]
    env = {"FOLEY_HOME": str(foley_home), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(run, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((foley_home / "models" / "mine" / "manifest.json").read_text())
    assert manifest["config"]["frame_rate"] == 25 and manifest["training"]["windows"] == 2
    assert manifest["config"]["vision"]["onset_kernel"] == 5  # the starter preset's onset detector
    assert manifest["training"]["data"] == "data (foley synth, scene kinds drop)"  # no machine path
    assert str(tmp_path) not in json.dumps(manifest)
    assert manifest["licences"][0]["licence"].startswith("yours")
    assert "[onsets] step 2/2" in done.stderr and "[ldm] step 2/2" in done.stderr
    out = subprocess.run([sys.executable, "-m", "ui.cli", "generate", str(data / "0000001.mp4"), "--model", "mine",
                          "--preset", "fast", "--steps", "2", "--seed", "3", "-o", str(tmp_path / "out")],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    audio, rate = soundfile.read(out.stdout.split()[-1])
    assert rate == 16000 and len(audio) == 64000
    tuned = subprocess.run([*run[:5], "--name", "tuned", "--from", "mine", "--lora", "2", "--steps", "2",
                            "--batch", "2", "--onset-threshold", "0.3"], capture_output=True, text=True, env=env)
    assert tuned.returncode == 0, tuned.stderr
    base, fine = load_model("mine"), load_model("tuned")  # the fixture points FOLEY_HOME at foley_home
    assert (base.config.vision.onset_threshold, fine.config.vision.onset_threshold) == (0.5, 0.3)
    assert fine.stages.vision.onset_threshold == 0.3
    assert torch.equal(base.stages.vocoder.conv_pre.weight, fine.stages.vocoder.conv_pre.weight)
    changed = [k for k, v in fine.stages.unet.state_dict().items()
               if not torch.equal(v, base.stages.unet.state_dict()[k])]
    assert changed and all(".attn" in k for k in changed)  # LoRA touched only the attention projections
    wider = subprocess.run([*run[:5], "--name", "wider", "--from", "mine", "--lora", "0", "--steps", "0",
                            "--onset-steps", "2", "--onset-width", "8", "--batch", "2"], capture_output=True, text=True,
                           env=env)
    assert wider.returncode == 0, wider.stderr
    grown = load_model("wider")  # a detector 8 channels wide, trained alone; the LDM kept as it was
    assert grown.config.vision.onset_width == 8 and grown.stages.vision.onsets.score.in_channels == 8
    assert all(torch.equal(v, base.stages.unet.state_dict()[k]) for k, v in grown.stages.unet.state_dict().items())
    refused = subprocess.run([*run, "--name", "plain", "--onsets", "0", "--onset-steps", "3"], capture_output=True,
                             text=True, env=env)
    assert refused.returncode == 2 and "has no detector" in refused.stderr
    narrow = subprocess.run([*run, "--name", "narrow", "--onset-width", "0"], capture_output=True, text=True, env=env)
    assert narrow.returncode == 2 and "at least 1" in narrow.stderr and not (foley_home / "models" / "narrow").exists()


def test_the_shipped_starter_model_times_impacts_to_the_pictures(tmp_path):
    """The built-in model, on held-out synthetic clips it never saw: its sound's onsets land on the impacts
    (within one video frame), and the same sound shifted by 0.2 s does not."""
    from engine.config import SAMPLING_PRESETS
    from engine.metrics import audio_onsets, onset_accuracy
    from engine.models import embedded_default
    from engine.training.evaluate import model_audio
    from engine.training.synthetic import seeds_for

    components = embedded_default()
    assert components.trained and components.config.frame_rate == 25
    audio_for = model_audio(components, SAMPLING_PRESETS["fast"])
    scores, shifted = [], []
    for seed in seeds_for("held-out", 200)[-4:]:
        clip = make_clip(seed)
        video = write_clip(clip, tmp_path)
        audio = audio_for(video, {"seed": seed})
        impacts = [event.time for event in clip.events if event.kind == "impact"]
        assert np.sqrt(np.mean(audio**2)) > 1e-3  # not silent
        scores.append(onset_accuracy(audio_onsets(audio), impacts, clip.fps))
        shifted.append(onset_accuracy(audio_onsets(np.roll(audio, 3200)), impacts, clip.fps))
    assert np.mean(scores) >= 0.6 and np.mean(shifted) < 0.3


def test_the_shipped_starter_model_carries_a_commercial_licence_and_no_machine_paths():
    from engine.models import EMBEDDED, model_manifest

    manifest = model_manifest(EMBEDDED)
    (licence,) = manifest["licences"]
    assert licence["licence"].startswith("Apache-2.0") and "commercial use allowed" in licence["licence"]
    assert (Path(__file__).parents[1] / "LICENSE").read_text().split()[:3] == ["Apache", "License", "Version"]
    assert not any(text.startswith("/") for text in _strings(manifest)), "a machine path in the manifest"


def _strings(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def test_event_features_rise_at_impacts_floor_and_wall_alike():
    """The event branch's input: the change of (camera-compensated) flow is highest within two frames of an
    impact, for a drop on the floor, a slide into a wall and under a shaking camera."""
    from engine.vta_ldm.vision_encoder import event_features, motion_inputs

    for kind in ("drop", "wall", "shake"):
        clip = make_clip(3, kind=kind, fps=25)
        pixels = torch.from_numpy(fit_frames(clip.frames, 64)).permute(0, 3, 1, 2).float() / 255
        grid = STARTER.vision.flow_grid
        features = event_features(pixels[None], motion_inputs(pixels, grid, 0)[0][None], grid)[0]
        change = features[:, 2 * grid**2: 4 * grid**2].abs().amax(dim=1)
        frames = [event.time * 25 for event in clip.events if event.kind == "impact"]
        near = torch.zeros(len(change), dtype=torch.bool)
        for frame in frames:
            near[max(0, int(frame) - 2): int(frame) + 4] = True
        assert float(change[near].max()) > 2 * float(change[~near].median()), kind


def test_a_grown_model_starts_as_its_base_and_refuses_other_shapes():
    """`foley train --from MODEL --motion K` adds the event branch at zero: the same tokens as the base; `--onsets K`
    an onset detector that marks no onsets; any other architectural change is refused naming the weights that
    differ."""
    from engine.training.train import grown

    base = untrained(replace(STARTER, vision=replace(STARTER.vision, motion_kernel=0, onset_kernel=0)))
    config = replace(STARTER, vision=replace(STARTER.vision, onset_kernel=0))
    bigger = grown(base, config)
    pixels = torch.rand(12, 3, 64, 64)
    assert bigger.stages.vision.motion is not None
    torch.testing.assert_close(bigger.stages.vision(pixels), base.stages.vision(pixels), rtol=0, atol=1e-6)
    detecting = grown(bigger, replace(config, vision=replace(config.vision, onset_kernel=5)))
    tokens = detecting.stages.vision(pixels)  # the detector starts undecided: no onsets in the onset channel
    assert not tokens[:, -1].any()
    torch.testing.assert_close(tokens[:, :-1], bigger.stages.vision(pixels)[:, :-1], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="cannot grow"):
        grown(base, replace(config, vision=replace(config.vision, projection_dim=32)))


def test_the_demo_balls_impacts_are_heard_with_the_shipped_model(tmp_path):
    """`foley demo`'s clip through the built-in model, three seeds: at least 85 % of the ball's floor impacts get
    an onset within one video frame, and nothing between impacts is as loud as a typical (the median) impact."""
    from fractions import Fraction

    from engine.config import SAMPLING_PRESETS
    from engine.core.generate import generate
    from engine.metrics import audio_onsets, loudest_between_events, onset_accuracy
    from engine.models import embedded_default
    from engine.training.sample_video import demo_impacts, make_demo_video
    from engine.video import EditFrames, EditSpan, probe_video

    components = embedded_default()
    info = probe_video(make_demo_video(tmp_path / "demo.mp4"))
    frames = EditFrames((EditSpan(info.path, Fraction(0), info.duration, Fraction(0)),), Fraction(0), info.duration,
                        components.config.frame_rate, components.config.vision.image_size)
    generation = generate(frames, components=components, sampling=SAMPLING_PRESETS["fast"], seeds=(0, 1, 2))
    impacts = demo_impacts()
    for variant in generation.variants:
        onsets = audio_onsets(variant.audio, generation.sample_rate)
        assert onset_accuracy(onsets, impacts, 25) >= 0.85, (variant.seed, onsets)
        between = loudest_between_events(variant.audio, impacts, generation.sample_rate, against="median")
        assert between < 0, (variant.seed, between)


def test_loudest_between_events_compares_the_gaps_with_the_quietest_event():
    from engine.metrics import loudest_between_events

    rate = 16000
    audio = np.full(4 * rate, 1e-3, np.float32)
    for time, level in ((1.0, 0.5), (3.0, 0.1)):
        audio[int(time * rate): int((time + 0.05) * rate)] = level
    assert loudest_between_events(audio, [1.0, 3.0], rate) == pytest.approx(-40, abs=0.5)  # 1e-3 against 0.1
    audio[int(2.0 * rate): int(2.05 * rate)] = 0.2  # a thump between the impacts
    assert loudest_between_events(audio, [1.0, 3.0], rate) == pytest.approx(6.0, abs=0.5)
    assert loudest_between_events(audio, [1.0, 3.0], rate, against="median") == pytest.approx(-1.0, abs=0.3)
