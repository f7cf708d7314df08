"""Samplers over a discrete VP schedule, each an open loop with one contract:

    sample_x(model, x, timesteps, alphas_cumprod, *, generators, callback) -> x

where `model(x, t) -> denoised x0`, `x` is the batch of start latents and `generators` holds one
`torch.Generator` per batch row (stochastic samplers draw each row's noise from its own generator, so a
variant in a batch equals the same seed run alone). Schedules are separate functions.
"""


import numpy as np
import torch

from engine.vta_ldm.config import SchedulerConfig


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


def _half_log_snr(alpha_prod: torch.Tensor) -> torch.Tensor:
    """lambda = log(alpha / sigma); +inf at the clean end."""
    return 0.5 * (torch.log(alpha_prod) - torch.log1p(-alpha_prod)) if alpha_prod < 1 else torch.tensor(float("inf"))


def _unipc_update(x, point, target, m0, earlier, order: int, m_target=None):
    """One UniPC update (Zhao et al. 2023, data prediction, B(h) = e^h - 1) from `point` to `target` (each
    (alpha, sigma, lambda)): the predictor UniP without `m_target`, the corrector UniC with the model output at
    the target. `earlier` is (output, lambda) of the point before, used at order 2."""
    (_, sigma0, lambda0), (alpha_t, sigma_t, lambda_t) = point, target
    if sigma_t == 0:  # into sigma = 0 at first order the update is the denoised estimate itself
        return m0
    hh = -(lambda_t - lambda0)
    h_phi_1 = torch.expm1(hh)
    b_h = torch.expm1(hh)
    base = (sigma_t / sigma0) * x - alpha_t * h_phi_1 * m0
    b, h_phi_k, factorial = [], h_phi_1 / hh - 1, 1
    for i in range(1, order + 1):
        b.append(h_phi_k * factorial / b_h)
        factorial *= i + 1
        h_phi_k = h_phi_k / hh - 1 / factorial
    differences, ratios = [], []
    if order == 2:
        ratio = (earlier[1] - lambda0) / (lambda_t - lambda0)
        differences.append((earlier[0] - m0) / ratio)
        ratios.append(ratio)
    if m_target is None:  # predictor: rho = 1/2 at order 2
        residual = 0.5 * differences[0] if differences else torch.zeros_like(x)
    else:
        rows = torch.stack([torch.tensor([r ** (i - 1) for r in [*ratios, 1.0]]) for i in range(1, order + 1)])
        rhos = torch.tensor([0.5]) if order == 1 else torch.linalg.solve(rows.double(), torch.stack(b).double()).float()
        residual = sum(rho * d for rho, d in zip(rhos[:-1], differences)) + rhos[-1] * (m_target - m0)
    return base - alpha_t * b_h * residual


def sample_unipc(model, x, timesteps, alphas_cumprod, *, generators=None, callback=None) -> torch.Tensor:
    """UniPC (Zhao et al. 2023), order 2, bh2, on the data prediction: each model call first corrects the last
    step (UniC, no extra evaluation), then predicts the next (UniP); first order on the first and last steps."""
    def point(alpha_prod):
        return alpha_prod**0.5, (1 - alpha_prod) ** 0.5, _half_log_snr(alpha_prod)

    history = []  # (output, lambda) per model call
    last = None  # (x, point, order) before the last prediction
    for i, t in enumerate(timesteps):
        denoised = model(x, t)
        here = point(alphas_cumprod[t])
        if last is not None:
            earlier = history[-2] if len(history) > 1 else None
            x = _unipc_update(last[0], last[1], here, history[-1][0], earlier, last[2], m_target=denoised)
        history = [*history[-1:], (denoised, here[2])]
        order = min(2, len(timesteps) - i, len(history))
        last = (x, here, order)
        x = _unipc_update(x, here, point(_prev_alpha_prod(alphas_cumprod, timesteps, i)), denoised,
                          history[-2] if order == 2 else None, order)
        if callback is not None:
            callback(i + 1)
    return x


SAMPLERS = {"ddpm": sample_ddpm, "ddim": sample_ddim, "dpmpp_2m": sample_dpmpp_2m, "unipc": sample_unipc}
