"""One entry point: `generate()` turns a video range into N foley variants, written as numbered steps."""

import functools
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from engine.config import SAMPLING_PRESETS, ModelConfig, SamplingConfig
from engine.errors import FoleyError, UnsupportedRangeError
from engine.models import Components
from engine.sampling import StepInfo, get_alphas_cumprod, get_timesteps_leading, sample_ddpm
from engine.unet import GuidedDenoiser
from engine.vae import decode
from engine.video import Frames
from engine.vision_encoder import encode_frames
from engine.vocoder import vocode

logger = logging.getLogger(__name__)

MAX_VARIANTS = 16
MAX_STEPS = 1000


class JobCancelled(FoleyError):
    """The caller set the cancel flag; nothing was produced."""


@dataclass(frozen=True)
class Variant:
    seed: int
    audio: np.ndarray  # float32 mono, exactly `range_samples` long


@dataclass(frozen=True)
class Generation:
    """What one job produced, and everything a sidecar needs to describe it."""

    variants: tuple[Variant, ...]
    sample_rate: int
    frames: Frames
    sampling: SamplingConfig
    timesteps: tuple[int, ...]


def range_samples(start: Fraction, end: Fraction, sample_rate: int) -> int:
    """round((end - start) * sample_rate), half up, in exact arithmetic."""
    return math.floor((end - start) * sample_rate + Fraction(1, 2))


def check_request(start: Fraction, end: Fraction, config: ModelConfig, sampling: SamplingConfig, seeds) -> None:
    """Validate a job's range and parameters before any decoding or model work."""
    if end - start > config.window_seconds:
        raise UnsupportedRangeError(
            f"The range is {float(end - start):.3f} s long; model preset '{config.name}' makes "
            f"{float(config.window_seconds)} s per pass and longer ranges are not supported yet. "
            "Select at most that much, or split the range."
        )
    if not 1 <= sampling.steps <= MAX_STEPS:
        raise ValueError(f"steps={sampling.steps} is out of range; use 1 to {MAX_STEPS} (the reference uses 300).")
    if not 1 <= len(seeds) <= MAX_VARIANTS:
        raise ValueError(f"{len(seeds)} variants requested; ask for 1 to {MAX_VARIANTS}.")
    if sampling.guidance < 1.0:
        raise ValueError(f"guidance={sampling.guidance} is below 1; use 1 (no guidance) or more (reference: 3).")


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


def _sample_latents(
    components: Components, context: torch.Tensor, sampling: SamplingConfig, timesteps: list[int], seeds, report
) -> torch.Tensor:
    """One latent per seed; each seed seeds both the start noise and the per-step noise of its variant."""
    alphas_cumprod = get_alphas_cumprod(components.config.scheduler)
    model = GuidedDenoiser(components.modules["unet"], context[None], sampling.guidance, alphas_cumprod)
    latents = []
    for index, seed in enumerate(seeds):
        report("sample", 0, sampling.steps, index)
        generator = torch.Generator().manual_seed(seed)
        x = torch.randn((1, *components.config.latent_shape), generator=generator)
        progress = functools.partial(report, "sample", total=sampling.steps, variant=index)
        latents.append(sample_ddpm(model, x, timesteps, alphas_cumprod, generator=generator, callback=progress))
    return torch.cat(latents)


def generate(
    frames: Frames,
    *,
    components: Components,
    sampling: SamplingConfig = SAMPLING_PRESETS["reference"],
    seeds: tuple[int, ...] = (0,),
    callback: Callable[[StepInfo], None] | None = None,
    cancel: threading.Event | None = None,
) -> Generation:
    """Generate foley for the range that `frames` cover, one variant per seed.

    Args:
        frames: the range's frames at the model's frame rate and input size (`engine.video.decode_frames`,
            or frames a host sent to the engine server).
        components: a loaded model (`engine.models.load_model`).
        sampling: sampler, steps and guidance; the default is the published method (DDPM 300, guidance 3).
        seeds: one seed per variant; the same seed always gives the same audio.
        callback: receives a `StepInfo` per stage and per sampling step.
        cancel: when set, the job stops at the next step and raises `JobCancelled`.

    Returns:
        `Generation` with exactly `range_samples(frames.start, frames.end, sample_rate)` samples per variant.
    """

    def report(stage: str, step: int, total: int, variant: int = 0) -> None:
        if cancel is not None and cancel.is_set():
            raise JobCancelled("The job was cancelled.")
        if callback is not None:
            callback(StepInfo(stage, step, total, variant, len(seeds)))

    config = components.config
    # 1. Check inputs
    check_request(frames.start, frames.end, config, sampling, seeds)
    check_frames(frames, config)
    # 2. Encode frames into context tokens
    report("encode", 0, 1)
    context = encode_frames(components.modules["vision"], torch.from_numpy(frames.model_input()))
    # 3. Sample one latent per seed
    timesteps = get_timesteps_leading(config.scheduler, sampling.steps)
    latents = _sample_latents(components, context, sampling, timesteps, seeds, report)
    # 4. Decode latents to log-mel
    report("vae", 0, 1)
    mel = decode(components.modules["vae"], latents, components.scale_factor)
    # 5. Vocode
    report("vocode", 0, 1)
    waves = vocode(components.modules["vocoder"], mel).float().numpy()
    # 6. Cut to the range's exact length
    length = range_samples(frames.start, frames.end, config.sample_rate)
    variants = tuple(Variant(seed, waves[i, :length].copy()) for i, seed in enumerate(seeds))
    return Generation(variants, config.sample_rate, frames, sampling, tuple(timesteps))
