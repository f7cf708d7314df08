"""Sampler: ancestral DDPM (Ho et al. 2020, eq. 6-7) over a discrete schedule, written as an open loop.

A sampler takes `model(x, t) -> denoised x0`, the start latent, the timesteps and a generator, and
returns the final latent. Schedules are separate functions.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from engine.config import SchedulerConfig


@dataclass(frozen=True)
class StepInfo:
    """Progress of one job: `step` of `total` in `stage`, for variant `variant` of `variants`, in window
    `window` of about `windows` (long ranges are generated window by window)."""

    stage: str
    step: int
    total: int
    variant: int = 0
    variants: int = 1
    window: int = 0
    windows: int = 1


def get_alphas_cumprod(config: SchedulerConfig) -> torch.Tensor:
    """Cumulative alpha products of the "scaled_linear" beta schedule (float32, as diffusers computes it)."""
    betas = torch.linspace(config.beta_start**0.5, config.beta_end**0.5, config.num_train_timesteps, dtype=torch.float32) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


def get_timesteps_leading(config: SchedulerConfig, steps: int) -> list[int]:
    """"Leading" spacing: 0, r, 2r, ... reversed, plus the offset (300 steps of 1000 -> 898, 895, ..., 1)."""
    ratio = config.num_train_timesteps // steps
    timesteps = (np.arange(0, steps) * ratio).round()[::-1].astype(np.int64) + config.steps_offset
    return [int(t) for t in timesteps]


def ddpm_step(
    x: torch.Tensor, denoised: torch.Tensor, alpha_prod: torch.Tensor, alpha_prod_prev: torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """One ancestral step x_t -> x_prev: posterior mean from x0 and x_t plus fixed-small variance noise."""
    alpha = alpha_prod / alpha_prod_prev
    beta = 1 - alpha
    mean = (alpha_prod_prev**0.5 * beta / (1 - alpha_prod)) * denoised + (alpha**0.5 * (1 - alpha_prod_prev) / (1 - alpha_prod)) * x
    variance = torch.clamp((1 - alpha_prod_prev) / (1 - alpha_prod) * beta, min=1e-20)
    return mean + variance**0.5 * noise


def sample_ddpm(
    model: Callable[[torch.Tensor, int], torch.Tensor],
    x: torch.Tensor,
    timesteps: list[int],
    alphas_cumprod: torch.Tensor,
    *,
    generator: torch.Generator,
    callback: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Ancestral DDPM from `x` at timesteps[0] down to a clean latent; noise is drawn from `generator`."""
    one = torch.tensor(1.0)
    for i, t in enumerate(timesteps):
        denoised = model(x, t)
        alpha_prod_prev = alphas_cumprod[timesteps[i + 1]] if i + 1 < len(timesteps) else one
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        x = ddpm_step(x, denoised, alphas_cumprod[t], alpha_prod_prev, noise)
        if callback is not None:
            callback(i + 1)
    return x
