"""MMAudio's steps for one window (the family's side of `engine.core.generate`): CLIP and Synchformer features of
the frames and CLIP features of the prompt, Euler flow matching with classifier-free guidance, the mel VAE
decoder, the vocoder. As MMAudio's `generate()`, for a window of any length up to the 8 s it was trained on."""

import functools
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from engine.config import Prompt, SamplingConfig
from engine.mmaudio.clip import clip_text_features
from engine.mmaudio.config import PRESETS, MMAudioConfig
from engine.mmaudio.encoders import OnnxPictureEncoders, export_onnx, picture_features
from engine.mmaudio.frames import reference_streams
from engine.mmaudio.network import Conditions
from engine.mmaudio.sampling import flow_times, sample_latent, start_noise
from engine.mmaudio.stages import PARTS, Stages, build_modules
from engine.mmaudio.tokenizer import load_tokenizer
from engine.mmaudio.vae import decode
from engine.mmaudio.vocoder import vocode
from engine.video import EditFrames, EditSpan, FrameStreams

TAKES_TEXT = True
PRECISION_PARTS = PARTS  # as MMAudio's demo: every stage in one dtype
# the family interface (engine.models.FAMILIES)
__all__ = ["TAKES_TEXT", "PRECISION_PARTS", "SAMPLING_PRESETS", "config_of", "build_modules",
           "rebuild_unsaved_buffers", "export_encoder", "use_onnx_encoder", "frame_source", "timesteps",
           "check_frames", "generate_window"]
# MMAudio's own method is already a 25-step ODE solver: both presets run it until a faster one is measured; the
# draft cuts it to 10 steps (not measured against 25)
SAMPLING_PRESETS = {"reference": SamplingConfig("euler", 25, 4.5), "fast": SamplingConfig("euler", 25, 4.5),
                    "draft": SamplingConfig("euler", 10, 4.5)}


def config_of(manifest: dict) -> MMAudioConfig:
    """The config an installed model's manifest describes: a published variant (or the test size)."""
    return PRESETS[manifest["variant"]]


def rebuild_unsaved_buffers(stages: Stages, config: MMAudioConfig) -> None:
    """The network's time frequencies and rotary tables are computed, not stored: again, now that its weights are
    real tensors."""
    stages.network.t_embed.reset_frequencies()
    stages.network.set_sequence(config.network.sequence)


def export_encoder(stages: Stages, path: Path, precision: str) -> Path:
    """Write CLIP's image tower and the Synchformer as one ONNX graph (`foley models export-encoder`)."""
    return export_onnx(stages.clip, stages.synchformer, path, precision)


def use_onnx_encoder(stages: Stages, path: Path) -> str:
    """Run the picture encoders from their ONNX export (`export_encoder`) on onnxruntime from now on; returns the
    provider that runs them."""
    stages.onnx = OnnxPictureEncoders(path, stages.clip, stages.synchformer)
    return stages.onnx.providers[0]


def frame_source(spans: tuple[EditSpan, ...], start: Fraction, end: Fraction, config: MMAudioConfig, *,
                 legacy: bool = False) -> FrameStreams:
    """The edit's pictures as both encoders take them: CLIP at 8 fps squashed to 384 px (MMAudio's `Resize((384,
    384))`), Synchformer at 25 fps, short side to 224 px and centre cropped; decoded window by window.

    `legacy`: one file read from its own timeline by MMAudio's `load_video` rule (the frame at or after each
    target, torch's bicubic resize), decoded at once; what MMAudio's demo conditions on."""
    if legacy:
        if len(spans) != 1 or spans[0].source_start != start or spans[0].record_start != start:
            raise ValueError("MMAudio's legacy frame rule reads one media file from its own timeline; drop "
                             "legacy_frames for edits.")
        return reference_streams(spans[0].media, start, end, clip_rate=config.clip_rate,
                                 clip_size=config.clip.vision.image_size, sync_rate=config.frame_rate,
                                 sync_size=config.synchformer.image_size)
    return FrameStreams({
        "sync": EditFrames(spans, start, end, config.frame_rate, config.synchformer.image_size, "crop"),
        "clip": EditFrames(spans, start, end, config.clip_rate, config.clip.vision.image_size, "squash"),
    }, start, end)


def timesteps(config: MMAudioConfig, sampling: SamplingConfig) -> list[float]:
    """The flow times 0 = t_0 < ... < t_N = 1 the Euler sampler steps along."""
    if sampling.sampler != "euler":
        raise ValueError(f"sampler '{sampling.sampler}' is a diffusion sampler; MMAudio models sample with 'euler' "
                         "(flow matching).")
    return [float(t) for t in flow_times(sampling.steps)]


def check_frames(frames: FrameStreams, config: MMAudioConfig) -> None:
    """Both streams fitted to their encoders, one time per frame."""
    for name, size in (("clip", config.clip.vision.image_size), ("sync", config.synchformer.image_size)):
        rgb = frames[name].rgb
        if rgb.dtype != np.uint8 or rgb.ndim != 4 or rgb.shape[0] < 1 or rgb.shape[1:] != (size, size, 3):
            raise ValueError(f"the {name} frames have shape {rgb.shape} and dtype {rgb.dtype}; model '{config.name}' "
                             f"needs uint8 [count >= 1, {size}, {size}, 3].")


@functools.cache
def _tokenizer():
    return load_tokenizer()


def _text(stages: Stages, text: str) -> torch.Tensor:
    return clip_text_features(stages.clip, _tokenizer()([text]))


def picture_conditions(stages: Stages, part: FrameStreams) -> tuple[torch.Tensor, torch.Tensor]:
    """The window's CLIP [1, clip_seq_len, D] and Synchformer [1, sync_seq_len, D] features at the network's
    sequence lengths (MMAudio's `encode_video_with_clip`, `encode_video_with_sync`)."""
    lengths = stages.network.sequence
    clip_pixels = torch.from_numpy(part["clip"].model_input()[: lengths.clip_seq_len])
    sync_count = int(lengths.seconds * lengths.sync_fps)  # MMAudio keeps int(25 * duration) frames
    sync_pixels = torch.from_numpy(part["sync"].model_input()[:sync_count])
    clip, sync = picture_features(stages.clip, stages.synchformer, stages.onnx, clip_pixels, sync_pixels[None])
    return clip[None], sync


def _kept(cache: dict | None, key: tuple, compute):
    """`compute()`, or what it gave for `key` earlier in the job when the job keeps a cache."""
    if cache is None:
        return compute()
    if key not in cache:
        cache[key] = compute()
    return cache[key]


def prompt_features(stages: Stages, prompt: Prompt) -> tuple[torch.Tensor, torch.Tensor]:
    """CLIP features [1, 77, D] of the prompt and of the negative prompt (MMAudio's `encode_text`)."""
    return _text(stages, prompt.text), _text(stages, prompt.negative)


def conditions(stages: Stages, part: FrameStreams, prompt: Prompt,
               cache: dict | None) -> tuple[Conditions, Conditions]:
    """The window's conditions and the guidance's unconditional side (empty video, the negative prompt's features:
    MMAudio's demo encodes the negative prompt even when it is empty). A layered job's `cache` keeps each window's
    picture features for its other prompts, and each prompt's features for its other windows."""
    clip, sync = _kept(cache, ("pictures", part.start, part.end), lambda: picture_conditions(stages, part))
    text, negative = _kept(cache, ("prompt", prompt), lambda: prompt_features(stages, prompt))
    network = stages.network
    return network.prepare_conditions(clip, sync, text), network.empty_conditions(1, negative_text=negative)


def generate_window(stages: Stages, config: MMAudioConfig, scale_factor: float, device: str, part: FrameStreams,
                    sampling: SamplingConfig, steps: list[float], seeds: list[int], report,
                    prompt: Prompt, cache: dict | None) -> np.ndarray:
    """One window's variants, [variants, samples] (the core cuts them to the window's exact length); `cache`: see
    `conditions`."""
    network = stages.network
    network.set_sequence(replace(config.network.sequence, duration=part.end - part.start))
    # 2. Encode frames and prompt into conditions, once for every variant
    report("encode", 0, 1)
    with torch.inference_mode():
        cond, empty = conditions(stages, part, prompt, cache)
    report("encode", 1, 1)
    # 3. Sample: each variant's start noise from its own seeded generator, as MMAudio's demo draws it
    noise = torch.cat([start_noise(network, 1, torch.Generator().manual_seed(seed)) for seed in seeds]).to(device)
    report("sample", 0, sampling.steps)
    with torch.inference_mode():
        latents = sample_latent(network, noise, cond.expand(len(seeds)), empty.expand(len(seeds)),
                                cfg_strength=sampling.guidance, num_steps=sampling.steps,
                                callback=lambda step: report("sample", step.step, step.total))
    # 4. Decode latents to mel
    report("vae", 0, 1)
    mel = decode(stages.vae, latents.transpose(1, 2))
    report("vae", 1, 1)
    # 5. Vocode
    report("vocode", 0, 1)
    with torch.inference_mode():
        waves = vocode(stages.vocoder, mel)[:, 0].float().cpu().numpy()
    report("vocode", 1, 1)
    return waves
