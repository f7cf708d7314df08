"""One entry point: `generate()` turns a video range into N foley variants, written as numbered steps."""

import functools
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from engine.config import SAMPLING_PRESETS, SamplingConfig
from engine.errors import FoleyError, UnsupportedRangeError
from engine.models import Components
from engine.sampling import StepInfo, get_alphas_cumprod, get_timesteps_leading, sample_ddpm
from engine.unet import GuidedDenoiser
from engine.vae import decode
from engine.video import Frames, decode_frames
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


def check_inputs(start: Fraction, end: Fraction, components: Components, sampling: SamplingConfig, seeds) -> None:
    """Validate what the caller asked for before any decoding or model work."""
    window = components.config.window_seconds
    if end - start > window:
        raise UnsupportedRangeError(
            f"The range is {float(end - start):.3f} s long; model '{components.name}' makes {float(window)} s per "
            "pass and longer ranges are not supported yet. Select at most that much, or split the range."
        )
    if not 1 <= sampling.steps <= MAX_STEPS:
        raise ValueError(f"steps={sampling.steps} is out of range; use 1 to {MAX_STEPS} (the reference uses 300).")
    if not 1 <= len(seeds) <= MAX_VARIANTS:
        raise ValueError(f"{len(seeds)} variants requested; ask for 1 to {MAX_VARIANTS}.")
    if sampling.guidance < 1.0:
        raise ValueError(f"guidance={sampling.guidance} is below 1; use 1 (no guidance) or more (reference: 3).")


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
    video: str | Path,
    start: Fraction,
    end: Fraction,
    *,
    components: Components,
    sampling: SamplingConfig = SAMPLING_PRESETS["reference"],
    seeds: tuple[int, ...] = (0,),
    legacy_frames: bool = False,
    callback: Callable[[StepInfo], None] | None = None,
    cancel: threading.Event | None = None,
) -> Generation:
    """Generate foley for [start, end) of `video`, one variant per seed.

    Args:
        video: path of the source video.
        start, end: source range in seconds (exact fractions).
        components: a loaded model (`engine.models.load_model`).
        sampling: sampler, steps and guidance; the default is the published method (DDPM 300, guidance 3).
        seeds: one seed per variant; the same seed always gives the same audio.
        legacy_frames: sample frames with the reference's int(fps) rule (parity runs).
        callback: receives a `StepInfo` per stage and per sampling step.
        cancel: when set, the job stops at the next step and raises `JobCancelled`.

    Returns:
        `Generation` with exactly `range_samples(start, end, sample_rate)` samples per variant.
    """

    def report(stage: str, step: int, total: int, variant: int = 0) -> None:
        if cancel is not None and cancel.is_set():
            raise JobCancelled("The job was cancelled.")
        if callback is not None:
            callback(StepInfo(stage, step, total, variant, len(seeds)))

    config = components.config
    # 1. Check inputs
    check_inputs(start, end, components, sampling, seeds)
    # 2. Decode the frames of the range at the model's frame rate
    report("decode", 0, 1)
    frames = decode_frames(video, start, end, rate=config.frame_rate, size=config.vision.image_size, legacy=legacy_frames)
    # 3. Encode frames into context tokens
    report("encode", 0, 1)
    context = encode_frames(components.modules["vision"], torch.from_numpy(frames.pixels))
    # 4. Sample one latent per seed
    timesteps = get_timesteps_leading(config.scheduler, sampling.steps)
    latents = _sample_latents(components, context, sampling, timesteps, seeds, report)
    # 5. Decode latents to log-mel
    report("vae", 0, 1)
    mel = decode(components.modules["vae"], latents, components.scale_factor)
    # 6. Vocode and cut to the range's exact length
    report("vocode", 0, 1)
    waves = vocode(components.modules["vocoder"], mel).float().numpy()
    length = range_samples(start, end, config.sample_rate)
    variants = tuple(Variant(seed, waves[i, :length].copy()) for i, seed in enumerate(seeds))
    return Generation(variants, config.sample_rate, frames, sampling, tuple(timesteps))
