"""Samplers over a discrete VP schedule, each an open loop with one contract:

    sample_x(model, x, timesteps, alphas_cumprod, *, generators, callback) -> x

where `model(x, t) -> denoised x0`, `x` is the batch of start latents and `generators` holds one
`torch.Generator` per batch row (stochastic samplers draw each row's noise from its own generator, so a
variant in a batch equals the same seed run alone). Schedules are separate functions.
"""

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


def get_timesteps_trailing(config: SchedulerConfig, steps: int) -> list[int]:
    """"Trailing" spacing (Lin et al. 2024): the first step starts at the last training timestep (999), which few-step
    ODE samplers need to start from (almost) pure noise."""
    timesteps = np.round(np.arange(config.num_train_timesteps, 0, -config.num_train_timesteps / steps)) - 1
    return [int(t) for t in timesteps.astype(np.int64)]


TIMESTEP_SPACINGS = {"leading": get_timesteps_leading, "trailing": get_timesteps_trailing}


def ddpm_step(
    x: torch.Tensor, denoised: torch.Tensor, alpha_prod: torch.Tensor, alpha_prod_prev: torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """One ancestral step x_t -> x_prev: posterior mean from x0 and x_t plus fixed-small variance noise."""
    alpha = alpha_prod / alpha_prod_prev
    beta = 1 - alpha
    mean = (alpha_prod_prev**0.5 * beta / (1 - alpha_prod)) * denoised + (alpha**0.5 * (1 - alpha_prod_prev) / (1 - alpha_prod)) * x
    variance = torch.clamp((1 - alpha_prod_prev) / (1 - alpha_prod) * beta, min=1e-20)
    return mean + variance**0.5 * noise


def row_noise(x: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
    """Standard normal noise shaped like `x`, each batch row from its own (CPU) generator, on `x`'s device."""
    return torch.cat([torch.randn((1, *x.shape[1:]), generator=g, dtype=x.dtype) for g in generators]).to(x.device)


def _prev_alpha_prod(alphas_cumprod: torch.Tensor, timesteps: list[int], i: int) -> torch.Tensor:
    """alpha_prod of the step after timesteps[i]; 1 (clean) after the last."""
    return alphas_cumprod[timesteps[i + 1]] if i + 1 < len(timesteps) else torch.tensor(1.0)


def sample_ddpm(model, x, timesteps, alphas_cumprod, *, generators, callback=None) -> torch.Tensor:
    """Ancestral DDPM (Ho et al. 2020, eq. 6-7) from `x` at timesteps[0] down to a clean latent."""
    for i, t in enumerate(timesteps):
        denoised = model(x, t)
        x = ddpm_step(x, denoised, alphas_cumprod[t], _prev_alpha_prod(alphas_cumprod, timesteps, i), row_noise(x, generators))
        if callback is not None:
            callback(i + 1)
    return x


def sample_ddim(model, x, timesteps, alphas_cumprod, *, generators=None, callback=None) -> torch.Tensor:
    """Deterministic DDIM (Song et al. 2021, eta = 0): the Euler method on the probability-flow ODE in
    (x / alpha, sigma / alpha) coordinates, so it also serves as the "Euler" sampler."""
    for i, t in enumerate(timesteps):
        denoised = model(x, t)
        alpha_prod, alpha_prod_prev = alphas_cumprod[t], _prev_alpha_prod(alphas_cumprod, timesteps, i)
        eps = (x - alpha_prod**0.5 * denoised) / (1 - alpha_prod) ** 0.5
        x = alpha_prod_prev**0.5 * denoised + (1 - alpha_prod_prev) ** 0.5 * eps
        if callback is not None:
            callback(i + 1)
    return x


def sample_dpmpp_2m(model, x, timesteps, alphas_cumprod, *, generators=None, callback=None) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2): second-order multistep on the data prediction, first
    order on the first step and on the final step into sigma = 0."""
    previous = None  # (denoised, h) of the last step
    for i, t in enumerate(timesteps):
        denoised = model(x, t)
        alpha_prod, alpha_prod_prev = alphas_cumprod[t], _prev_alpha_prod(alphas_cumprod, timesteps, i)
        alpha, sigma = alpha_prod**0.5, (1 - alpha_prod) ** 0.5
        alpha_prev, sigma_prev = alpha_prod_prev**0.5, (1 - alpha_prod_prev) ** 0.5
        ratio = (sigma_prev / alpha_prev) / (sigma / alpha)  # exp(-h), h = lambda_prev - lambda
        final = bool(sigma_prev == 0)
        h = None if final else -torch.log(ratio)
        estimate = denoised
        if previous is not None and not final:
            r = previous[1] / h
            estimate = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * previous[0]
        x = (sigma_prev / sigma) * x - alpha_prev * (ratio - 1) * estimate
        previous = (denoised, h)
        if callback is not None:
            callback(i + 1)
    return x


SAMPLERS = {"ddpm": sample_ddpm, "ddim": sample_ddim, "dpmpp_2m": sample_dpmpp_2m}
