"""One entry point: `generate()` turns a video range into N foley variants, written as numbered steps."""

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from engine.config import SAMPLING_PRESETS, Prompt, SamplingConfig
from engine.core.windows import OVERLAP, crossfade_add, estimate_windows, window_end
from engine.errors import FoleyError, UnsupportedRangeError
from engine.metrics import motion_curve
from engine.models import Components, family_of
from engine.progress import JobClock, StepInfo
from engine.video import EditFrames, Frames, FrameStreams

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
    timesteps: tuple[float, ...]  # diffusion timesteps (VTA-LDM) or flow times (MMAudio)
    motion: np.ndarray  # the picture's mean optical-flow magnitude at each frame time, for `metrics.sync_score`
    prompt: Prompt = Prompt()


def range_samples(start: Fraction, end: Fraction, sample_rate: int) -> int:
    """round((end - start) * sample_rate), half up, in exact arithmetic."""
    return math.floor((end - start) * sample_rate + Fraction(1, 2))


def check_request(start: Fraction, end: Fraction, sampling: SamplingConfig, seeds) -> None:
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


def check_prompt(prompt: Prompt, takes_text: bool, model: str) -> None:
    if prompt and not takes_text:
        raise ValueError(f"model '{model}' does not take text prompts; drop --prompt/--negative-prompt, or use a model "
                         "that does (`foley models list` shows which).")


def generate(
    frames: Frames | EditFrames | FrameStreams,
    *,
    components: Components,
    sampling: SamplingConfig = SAMPLING_PRESETS["reference"],
    seeds: tuple[int, ...] = (0,),
    prompt: Prompt = Prompt(),
    callback: Callable[[StepInfo], None] | None = None,
    cancel: threading.Event | None = None,
    cache: dict | None = None,
) -> Generation:
    """Generate foley for the range that `frames` cover, one variant per seed, of any length.

    Args:
        frames: the range's frames at the model's frame rate and input size: decoded (`engine.video.Frames`, e.g.
            from `decode_frames` or a host's upload) or decoded window by window (`engine.video.EditFrames`); a
            family that conditions on several picture streams takes them as `engine.video.FrameStreams`.
        components: a loaded model (`engine.models.load_model`).
        sampling: sampler, steps and guidance; the default is the published method (DDPM 300, guidance 3).
        seeds: one seed per variant; the same seed always gives the same audio.
        prompt: the text and negative text, for a family that takes text (`TAKES_TEXT`).
        callback: receives a `StepInfo` per stage and per sampling step.
        cancel: when set, the job stops at the next step and raises `JobCancelled`.
        cache: kept by the caller across calls over the same `frames` (a layered job's prompts): the family keeps
            each window's picture features there, so only the first call encodes the pictures. None (one prompt):
            nothing is kept, so a long range holds no window's features after it is done.

    Returns:
        `Generation` with exactly `range_samples(frames.start, frames.end, sample_rate)` samples per variant.
        Ranges longer than the model's window are made of overlapping windows joined by equal-power crossfades.
    """
    config, family = components.config, family_of(components)
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
    check_request(frames.start, frames.end, sampling, seeds)
    check_prompt(prompt, family.TAKES_TEXT, components.name)
    timesteps = family.timesteps(config, sampling)
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
        family.check_frames(part, config)
        window_seeds = [seed + state["window"] * WINDOW_SEED_STRIDE for seed in seeds]
        # 2.-5. per window, the model family's steps: conditions, sampling, decoder, vocoder
        waves = family.generate_window(components.stages, config, components.scale_factor, components.device, part,
                                       sampling, timesteps, window_seeds, report, prompt, cache)
        waves = waves[:, : range_samples(part.start, part.end, rate)]
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
                      np.concatenate(motion), prompt)
