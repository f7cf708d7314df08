"""Flow-matching sampling as MMAudio runs it (Lipman et al. 2023, min_sigma = 0): Euler steps on a uniform time grid
from noise at t = 0 to data at t = 1, with one contract:

    sample_euler(velocity, x, steps, *, callback=None) -> x

where `velocity(x, t) -> v` is dx/dt at the 0-d time tensor `t` and `steps` is the time grid (`flow_times`).

MMAudio's `generate()` draws the start noise with one `torch.randn((batch, latent_seq_len, latent_dim),
generator=rng, device=device, dtype=dtype)` call, where device and dtype are the network's (bfloat16 in their demo
unless --full_precision) and `rng` is a `torch.Generator` on that device, seeded once per job (`start_noise`).
Row i of a batch is therefore not what a batch of one would draw from the same seed.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch

from engine.mmaudio.network import Conditions, MMAudioNetwork


@dataclass(frozen=True)
class FlowStep:
    """One finished Euler step: `step` of `total`, taken from time `t`; the new `x`, and `denoised`, the data a
    straight flow would reach from there (x_t + (1 - t) v), for previews."""

    step: int
    total: int
    t: float
    x: torch.Tensor
    denoised: torch.Tensor


def flow_times(num_steps: int) -> torch.Tensor:
    """The uniform grid 0 = t_0 < ... < t_N = 1 (float32, CPU) that `FlowMatching(num_steps=N)` steps along."""
    if num_steps < 1:
        raise ValueError(f"num_steps={num_steps}: the Euler sampler needs at least 1 step (MMAudio uses 25).")
    return torch.linspace(0, 1, num_steps + 1)


@torch.no_grad()
def sample_euler(velocity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor,
                 steps: torch.Tensor, *, callback: Callable[[FlowStep], None] | None = None) -> torch.Tensor:
    """Euler's method on dx/dt = velocity(x, t) from steps[0] to steps[-1] (noise -> data)."""
    total = len(steps) - 1
    for i in range(total):
        t = steps[i]
        v = velocity(x, t)
        x_next = x + (steps[i + 1] - t) * v
        if callback is not None:
            callback(FlowStep(step=i + 1, total=total, t=float(t), x=x_next, denoised=x + (1 - t) * v))
        x = x_next
    return x


def start_noise(network: MMAudioNetwork, batch: int, generator: torch.Generator) -> torch.Tensor:
    """The start noise as MMAudio's `generate()` draws it: standard normal (batch, latent_seq_len, latent_dim) in one
    call, in the network's dtype, on the generator's device (which must be the network's)."""
    shape = (batch, network.sequence.latent_seq_len, network.config.latent_dim)
    return torch.randn(shape, generator=generator, dtype=network.latent_mean.dtype, device=generator.device)


def sample_latent(network: MMAudioNetwork, noise: torch.Tensor, conditions: Conditions, empty: Conditions, *,
                  cfg_strength: float, num_steps: int,
                  callback: Callable[[FlowStep], None] | None = None) -> torch.Tensor:
    """MMAudio's `generate()` from the start noise to the VAE latent: `num_steps` Euler steps of the guided
    velocity, then the latent un-normalised. `conditions` and `empty` come from `network.prepare_conditions` and
    `network.empty_conditions` (their demo: cfg_strength 4.5, 25 steps)."""
    velocity = partial(network.guided_velocity, conditions=conditions, empty=empty, cfg_strength=cfg_strength)
    latent = sample_euler(velocity, noise, flow_times(num_steps), callback=callback)
    return network.unnormalize(latent)
