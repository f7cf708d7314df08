"""VTA-LDM's steps for one window (the family's side of `engine.core.generate`): encode the frames, sample one
latent per seed, decode the latents to log-mel, vocode."""

import functools
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from engine.config import SAMPLING_PRESETS, Prompt, SamplingConfig
from engine.video import EditFrames, EditSpan, Frames, decode_frames
from engine.vta_ldm.config import PRESETS, ModelConfig, config_from_dict
from engine.vta_ldm.sampling import SAMPLERS, TIMESTEP_SPACINGS, get_alphas_cumprod, row_noise
from engine.vta_ldm.stages import Stages, build_modules, rebuild_unsaved_buffers
from engine.vta_ldm.unet import GuidedDenoiser
from engine.vta_ldm.vae import decode
from engine.vta_ldm.vision_encoder import OnnxVisionEncoder, encode_frames, export_onnx
from engine.vta_ldm.vocoder import vocode

TAKES_TEXT = False
PRECISION_PARTS = ("unet",)  # --precision sets the UNet's weights; the other stages stay fp32
# the family interface (engine.models.FAMILIES)
__all__ = ["TAKES_TEXT", "PRECISION_PARTS", "SAMPLING_PRESETS", "config_of", "build_modules",
           "rebuild_unsaved_buffers", "export_encoder", "use_onnx_encoder", "frame_source", "timesteps",
           "check_frames", "generate_window"]


def config_of(manifest: dict) -> ModelConfig:
    """The config an installed model's manifest describes."""
    if "config" in manifest:  # models trained here carry their whole config
        return config_from_dict(manifest["config"])
    base = PRESETS[manifest["preset"]]
    return replace(base, vision=replace(base.vision, frame_pe=manifest.get("frame_pe", False)))


def export_encoder(stages: Stages, path: Path, precision: str) -> Path:
    """Write the vision encoder as ONNX (`foley models export-encoder`)."""
    return export_onnx(stages.vision, path, precision)


def use_onnx_encoder(stages: Stages, path: Path) -> str:
    """Run the vision encoder from its ONNX export (`export_encoder`) on onnxruntime from now on; returns the
    provider that runs it."""
    stages.vision = OnnxVisionEncoder(path)
    return stages.vision.providers[0]


def frame_source(spans: tuple[EditSpan, ...], start: Fraction, end: Fraction, config: ModelConfig, *,
                 legacy: bool = False) -> EditFrames | Frames:
    """The edit's pictures as the encoder takes them, decoded window by window; `legacy`: one file sampled by the
    reference code's int(fps) frame-index rule, which indexes the whole file, so decoded at once."""
    if legacy:
        return decode_frames(spans[0].media, start, end, rate=config.frame_rate, size=config.vision.image_size,
                             legacy=True)
    return EditFrames(spans, start, end, config.frame_rate, config.vision.image_size)


def timesteps(config: ModelConfig, sampling: SamplingConfig) -> list[int]:
    """The sampler's timesteps: the preset's spacing over the model's training schedule."""
    if sampling.sampler not in SAMPLERS:
        raise ValueError(f"sampler '{sampling.sampler}' is not available for VTA-LDM models; use one of "
                         f"{', '.join(SAMPLERS)}.")
    if sampling.spacing not in TIMESTEP_SPACINGS:
        raise ValueError(f"spacing '{sampling.spacing}' is unknown; use one of {', '.join(TIMESTEP_SPACINGS)}.")
    return TIMESTEP_SPACINGS[sampling.spacing](config.scheduler, sampling.steps)


def check_frames(frames: Frames, config: ModelConfig) -> None:
    """Frames must be fitted to the encoder's input size, one time per frame."""
    size = config.vision.image_size
    rgb = frames.rgb
    if rgb.dtype != np.uint8 or rgb.ndim != 4 or rgb.shape[0] < 1 or rgb.shape[1:] != (size, size, 3):
        raise ValueError(
            f"frames.rgb has shape {rgb.shape} and dtype {rgb.dtype}; model preset '{config.name}' needs uint8 "
            f"[count >= 1, {size}, {size}, 3] (engine.video.fit_square makes that from any picture)."
        )
    if len(frames.times) != len(rgb):
        raise ValueError(f"{len(rgb)} frames came with {len(frames.times)} frame times; give one time per frame.")


def sample_latents(stages: Stages, config: ModelConfig, device: str, context: torch.Tensor, sampling: SamplingConfig,
                   steps: list[int], seeds: list[int], report) -> torch.Tensor:
    """All variants advance together, one row per seed; each seed seeds its row's start noise and step noise, so
    a variant equals the same seed sampled alone (up to batch-size rounding)."""
    alphas_cumprod = get_alphas_cumprod(config.scheduler)
    # batching variants pays on GPUs; on CPUs (bench/speed.py) one CFG pair per UNet call is faster
    chunk = None if device != "cpu" else 1
    model = GuidedDenoiser(stages.unet, context[None], sampling.guidance, alphas_cumprod, chunk, config)
    # noise comes from CPU generators, so a seed gives the same start on every device
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    x = row_noise(torch.empty((len(seeds), *config.latent_shape), device=device), generators)
    report("sample", 0, sampling.steps)
    progress = functools.partial(report, "sample", total=sampling.steps)
    return SAMPLERS[sampling.sampler](model, x, steps, alphas_cumprod, generators=generators, callback=progress)


def generate_window(stages: Stages, config: ModelConfig, scale_factor: float, device: str, part: Frames,
                    sampling: SamplingConfig, steps: list[int], seeds: list[int], report,
                    prompt: Prompt, cache: dict | None) -> np.ndarray:
    """One window's variants, [variants, samples] (the core cuts them to the window's exact length); VTA-LDM
    takes no text, so `prompt` is always empty here and a job has one layer: nothing to keep in `cache`."""
    # 2. Encode frames into context tokens
    report("encode", 0, 1)
    pixels = torch.from_numpy(part.model_input())
    context = encode_frames(stages.vision, pixels.to(device)).to(device)
    report("encode", 1, 1)
    # 3. Sample one latent per seed
    latents = sample_latents(stages, config, device, context, sampling, steps, seeds, report)
    # 4. Decode latents to log-mel
    report("vae", 0, 1)
    mel = decode(stages.vae, latents, scale_factor)
    report("vae", 1, 1)
    # 5. Vocode
    report("vocode", 0, 1)
    waves = vocode(stages.vocoder, mel).float().cpu().numpy()
    report("vocode", 1, 1)
    return waves
