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

from engine.config import SAMPLING_PRESETS, SamplingConfig
from engine.core.sampling import SAMPLERS, TIMESTEP_SPACINGS, get_alphas_cumprod, row_noise
from engine.core.windows import OVERLAP, crossfade_add, estimate_windows, window_end
from engine.errors import FoleyError, UnsupportedRangeError
from engine.metrics import motion_curve
from engine.models import Components
from engine.progress import JobClock, StepInfo
from engine.video import EditFrames, Frames
from engine.vta_ldm.config import ModelConfig
from engine.vta_ldm.unet import GuidedDenoiser
from engine.vta_ldm.vae import decode
from engine.vta_ldm.vision_encoder import encode_frames
from engine.vta_ldm.vocoder import vocode

logger = logging.getLogger(__name__)

MAX_VARIANTS = 16
MAX_STEPS = 1000
MAX_SEED = 2**32 - 1  # the range most tools' seed fields take; window offsets stay far inside torch's
MAX_SECONDS = 3 * 3600
WINDOW_SEED_STRIDE = 104_729  # window k of seed s samples with seed s + k * stride (window 0 keeps s)


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
    start: Fraction
    end: Fraction
    frame_times: tuple[Fraction, ...]  # source time of each conditioning frame
    joins: tuple[Fraction, ...]  # centres of the crossfades between windows (range seconds)
    sampling: SamplingConfig
    timesteps: tuple[int, ...]
    motion: np.ndarray  # the picture's mean optical-flow magnitude at each frame time, for `metrics.sync_score`


def range_samples(start: Fraction, end: Fraction, sample_rate: int) -> int:
    """round((end - start) * sample_rate), half up, in exact arithmetic."""
    return math.floor((end - start) * sample_rate + Fraction(1, 2))


def check_request(start: Fraction, end: Fraction, config: ModelConfig, sampling: SamplingConfig, seeds) -> None:
    """Validate a job's range and parameters before any decoding or model work."""
    if end - start > MAX_SECONDS:
        raise UnsupportedRangeError(
            f"The range is {float(end - start) / 3600:.1f} h long; one job covers at most {MAX_SECONDS // 3600} h. "
            "Split it into scenes."
        )
    if not 1 <= sampling.steps <= MAX_STEPS:
        raise ValueError(f"steps={sampling.steps} is out of range; use 1 to {MAX_STEPS} (the reference uses 300).")
    if not 1 <= len(seeds) <= MAX_VARIANTS:
        raise ValueError(f"{len(seeds)} variants requested; ask for 1 to {MAX_VARIANTS}.")
    for seed in seeds:
        if not 0 <= seed <= MAX_SEED:
            raise ValueError(f"seed {seed} is out of range; use a whole number from 0 to {MAX_SEED}.")
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
    """All variants advance together, one row per seed; each seed seeds its row's start noise and step noise, so
    a variant equals the same seed sampled alone (up to batch-size rounding)."""
    alphas_cumprod = get_alphas_cumprod(components.config.scheduler)
    # batching variants pays on GPUs; on CPUs (bench/speed.py) one CFG pair per UNet call is faster
    chunk = None if components.device != "cpu" else 1
    model = GuidedDenoiser(components.stages.unet, context[None], sampling.guidance, alphas_cumprod, chunk,
                           components.config)
    # noise comes from CPU generators, so a seed gives the same start on every device
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    x = row_noise(torch.empty((len(seeds), *components.config.latent_shape), device=components.device), generators)
    report("sample", 0, sampling.steps)
    progress = functools.partial(report, "sample", total=sampling.steps)
    sampler = SAMPLERS[sampling.sampler]
    return sampler(model, x, timesteps, alphas_cumprod, generators=generators, callback=progress)


def _generate_window(part: Frames, components: Components, sampling: SamplingConfig, timesteps: list[int],
                     seeds: list[int], report) -> np.ndarray:
    """Steps 2-5 for one window: encode, sample one latent per seed, decode, vocode; [variants, samples]."""
    # 2. Encode frames into context tokens
    report("encode", 0, 1)
    pixels = torch.from_numpy(part.model_input())
    context = encode_frames(components.stages.vision, pixels.to(components.device)).to(components.device)
    report("encode", 1, 1)
    # 3. Sample one latent per seed
    latents = _sample_latents(components, context, sampling, timesteps, seeds, report)
    # 4. Decode latents to log-mel
    report("vae", 0, 1)
    mel = decode(components.stages.vae, latents, components.scale_factor)
    report("vae", 1, 1)
    # 5. Vocode, and cut to the window's exact length
    report("vocode", 0, 1)
    waves = vocode(components.stages.vocoder, mel).float().cpu().numpy()
    report("vocode", 1, 1)
    return waves[:, : range_samples(part.start, part.end, components.config.sample_rate)]


def generate(
    frames: Frames | EditFrames,
    *,
    components: Components,
    sampling: SamplingConfig = SAMPLING_PRESETS["reference"],
    seeds: tuple[int, ...] = (0,),
    callback: Callable[[StepInfo], None] | None = None,
    cancel: threading.Event | None = None,
) -> Generation:
    """Generate foley for the range that `frames` cover, one variant per seed, of any length.

    Args:
        frames: the range's frames at the model's frame rate and input size: decoded (`engine.video.Frames`, e.g.
            from `decode_frames` or a host's upload) or decoded window by window (`engine.video.EditFrames`).
        components: a loaded model (`engine.models.load_model`).
        sampling: sampler, steps and guidance; the default is the published method (DDPM 300, guidance 3).
        seeds: one seed per variant; the same seed always gives the same audio.
        callback: receives a `StepInfo` per stage and per sampling step.
        cancel: when set, the job stops at the next step and raises `JobCancelled`.

    Returns:
        `Generation` with exactly `range_samples(frames.start, frames.end, sample_rate)` samples per variant.
        Ranges longer than the model's window are made of overlapping windows joined by equal-power crossfades.
    """
    config = components.config
    rate = config.sample_rate
    state = {"window": 0, "windows": estimate_windows(frames.end - frames.start, config.window_seconds, frames.rate)}
    clock = JobClock(sampling.steps)

    def report(stage: str, step: int, total: int) -> None:
        if cancel is not None and cancel.is_set():
            raise JobCancelled("The job was cancelled.")
        window, windows = state["window"], state["windows"]
        eta = clock.tick(stage, step, window, windows)
        if callback is not None:
            callback(StepInfo(stage, step, total, 0, len(seeds), window, windows, eta))

    # 1. Check inputs
    check_request(frames.start, frames.end, config, sampling, seeds)
    timesteps = TIMESTEP_SPACINGS[sampling.spacing](config.scheduler, sampling.steps)
    out = np.zeros((len(seeds), range_samples(frames.start, frames.end, rate)), np.float32)
    times: list[Fraction] = []
    joins: list[Fraction] = []
    motion: list[np.ndarray] = []
    start, fade_in, motion_before = frames.start, 0, None
    while True:
        state["windows"] = max(state["windows"], state["window"] + 1)  # cuts can make more windows than estimated
        end = min(start + config.window_seconds, frames.end)
        report("decode", 0, 1)
        part = frames.window(start, end)
        if end < frames.end:  # end at a shot cut when one falls in the window's second half
            end = window_end(part, config.window_seconds)
            part = part.window(start, end)
        report("decode", 1, 1)
        check_frames(part, config)
        window_seeds = [seed + state["window"] * WINDOW_SEED_STRIDE for seed in seeds]
        # 2.-5. per window
        waves = _generate_window(part, components, sampling, timesteps, window_seeds, report)
        # 6. Join: overlap-add, the next window starting on the frame grid at least OVERLAP before this end
        last = end >= frames.end
        following = end if last else frames.start + Fraction(math.floor((end - OVERLAP - frames.start) * frames.rate),
                                                             frames.rate)
        fade_out = range_samples(following, end, rate)
        crossfade_add(out, range_samples(frames.start, start, rate), waves, fade_in, fade_out)
        kept = part.window(start, following)
        times.extend(kept.times)
        motion.append(motion_curve(kept.rgb, motion_before))  # from the frames already decoded, for sync scores
        motion_before = kept.rgb[-1]
        if last:
            break
        joins.append((following + end) / 2 - frames.start)
        start, fade_in = following, fade_out
        state["window"] += 1
    variants = tuple(Variant(seed, out[i]) for i, seed in enumerate(seeds))
    return Generation(variants, rate, frames.start, frames.end, tuple(times), tuple(joins), sampling, tuple(timesteps),
                      np.concatenate(motion))
